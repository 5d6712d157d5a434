"""Build a small randomly initialised wav2vec2 for S3PRL's ``hf_wav2vec2_custom``.

Usage::

    python -m espnet_gcft.bin.make_tiny_ssl --config conf/tiny_wav2vec2.json --out_dir exp/ssl/tiny_wav2vec2

``--config`` is a JSON object of ``transformers.Wav2Vec2Config`` fields. Writes
the model (``config.json``, ``model.safetensors``) and its
``preprocessor_config.json`` into ``--out_dir``; training configs point
``frontend_conf.frontend_conf.path_or_url`` at it. Skips when ``--out_dir``
already holds a model built from the same config and seed.
"""

import argparse
import json
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import setup_logging
from espnet_gcft.recipe.tiny_ssl import build_wav2vec2, is_built


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None, help="JSON of Wav2Vec2Config fields")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    setup_logging()
    config = json.loads(args.config.read_text()) if args.config else {}
    if is_built(args.out_dir, config, args.seed):
        logging.info(f"{args.out_dir} is up to date")
        return
    build_wav2vec2(args.out_dir, config, args.seed)
    logging.info(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
