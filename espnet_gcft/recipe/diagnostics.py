"""What a context variant's inputs knew about the context-decided words.

- :func:`student_diagnostics` (gcaf): the cosine between the student's
  prediction and the teacher embedding; ``student_gain``, that cosine minus
  the cosine of the training teachers' mean to the same teacher (0: the
  student predicts no more than one constant vector, it collapsed), pooled
  and per row type; and how often the prediction's nearest sense centroid
  (the mean teacher embedding of the items of each spelling, between the
  item's two spellings) is the right sense, per item type;
- :func:`llm_diagnostics` (gen_inject): how often the LLM's output for an
  item already holds the right spelling, or the alternative one.

Each figure is a record ``{"value", "ci_low", "ci_high", "n"}`` in percent
(the cosine times 100): Wilson intervals for shares, a bootstrap interval for
the mean cosine. Entity items are left out: their ``word`` is an entity
type, not a spelling an LLM output could hold.
"""

import re
from typing import Dict, List, Optional

import numpy as np

from espnet_gcft.scoring.homophones import Item, accuracy_record
from espnet_gcft.scoring.stats import bootstrap_mean_interval

CONTEXT_DECIDED = ("P", "W", "P2", "P3")


def _vector(matrix: np.ndarray) -> np.ndarray:
    """One vector per context: the mean of its rows."""
    return np.asarray(matrix, dtype=np.float64).mean(axis=0)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


def _mean_record(values: List[float]) -> dict:
    """Mean x 100 with a bootstrap 95% interval."""
    low, high = bootstrap_mean_interval(values)
    return {"value": round(100 * float(np.mean(values)), 4), "ci_low": round(100 * low, 4),
            "ci_high": round(100 * high, 4), "n": len(values)}


def student_diagnostics(student: Dict[str, np.ndarray], teacher: Dict[str, np.ndarray],
                        items: Dict[str, Item], train_mean: Optional[np.ndarray] = None,
                        types: Optional[Dict[str, str]] = None) -> Dict[str, dict]:
    """``student_teacher_cos``, ``student_gain[_<type>]`` and ``student_sense_acc_<type>``.

    Args:
        student: utt -> (Lq, C) student prediction.
        teacher: utt -> (L, C) teacher context (L = 0: none).
        items: the set's homophone items.
        train_mean: (C,) the training teachers' mean (``student_gain``).
        types: utt -> its row type (``student_gain_<type>``; default: the item types).
    """
    with_teacher = [u for u, m in teacher.items() if len(m) and u in student]
    cosines = [_cosine(_vector(student[u]), _vector(teacher[u])) for u in with_teacher]
    records = {}
    if cosines:
        records["student_teacher_cos"] = _mean_record(cosines)
    if cosines and train_mean is not None:
        gains = {u: c - _cosine(train_mean, _vector(teacher[u])) for u, c in zip(with_teacher, cosines)}
        records["student_gain"] = _mean_record(list(gains.values()))
        kinds = types if types is not None else {u: item.kind for u, item in items.items()}
        by_type: Dict[str, List[float]] = {}
        for utt, gain in gains.items():
            if utt in kinds:
                by_type.setdefault(kinds[utt], []).append(gain)
        for kind in sorted(by_type):
            if len(by_type[kind]) > 1:
                records[f"student_gain_{kind}"] = _mean_record(by_type[kind])
    sums: Dict[str, np.ndarray] = {}
    counts: Dict[str, int] = {}
    for utt, item in items.items():
        if item.kind in CONTEXT_DECIDED and not item.is_entity and utt in teacher \
                and len(teacher[utt]):
            sums[item.word] = sums.get(item.word, 0) + _vector(teacher[utt])
            counts[item.word] = counts.get(item.word, 0) + 1
    centroids = {word: total / counts[word] for word, total in sums.items()}
    right: Dict[str, int] = {}
    total: Dict[str, int] = {}
    for utt, item in items.items():
        if utt not in student or item.word not in centroids or item.alternative not in centroids:
            continue
        prediction = _vector(student[utt])
        hit = _cosine(prediction, centroids[item.word]) > _cosine(prediction,
                                                                   centroids[item.alternative])
        right[item.kind] = right.get(item.kind, 0) + hit
        total[item.kind] = total.get(item.kind, 0) + 1
    for kind in sorted(total):
        records[f"student_sense_acc_{kind}"] = accuracy_record(right[kind], total[kind])
    return records


def llm_diagnostics(generated: Dict[str, str], items: Dict[str, Item]) -> Dict[str, dict]:
    """``llm_has_right`` / ``llm_has_alt``: context-decided items (P, W, P2, P3) whose
    generated context holds that spelling."""
    decided = [item for utt, item in items.items()
               if item.kind in CONTEXT_DECIDED and not item.is_entity and utt in generated]
    if not decided:
        return {}
    words = {item.utt: set(re.findall(r"[a-z]+", generated[item.utt].lower())) for item in decided}
    has_right = sum(item.word.lower() in words[item.utt] for item in decided)
    has_alt = sum(item.alternative.lower() in words[item.utt] for item in decided)
    return {"llm_has_right": accuracy_record(has_right, len(decided)),
            "llm_has_alt": accuracy_record(has_alt, len(decided))}
