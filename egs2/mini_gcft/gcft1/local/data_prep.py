#!/usr/bin/env python3
"""Kaldi data dirs of the mini corpus from local/corpus/corpus.tsv.

Usage::

    python local/data_prep.py --corpus_dir local/corpus --task asr --out_dir data

Writes ``<out_dir>/{train,dev,test}/`` with ``wav.scp``, ``text`` (the target
of ``--task``: the transcript for asr, the transcript with inline
``TYPE FILL ... SEP`` entity tags for ner, the sentiment label followed by the
transcript for sentiment), ``transcript`` (always the plain words),
``utt2spk``, ``spk2utt`` and ``context_words`` (the homophones whose spelling the previous
sentence decides).
"""

import argparse
import csv
from pathlib import Path
import re

TAGS = re.compile(r"\b(PLACE|QUANT|ORG|WHEN|NORP|PERSON|LAW) FILL | SEP\b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_dir", type=Path, required=True)
    parser.add_argument("--task", choices=("asr", "ner", "sentiment"), default="asr")
    parser.add_argument("--out_dir", type=Path, default=Path("data"))
    parser.add_argument("--max_sessions", type=int, default=0,
                        help="keep only the first N sessions of each split (0: all; for quick tests)")
    args = parser.parse_args()
    corpus = args.corpus_dir.resolve()
    with open(corpus / "corpus.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if args.max_sessions > 0:
        kept = {}
        for row in rows:
            session = row["utt_id"].rsplit("-", 1)[0]
            kept.setdefault(row["split"], [])
            if session not in kept[row["split"]] and len(kept[row["split"]]) < args.max_sessions:
                kept[row["split"]].append(session)
        rows = [r for r in rows if r["utt_id"].rsplit("-", 1)[0] in kept[r["split"]]]
    files = {}
    speakers = {}
    for row in rows:
        split = row["split"]
        if split not in files:
            (args.out_dir / split).mkdir(parents=True, exist_ok=True)
            files[split] = {name: open(args.out_dir / split / name, "w", encoding="utf-8")
                            for name in ("wav.scp", "text", "transcript", "utt2spk", "context_words")}
        out = files[split]
        utt = row["utt_id"]
        plain = " ".join(TAGS.sub(" ", row["text"]).split())
        target = {"asr": plain, "ner": row["text"], "sentiment": f"{row['sentiment']} {plain}"}
        out["wav.scp"].write(f"{utt} {corpus / 'audio' / (utt + '.flac')}\n")
        out["text"].write(f"{utt} {target[args.task]}\n")
        out["transcript"].write(f"{utt} {plain}\n")
        out["utt2spk"].write(f"{utt} {utt.split('-')[0]}\n")
        speakers.setdefault(split, {}).setdefault(utt.split("-")[0], []).append(utt)
        if row["context_words"]:
            out["context_words"].write(f"{utt} {row['context_words']}\n")
    for out in files.values():
        for handle in out.values():
            handle.close()
    for split, per_speaker in speakers.items():
        with open(args.out_dir / split / "spk2utt", "w", encoding="utf-8") as f:
            f.writelines(f"{spk} {' '.join(utts)}\n" for spk, utts in per_speaker.items())


if __name__ == "__main__":
    main()
