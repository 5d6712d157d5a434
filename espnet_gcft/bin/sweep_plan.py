"""The points of a sweep, checked before the first one starts (``sweep.sh`` runs it).

Usage::

    python -m espnet_gcft.bin.sweep_plan --gcft ./gcft.sh --variants gcaf \\
        --grid "distill_weight=0.1 1.0" [--grid "seed=0 1"]

Prints one line per point (every combination of the grids' values), tab-separated:
its tag, its settings (``key=value,...``) and its run.sh options (shell-quoted).
A point whose variants read no generated context runs no LLM (``--prompts ""``).
An unknown key, a value the key's spec refuses (the spec of the gcft.sh option
it sets, see ``gcft.sh --help``), an unknown variant or an empty grid is one
line on standard error and exit status 2.
"""

import argparse
from pathlib import Path
import shlex
import sys

from espnet_gcft.errors import InputError
from espnet_gcft.recipe.sweep import plan_points
from espnet_gcft.recipe.variants import check_variants


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gcft", type=Path, required=True, help="the recipe's gcft.sh")
    parser.add_argument("--variants", required=True, help="variants trained at every point")
    parser.add_argument("--grid", action="append", default=[], help="key=\"values\" (repeat)")
    args = parser.parse_args(argv)
    try:
        variants = check_variants(args.variants.split())
        if not variants:
            raise InputError("--variants is empty: name the variants trained at every point")
        points = plan_points(args.grid, args.gcft)
    except InputError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    extra = [] if any(v.uses_llm for v in variants) else ["--prompts", ""]
    for point in points:
        settings = ",".join(f"{k}={v}" for k, v in point.settings)
        print(f"{point.tag}\t{settings}\t{shlex.join(extra + point.run_options())}")


if __name__ == "__main__":
    main(sys.argv[1:])
