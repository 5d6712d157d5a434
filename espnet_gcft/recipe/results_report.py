"""RESULTS.md and RESULTS.png from the records of :mod:`espnet_gcft.recipe.results`."""

import logging
from pathlib import Path
from typing import Dict, List, Optional

from espnet_gcft.recipe.conditions import DEGRADED
from espnet_gcft.scoring.homophones import CUE_SEEN
from espnet_gcft.recipe.variants import variant_of

logger = logging.getLogger(__name__)

TABLES = [
    ("Context-decided words: forced choice between the two spellings",
     ["homophone_acc_P", "homophone_acc_W", "homophone_acc_C", "homophone_acc_S"]),
    ("Forced choice by what training saw of the cue's topic words: both (seen), one "
     "(part_seen), neither (unseen)",
     [f"homophone_acc_{k}_{s}_cue" for k in ("P", "W") for s in CUE_SEEN.values()]),
    ("Forced choice with the cue 2 or 3 utterances back",
     ["homophone_acc_P2", "homophone_acc_P3"]
     + [f"homophone_acc_{k}_{s}_cue" for k in ("P2", "P3") for s in CUE_SEEN.values()]),
    ("Forced choice between an entity's two types",
     ["entity_type_acc_P"] + [f"entity_type_acc_P_{s}_cue" for s in CUE_SEEN.values()]),
    ("Decoded words", ["wer", "cer", "context_word_acc", "context_word_alt", "context_word_other"]),
    ("Task scores", ["f1_micro", "f1_macro", "label_f1_micro", "label_f1_macro", "macro_f1",
                     "accuracy"]),
    ("What the context knew", ["probe_sense_acc", "student_teacher_cos", "student_gain",
                               "student_gain_topic", "student_gain_S", "student_gain_P",
                               "student_gain_W", "student_gain_C", "student_sense_acc_S",
                               "student_sense_acc_P", "student_sense_acc_W", "student_sense_acc_C",
                               "llm_has_right", "llm_has_alt"]),
]
CHART_METRICS = ["homophone_acc_P", "homophone_acc_W", "homophone_acc_C", "homophone_acc_S",
                 "homophone_acc_P2",
                 "homophone_acc_P3", "entity_type_acc_P", "cer"]


def count_checkpoint_params(path: Path, prefix: str = "") -> Optional[int]:
    """Parameters stored in an ESPnet checkpoint (a state dict), those under ``prefix`` only if given."""
    import torch

    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(sum(t.numel() for k, t in state.items()
                   if t.is_floating_point() and k.startswith(prefix)))


def count_hf_params(name: Optional[str], causal_lm: bool) -> Optional[int]:
    """Parameters of a transformers model, counted on the meta device (no weights loaded)."""
    if not name:
        return None
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


def inference_params(exp_dir: Path, variants: List[str], model_file: str, llm: Optional[str],
                     text_encoder: Optional[str]) -> Dict[str, Optional[int]]:
    """Parameters each variant runs at inference: its model plus what it needs besides."""
    encoder = count_hf_params(text_encoder, causal_lm=False)
    llm_count = count_hf_params(llm, causal_lm=True) if any(
        "llm" in _beside(v) for v in variants) else None
    params = {}
    for variant in variants:
        checkpoint = exp_dir / variant / model_file
        own = count_checkpoint_params(checkpoint)
        counts = {"text_encoder": encoder, "llm": llm_count,
                  # audio context: a frozen copy of the upstream on the previous audio
                  "upstream": count_checkpoint_params(checkpoint, "frontend.upstream.")}
        extra = [counts[name] for name in _beside(variant)]
        params[variant] = None if own is None or None in extra else own + sum(extra)
    return params


