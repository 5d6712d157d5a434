"""sclite ``trn`` files: ``<words> (<spk>-<utt>)`` per line."""

from pathlib import Path
from typing import Dict, Iterable, Tuple, Union

from espnet_gcft.errors import InputError
from espnet_gcft.fileio import key_mismatch, write_text_atomic

PathLike = Union[str, Path]


class ScoringError(InputError, ValueError):
    """Inputs that cannot be scored (names the file and the utterance)."""


def read_trn(path: PathLike) -> Dict[str, str]:
    """``id -> words`` of a trn file, in file order; empty or duplicated ids are errors."""
    entries: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            open_at = line.rfind("(")
            if open_at < 0 or not line.rstrip().endswith(")"):
                raise ScoringError(f"{path}:{lineno}: expected '<words> (<id>)', got {line[:80]!r}")
            utt = line[open_at + 1:line.rstrip().rfind(")")].strip()
            if not utt:
                raise ScoringError(f"{path}:{lineno}: empty utterance id")
            if utt in entries:
                raise ScoringError(f"{path}:{lineno}: utterance ({utt}) appears twice")
            entries[utt] = " ".join(line[:open_at].split())
    if not entries:
        raise ScoringError(f"{path}: no utterances (empty file)")
    return entries


def write_trn(path: PathLike, rows: Iterable[Tuple[str, str, str]]) -> None:
    """Write ``(utt, speaker, words)`` rows as ``<words> (<speaker>-<utt>)``."""
    write_text_atomic(path, "".join(f"{words} ({spk}-{utt})\n".lstrip() for utt, spk, words in rows))


def paired(ref: Dict[str, str], hyp: Dict[str, str], ref_name: str, hyp_name: str) -> Iterable[Tuple[str, str, str]]:
    """``(id, ref words, hyp words)`` in ref order; ids must be the same in both."""
    mismatch = key_mismatch(hyp, ref)
    if mismatch is not None:
        utt, kind = mismatch
        if kind == "missing":
            raise ScoringError(f"utterance ({utt}) of {ref_name} is missing from {hyp_name}")
        raise ScoringError(f"utterance ({utt}) of {hyp_name} is not in {ref_name}")
    return [(utt, ref[utt], hyp[utt]) for utt in ref]
