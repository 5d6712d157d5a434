"""RESULTS_sweep: the records of every sweep point, a table per variant and set, a plot.

A sweep point is a tagged exp dir ``<variant>_<tag>`` trained with the
point's settings (``sweep.sh``); its stage 8 wrote ``<sweep_dir>/<tag>/RESULTS.json``.
A *reference* point is an existing untagged dir (e.g. the recipe's own
``inject_gt`` as ``num_prev=1``), scored here from its decodes. Every record
keeps the RESULTS record keys (its interval, n and the paired test against the
untagged baseline's decode) and gains ``point`` (the tag, or the dir name of
a reference) and ``settings`` (key -> value).
"""

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from espnet_gcft.errors import InputError, MissingInputError
from espnet_gcft.recipe.results import collect_records
from espnet_gcft.recipe.variants import base_variant
from espnet_gcft.scoring.score import F1_METRICS

# what a sweep table shows, in this order, when present
SWEEP_METRICS = ["homophone_acc_P", "homophone_acc_P2", "homophone_acc_P3", "homophone_acc_W",
                 "homophone_acc_C", "entity_type_acc_P", "wer", "cer", "f1_micro",
                 "label_f1_micro", "macro_f1", "student_teacher_cos"]
PLOT_METRICS = ["homophone_acc_P", "homophone_acc_P2", "homophone_acc_P3", "wer"]


class SweepError(InputError, ValueError):
    """A sweep point that cannot be read (names the point and the file)."""


def parse_settings(text: str) -> Dict[str, str]:
    """``"num_prev=2,prev_mode=rows"`` -> {"num_prev": "2", "prev_mode": "rows"}."""
    settings = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise SweepError(f"setting {part!r}: expected key=value")
        settings[key] = value
    return settings


def task_of(records: List[dict]) -> str:
    metrics = {r["metric"] for r in records}
    for task in ("ner", "sentiment"):
        if metrics & set(F1_METRICS.get(task, ())):
            return task
    return "asr"


def point_records(sweep_dir: Path, tag: str, settings: Dict[str, str],
                  variants: Sequence[str]) -> List[dict]:
    path = sweep_dir / tag / "RESULTS.json"
    if not path.is_file():
        raise MissingInputError(f"sweep point {tag}: {path} is missing (its stage 8 did not run)")
    wanted = {f"{v}_{tag}" for v in variants}
    records = [dict(r, point=tag, settings=settings) for r in json.loads(path.read_text())
               if r["variant"] in wanted]
    if not records:
        raise SweepError(f"sweep point {tag}: {path} has no records of {sorted(wanted)}")
    return records


def reference_records(exp_dir: Path, raw_dir: Path, name: str, settings: Dict[str, str],
                      test_sets: List[str], task: str) -> List[dict]:
    if not (exp_dir / name).is_dir():
        raise MissingInputError(f"reference point {name}: {exp_dir / name} does not exist")
    records = collect_records(exp_dir, raw_dir, [name], test_sets, ["gt"], task)
    if not records:
        raise SweepError(f"reference point {name}: no scored decode of {test_sets} under {exp_dir / name}")
    return [dict(r, point=name, settings=settings) for r in records]


def sweep_records(exp_dir: Path, raw_dir: Path, sweep_dir: Path, variants: Sequence[str],
                  points: List[Tuple[str, str]], references: List[Tuple[str, str]]) -> List[dict]:
    records: List[dict] = []
    for tag, settings in points:
        records += point_records(sweep_dir, tag, parse_settings(settings), variants)
    test_sets = list(dict.fromkeys(r["set"] for r in records))
    task = task_of(records)
    for name, settings in references:
        records += reference_records(exp_dir, raw_dir, name, parse_settings(settings),
                                     test_sets, task)
    return records


def sweep_family(record: dict) -> str:
    """The family of a sweep record's paired test: its table (a set and a variant)."""
    return f"{record['set']}: {base_variant(record['variant'])}"


def _setting_order(records: List[dict]) -> List[str]:
    return list(dict.fromkeys(k for r in records for k in r["settings"]))


