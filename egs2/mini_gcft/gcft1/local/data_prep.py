#!/usr/bin/env python3
"""Kaldi data dirs of the mini corpus from local/corpus/corpus.tsv.

Usage::

    python local/data_prep.py --corpus_dir local/corpus --task asr --out_dir data

Writes one data dir per set with ``wav.scp``, ``text`` (the target of
``--task``: the transcript for asr, the transcript with inline
``TYPE FILL ... SEP`` entity tags for ner, the sentiment label followed by the
transcript for sentiment), ``transcript`` (always the plain words),
``utt2spk``, ``spk2utt``, ``utt2type`` (each utterance's row type: an item
type, ``cue``, ``topic``, ``filler`` or ``other``), ``distill_topics``
(``<utt> <sense>`` of the topic sentences of distill-only words: what GCAF's
student can learn from the audio alone, and the encoder probe's data) and
``homophones``: one line per item,
``<utt> <type> <position> <word> <alternative> <cue_seen>``, where ``type`` is
P (only the previous sentence decides the spelling), P2/P3 (only the sentence
2/3 back decides it), W (the carrier also names a topic word), C (the
carrier alone decides) or S (the carrier names a distill-only topic word and
the previous sentence is neutral: only a student that learnt the word's sense
from its teachers decides), ``position`` is the 0-based index of the homophone
among the transcript's words, ``word`` its spelling in the reference and
``alternative`` the other spelling. An entity item (type P) has entity types
as ``word`` and ``alternative`` (``O``: no entity), e.g. ``PERSON PLACE`` or
``O ORG``, and ``position`` is its entity's first word.

The sets: with ``--task asr`` or ``sentiment`` one per corpus split but the
entity splits (``train``, ``dev``, ``test``, ``test_far``); with ``--task
ner`` ``<split>_ner`` for every entity split ``ner_<split>``: the rows of
``<split>`` and then those of ``ner_<split>`` (``train_ner``, ``dev_ner``,
``test_ner``), so an NER run leaves the other sets' dirs alone.
"""

import argparse
import csv
import io
from pathlib import Path
import re
import sys

from espnet_gcft.fileio import write_text_if_changed
from espnet_gcft.scoring.homophones import ENTITY_LABELS, NO_ENTITY, entity_spans

TAGS = re.compile(r"\b(PLACE|QUANT|ORG|WHEN|NORP|PERSON|LAW) FILL | SEP\b")
ITEM_TYPES = ("P", "W", "C", "P2", "P3", "S")
ENTITY_SPLIT = "ner_"
COLUMNS = ("utt_id", "voice", "speed", "split", "sentiment", "text", "type", "word",
           "alternative", "cue_seen")


