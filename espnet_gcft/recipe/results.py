"""Stage 8: every variant x set x condition x metric as records with intervals and paired tests.

A record is ``{"variant", "set", "condition", "metric", "value", "ci_low",
"ci_high", "n"}`` (percent, as in ``score.json``) plus ``p_vs_baseline`` where
a test applies: the same metric of the baseline's default (``gt``) decode of
the same set, paired unit by unit:

- accuracies on items or utterances (``homophone_acc_*``,
  ``entity_type_acc_*``, ``context_word_acc``, ``accuracy``): exact McNemar
  test;
- ``wer``: sclite's matched-pairs sentence-segment test (``sc_stats``) when
  sclite is installed, else a paired bootstrap over utterances;
- ``cer`` and F1s: paired bootstrap over utterances.

Diagnostics (``decode_<set>/diagnostics.json``) become records without a test.

Every p comes with ``p_holm``, Holm's adjustment within its ``family``: the
pre-stated headline tests (:func:`read_headline`) are one family, and every
other record's family is the RESULTS table it appears in (a set and a group of
metrics, :func:`add_holm`).
"""

import json
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from espnet_gcft.recipe.init_model import describe_init
from espnet_gcft.recipe.variants import BASELINE, Layout, decode_dir, variant_of
from espnet_gcft.scoring.homophones import CUE_SEEN
from espnet_gcft.scoring.score import F1_METRICS, ScoredDecode, load_decode
from espnet_gcft.scoring.stats import error_rate, holm, mcnemar_exact, paired_bootstrap
from espnet_gcft.scoring.trn import ScoringError
from espnet_gcft.scoring.wer import find_sclite, matched_pairs_p

logger = logging.getLogger(__name__)

HOMOPHONE_METRICS = ["homophone_acc_P", "homophone_acc_W", "homophone_acc_C", "homophone_acc_S"] + [
    f"homophone_acc_{kind}_{seen}_cue" for kind in ("P", "W") for seen in CUE_SEEN.values()] + [
    "context_word_acc", "context_word_alt", "context_word_other",
    # far cues (the cue 2 or 3 utterances back) and entity types
    "homophone_acc_P2", "homophone_acc_P3"] + [
    f"homophone_acc_{kind}_{seen}_cue" for kind in ("P2", "P3") for seen in CUE_SEEN.values()] + [
    "entity_type_acc_P"] + [f"entity_type_acc_P_{seen}_cue" for seen in CUE_SEEN.values()]
METRICS = {
    "asr": ["wer", "cer"] + HOMOPHONE_METRICS,
    "ner": list(F1_METRICS["ner"]) + ["wer", "cer"] + HOMOPHONE_METRICS,
    "sentiment": ["macro_f1", "accuracy", "wer", "cer"] + HOMOPHONE_METRICS,
}
# shares that are not "right answers": no paired test against the baseline
UNTESTED = ("context_word_alt", "context_word_other")
RECORD_KEYS = ("variant", "set", "condition", "metric", "value", "ci_low", "ci_high", "n",
               "p_vs_baseline", "p_holm", "family")
HEADLINE = "headline"


class Decodes:
    """The scored decodes under an exp dir, loaded once each."""

    def __init__(self, exp_dir: Path, raw_dir: Path, task: str):
        self.exp_dir, self.raw_dir, self.task = exp_dir, raw_dir, task
        self._loaded: Dict[Path, ScoredDecode] = {}

    def score(self, variant: str, dset: str, condition: str) -> Optional[dict]:
        path = decode_dir(self.exp_dir, variant, dset, condition) / "score.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def units(self, variant: str, dset: str, condition: str) -> ScoredDecode:
        out = decode_dir(self.exp_dir, variant, dset, condition)
        if out not in self._loaded:
            homophones = self.raw_dir / dset / "homophones"
            forced = out / "forced_choice"
            self._loaded[out] = load_decode(
                self.task, out / "ref.trn", out / "hyp.trn",
                homophones if homophones.is_file() else None,
                forced if forced.is_file() and homophones.is_file() else None)
        return self._loaded[out]


def paired_p(metric: str, first: ScoredDecode, second: ScoredDecode,
             first_dir: Path, second_dir: Path, sclite: Optional[str]) -> Optional[float]:
    """Two-sided p-value that two decodes of the same set differ in ``metric``."""
    if metric in first.binary and metric in second.binary:
        a, b = first.binary[metric], second.binary[metric]
        common = [u for u in a if u in b]
        return mcnemar_exact(sum(a[u] and not b[u] for u in common),
                             sum(b[u] and not a[u] for u in common))
    if [u for u, _, _ in first.pairs] != [u for u, _, _ in second.pairs]:
        raise ValueError(f"{first_dir} and {second_dir} hold different utterances")
    n = len(first.pairs)
    if metric == "wer":
        if sclite is not None:
            try:
                return matched_pairs_p(sclite, first_dir / "ref.trn", first_dir / "hyp.trn",
                                       second_dir / "hyp.trn")
            except ScoringError as error:
                logger.warning(f"{error}; WER compared by a paired bootstrap instead")
        return paired_bootstrap(n, error_rate(first.counts("word")),
                                error_rate(second.counts("word")))
    if metric == "cer":
        return paired_bootstrap(n, error_rate(first.counts("char")),
                                error_rate(second.counts("char")))
    if metric in F1_METRICS.get(first.task, ()):
        return paired_bootstrap(n, first.f1_statistic(metric), second.f1_statistic(metric))
    return None


