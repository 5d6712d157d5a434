"""Stage 8: one RESULTS.md table of every variant x test set x metric, and a bar chart."""

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional

logger = logging.getLogger(__name__)

METRICS = {
    "asr": ["wer", "cer", "context_word_acc"],
    "ner": ["f1_micro", "f1_macro", "label_f1_micro", "label_f1_macro", "wer", "context_word_acc"],
    "sentiment": ["macro_f1", "accuracy", "wer", "context_word_acc"],
}
NEEDS = {
    "baseline": "audio",
    "inject_gt": "audio + previous transcript + text encoder",
    "gen_inject": "audio + previous transcript + LLM + text encoder",
    "gcaf": "audio (student predicts the context)",
}


def count_checkpoint_params(path: Path) -> Optional[int]:
    """Parameters stored in an ESPnet checkpoint (a state dict)."""
    import torch

    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(sum(t.numel() for t in state.values() if t.is_floating_point()))


def count_hf_params(name: str, causal_lm: bool) -> Optional[int]:
    """Parameters of a transformers model, counted on the meta device (no weights loaded)."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from espnet_gcft.context.backends import loadable_model

    try:
        path, _ = loadable_model(name)
        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = (AutoModelForCausalLM if causal_lm else AutoModel).from_config(config)
        return int(sum(p.numel() for p in model.parameters()))
    except (OSError, ValueError) as error:
        logger.warning(f"cannot count the parameters of {name}: {error}")
        return None


def _millions(count: Optional[int]) -> str:
    return "n/a" if count is None else f"{count / 1e6:.2f}M"


def collect(exp_dir: Path, variants: List[str], test_sets: List[str]) -> Dict[str, Dict[str, dict]]:
    """variant -> set -> score.json contents (missing decodes are skipped with a warning)."""
    scores: Dict[str, Dict[str, dict]] = {}
    for variant in variants:
        for dset in test_sets:
            path = exp_dir / variant / f"decode_{dset}" / "score.json"
            if not path.is_file():
                logger.warning(f"{path} is missing: run stage 7")
                continue
            scores.setdefault(variant, {})[dset] = json.loads(path.read_text())
    return scores


def inference_params(exp_dir: Path, variants: List[str], model_file: str, llm: str,
                     text_encoder: str) -> Dict[str, Optional[int]]:
    """Parameters each variant runs at inference: its model plus what it needs besides."""
    encoder = count_hf_params(text_encoder, causal_lm=False)
    llm_count = count_hf_params(llm, causal_lm=True) if "gen_inject" in variants else None
    params = {}
    for variant in variants:
        own = count_checkpoint_params(exp_dir / variant / model_file)
        extra = {"inject_gt": [encoder], "gen_inject": [encoder, llm_count]}.get(variant, [])
        params[variant] = None if own is None or None in extra else own + sum(extra)
    return params


def results_markdown(task: str, scores, params, test_sets: List[str], header: str,
                     context_table: str = "") -> str:
    metrics = [m for m in METRICS[task]
               if any(m in s for per_set in scores.values() for s in per_set.values())]
    lines = [header, "", "## Scores", "",
             "| variant | set | " + " | ".join(metrics) + " | params at inference | needs at inference |",
             "|---|---|" + "---|" * len(metrics) + "---|---|"]
    for variant, per_set in scores.items():
        for dset in test_sets:
            if dset not in per_set:
                continue
            values = [f"{per_set[dset][m]:.2f}" if m in per_set[dset] else "" for m in metrics]
            lines.append(f"| {variant} | {dset} | " + " | ".join(values)
                         + f" | {_millions(params.get(variant))} | {NEEDS.get(variant, '')} |")
    if context_table:
        lines += ["", "## Context sources", "", context_table]
    return "\n".join(lines) + "\n"


def bar_chart(task: str, scores, test_sets: List[str], out: Path) -> None:
    """One panel per test set: the task's metrics, one bar per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS[task]
               if any(m in s for per_set in scores.values() for s in per_set.values())]
    variants = list(scores)
    fig, axes = plt.subplots(1, len(test_sets), figsize=(4 + 3 * len(metrics), 4), squeeze=False)
    width = 0.8 / max(len(variants), 1)
    for ax, dset in zip(axes[0], test_sets):
        for index, variant in enumerate(variants):
            values = [scores[variant].get(dset, {}).get(m, 0.0) for m in metrics]
            positions = [i + index * width for i in range(len(metrics))]
            ax.bar(positions, values, width, label=variant)
        ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(metrics))])
        ax.set_xticklabels(metrics)
        ax.set_title(dset)
        ax.set_ylabel("percent")
    axes[0][0].legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
