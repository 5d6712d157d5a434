"""Ask a recipe lock file about its holder (``scripts/lib/locks.sh`` does).

Usage::

    python -m espnet_gcft.bin.lock_holder --gone --host "$(hostname)" data/.locks/train.lock

``--gone``: exit status 0 when the file names a holder on ``--host`` that is no
longer running (exited, or a zombie not yet reaped), 1 otherwise.
"""

import argparse
from pathlib import Path
import sys

from espnet_gcft.recipe.locks import holder_gone


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gone", action="store_true", required=True)
    parser.add_argument("--host", required=True, help="this run's host")
    parser.add_argument("lock", type=Path)
    args = parser.parse_args(argv)
    raise SystemExit(0 if holder_gone(args.lock, args.host) else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
