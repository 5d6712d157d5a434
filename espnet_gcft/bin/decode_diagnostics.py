"""What a variant's context knew about the context-decided words of a test set.

Usage::

    # gcaf: the student's prediction against the teacher embedding
    python -m espnet_gcft.bin.decode_diagnostics --homophones dump/raw/test/homophones \\
        --student exp/gcaf/decode_test/student.scp \\
        --teacher dump/context/test/gen_title/emb_mean.scp \\
        --train_teacher dump/context/train/gen_title/emb_mean.scp --utt2type dump/raw/test/utt2type \\
        --out exp/gcaf/decode_test/diagnostics.json
    # gen_inject: does the LLM output already hold the spelling?
    python -m espnet_gcft.bin.decode_diagnostics --homophones dump/raw/test/homophones \\
        --generated dump/context/test/gen_title/text \\
        --out exp/gen_inject/decode_test/diagnostics.json

Writes one JSON object of records ``{"value", "ci_low", "ci_high", "n"}`` (percent):
``student_teacher_cos`` (mean cosine x 100 over utterances with a teacher
context), ``student_gain`` and ``student_gain_<type>`` (with ``--train_teacher``:
that cosine minus the cosine of the training teachers' mean to the same
teacher, pooled and per row type of ``--utt2type``, else per item type; 0: a
collapsed student), ``student_sense_acc_<type>`` (the prediction's nearest sense
centroid, between the item's two spellings, is the right one),
``llm_has_right`` / ``llm_has_alt`` (P/W items whose generated context contains
the right / the alternative spelling).
"""

import argparse
import json
import logging
from pathlib import Path
import sys

import kaldiio
import numpy as np

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.fileio import read_text, write_text_atomic
from espnet_gcft.recipe.diagnostics import llm_diagnostics, student_diagnostics
from espnet_gcft.scoring.homophones import read_homophones


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homophones", type=Path, required=True)
    parser.add_argument("--student", type=Path, default=None, help="student.scp of a gcaf decode")
    parser.add_argument("--teacher", type=Path, default=None, help="teacher context scp (with --student)")
    parser.add_argument("--train_teacher", type=Path, default=None,
                        help="the training set's teacher scp: its mean is the collapse reference")
    parser.add_argument("--utt2type", type=Path, default=None, help="<utt> <row type> of the set")
    parser.add_argument("--generated", type=Path, default=None, help="text of a gen_<prompt> source")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("decode_diagnostics"):
        if (args.student is None) != (args.teacher is None):
            raise ValueError("--student and --teacher go together")
        if args.student is None and args.generated is None:
            raise ValueError("give --student/--teacher, --generated, or both")
        items = read_homophones(args.homophones)
        records = {}
        if args.student is not None:
            student = dict(kaldiio.load_scp(str(args.student)))
            teacher = dict(kaldiio.load_scp(str(args.teacher)))
            train_mean = None
            if args.train_teacher is not None:
                rows = [m for _, m in kaldiio.load_scp_sequential(str(args.train_teacher)) if len(m)]
                train_mean = np.concatenate(rows).astype(np.float64).mean(axis=0)
            types = read_text(args.utt2type) if args.utt2type is not None else None
            records.update(student_diagnostics(student, teacher, items, train_mean, types))
        if args.generated is not None:
            records.update(llm_diagnostics(read_text(args.generated), items))
        write_text_atomic(args.out, json.dumps(records, indent=1, sort_keys=True) + "\n")
    logging.info(f"wrote {args.out}: " + ", ".join(f"{k} {v['value']:.1f}" for k, v in records.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
