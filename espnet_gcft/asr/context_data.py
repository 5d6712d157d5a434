"""Reading and checking context embeddings stored as kaldiio ark/scp.

A context file maps each utterance id to a 2-D float32 matrix ``(L, C)``:
``L = 1`` for cls/mean pooling, ``L`` tokens for sequence pooling, ``L = 0``
for an utterance without context (the first of its session).
"""

from pathlib import Path
from typing import Optional, Union

import kaldiio
import numpy as np

from espnet_gcft.errors import InputError
from espnet_gcft.fileio import read_keys


class ContextDataError(InputError, ValueError):
    """A context file that does not fit: names the file, the line and the utterance."""


def check_context_matrix(
    matrix: np.ndarray, utt_id: str, context_dim: Optional[int], where: str
) -> np.ndarray:
    """Return ``matrix`` as float32 ``(L, C)`` or raise naming ``utt_id``.

    Args:
        matrix: the stored context of one utterance.
        utt_id: its id, for messages.
        context_dim: expected ``C``, or None to accept any.
        where: file (and line) the matrix came from, for messages.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise ContextDataError(
            f"{where}: utterance {utt_id}: context must be a 2-D (L, C) matrix, "
            f"got shape {matrix.shape}"
        )
    if context_dim is not None and matrix.shape[1] != context_dim:
        raise ContextDataError(
            f"{where}: utterance {utt_id}: context dim {matrix.shape[1]} != "
            f"context_dim {context_dim} of the model config"
        )
    if not np.isfinite(matrix).all():
        raise ContextDataError(f"{where}: utterance {utt_id}: context has NaN or inf values")
    return matrix.astype(np.float32, copy=False)


def validate_context_scp(
    scp: Union[str, Path],
    context_dim: Optional[int],
    required_keys_file: Union[str, Path, None] = None,
    require_all: bool = True,
) -> int:
    """Check every matrix of a context scp; return how many were read.

    Args:
        scp: ``<utt> <ark>:<offset>`` lines written by kaldiio.
        context_dim: expected ``C`` (None: all matrices must agree instead).
        required_keys_file: a file whose first column lists the utterances
            (e.g. the set's ``text``); each must have a context when
            ``require_all``.
        require_all: raise for an utterance of ``required_keys_file`` that has
            no context.
    """
    index = read_keys(scp)
    if required_keys_file is not None and require_all:
        missing = [u for u in read_keys(required_keys_file) if u not in index]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ContextDataError(
                f"{scp}: no context for {len(missing)} utterance(s) of "
                f"{required_keys_file}: {shown}"
            )
    matrices = kaldiio.load_scp(str(scp))
    for utt_id, lineno in index.items():
        matrix = check_context_matrix(
            matrices[utt_id], utt_id, context_dim, f"{scp}:{lineno}"
        )
        if context_dim is None:
            context_dim = matrix.shape[1]
    return len(index)
