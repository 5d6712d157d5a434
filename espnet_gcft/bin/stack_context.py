"""Stack the contexts of the N previous utterances as separate rows.

Usage::

    python -m espnet_gcft.bin.stack_context --data_dir dump/raw/test --rows 3 \\
        --source_dir dump/context/test/prev_gt --scp_name emb_mean.scp \\
        --out_dir dump/context/test/prev_gt_rows3

Utterance *i* receives the source's entries of p^(N-1)(i), ..., p(i), i
(``<data_dir>/utt2prev``) concatenated along ``L``, oldest first, so each
previous utterance is its own context row (fewer at the start of a session).
Writes ``<out_dir>/<scp_name>`` and the matching ark; works for every source
with one entry per utterance (``prev_gt``, ``gen_<prompt>``, ``prev_audio``).
"""

import argparse
import collections
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.history import read_utt2prev
from espnet_gcft.context.rows import stack_rows


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="the set's data dir (utt2prev)")
    parser.add_argument("--rows", type=int, required=True, help="previous utterances, N")
    parser.add_argument("--source_dir", type=Path, required=True)
    parser.add_argument("--scp_name", default="emb_mean.scp")
    parser.add_argument("--out_dir", type=Path, required=True)
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("stack_context"):
        lengths = stack_rows(args.source_dir / args.scp_name,
                             read_utt2prev(args.data_dir / "utt2prev"), args.rows,
                             args.out_dir, Path(args.scp_name).stem)
    counts = collections.Counter(lengths.values())
    logging.info(f"{args.out_dir}/{args.scp_name}: {len(lengths)} utterances, rows per "
                 f"utterance: {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main(sys.argv[1:])