def collect_records(exp_dir: Path, raw_dir: Path, variants: List[str], test_sets: List[str],
                    conditions: List[str], task: str) -> List[dict]:
    """Every record of every scored decode (see the module docstring)."""
    decodes = Decodes(exp_dir, raw_dir, task)
    sclite = find_sclite()
    records = []
    for variant in variants:
        for dset in test_sets:
            for condition in conditions:
                scores = decodes.score(variant, dset, condition)
                diagnostics = decode_dir(exp_dir, variant, dset, condition) / "diagnostics.json"
                if scores is None:
                    if diagnostics.is_file():  # a probe of the shared pretrained model
                        records += _diagnostic_records(diagnostics, variant, dset, condition)
                    elif condition == "gt" and variant_of(variant) is not None:
                        logger.warning(f"{decode_dir(exp_dir, variant, dset, 'gt')}/score.json "
                                       "is missing: run stage 7")
                    continue
                baseline = None
                if variant != BASELINE and decodes.score(BASELINE, dset, "gt") is not None:
                    baseline = decodes.units(BASELINE, dset, "gt")
                intervals = scores.get("intervals", {})
                for metric in METRICS[task]:
                    if metric not in scores:
                        continue
                    record = dict(variant=variant, set=dset, condition=condition, metric=metric,
                                  value=scores[metric], **intervals.get(metric, {}))
                    if baseline is not None and metric not in UNTESTED:
                        p = paired_p(metric, decodes.units(variant, dset, condition), baseline,
                                     decode_dir(exp_dir, variant, dset, condition),
                                     decode_dir(exp_dir, BASELINE, dset, "gt"), sclite)
                        if p is not None:
                            record["p_vs_baseline"] = p
                    records.append(record)
                if diagnostics.is_file():
                    records += _diagnostic_records(diagnostics, variant, dset, condition)
    return records


def _diagnostic_records(path: Path, variant: str, dset: str, condition: str) -> List[dict]:
    """The records of a ``diagnostics.json`` (no paired test)."""
    return [dict(variant=variant, set=dset, condition=condition, metric=metric, **values)
            for metric, values in sorted(json.loads(path.read_text()).items())]


def run_facts(context_dir: Path, exp_dir: Path, variants: List[str], test_set: str,
              layout: Layout, pooling: str) -> Dict[str, Optional[str]]:
    """What the run used, read from its own outputs: its variants' exp dirs (tagged
    for a sweep point) and the context sources its options name (``layout``).

    ``llm``: the models of the generated source's ``generation.jsonl``;
    ``text_encoder``: the encoder of its sources' ``meta.json``; ``source``: the
    generated context source (or the previous transcript's); ``distill_weight``:
    from the config of the run's first variant with a student; ``init_param``:
    what its variants started from.
    """
    import yaml

    facts: Dict[str, Optional[str]] = {"llm": None, "text_encoder": None, "distill_weight": None,
                                       "init_param": None, "source": None}
    generated = layout.gen_source(layout.context_prompt)
    records = context_dir / test_set / generated / "generation.jsonl"
    if records.is_file():
        with open(records, encoding="utf-8") as f:
            models = {json.loads(line).get("model") for line in f if line.strip()}
        facts["llm"] = ", ".join(sorted(m.split("#")[0] for m in models if m))
    for source in (layout.prev_source, generated):
        meta = context_dir / test_set / source / "meta.json"
        if meta.is_file():
            entry = json.loads(meta.read_text()).get(f"emb_{pooling}", {})
            facts["text_encoder"] = entry.get("encoder", facts["text_encoder"])
            facts["source"] = source + layout.rows_suffix
    for name in variants:
        config = exp_dir / name / "config.yaml"
        variant = variant_of(name)
        if variant is None or not config.is_file():
            continue
        loaded = yaml.safe_load(config.read_text())
        if variant.has_student and facts["distill_weight"] is None:
            facts["distill_weight"] = str((loaded.get("model_conf") or {}).get("distill_weight"))
        facts["init_param"] = facts["init_param"] or ", ".join(
            describe_init(param) for param in loaded.get("init_param") or [])
    return facts


def read_headline(path: Path) -> List[dict]:
    """The pre-stated headline tests of a YAML file: a list of ``{variant, set, condition,
    metric, target}`` (``target``: what the run must show, in words)."""
    import yaml

    tests = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    keys = ("variant", "set", "condition", "metric", "target")
    for index, test in enumerate(tests, 1):
        if not isinstance(test, dict) or set(test) != set(keys):
            raise ScoringError(f"{path}: headline test {index} must have exactly the keys "
                               f"{', '.join(keys)}, got {test!r}")
    return tests


def add_holm(records: List[dict], family_of: Callable[[dict], str],
             headline: Sequence[dict] = ()) -> None:
    """Set ``family`` and ``p_holm`` on every record with a ``p_vs_baseline``: the
    headline tests form one family, every other record the family ``family_of`` names."""
    wanted = {(t["variant"], t["set"], t["condition"], t["metric"]) for t in headline}
    families: Dict[str, List[dict]] = {}
    for record in records:
        if "p_vs_baseline" not in record:
            continue
        key = (record["variant"], record["set"], record["condition"], record["metric"])
        record["family"] = HEADLINE if key in wanted else family_of(record)
        families.setdefault(record["family"], []).append(record)
    for members in families.values():
        for record, adjusted in zip(members, holm([r["p_vs_baseline"] for r in members])):
            record["p_holm"] = adjusted
