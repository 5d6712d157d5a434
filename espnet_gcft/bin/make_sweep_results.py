"""Write RESULTS_sweep.{md,json,png} from the points of a sweep (``sweep.sh``).

Usage::

    python -m espnet_gcft.bin.make_sweep_results --exp_dir exp --sweep_dir exp/sweep \\
        --variants gcaf --point dw0.1 distill_weight=0.1 --point dw1.0 distill_weight=1.0 \\
        --reference gcaf distill_weight=0.3 --out RESULTS_sweep.md --plot RESULTS_sweep.png

``--point TAG SETTINGS`` reads ``<sweep_dir>/<TAG>/RESULTS.json`` (the point's
stage 8) and keeps the records of ``<variant>_<TAG>``; ``--reference DIR
SETTINGS`` scores an existing exp dir's ``gt`` decodes as one more point.
SETTINGS is ``key=value[,key=value]``. ``--json``: the records (the RESULTS
record keys plus ``point`` and ``settings``); ``--out``: a table per set and
variant, a row per point; ``--plot``: each metric against the first swept
setting, with 95% intervals.
"""

import argparse
from datetime import date
import json
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.fileio import write_text_atomic
from espnet_gcft.recipe.results import add_holm
from espnet_gcft.recipe.sweep import sweep_chart, sweep_family, sweep_markdown, sweep_records


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--sweep_dir", type=Path, required=True)
    parser.add_argument("--raw_dir", type=Path, default=Path("dump/raw"),
                        help="formatted data dirs (homophones) for the reference points")
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--point", nargs=2, action="append", default=[], metavar=("TAG", "SETTINGS"))
    parser.add_argument("--reference", nargs=2, action="append", default=[],
                        metavar=("DIR", "SETTINGS"))
    parser.add_argument("--command", default="")
    parser.add_argument("--out", type=Path, default=Path("RESULTS_sweep.md"))
    parser.add_argument("--json", type=Path, default=None, help="default: --out with .json")
    parser.add_argument("--plot", type=Path, default=None)
    return parser


def main(argv=None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    if not args.point and not args.reference:
        parser.error("give at least one --point or --reference")
    setup_logging()
    json_path = args.json or args.out.with_suffix(".json")
    with reported_errors("make_sweep_results"):
        records = sweep_records(args.exp_dir, args.raw_dir, args.sweep_dir, args.variants,
                                args.point, args.reference)
        add_holm(records, sweep_family)
        header = "\n".join([
            "# RESULTS of a sweep", "",
            f"{date.today().isoformat()}. Command: `{args.command}`" if args.command
            else date.today().isoformat(), "",
            "Each row is one point of the sweep: a model trained with the settings on the left "
            "(the exp dir names it), everything else as in the recipe. Values in percent with "
            "their 95% interval [low, high] over n items or utterances; p: two-sided paired test "
            "against the baseline's decode of the same set (exact McNemar on items, sclite's "
            "matched pairs for WER, paired bootstrap otherwise), and in parentheses Holm's "
            "adjustment over the table's tests (a table, a set and a variant, is a family). One "
            "seed per point: these sweeps are exploratory, and overlapping intervals are not a "
            "test."])
        write_text_atomic(json_path, json.dumps(records, indent=1) + "\n")
        chart_name = ""
        if args.plot is not None:
            sweep_chart(records, args.plot)
            out_dir = args.out.resolve().parent
            chart_name = (str(args.plot.resolve().relative_to(out_dir))
                          if args.plot.resolve().is_relative_to(out_dir) else str(args.plot))
        write_text_atomic(args.out, sweep_markdown(records, header, chart_name))
    logging.info(f"wrote {args.out}, {json_path}" + (f" and {args.plot}" if args.plot else "")
                 + f": {len({r['point'] for r in records})} points")


if __name__ == "__main__":
    main(sys.argv[1:])
