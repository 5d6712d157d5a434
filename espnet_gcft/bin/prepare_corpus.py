"""Kaldi data dirs with ``utt2prev`` from an official corpus release (stage 1).

Usage::

    python -m espnet_gcft.bin.prepare_corpus --corpus slue-voxpopuli --corpus_dir /data/slue-voxpopuli \\
        --out_dir data --task ner
    python -m espnet_gcft.bin.prepare_corpus --corpus slue-voxceleb --corpus_dir /data/slue-voxceleb \\
        --out_dir data --task sentiment
    python -m espnet_gcft.bin.prepare_corpus --corpus librilight --corpus_dir /data/librilight \\
        --out_dir data
    python -m espnet_gcft.bin.prepare_corpus --corpus slue-voxceleb --corpus_dir DIR --missing

Corpora, their data dirs and sessions (``utt2prev``):

- ``slue-voxpopuli``: ``train``, ``devel``, ``test`` (blind: no ``text``);
  ``text`` is the NER target (``--task ner``: ``TYPE FILL <phrase> SEP`` in the
  lowercased text) or the transcript (``--task asr``); sessions are plenary
  sessions (``--order voxpopuli``).
- ``slue-voxceleb``: ``train``, ``devel``, ``test`` (blind); ``text`` is the
  sentiment label then the transcript (``--task sentiment``) or the transcript
  (``--task asr``); ``segments`` cut each clip's raw file; sessions are videos.
- ``librilight``: ``train_10h``, ``dev_clean``, ``dev_other``, ``test_clean``,
  ``test_other``; sessions are book chapters (``--order librispeech``).

Every data dir gets ``wav.scp``, ``utt2spk``, ``spk2utt``, ``utt2prev``, and,
with references, ``text`` and ``transcript`` (the plain words). All audio
headers are read first: a missing or unreadable file, a malformed row or a NER
span that does not fit its text stops with the release file and line, before
anything is written. Files whose content did not change keep their time stamps.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.recipe.corpora import check_audio, write_data_dir
from espnet_gcft.recipe.corpora import librilight, slue

TASKS = {"slue-voxpopuli": ("ner", "asr"), "slue-voxceleb": ("sentiment", "asr"), "librilight": ("asr",)}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=tuple(TASKS), required=True)
    parser.add_argument("--corpus_dir", type=Path, required=True, help="the release's root dir")
    parser.add_argument("--out_dir", type=Path, default=Path("data"), help="where the data dirs go")
    parser.add_argument("--task", default=None,
                        help="target text: ner|asr (slue-voxpopuli, default ner), "
                             "sentiment|asr (slue-voxceleb, default sentiment), asr (librilight)")
    parser.add_argument("--nj", type=int, default=4, help="threads reading audio headers")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--missing", action="store_true",
                        help="only print what of a SLUE release is missing in --corpus_dir "
                             "(nothing when it is complete), and write nothing")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    task = args.task or TASKS[args.corpus][0]
    if task not in TASKS[args.corpus]:
        get_parser().error(f"--task {task}: {args.corpus} supports {', '.join(TASKS[args.corpus])}")
    corpus_dir = args.corpus_dir.resolve()
    if args.missing:
        if args.corpus == "librilight":
            get_parser().error("--missing is for the SLUE corpora")
        print(slue.missing_release(args.corpus_dir, args.corpus.split("-", 1)[1]) or "")
        return
    with reported_errors("prepare_corpus"):
        if args.corpus == "librilight":
            sets, order = librilight.read_sets(corpus_dir), "librispeech"
        elif args.corpus == "slue-voxpopuli":
            sets, order = slue.read_voxpopuli(corpus_dir, task), "voxpopuli"
        else:
            sets, dropped = slue.read_voxceleb(corpus_dir)
            order = "file"
            if task == "asr":
                for utts in sets.values():
                    for utt in utts:
                        utt.text = utt.transcript
            for name, count in dropped.items():
                if count:
                    logging.info(f"{name}: left out {count} utterance(s) with a mixed sentiment "
                                 f"({', '.join(sorted(slue.MIXED_SENTIMENTS))}), as SLUE does")
        for name, utts in sets.items():
            logging.info(f"{name}: reading {len(utts)} audio headers")
            check_audio(utts, nj=args.nj, progress=not args.no_progress)
        for name, utts in sets.items():
            write_data_dir(args.out_dir / name, utts, order)


if __name__ == "__main__":
    main(sys.argv[1:])
