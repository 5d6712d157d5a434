"""Join the shards of a sharded ``generate_context`` run.

Usage::

    python -m espnet_gcft.bin.merge_context --data_dir data/train \\
        --out_dir dump/context/train/gen_title dump/context/train/gen_title/shard.*

Writes ``<out_dir>/text`` (in the order of ``<data_dir>/text``) and
``<out_dir>/generation.jsonl`` from the shard dirs. Fails, naming them, if an
utterance is in two shards or in none.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.generate import merge_shards
from espnet_gcft.fileio import read_text


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", type=Path, required=True, help="the set's data dir")
    parser.add_argument("--out_dir", type=Path, required=True, help="merged output dir")
    parser.add_argument("shard_dirs", type=Path, nargs="+", help="shard output dirs")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("merge_context"):
        utts = list(read_text(args.data_dir / "text"))
        count = merge_shards(utts, args.shard_dirs, args.out_dir)
    logging.info(f"merged {len(args.shard_dirs)} shards into {args.out_dir}: {count} utterances")


if __name__ == "__main__":
    main(sys.argv[1:])
