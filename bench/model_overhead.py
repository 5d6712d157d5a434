"""What GCAF costs on a wav2vec2-base-sized model: parameters and CPU forward time.

Usage::

    tools/venv/bin/python bench/model_overhead.py [--seconds 10] [--repeats 5]

Builds, without any download, a wav2vec2-base-sized SSL model (95M parameters,
random weights, saved locally and loaded through S3PRL's ``hf_wav2vec2_custom``
like a user's upstream) under a 2-block transformer encoder and a CTC head, once
as the context-free baseline and once as GCAF (fusion + student, context_mode
distill). Both forward the same utterance at inference (eval mode, no context:
GCAF uses its student), interleaved, and the medians are compared. Prints one
``name: value`` line per figure.
"""

import argparse
from pathlib import Path
import statistics
import tempfile
import time

import torch
import yaml

TOKENS = ["<blank>", "<unk>"] + list("abcdefghijklmnopqrstuvwxyz'") + ["<space>", "<sos/eos>"]


def save_wav2vec2_base(out_dir: Path) -> None:
    """Randomly initialised wav2vec2-base (the default Wav2Vec2Config) on disk."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0,
        do_normalize=True, return_attention_mask=True,
    ).save_pretrained(out_dir)


def build(ssl_dir: Path, mode: str, work: Path):
    from espnet_gcft.asr.task import GCFTTask

    model_conf = {"ctc_weight": 1.0, "context_mode": mode}
    if mode != "none":
        model_conf["context_dim"] = 384  # all-MiniLM-L6-v2
    config = {
        "frontend": "s3prl",
        "frontend_conf": {
            "frontend_conf": {"upstream": "hf_wav2vec2_custom", "path_or_url": str(ssl_dir)},
            "multilayer_feature": True,
        },
        "encoder": "transformer",
        "encoder_conf": {"output_size": 256, "attention_heads": 4, "linear_units": 1024,
                         "num_blocks": 2, "input_layer": "linear"},
        "model": "gcft",
        "model_conf": model_conf,
        "context_fusion_conf": {"attention_dim": 256, "num_heads": 4},
        "context_student_conf": {"pooling": "attention"},
        "token_list": TOKENS,
    }
    path = work / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config))
    args = GCFTTask.get_parser().parse_args(["--config", str(path)])
    torch.manual_seed(0)
    return GCFTTask.build_model(args).eval()


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--repeats", type=int, default=10, help="timed forwards per model")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        save_wav2vec2_base(work / "wav2vec2_base")
        baseline = build(work / "wav2vec2_base", "none", work)
        gcaf = build(work / "wav2vec2_base", "distill", work)
    speech = torch.randn(1, int(16000 * args.seconds)) * 0.1
    lengths = torch.tensor([speech.size(1)])
    times = {"baseline": [], "gcaf": []}
    with torch.no_grad():
        for model in (baseline, gcaf):  # warm-up
            model.encode(speech, lengths)
        for _ in range(args.repeats):
            for name, model in (("baseline", baseline), ("gcaf", gcaf)):
                start = time.perf_counter()
                model.encode(speech, lengths)
                times[name].append(time.perf_counter() - start)
    params_baseline, params_gcaf = count(baseline), count(gcaf)
    t_base, t_gcaf = statistics.median(times["baseline"]), statistics.median(times["gcaf"])
    print(f"params_baseline: {params_baseline}")
    print(f"params_gcaf: {params_gcaf}")
    print(f"params_ratio: {params_gcaf / params_baseline:.4f}")
    print(f"forward_time_baseline_s: {t_base:.3f}")
    print(f"forward_time_gcaf_s: {t_gcaf:.3f}")
    print(f"forward_time_ratio: {t_gcaf / t_base:.4f}")


if __name__ == "__main__":
    main()
