"""Check a recipe script's option values before it does any work (``utils/parse_options.sh`` runs it).

Usage::

    python -m espnet_gcft.bin.check_options --script ./gcft.sh nj=4 pooling=mean ...

Every ``name=value`` is checked against the spec the script declares for it
(:mod:`espnet_gcft.recipe.options`), then the script's checks across options
(:data:`espnet_gcft.recipe.options.RUN_CHECKS`, by script name). The first
value refused is printed as one line, ``<script>: --<name> <value>: <why>;
allowed: [<spec>] (<meaning>)``, and the exit status is 2; nothing is printed
when every value is allowed.
"""

import argparse
from pathlib import Path
import sys

from espnet_gcft.errors import InputError
from espnet_gcft.recipe.options import check_script


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, help="the script that declares the options")
    parser.add_argument("values", nargs="*", help="name=value of every declared option")
    args = parser.parse_args(argv)
    values = dict(v.split("=", 1) if "=" in v else (v, "") for v in args.values)
    try:
        check_script(Path(args.script), values)
    except InputError as error:
        print(f"{args.script}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(sys.argv[1:])