def _pvalue(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _p(record: Optional[dict]) -> str:
    """A record's p against the baseline, and Holm's within its family in parentheses."""
    if not record or record.get("p_vs_baseline") is None:
        return ""
    holm = f" ({_pvalue(record['p_holm'])})" if "p_holm" in record else ""
    return _pvalue(record["p_vs_baseline"]) + holm


def table_family(record: dict) -> str:
    """The family of a record's paired test: the RESULTS table it appears in."""
    title = next((t for t, metrics in TABLES if record["metric"] in metrics), record["metric"])
    return f"{record['set']}: {title}"


def headline_table(records: List[dict], headline: List[dict]) -> List[str]:
    """The pre-stated headline tests: each one's figure, p, Holm's p over them, and its target."""
    by_key = {(r["variant"], r["set"], r["condition"], r["metric"]): r for r in records}
    lines = ["| variant | set | condition | metric | value [95% interval] (n) | p vs baseline "
             "(Holm over the headline tests) | target |", "|---|---|---|---|---|---|---|"]
    for test in headline:
        record = by_key.get((test["variant"], test["set"], test["condition"], test["metric"]))
        value = f"{_cell(record)} (n={record.get('n')})" if record else "not run"
        lines.append(f"| {test['variant']} | {test['set']} | {test['condition']} | {test['metric']} "
                     f"| {value} | {_p(record)} | {test['target']} |")
    return lines


def _cell(record: dict) -> str:
    if "ci_low" not in record:
        return f"{record['value']:.1f}"
    return f"{record['value']:.1f} [{record['ci_low']:.1f}, {record['ci_high']:.1f}]"


def _table(records: List[dict], metrics: List[str], dset: str) -> List[str]:
    by_key = {(r["variant"], r["condition"], r["metric"]): r for r in records if r["set"] == dset}
    present = [m for m in metrics if any(k[2] == m for k in by_key)]
    if not present:
        return []
    rows = sorted({(v, c) for v, c, _ in by_key}, key=lambda vc: (
        [r["variant"] for r in records].index(vc[0]), vc[1] != "gt", vc[1]))
    header = "| variant | condition |"
    rule = "|---|---|"
    for metric in present:
        n = next(by_key[k].get("n") for k in by_key if k[2] == metric)
        header += f" {metric} (n={n}) | p |"
        rule += "---|---|"
    lines = [header, rule]
    for variant, condition in rows:
        cells = []
        for metric in present:
            record = by_key.get((variant, condition, metric))
            cells += ([_cell(record), _p(record)] if record else ["", ""])
        if any(cells):
            lines.append(f"| {variant} | {condition} | " + " | ".join(cells) + " |")
    return lines


DEGRADATION_METRICS = ["homophone_acc_P", "homophone_acc_W", "wer"]


def _beside(name: str):
    variant = variant_of(name)
    return variant.runs_beside if variant is not None else ()


def _has_student(name: str) -> bool:
    """A (tagged) variant that reads no context at inference: its student replaces it."""
    variant = variant_of(name)
    return variant is not None and variant.has_student


def degradation_series(records: List[dict], dset: str) -> Dict[str, Dict[str, Dict[str, list]]]:
    """``{mode: {metric: {variant: [(p, record or None), ...]}}}`` for the degraded decodes of a set.

    p = 0 is the variant's ``gt`` decode. A variant that reads no context at
    inference (gcaf, audio_gcaf) has one decode: its series repeats it at every
    p, since there is no context input to degrade (its decoder refuses one).
    Only variants with a degraded decode, and the context-free ones, appear.
    """
    degraded: Dict[str, Dict[float, str]] = {}
    for record in records:
        match = DEGRADED.match(record["condition"]) if record["set"] == dset else None
        if match:
            degraded.setdefault(match.group(1), {})[float(match.group(2))] = record["condition"]
    by_key = {(r["variant"], r["condition"], r["metric"]): r for r in records if r["set"] == dset}
    variants = list(dict.fromkeys(r["variant"] for r in records if r["set"] == dset))
    series: Dict[str, Dict[str, Dict[str, list]]] = {}
    for mode, names in sorted(degraded.items()):
        ps = [0.0] + sorted(f for f in names if f > 0)
        for metric in DEGRADATION_METRICS:
            for variant in variants:
                context_free = _has_student(variant)
                if not context_free and not any((variant, names[p], metric) in by_key for p in ps[1:]):
                    continue
                points = [(p, by_key.get((variant, "gt" if p == 0 or context_free else names[p], metric)))
                          for p in ps]
                if any(record for _, record in points):
                    series.setdefault(mode, {}).setdefault(metric, {})[variant] = points
    return series


def degradation_table(records: List[dict], dset: str) -> List[str]:
    """Metric against the degraded fraction p, per degradation mode and variant (see degradation_series)."""
    lines = []
    for mode, by_metric in degradation_series(records, dset).items():
        for metric, by_variant in by_metric.items():
            ps = [p for p, _ in next(iter(by_variant.values()))]
            rows = []
            for variant, points in by_variant.items():
                cells = []
                for _, record in points:
                    cells += [_cell(record), _p(record)] if record else ["", ""]
                context_free = _has_student(variant)
                note = " (no context at inference: one decode)" if context_free else ""
                rows.append(f"| {variant}{note} | " + " | ".join(cells) + " |")
            n = next((r.get("n") for r in records if r["set"] == dset and r["metric"] == metric), None)
            lines += [f"## Degraded context ({dset}, {mode}): {metric} (n={n}) against the "
                      "fraction p of degraded contexts", "",
                      "| variant | " + " | ".join(f"p={p:g} | p vs baseline" for p in ps) + " |",
                      "|---|" + "---|---|" * len(ps)] + rows + [""]
    return lines


def _millions(count: Optional[int]) -> str:
    return "n/a" if count is None else f"{count / 1e6:.2f}M"


def results_markdown(records: List[dict], test_sets: List[str], header: str,
                     params: Dict[str, Optional[int]], chart: Optional[str],
                     context_table: str = "", headline: Optional[List[dict]] = None) -> str:
    """The RESULTS.md text: header, chart, the headline tests, one table per metric group
    and set (exploratory), costs."""
    lines = [header, ""]
    if chart:
        lines += [f"![results]({chart})", ""]
    if headline:
        lines += ["## Headline tests, stated before the run", ""] + headline_table(records, headline) + [
            "", "## Exploratory tables", "",
            "Each table is its own family: the p in parentheses is Holm's adjustment over the "
            "table's tests.", ""]
    for dset in test_sets:
        for title, metrics in TABLES:
            table = _table(records, metrics, dset)
            if table:
                lines += [f"## {title} ({dset})", ""] + table + [""]
        lines += degradation_table(records, dset)
    variants = list(dict.fromkeys(r["variant"] for r in records))
    lines += ["## Cost at inference", "", "| variant | params at inference | needs at inference |",
              "|---|---|---|"]
    lines += [f"| {v} | {_millions(params.get(v))} | {variant_of(v).needs if variant_of(v) else ''} |"
              for v in variants]
    if context_table:
        lines += ["", "## Context sources", "", context_table]
    return "\n".join(lines).rstrip() + "\n"


def chart(records: List[dict], dset: str, out: Path) -> None:
    """Bars with 95% error bars: forced-choice accuracies and CER per variant and condition;
    below them, when the set has degraded decodes, each degradation metric against p
    (a line per variant, solid for ``dropped``, dashed for ``replaced``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in CHART_METRICS
               if any(r["metric"] == m and r["set"] == dset for r in records)]
    series = degradation_series(records, dset)
    curves = [m for m in DEGRADATION_METRICS if any(m in by_metric for by_metric in series.values())]
    if not metrics:
        return
    ncols = max(len(metrics), len(curves))
    nrows = 2 if curves else 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 4.2 * nrows), squeeze=False)
    for ax in list(axes[0][len(metrics):]) + (list(axes[1][len(curves):]) if curves else []):
        ax.set_visible(False)
    for ax, metric in zip(axes[0], metrics):
        # degraded decodes have their own curves below: the bars keep the named conditions
        chosen = [r for r in records if r["metric"] == metric and r["set"] == dset
                  and not DEGRADED.match(r["condition"])]
        labels = [r["variant"] + ("" if r["condition"] == "gt" else f" {r['condition']}")
                  for r in chosen]
        values = [r["value"] for r in chosen]
        errors = [[r["value"] - r.get("ci_low", r["value"]) for r in chosen],
                  [r.get("ci_high", r["value"]) - r["value"] for r in chosen]]
        colors = ["tab:gray" if r["condition"] != "gt" else "tab:blue" for r in chosen]
        ax.bar(range(len(chosen)), values, yerr=errors, capsize=3, color=colors)
        ax.set_xticks(range(len(chosen)))
        ax.set_xticklabels(labels, rotation=90, fontsize=7)
        if metric.startswith(("homophone_acc", "entity_type_acc")):
            ax.axhline(50, color="black", linestyle="--", linewidth=0.8)
            ax.set_ylim(0, 100)
        ax.set_title(f"{metric} ({dset})", fontsize=9)
        ax.set_ylabel("percent (95% interval)")
    variant_colors = {}  # one colour per variant across the curve panels
    for ax, metric in zip(axes[1] if curves else [], curves):
        for mode, by_metric in series.items():
            for variant, points in by_metric.get(metric, {}).items():
                kept = [(p, r) for p, r in points if r]
                color = variant_colors.setdefault(variant, f"C{len(variant_colors) % 10}")
                ax.errorbar([p for p, _ in kept], [r["value"] for _, r in kept],
                            yerr=[[r["value"] - r.get("ci_low", r["value"]) for _, r in kept],
                                  [r.get("ci_high", r["value"]) - r["value"] for _, r in kept]],
                            marker="o", capsize=3, color=color,
                            linestyle="-" if mode == "dropped" else "--", label=f"{variant} {mode}")
        if metric.startswith("homophone_acc"):
            ax.axhline(50, color="black", linestyle=":", linewidth=0.8)
        ax.set_xlabel("fraction p of degraded contexts")
        ax.set_ylabel(f"{metric} (percent, 95% interval)", fontsize=8)
        ax.set_title(f"degraded context: {metric} ({dset})", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
