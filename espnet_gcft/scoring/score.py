"""Score a hypothesis trn against a reference trn for one task, with 95% intervals.

:class:`ScoredDecode` keeps what every figure is computed from, unit by unit
(utterances, or items for the context-decided words), so that
:func:`score` can put a bootstrap or Wilson interval on each figure and the
results stage can pair two decodes of the same set for a test.
"""

from dataclasses import dataclass, field
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from espnet_gcft.scoring.homophones import (
    accuracy_record,
    decoded_spellings,
    forced_choice_outcomes,
    item_groups,
    read_forced_choice,
    read_homophones,
)
from espnet_gcft.scoring.slu import (
    entity_counts,
    f1_from_counts,
    label_entities,
    ner_scores,
    parse_ner_pairs,
    parse_sentiment_pairs,
    sentiment_macro_f1,
)
from espnet_gcft.scoring.stats import bootstrap_interval, error_counts, error_rate
from espnet_gcft.scoring.trn import PathLike, ScoringError, paired, read_trn
from espnet_gcft.scoring.wer import find_sclite, word_error_rate

logger = logging.getLogger(__name__)
TASKS = ("asr", "ner", "sentiment")
F1_METRICS = {"ner": ("f1_micro", "f1_macro", "label_f1_micro", "label_f1_macro"),
              "sentiment": ("macro_f1",)}


@dataclass
class ScoredDecode:
    """One decode of a set, unit by unit.

    Attributes:
        task: ``asr`` | ``ner`` | ``sentiment``.
        pairs: ``(trn id, plain reference, plain hypothesis)`` per utterance
            (tags and labels removed), in reference order.
        binary: accuracy metric -> unit -> right? (``accuracy`` per
            utterance, ``context_word_acc``, ``homophone_acc_<group>`` and
            ``entity_type_acc_<group>`` per item).
        labels: per utterance, the task's labels: ``(reference entities,
            hypothesis entities)`` for ner, ``(gold, predicted)`` for sentiment.
        illegal: hypothesis NER tags dropped or ignored.
        spellings: item -> ``right`` / ``alternative`` / ``other`` (decoded).
    """

    task: str
    pairs: List[Tuple[str, str, str]]
    binary: Dict[str, Dict[str, bool]] = field(default_factory=dict)
    labels: List[tuple] = field(default_factory=list)
    illegal: int = 0
    spellings: Dict[str, str] = field(default_factory=dict)

    def counts(self, unit: str) -> List[Tuple[int, int]]:
        """Per utterance ``(errors, reference length)`` in words or characters."""
        return error_counts(self.pairs, unit)

    def f1_statistic(self, metric: str) -> Callable[[Sequence[int]], float]:
        """A task F1 (percent) over the utterances of an index array."""
        if self.task == "sentiment":
            def macro(index):
                return sentiment_macro_f1([self.labels[i][0] for i in index],
                                          [self.labels[i][1] for i in index])
            return macro

        # per-utterance counts once, then each resample is a sum (see slu.entity_counts)
        refs, hyps = [r for r, _ in self.labels], [h for _, h in self.labels]
        if metric.startswith("label_"):
            refs, hyps = label_entities(refs), label_entities(hyps)
        counts = entity_counts(refs, hyps)
        key = metric[len("label_"):] if metric.startswith("label_") else metric

        def entity(index):
            return f1_from_counts(counts[np.asarray(index)].sum(axis=0))[key]
        return entity


def load_decode(task: str, ref_trn: PathLike, hyp_trn: PathLike,
                homophones: Optional[PathLike] = None,
                forced_choice: Optional[PathLike] = None) -> ScoredDecode:
    """Read a decode's trn files (and forced-choice scores) into a :class:`ScoredDecode`."""
    if task not in TASKS:
        raise ValueError(f"--task must be one of {TASKS}, got {task!r}")
    if forced_choice is not None and homophones is None:
        raise ScoringError("--forced_choice needs --homophones")
    pairs = paired(read_trn(ref_trn), read_trn(hyp_trn), str(ref_trn), str(hyp_trn))
    decode = ScoredDecode(task, pairs)
    if task == "ner":
        decode.pairs, refs, hyps, decode.illegal = parse_ner_pairs(pairs, str(ref_trn))
        decode.labels = list(zip(refs, hyps))
    elif task == "sentiment":
        decode.pairs, gold, pred = parse_sentiment_pairs(pairs, str(ref_trn))
        decode.labels = list(zip(gold, pred))
        decode.binary["accuracy"] = {utt: g == p for (utt, _, _), g, p in zip(pairs, gold, pred)}
    if homophones is not None:
        items = read_homophones(homophones)
        decode.spellings = decoded_spellings(items, decode.pairs)
        if decode.spellings:
            decode.binary["context_word_acc"] = {u: k == "right" for u, k in decode.spellings.items()}
        if forced_choice is not None:
            outcomes = forced_choice_outcomes(items, read_forced_choice(forced_choice),
                                              str(forced_choice))
            for metric, utts in item_groups(items).items():
                decode.binary[metric] = {u: outcomes[u] for u in utts}
    return decode