def _sort_key(value: str):
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def sweep_markdown(records: List[dict], header: str, chart: str = "") -> str:
    """Tables: for each set and variant, a row per point, a column pair per metric."""
    from espnet_gcft.recipe.results_report import _cell, _p

    keys = _setting_order(records)
    lines = [header, ""]
    if chart:
        lines += [f"![sweep]({chart})", ""]
    for dset in dict.fromkeys(r["set"] for r in records):
        for variant in dict.fromkeys(base_variant(r["variant"]) for r in records):
            chosen = [r for r in records if r["set"] == dset and base_variant(r["variant"]) == variant]
            metrics = [m for m in SWEEP_METRICS if any(r["metric"] == m for r in chosen)]
            if not metrics:
                continue
            by_point: Dict[str, Dict[str, dict]] = {}
            for r in chosen:
                by_point.setdefault(r["point"], {})[r["metric"]] = r
            order = sorted(by_point, key=lambda p: [_sort_key(next(iter(by_point[p].values()))
                                                               ["settings"].get(k, "")) for k in keys])
            lines += [f"## {variant} on {dset}", "",
                      "| " + " | ".join(keys) + " | exp dir | "
                      + " | ".join(f"{m} (n={next(r['n'] for r in chosen if r['metric'] == m and 'n' in r) if any(r['metric'] == m and 'n' in r for r in chosen) else ''}) | p"
                                   for m in metrics) + " |",
                      "|" + "---|" * (len(keys) + 1 + 2 * len(metrics))]
            for point in order:
                row = by_point[point]
                any_record = next(iter(row.values()))
                cells = [any_record["settings"].get(k, "") for k in keys] + [any_record["variant"]]
                for metric in metrics:
                    record = row.get(metric)
                    cells += [_cell(record), _p(record)] if record else ["", ""]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _x_key(records: List[dict], keys: List[str]) -> str:
    """The setting a panel plots along x: of those that vary, numeric ones first, then the most values."""
    varying = [k for k in keys if len({r["settings"].get(k, "") for r in records}) > 1]
    if not varying:
        return ""

    def numeric(k: str) -> bool:
        return all(_sort_key(r["settings"].get(k, ""))[0] == 0 for r in records)

    return max(varying, key=lambda k: (numeric(k), len({r["settings"].get(k, "") for r in records}),
                                       -keys.index(k)))


