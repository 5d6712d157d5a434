"""Probe the shared pretrained encoder: does it hear the distill-only topic words?

Usage::

    python -m espnet_gcft.bin.probe_sense --model exp/pretrain \\
        --train_data dump/raw/train --test_data dump/raw/test \\
        --out exp/pretrain/decode_test/diagnostics.json

Encodes the topic sentences of ``distill_topics`` (``<utt> <sense>``) of both
data dirs with the model (its encoder output, no context), fits a linear probe
from the frames' mean to the sense on the training sentences and writes
``{"probe_sense_acc": {"value", "ci_low", "ci_high", "n"}}`` (percent, Wilson
95% interval) for the test sentences (:mod:`espnet_gcft.recipe.probe`).
"""

import argparse
import json
import logging
from pathlib import Path
import sys
from typing import Dict

from espnet_gcft.asr.compat import defer_unused_imports

defer_unused_imports()  # a CLI: before ESPnet is imported (see defer_import)

from espnet2.train.dataset import ESPnetDataset  # noqa: E402

from espnet_gcft.asr.inference import GCFTSpeech2Text  # noqa: E402
from espnet_gcft.bin.common import reported_errors, setup_logging  # noqa: E402
from espnet_gcft.fileio import write_text_atomic  # noqa: E402
from espnet_gcft.recipe.probe import probe_sense  # noqa: E402


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exp dir (or packed zip) of the encoder")
    parser.add_argument("--model_file", default=None, help="checkpoint name inside the exp dir")
    parser.add_argument("--train_data", type=Path, required=True)
    parser.add_argument("--test_data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("probe_sense"):
        s2t = GCFTSpeech2Text.from_pretrained(args.model, model_file=args.model_file,
                                              decode_mode="greedy", device=args.device)
        datasets: Dict[Path, ESPnetDataset] = {}

        def encode(data: Path, utt: str):
            if data not in datasets:
                datasets[data] = ESPnetDataset([(str(data / "wav.scp"), "speech", "sound")],
                                               float_dtype="float32")
            encoded, _ = s2t.encode(datasets[data][utt][1]["speech"], None, utt)
            return encoded[0].cpu().numpy()

        records = probe_sense(encode, args.train_data, args.test_data)
        write_text_atomic(args.out, json.dumps(records, indent=1, sort_keys=True) + "\n")
    logging.info(f"wrote {args.out}: probe_sense_acc {records['probe_sense_acc']['value']:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