def character_error_rate(pairs) -> float:
    """CER in percent (spaces count as characters), case-insensitive."""
    import jiwer

    refs = [r.lower() for _, r, _ in pairs if r]
    hyps = [h.lower() for _, r, h in pairs if r]
    return round(100.0 * jiwer.cer(refs, hyps), 4) if refs else 0.0


def _interval(low: float, high: float, n: int) -> Dict[str, float]:
    return {"ci_low": round(low, 4), "ci_high": round(high, 4), "n": n}


def score(
    task: str,
    ref_trn: PathLike,
    hyp_trn: PathLike,
    sclite: Optional[str] = None,
    use_sclite: bool = True,
    result_txt: Optional[Path] = None,
    homophones: Optional[PathLike] = None,
    forced_choice: Optional[PathLike] = None,
) -> Dict[str, float]:
    """All figures of ``task`` as a dict (see the ``score`` CLI).

    Args:
        task: ``asr`` | ``ner`` | ``sentiment``.
        ref_trn, hyp_trn: trn files with the same utterance ids.
        sclite: sclite path (default: found on PATH or in Debian's location).
        use_sclite: False to use jiwer even when sclite is installed.
        result_txt: where to keep sclite's full report.
        homophones: a data dir's ``homophones`` file (context-decided words):
            adds ``context_word_acc`` / ``_alt`` / ``_other``, the share of
            items whose aligned hypothesis word is the right spelling, the
            alternative or something else, and ``n_context_words`` (entity
            items left out: their two references have the same words).
        forced_choice: a decode dir's ``forced_choice`` file (with
            ``homophones``): adds ``homophone_acc_<group>`` per item type
            (and per seen/unseen cue), ``entity_type_acc_<group>`` for the
            entity items.

    Returns:
        The figures (percent for rates), and under ``intervals`` a
        ``{"ci_low", "ci_high", "n"}`` 95% interval for each rate and F1:
        bootstrap over utterances for WER, CER and F1, Wilson for accuracies.
    """
    decode = load_decode(task, ref_trn, hyp_trn, homophones, forced_choice)
    pairs = decode.pairs
    scores: Dict[str, float] = {"n_utterances": len(pairs)}
    intervals: Dict[str, dict] = {}
    if task == "ner":
        scores.update(ner_scores(*zip(*decode.labels)) if decode.labels else {})
        scores.update(n_ref_entities=sum(len(r) for r, _ in decode.labels),
                      n_hyp_entities=sum(len(h) for _, h in decode.labels),
                      n_illegal=decode.illegal)
    elif task == "sentiment":
        scores["macro_f1"] = sentiment_macro_f1(*zip(*decode.labels))
    for metric in F1_METRICS.get(task, ()):
        low, high = bootstrap_interval(len(pairs), decode.f1_statistic(metric))
        intervals[metric] = _interval(low, high, len(pairs))
    sclite_path = find_sclite(sclite) if use_sclite else None
    if use_sclite and sclite_path is None:
        logger.warning("sclite not found (tools/install_sctk.sh installs it): WER from jiwer")
    scores.update(word_error_rate(pairs, sclite_path, result_txt))
    scores["cer"] = character_error_rate(pairs)
    for metric, unit in (("wer", "word"), ("cer", "char")):
        low, high = bootstrap_interval(len(pairs), error_rate(decode.counts(unit)))
        intervals[metric] = _interval(100 * low, 100 * high, len(pairs))
    records = {metric: accuracy_record(sum(outcomes.values()), len(outcomes))
               for metric, outcomes in decode.binary.items()}
    if decode.spellings:
        total = len(decode.spellings)
        kinds = list(decode.spellings.values())
        records["context_word_alt"] = accuracy_record(kinds.count("alternative"), total)
        records["context_word_other"] = accuracy_record(kinds.count("other"), total)
        scores["n_context_words"] = total
    for metric, record in sorted(records.items()):
        scores[metric] = record["value"]
        intervals[metric] = _interval(record["ci_low"], record["ci_high"], record["n"])
    scores["intervals"] = intervals
    return scores