def sweep_chart(records: List[dict], out: Path, columns: int = 4) -> None:
    """Per set, variant and metric: the metric against the swept setting, one line per combination
    of the other swept settings, with 95% intervals. A panel whose points differ in no setting
    (a variant that only appears as a reference) is left out: it has nothing to plot against."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = _setting_order(records)
    panels = []
    for dset in dict.fromkeys(r["set"] for r in records):
        for variant in dict.fromkeys(base_variant(r["variant"]) for r in records):
            for metric in PLOT_METRICS:
                chosen = [r for r in records if r["set"] == dset and base_variant(r["variant"]) == variant
                          and r["metric"] == metric]
                x_key = _x_key(chosen, keys)
                if x_key:
                    panels.append((dset, variant, metric, x_key, chosen))
    if not panels:
        return
    ncols = min(columns, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (dset, variant, metric, x_key, chosen) in zip(axes.flat, panels):
        values = sorted({r["settings"].get(x_key, "") for r in chosen}, key=_sort_key)
        others = [k for k in keys if k != x_key and len({r["settings"].get(k, "") for r in chosen}) > 1]
        groups: Dict[str, List[dict]] = {}
        for r in chosen:
            label = ",".join(f"{k}={r['settings'][k]}" for k in others if k in r["settings"])
            groups.setdefault(label, []).append(r)
        for offset, (label, group) in enumerate(sorted(groups.items())):
            group.sort(key=lambda r: _sort_key(r["settings"].get(x_key, "")))
            xs = [values.index(r["settings"].get(x_key, "")) + 0.06 * offset for r in group]
            ys = [r["value"] for r in group]
            errors = [[r["value"] - r.get("ci_low", r["value"]) for r in group],
                      [r.get("ci_high", r["value"]) - r["value"] for r in group]]
            ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=label or None)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(values)
        ax.set_xlabel(x_key)
        ax.set_ylabel(f"{metric} (%, 95% interval)", fontsize=8)
        ax.set_title(f"{variant} on {dset}", fontsize=9)
        if metric.startswith("homophone_acc"):
            ax.axhline(50, color="black", linestyle="--", linewidth=0.8)
        if len(groups) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


# ---- the points of a sweep (sweep.sh) ----

# key -> (its values' spec: a gcft.sh option or a spec of its own, run.sh options with {v} and
# {i} (the value and its 1-based index), the tag of one setting); "train:" options are
# ESPnet training options, gathered into one --variant_train_args
SWEEP_KEYS = {
    "distill_weight": ("[float >= 0] the distillation weight alpha", "train:--model_conf=distill_weight={v}", "dw{v}"),
    "attention_dim": ("[int >= 1] the fusion's attention size", "train:--context_fusion_conf=attention_dim={v}", "att{v}"),
    "pooling": ("pooling", "--pooling {v}", "{v}"),
    "num_prev": ("num_prev", "--num_prev {v}", "n{v}"),
    "prev_mode": ("prev_mode", "--prev_mode {v}", "{v}"),
    "context_prompt": ("context_prompt", "--prompts {v} --context_prompt {v}", "{v}"),
    "llm": ("llm", "--llm {v} --context_tag llm{i}", "llm{i}"),
    "train_degrade": ("train_degrade", "--train_degrade {v}", "train_{v}"),
    "seed": ("seed", "--seed {v}", "seed{v}"),
}


@dataclass
class Point:
    """One point of a sweep: its tag, settings and run.sh options."""

    tag: str
    settings: List[Tuple[str, str]]
    options: List[str]
    train_args: List[str]

    def run_options(self) -> List[str]:
        return self.options + (["--variant_train_args", " ".join(self.train_args)]
                               if self.train_args else [])


def _key_option(key: str, gcft_script: Path):
    """The Option that checks a grid key's values."""
    from espnet_gcft.recipe.options import Option, parse_spec, read_block

    spec = SWEEP_KEYS[key][0]
    if spec.startswith("["):
        spec, meaning = spec[1:].split("] ", 1)
        return parse_spec(Option(key, "", spec, meaning), f"sweep key {key}")
    return next(o for o in read_block(gcft_script) if o.name == spec)


def plan_points(grids: Sequence[str], gcft_script: Path) -> List[Point]:
    """Every combination of the grids' values, checked: an unknown key, a value its
    spec refuses or an empty grid is a :class:`SweepError` naming it."""
    from itertools import product

    from espnet_gcft.recipe.options import check_value

    if not grids:
        raise SweepError("no --grid: a sweep needs key=\"values\"")
    axes = []
    for grid in grids:
        key, sep, text = grid.partition("=")
        values = text.split()
        if not sep or not values:
            raise SweepError(f"--grid wants key=\"values\", got {grid!r}")
        if key not in SWEEP_KEYS:
            raise SweepError(f"--grid {grid!r}: cannot sweep {key} (keys: {' '.join(SWEEP_KEYS)})")
        option = _key_option(key, gcft_script)
        for value in values:
            reason = check_value(option, value, {}, gcft_script)
            if reason is not None:
                raise SweepError(f"--grid {grid!r}: {key}={value} {reason}; allowed: "
                                 f"[{option.spec}] ({option.meaning})")
        axes.append([(key, value, index) for index, value in enumerate(values, 1)])
    points = []
    for combo in product(*axes):
        options, train_args, tags = [], [], []
        for key, value, index in combo:
            _, template, tag = SWEEP_KEYS[key]
            words = template.format(v=value, i=index).split()
            if words[0].startswith("train:"):
                train_args.append(words[0][len("train:"):])
            else:
                options += words
            tags.append(tag.format(v=value, i=index))
        points.append(Point("_".join(tags), [(k, v) for k, v, _ in combo], options, train_args))
    return points
