"""Check and format a data dir's audio (stage 2).

Usage::

    python -m espnet_gcft.bin.format_data --data_dir data/train --out_dir dump/raw/train --fs 16000

Writes ``<out_dir>/wav.scp`` (mono audio at ``--fs``: files that already are
mono at that rate are referenced in place, the rest, and every segment of a
``segments`` file, are written as FLAC under ``<out_dir>/data``),
``utt2num_samples``, ``spk2utt`` and copies ``text``, ``transcript``,
``utt2spk``, ``utt2prev`` and ``homophones``. A missing or unreadable audio
file stops with the utterance id.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.recipe.format_data import format_data


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--fs", type=int, default=16000, help="sampling rate of the output")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("format_data"):
        count = format_data(args.data_dir, args.out_dir, args.fs, args.nj)
    logging.info(f"{args.out_dir}: {count} utterances")


if __name__ == "__main__":
    main(sys.argv[1:])
