"""Where the variants start when they fine-tune another run's model (``gcft.sh --init_model``).

A run with a token list of its own (``--task ner`` adds the entity tags to the
ASR characters; another ``--token_type`` or ``--nbpe``) can still start from a
model trained with another one, e.g. the ASR run's shared pretraining: every
parameter is taken over except the layers indexed by token (the CTC output, the
attention decoder's embedding and output), which keep their random init. With
the same token list nothing is left out. The answer is ESPnet's ``--init_param``
string, ``<checkpoint>[:::<excluded prefixes>]``.
"""

from pathlib import Path
from typing import List

import yaml

from espnet_gcft.errors import InputError, MissingInputError

# ESPnetASRModel's parameters whose shape or meaning follows the token list
TOKEN_LAYERS = ("ctc.ctc_lo", "decoder.embed", "decoder.output_layer")


def model_tokens(checkpoint: Path) -> List[str]:
    """The token list a checkpoint was trained with: ``token_list`` of the
    ``config.yaml`` ESPnet writes beside it (a list, or the path of a file)."""
    if not checkpoint.is_file():
        raise MissingInputError(f"{checkpoint}: no such checkpoint")
    config = checkpoint.parent / "config.yaml"
    if not config.is_file():
        raise MissingInputError(f"{config}: no training config beside the checkpoint {checkpoint}")
    tokens = (yaml.safe_load(config.read_text()) or {}).get("token_list")
    if isinstance(tokens, str):
        return read_tokens(Path(tokens))
    if not isinstance(tokens, list) or not tokens:
        raise InputError(f"{config}: no token_list")
    return [str(token) for token in tokens]


def read_tokens(path: Path) -> List[str]:
    """A token list file: one token per line."""
    if not path.is_file():
        raise MissingInputError(f"{path}: no such token list")
    return [line.rstrip("\n") for line in path.read_text().splitlines()]


def init_param(checkpoint: Path, token_list: Path) -> str:
    """ESPnet's ``--init_param`` for a model with ``token_list`` starting from ``checkpoint``."""
    if model_tokens(checkpoint) == read_tokens(token_list):
        return str(checkpoint)
    return f"{checkpoint}:::{','.join(TOKEN_LAYERS)}"


def describe_init(param: str) -> str:
    """An ``--init_param`` of :func:`init_param` for a reader (a RESULTS header): the
    checkpoint and, with another token list, the layers that kept their random init."""
    path, _, excluded = param.partition(":::")
    if not excluded:
        return f"`{path}`"
    layers = ", ".join(f"`{name}`" for name in excluded.split(","))
    return f"`{path}` (another token list: {layers} at random init)"