def read_corpus(corpus: Path) -> list:
    """Rows of corpus.tsv with their audio file; errors name the line."""
    index = {}
    with open(corpus / "audio" / "index.tsv", encoding="utf-8") as f:
        for line in f:
            utt, name = line.split()
            index[utt] = corpus / "audio" / name
    rows = []
    path = corpus / "corpus.tsv"
    with open(path, encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if tuple(reader.fieldnames or ()) != COLUMNS:
            sys.exit(f"{path}:1: expected the columns {' '.join(COLUMNS)}")
        for lineno, row in enumerate(reader, 2):
            if row["utt_id"] not in index:
                sys.exit(f"{path}:{lineno}: utterance {row['utt_id']} has no audio in audio/index.tsv")
            row["audio"] = index[row["utt_id"]]
            row["plain"] = " ".join(TAGS.sub(" ", row["text"]).split())
            if row["type"] in ITEM_TYPES:
                words = row["plain"].split()
                if words.count(row["word"]) != 1:
                    sys.exit(f"{path}:{lineno}: utterance {row['utt_id']}: the homophone "
                             f"{row['word']!r} must occur once in {row['plain']!r}")
                row["position"] = words.index(row["word"])
                row["item"] = (row["word"], row["alternative"])
                if row["alternative"] in ENTITY_LABELS:
                    row["item"] = entity_item(row, path, lineno)
            rows.append(row)
    return rows


def entity_item(row: dict, path: Path, lineno: int) -> tuple:
    """``(right type, other type)`` of an entity item: the tag around its name (``O``: none)."""
    index, kind, opened = entity_spans(row["text"].split())[row["position"]]
    where = f"{path}:{lineno}: utterance {row['utt_id']}"
    if kind != NO_ENTITY and opened != index - 2:
        sys.exit(f"{where}: the entity item's name {row['word']!r} is not the first word of "
                 f"its {kind} entity")
    if kind == row["alternative"]:
        sys.exit(f"{where}: the entity {row['word']!r} is tagged {kind}, its alternative type")
    return kind, row["alternative"]


def data_sets(split: str, task: str, entity_bases: set) -> list:
    """The data sets a corpus split's rows go to."""
    if task != "ner":
        return [] if split.startswith(ENTITY_SPLIT) else [split]
    base = split[len(ENTITY_SPLIT):] if split.startswith(ENTITY_SPLIT) else split
    return [f"{base}_ner"] if base in entity_bases else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_dir", type=Path, required=True)
    parser.add_argument("--task", choices=("asr", "ner", "sentiment"), default="asr")
    parser.add_argument("--out_dir", type=Path, default=Path("data"))
    parser.add_argument("--max_sessions", type=int, default=0,
                        help="keep only the first N sessions of each split (0: all; for quick tests)")
    args = parser.parse_args()
    rows = read_corpus(args.corpus_dir.resolve())
    if args.max_sessions > 0:
        kept = {}
        for row in rows:
            session = row["utt_id"].rsplit("-", 1)[0]
            sessions = kept.setdefault(row["split"], [])
            if session not in sessions and len(sessions) < args.max_sessions:
                sessions.append(session)
        rows = [r for r in rows if r["utt_id"].rsplit("-", 1)[0] in kept[r["split"]]]
    entity_bases = {r["split"][len(ENTITY_SPLIT):] for r in rows
                    if r["split"].startswith(ENTITY_SPLIT)}
    files = {}
    speakers = {}
    # (a set's rows of the demo's split first, then the entity sessions: the corpus
    # appends rows of both)
    for row in sorted(rows, key=lambda r: r["split"].startswith(ENTITY_SPLIT)):
        for split in data_sets(row["split"], args.task, entity_bases):
            add_row(row, split, args.task, files, speakers)
    # A file that already holds the same lines keeps its time stamp: a rerun of
    # stage 1 does not make the later stages look out of date.
    for split, out in files.items():
        for name, buffer in out.items():
            write_text_if_changed(args.out_dir / split / name, buffer.getvalue())
    for split, per_speaker in speakers.items():
        write_text_if_changed(args.out_dir / split / "spk2utt", "".join(
            f"{spk} {' '.join(utts)}\n" for spk, utts in per_speaker.items()))


def add_row(row: dict, split: str, task: str, files: dict, speakers: dict) -> None:
    """One utterance's lines in the files of a set."""
    if split not in files:
        files[split] = {name: io.StringIO()
                        for name in ("wav.scp", "text", "transcript", "utt2spk", "homophones",
                                     "utt2type", "distill_topics")}
    out = files[split]
    utt = row["utt_id"]
    plain = row["plain"]
    target = {"asr": plain, "ner": row["text"], "sentiment": f"{row['sentiment']} {plain}"}
    out["wav.scp"].write(f"{utt} {row['audio']}\n")
    out["text"].write(f"{utt} {target[task]}\n")
    out["transcript"].write(f"{utt} {plain}\n")
    out["utt2spk"].write(f"{utt} {utt.split('-')[0]}\n")
    speakers.setdefault(split, {}).setdefault(utt.split("-")[0], []).append(utt)
    out["utt2type"].write(f"{utt} {row['type'] if row['type'] != '-' else 'other'}\n")
    if row["type"] == "topic" and row["word"] != "-":
        out["distill_topics"].write(f"{utt} {row['word']}\n")
    if row["type"] in ITEM_TYPES:
        word, alternative = row["item"]
        out["homophones"].write(f"{utt} {row['type']} {row['position']} {word} "
                                f"{alternative} {row['cue_seen']}\n")


if __name__ == "__main__":
    main()
