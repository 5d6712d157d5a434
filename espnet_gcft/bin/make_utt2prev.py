"""Write ``<data_dir>/utt2prev``: each utterance's previous utterance in its session.

Usage::

    python -m espnet_gcft.bin.make_utt2prev --data_dir data/train --order librispeech
    python -m espnet_gcft.bin.make_utt2prev --data_dir data/dev --order voxpopuli
    python -m espnet_gcft.bin.make_utt2prev --data_dir data/test --order segments
    python -m espnet_gcft.bin.make_utt2prev --data_dir data/x --order file --utt2session utt2session

Writes ``<data_dir>/utt2prev`` with one line per utterance of ``<data_dir>/text``,
in its order: ``<utt> <previous utt>``, or ``<utt> -`` for the first of a session.
Orders: ``librispeech`` (``<spk>-<chapter>-<NNNN>``: session = speaker-chapter,
ordered by NNNN); ``voxpopuli`` (``<session>_<YYYYMMDD>-<HH:MM:SS>_<index>``:
session = the part before the first ``_``, ordered by time then index);
``segments`` (session = recording of ``<data_dir>/segments``, ordered by start
time); ``file`` (``--utt2session`` lines ``<utt> <session> <position>``).
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.history import (
    NO_PREVIOUS,
    ORDERS,
    build_utt2prev,
    write_utt2prev,
)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", type=Path, required=True, help="Kaldi data dir with text")
    parser.add_argument("--order", choices=ORDERS, required=True, help="how sessions are found")
    parser.add_argument("--utt2session", type=Path, default=None,
                        help="<utt> <session> <position> file, for --order file")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("make_utt2prev"):
        utt2prev = build_utt2prev(args.data_dir, args.order, args.utt2session)
    path = write_utt2prev(args.data_dir, utt2prev)
    first = sum(prev == NO_PREVIOUS for prev in utt2prev.values())
    logging.info(f"wrote {path}: {len(utt2prev)} utterances, {first} sessions")


if __name__ == "__main__":
    main(sys.argv[1:])
