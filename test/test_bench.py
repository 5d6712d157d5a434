"""The inference-cost bench runs (quick sizes) and prints the figures it promises."""

import math
import os
from pathlib import Path
import re
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("baseline", "inject_gt", "gen_inject", "gcaf", "audio_inject", "audio_gcaf")
RATIOS = ("latency_ratio_gcaf_baseline", "peak_mem_ratio_gcaf_baseline",
          "latency_ratio_gen_inject_gcaf", "params_ratio_gen_inject_gcaf",
          "train_step_ratio_gcaf_baseline")


@pytest.mark.slow  # 13 processes that each import ESPnet, two load the embedded LLM
def test_inference_cost_quick_prints_every_figure():
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "inference_cost.py"), "--quick", "--repeats", "2",
         "--utterances", "2", "--seconds", "1", "--train_steps", "2"],
        capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    figures = {}
    for line in proc.stdout.splitlines():
        match = re.fullmatch(r"([a-z0-9_]+): (\S+)", line)
        assert match, f"not a bare `name: value` line: {line!r}"
        assert match[1] not in figures, f"{match[1]} printed twice"
        figures[match[1]] = float(match[2])
    required = [f"{figure}_{v}" for v in VARIANTS
                for figure in ("latency_ms", "peak_mem_mb", "params")]
    required += [name for ratio in RATIOS for name in (ratio, ratio + "_spread")]
    # the loading before the weightless build, for the before/after peak memory
    required += ["peak_mem_mb_baseline_upstream_copy", "peak_mem_ratio_baseline_upstream_copy"]
    missing = [name for name in required if name not in figures]
    assert not missing, missing
    for name, value in figures.items():
        assert math.isfinite(value), (name, value)
        # a spread (max - min over repeats) is 0 for the parameter ratios
        assert value >= 0 if name.endswith("_spread") else value > 0, (name, value)
    # what each path loads: the LLM, the text encoder and the upstream copy only where it runs them
    assert figures["params_gen_inject"] > figures["params_inject_gt"] > figures["params_gcaf"]
    assert figures["params_audio_inject"] > figures["params_audio_gcaf"]
