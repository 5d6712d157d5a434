"""Print ESPnet's ``--init_param`` for a run that starts from another run's checkpoint.

Usage::

    python -m espnet_gcft.bin.init_param --checkpoint exp/pretrain/valid.loss.ave.pth \\
        --token_list data/token_list/char/tokens.txt

Prints ``<checkpoint>`` when the checkpoint was trained with the same token list
(its ``config.yaml``), else ``<checkpoint>:::ctc.ctc_lo,decoder.embed,decoder.output_layer``:
the layers indexed by token keep their random init, everything else is taken over.
"""

import argparse
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors
from espnet_gcft.recipe.init_model import init_param


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="model to start from, with ESPnet's config.yaml beside it")
    parser.add_argument("--token_list", type=Path, required=True, help="this run's token list")
    args = parser.parse_args(argv)
    with reported_errors(parser.prog):
        print(init_param(args.checkpoint, args.token_list))


if __name__ == "__main__":
    main(sys.argv[1:])
