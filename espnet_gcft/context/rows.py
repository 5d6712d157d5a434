"""Several previous utterances as separate context rows.

A source's context of utterance *i* (``prev_gt``: the text of p(i);
``gen_<prompt>``: the LLM's output from it; ``prev_audio``: its audio) is one
entry per utterance. With ``N`` rows, utterance *i* receives the entries of
p^(N-1)(i), ..., p(i), i stacked along ``L``, oldest first: the contexts made
from the N previous utterances, each its own row(s), so the fusion's
cross-attention chooses among them. Fewer rows at the start of a session
(the entries with ``L = 0`` add nothing); ``L = 0`` for the first utterance.
Compare ``--num_prev N`` in :mod:`espnet_gcft.context.history`, which joins the
N previous texts into one string before the LLM or the text encoder sees it.
"""

from pathlib import Path
from typing import Dict, List

import kaldiio
import numpy as np

from espnet_gcft.context.history import NO_PREVIOUS
from espnet_gcft.errors import InputError
from espnet_gcft.fileio import read_table, write_ark_atomic


class RowsError(InputError, ValueError):
    """Contexts that cannot be stacked (names the file and the utterance)."""


def chain(utt: str, utt2prev: Dict[str, str], rows: int) -> List[str]:
    """[p^(rows-1)(utt), ..., p(utt), utt], shorter at the start of a session."""
    out = [utt]
    while len(out) < rows:
        prev = utt2prev.get(out[-1], NO_PREVIOUS)
        if prev == NO_PREVIOUS:
            break
        out.append(prev)
    return out[::-1]


def stack_rows(source_scp: Path, utt2prev: Dict[str, str], rows: int, out_dir: Path,
               name: str) -> Dict[str, int]:
    """Write ``out_dir/<name>.{ark,scp}`` with each utterance's stacked contexts.

    Returns utt -> L. The scp follows the source scp's order; the ark is
    written to a temporary name and moved into place with the scp, so a
    killed run leaves no half-written output behind.
    """
    if rows < 1:
        raise RowsError(f"--rows must be at least 1, got {rows}")
    order = [fields[0] for _, fields in read_table(source_scp, min_fields=2, max_fields=2)]
    entries = kaldiio.load_scp(str(source_scp))
    for utt in order:
        if utt not in utt2prev:
            raise RowsError(f"{source_scp}: utterance {utt} is not in utt2prev")
    lengths = {}

    def stacked_rows():
        for utt in order:
            members = chain(utt, utt2prev, rows)
            missing = [m for m in members if m not in entries]
            if missing:
                raise RowsError(f"{source_scp}: no context for utterance {missing[0]} "
                                f"(a previous utterance of {utt})")
            matrices = [np.asarray(entries[m], dtype=np.float32) for m in members]
            dims = {m.shape[1] for m in matrices}
            if len(dims) != 1:
                raise RowsError(f"{source_scp}: utterance {utt}: its previous contexts have "
                                f"dimensions {sorted(dims)}")
            stacked = np.concatenate(matrices, axis=0)
            lengths[utt] = stacked.shape[0]
            yield utt, stacked

    write_ark_atomic(out_dir / f"{name}.ark", out_dir / f"{name}.scp", stacked_rows())
    return lengths
