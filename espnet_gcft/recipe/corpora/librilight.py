"""Libri-light limited supervision (10 h) and the LibriSpeech evaluation sets.

Release layout under ``--corpus_dir``::

    librispeech_finetuning/1h/{0..5}/{clean,other}/<spk>/<chapter>/<spk>-<chapter>-<NNNN>.flac
    librispeech_finetuning/1h/.../<spk>/<chapter>/<spk>-<chapter>.trans.txt
    librispeech_finetuning/9h/{clean,other}/<spk>/<chapter>/...
    LibriSpeech/{dev-clean,dev-other,test-clean,test-other}/<spk>/<chapter>/...

``train_10h`` is all twelve 1 h parts plus the 9 h parts; the text is that of
the ``.trans.txt`` files; a chapter is a session (``--order librispeech``).
"""

from pathlib import Path
import re
from typing import Dict, List

from espnet_gcft.recipe.corpora import CorpusError, Utterance

TRAIN_PARTS = tuple(f"1h/{fold}/{kind}" for fold in range(6) for kind in ("clean", "other")) + (
    "9h/clean", "9h/other")
EVAL_SETS = {"dev_clean": "dev-clean", "dev_other": "dev-other",
             "test_clean": "test-clean", "test_other": "test-other"}
SETS = ("train_10h",) + tuple(EVAL_SETS)
UTT_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
TRANS_SUFFIX = ".trans.txt"


def read_part(part_dir: Path) -> List[Utterance]:
    """Every utterance of the ``.trans.txt`` files under ``part_dir`` (``<spk>/<chapter>/``)."""
    if not part_dir.is_dir():
        raise CorpusError(f"{part_dir} is missing (an incomplete download or extraction?)")
    utts: List[Utterance] = []
    trans_files = sorted(part_dir.glob(f"*/*/*{TRANS_SUFFIX}"))
    if not trans_files:
        raise CorpusError(f"{part_dir} holds no <spk>/<chapter>/<spk>-<chapter>{TRANS_SUFFIX} file")
    for trans in trans_files:
        speaker, chapter = trans.parent.parent.name, trans.parent.name
        if trans.name != f"{speaker}-{chapter}{TRANS_SUFFIX}":
            raise CorpusError(f"{trans}: expected the name {speaker}-{chapter}{TRANS_SUFFIX} in {trans.parent}")
        with open(trans, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split(maxsplit=1)
                if not fields:
                    continue
                where = f"{trans}:{lineno}"
                match = UTT_ID.match(fields[0])
                if match is None or match.group(1) != speaker or match.group(2) != chapter:
                    raise CorpusError(
                        f"{where}: utterance id {fields[0]!r} is not {speaker}-{chapter}-<NNNN>")
                if len(fields) < 2 or not fields[1].strip():
                    raise CorpusError(f"{where}: utterance {fields[0]} has no text")
                text = " ".join(fields[1].split())
                utts.append(Utterance(utt=fields[0], speaker=speaker,
                                      audio=trans.parent / f"{fields[0]}.flac", where=where,
                                      text=text, transcript=text))
    return utts


def read_sets(corpus_dir: Path) -> Dict[str, List[Utterance]]:
    """``train_10h``, ``dev_clean``, ``dev_other``, ``test_clean``, ``test_other``."""
    finetuning = corpus_dir / "librispeech_finetuning"
    librispeech = corpus_dir / "LibriSpeech"
    sets = {"train_10h": [u for part in TRAIN_PARTS for u in read_part(finetuning / part)]}
    for name, part in EVAL_SETS.items():
        sets[name] = read_part(librispeech / part)
    return sets
