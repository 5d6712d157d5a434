"""Pack a trained model into one zip that loads anywhere, offline (recipe stage 8).

Usage::

    python -m espnet_gcft.bin.pack_model --exp_dir exp/gcaf \\
        --model_file exp/gcaf/valid.loss.ave.pth --out exp/gcaf/packed.zip

The zip holds the config, the checkpoint, the S3PRL upstream's config and
feature-extractor files (its weights are in the checkpoint), the token model
and normalisation stats the config names, and the run's ``context.yaml``
(see :mod:`espnet_gcft.asr.pack`). ``GCFTSpeech2Text.from_pretrained`` loads it
with nothing beside it. The same model packs the same bytes.
"""

import argparse
from pathlib import Path
import sys

from espnet_gcft.asr.pack import pack_model
from espnet_gcft.bin.common import reported_errors


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True,
                        help="the training run's dir (config.yaml, context.yaml)")
    parser.add_argument("--model_file", type=Path, required=True, help="checkpoint to pack")
    parser.add_argument("--out", type=Path, required=True, help="zip to write")
    args = parser.parse_args(argv)
    with reported_errors(parser.prog):
        entries = pack_model(args.exp_dir, args.model_file, args.out)
    for name in sorted(entries):
        print(f"{name} <- {entries[name]}")


if __name__ == "__main__":
    main(sys.argv[1:])
