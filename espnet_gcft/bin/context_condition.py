"""Build a decode-time context condition by re-pairing a set's contexts.

Usage::

    python -m espnet_gcft.bin.context_condition --condition shuffled --data_dir dump/raw/test \\
        --source_dir dump/context/test/prev_gt --scp_name emb_mean.scp \\
        --out_dir dump/context/test/prev_gt_shuffled
    python -m espnet_gcft.bin.context_condition --condition opposite --data_dir dump/raw/test \\
        --source_dir dump/context/test/gen_title --scp_name emb_mean.scp \\
        --out_dir dump/context/test/gen_title_opposite

``shuffled``: every utterance with a previous one takes the context of an
utterance of another session (sessions from ``<data_dir>/utt2prev``).
``opposite``: every context-decided item (type P or W in
``<data_dir>/homophones``) takes the context of an item of the other sense.
``replaced<p>`` / ``dropped<p>`` (e.g. ``replaced0.25``, ``dropped1``): a
fraction p of the utterances with a context take another session's context
or none (degraded context).
Writes ``<out_dir>/<scp_name>`` pointing into the source's ark (nothing is
copied or recomputed), ``map`` (``<utt> <utterance whose context it got>``, ``-``
for none) and, when the source has one, ``text``. The pairing is fixed by ``--seed``.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.history import read_utt2prev
from espnet_gcft.recipe.conditions import (
    CONDITIONS,
    degraded_pairing,
    opposite_pairing,
    parse_degraded,
    shuffled_pairing,
    write_condition,
)
from espnet_gcft.scoring.homophones import read_homophones


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--condition", required=True,
                        help=f"{' | '.join(CONDITIONS)} | replaced<p> | dropped<p>")
    parser.add_argument("--data_dir", type=Path, required=True,
                        help="the set's data dir (utt2prev; homophones for opposite)")
    parser.add_argument("--source_dir", type=Path, required=True,
                        help="context source dir with the scp (and text)")
    parser.add_argument("--scp_name", default="emb_mean.scp", help="the scp inside --source_dir")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("context_condition"):
        if args.condition not in CONDITIONS:
            parse_degraded(args.condition)  # a bad name fails before anything is read
        utt2prev = read_utt2prev(args.data_dir / "utt2prev")
        if args.condition not in CONDITIONS:
            pairing = degraded_pairing(utt2prev, args.condition, args.seed)
        elif args.condition == "shuffled":
            homophones = args.data_dir / "homophones"
            items = read_homophones(homophones) if homophones.is_file() else None
            pairing = shuffled_pairing(utt2prev, args.seed, items)
        else:
            pairing = opposite_pairing(list(utt2prev), read_homophones(args.data_dir / "homophones"),
                                       args.seed)
        write_condition(pairing, args.source_dir, args.scp_name, args.out_dir)
    changed = sum(u != d for u, d in pairing.items())
    logging.info(f"{args.out_dir}/{args.scp_name}: {changed} of {len(pairing)} utterances "
                 f"take another utterance's context ({args.condition})")


if __name__ == "__main__":
    main(sys.argv[1:])
