"""Merge decode outputs and write sclite trn files (stage 7).

Usage::

    python -m espnet_gcft.bin.make_trn --data_dir dump/raw/test --out_dir exp/gcaf/decode_test \\
        exp/gcaf/decode_test/split2/1 exp/gcaf/decode_test/split2/2

Writes ``<out_dir>/text`` (hypotheses in the order of ``<data_dir>/text``),
``ref.trn`` and ``hyp.trn`` (``<words> (<spk>-<utt>)``). Every utterance of the
data dir must be decoded exactly once. A data dir without ``text`` (a blind
test set) gets no ``ref.trn``.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.recipe.trn import make_trn


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("decode_dirs", type=Path, nargs="+", help="dirs with a decoded text")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("make_trn"):
        count = make_trn(args.data_dir, args.decode_dirs, args.out_dir)
    logging.info(f"{args.out_dir}: {count} utterances")


if __name__ == "__main__":
    main(sys.argv[1:])
