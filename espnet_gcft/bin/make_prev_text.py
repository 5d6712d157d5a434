"""Write the ground-truth previous text of every utterance (the ``prev_gt`` source).

Usage::

    python -m espnet_gcft.bin.make_prev_text --data_dir dump/raw/dev --text transcript \\
        --num_prev 1 --out_dir dump/context/dev/prev_gt

Writes ``<out_dir>/text``: ``<utt> <previous transcript(s)>`` for every
utterance of ``<data_dir>/<text>`` in its order (nothing after the id for the
first of a session), from ``<data_dir>/utt2prev``; with ``--num_prev N`` the N
previous transcripts are joined, oldest first.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.history import previous_texts, read_utt2prev
from espnet_gcft.fileio import read_text, transcript_file, write_table_atomic


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--text", default=None,
        help="file of --data_dir with the plain transcripts "
             "(default: transcript if present, else text)")
    parser.add_argument("--num_prev", type=int, default=1)
    parser.add_argument("--out_dir", type=Path, required=True)
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("make_prev_text"):
        texts = read_text(transcript_file(args.data_dir, args.text))
        previous = previous_texts(texts, read_utt2prev(args.data_dir / "utt2prev"), args.num_prev)
        write_table_atomic(args.out_dir / "text", previous.items())
    logging.info(f"{args.out_dir}/text: {len(previous)} utterances")


if __name__ == "__main__":
    main(sys.argv[1:])
