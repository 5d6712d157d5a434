#!/usr/bin/env python3
"""Speak the mini corpus with espeak-ng and check that homophones sound alike.

Usage::

    python local/corpus/synthesize.py [--corpus local/corpus/corpus.tsv] \\
        [--out_dir local/corpus/audio] [--nj 2] [--respeak]

Needs Debian's ``espeak-ng`` and ``sox`` (``apt-get install espeak-ng sox``).
Every utterance is spoken with its voice and pace (``voice``, ``speed``
columns), silence is trimmed, and the result is stored as 16 kHz, 16 bit mono
FLAC (``<utt_id>.flac``); utterances with the same voice, pace and words share
one file. For every homophone item (types P, W, C, P2, P3) the carrier is
also spoken with the *alternative* spelling, and the two waveforms are
compared sample by sample: the script fails unless every pair is identical,
and writes the comparison to ``homophone_check.tsv`` next to the corpus.
Entity items are not checked: their two readings differ in tags only, which
are not spoken. The committed FLAC files were made with this script;
rerunning it is only needed after a change of corpus.tsv. A file already in
``--out_dir`` is kept as it is (the check reads it instead of speaking it
again), so rows added to the corpus leave every existing file byte for byte;
files no row uses any more are removed, and ``--respeak`` speaks every file
anew.
"""

import argparse
import csv
import hashlib
from concurrent.futures import ProcessPoolExecutor
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

import numpy as np
import soundfile

TAGS = re.compile(r"\b(PLACE|QUANT|ORG|WHEN|NORP|PERSON|LAW) FILL | SEP\b")
ITEM_TYPES = ("P", "W", "C", "P2", "P3", "S")
# the alternative of an entity item is an entity type (O: no entity), not a spelling
ENTITY_LABELS = ("PLACE", "QUANT", "ORG", "WHEN", "NORP", "PERSON", "LAW", "O")
# trim leading and trailing silence, keep 50 ms of it on each side
SOX_EFFECTS = ["silence", "1", "0.02", "0.1%", "reverse", "silence", "1", "0.02", "0.1%",
               "reverse", "pad", "0.05", "0.05"]
PEAK_DB = "-28"  # every file peaks at -28 dBFS: a low level keeps the FLAC files small


def spoken(text: str) -> str:
    """The words of a tagged text (``TYPE FILL`` / ``SEP`` removed)."""
    return " ".join(TAGS.sub(" ", text).split())


def speak(voice: str, speed: str, words: str, out: Path) -> np.ndarray:
    """espeak-ng -> trimmed 16 kHz FLAC at ``out``; returns the samples."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", speed, "-w", str(raw), words], check=True)
        subprocess.run(["sox", "-D", str(raw), "-r", "16000", "-b", "16", "-c", "1", str(out),
                        *SOX_EFFECTS, "gain", "-n", PEAK_DB], check=True)
    samples, _ = soundfile.read(out, dtype="int16")
    return samples


def job(task: Tuple[str, str, str, str, str]) -> Tuple[str, str]:
    """Speak one (voice, speed, words) unless its file exists; with an alternative, compare the two."""
    voice, speed, words, alternative, out = task
    if Path(out).is_file():
        samples, _ = soundfile.read(out, dtype="int16")
    else:
        # under another name until complete: an interrupted run leaves no file to keep
        part = Path(out).with_suffix(".part.flac")
        samples = speak(voice, speed, words, part)
        os.replace(part, out)
    if not alternative:
        return out, ""
    with tempfile.TemporaryDirectory() as tmp:
        other = speak(voice, speed, alternative, Path(tmp) / "alt.flac")
    if len(other) != len(samples):
        return out, f"length {len(samples)} vs {len(other)}"
    diff = int(np.abs(samples.astype(np.int32) - other.astype(np.int32)).max(initial=0))
    return out, "identical" if diff == 0 else f"max sample difference {diff}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    parser.add_argument("--corpus", type=Path, default=here / "corpus.tsv")
    parser.add_argument("--out_dir", type=Path, default=here / "audio")
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--respeak", action="store_true",
                        help="speak every file again instead of keeping the existing ones")
    args = parser.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{sys.argv[0]}: {tool} is required (apt-get install espeak-ng sox)")
    with open(args.corpus, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if args.respeak and args.out_dir.exists():
        shutil.rmtree(args.out_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    # one file per distinct (voice, speed, words); items also check their alternative
    tasks: Dict[Tuple[str, str, str], Tuple[str, str, str, str, str]] = {}
    links: List[Tuple[str, str]] = []
    for row in rows:
        words = spoken(row["text"])
        alternative = ""
        if row["type"] in ITEM_TYPES and row["alternative"] not in ENTITY_LABELS:
            alternative = " ".join(row["alternative"] if w == row["word"] else w
                                   for w in words.split())
        key = (row["voice"], row["speed"], words)
        name = hashlib.sha1("|".join(key).encode()).hexdigest()[:12] + ".flac"
        tasks.setdefault(key, (*key, alternative, str(args.out_dir / name)))
        links.append((row["utt_id"], name))
    used = {Path(task[-1]).name for task in tasks.values()}
    for stale in sorted(args.out_dir.glob("*.flac")):
        if stale.name not in used:
            stale.unlink()
    kept = sum((args.out_dir / name).is_file() for name in used)
    with ProcessPoolExecutor(args.nj) as pool:
        checks = dict(pool.map(job, tasks.values(), chunksize=16))
    index = "".join(f"{utt}\t{name}\n" for utt, name in links)
    (args.out_dir / "index.tsv").write_text(index, encoding="utf-8")
    report = [(Path(out).name, verdict) for out, verdict in checks.items() if verdict]
    (args.corpus.parent / "homophone_check.tsv").write_text(
        "file\tcarrier with the alternative spelling\n"
        + "".join(f"{name}\t{verdict}\n" for name, verdict in sorted(report)), encoding="utf-8")
    differing = [r for r in report if r[1] != "identical"]
    print(f"{len(tasks)} files for {len(rows)} utterances in {args.out_dir} "
          f"({len(tasks) - kept} spoken, {kept} kept); "
          f"{len(report) - len(differing)} of {len(report)} homophone carriers sound "
          "identical with the alternative spelling")
    if differing:
        sys.exit(f"{len(differing)} carriers differ with the alternative spelling, e.g. {differing[0]}")


if __name__ == "__main__":
    main()
