"""Uncertainty of a score: 95% intervals and paired tests against a baseline.

- accuracies (the forced choice, decoded spellings, sentiment accuracy): Wilson
  score interval; paired with the baseline on the same items, the exact
  McNemar test (two-sided binomial test on the discordant items);
- error rates over utterances (WER, CER): percentile bootstrap over
  utterances (errors and reference lengths resampled together); paired with
  the baseline, sclite's matched-pairs test (``sc_stats``) where sclite is
  installed, else a paired bootstrap over utterances.

Every function returns fractions (0..1) or p-values; callers turn them into
percent.
"""

from math import comb, sqrt
from typing import Callable, List, Sequence, Tuple

import numpy as np

Statistic = Callable[[Sequence[int]], float]

Z95 = 1.959963984540054
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def wilson_interval(successes: int, n: int, z: float = Z95) -> Tuple[float, float]:
    """95% Wilson score interval of ``successes / n`` (``(0, 1)`` when ``n == 0``)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    ``only_first``: items right for one system only; ``only_second``: right for
    the other only. Under the null each discordant item falls either way with
    probability 1/2.
    """
    n = only_first + only_second
    if n == 0:
        return 1.0
    k = min(only_first, only_second)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions and deletions cost 1)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j - 1] + (r != h), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return previous[-1]


def error_counts(pairs: Sequence[Tuple[str, str, str]], unit: str) -> List[Tuple[int, int]]:
    """Per utterance ``(errors, reference length)`` in words or characters, case-insensitive."""
    if unit not in ("word", "char"):
        raise ValueError(f"`unit` must be 'word' or 'char', got {unit!r}")
    counts = []
    for _, ref, hyp in pairs:
        ref, hyp = ref.lower(), hyp.lower()
        if unit == "word":
            ref_units, hyp_units = ref.split(), hyp.split()
        else:
            ref_units, hyp_units = list(" ".join(ref.split())), list(" ".join(hyp.split()))
        counts.append((edit_distance(ref_units, hyp_units), len(ref_units)))
    return counts


def _resamples(n: int, samples: int, seed: int) -> np.ndarray:
    """(samples, n) unit indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def error_rate(counts: Sequence[Tuple[int, int]]) -> Statistic:
    """The statistic ``sum(errors) / sum(lengths)`` over the utterances of an index array."""
    table = np.asarray(counts, dtype=np.int64).reshape(-1, 2)

    def rate(index: Sequence[int]) -> float:
        errors, length = table[np.asarray(index)].sum(axis=0)
        return float(errors / length) if length else 0.0
    return rate


def bootstrap_interval(n: int, statistic: Statistic, samples: int = BOOTSTRAP_SAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> Tuple[float, float]:
    """95% percentile-bootstrap interval of ``statistic`` over ``n`` resampled units.

    ``statistic`` maps an array of unit indices (with repeats) to a number, e.g.
    :func:`error_rate` for WER.
    """
    if n == 0:
        return 0.0, 0.0
    values = sorted(statistic(index) for index in _resamples(n, samples, seed))
    return values[int(0.025 * (samples - 1))], values[int(round(0.975 * (samples - 1)))]


def paired_bootstrap(n: int, first: Statistic, second: Statistic,
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> float:
    """Two-sided p-value that two systems differ in a statistic over the same ``n`` units.

    Units are resampled together for both systems; the p-value is twice the
    share of resamples in which the difference does not have the sign it has
    on the full set (capped at 1).
    """
    if n == 0:
        return 1.0
    everything = np.arange(n)
    observed = first(everything) - second(everything)
    if observed == 0:
        return 1.0
    flipped = sum((first(index) - second(index)) * observed <= 0
                  for index in _resamples(n, samples, seed))
    return min(1.0, 2 * flipped / samples)


def bootstrap_mean_interval(values: Sequence[float], samples: int = BOOTSTRAP_SAMPLES,
                            seed: int = BOOTSTRAP_SEED) -> Tuple[float, float]:
    """95% percentile-bootstrap interval of a mean."""
    array = np.asarray(values, dtype=np.float64)
    return bootstrap_interval(len(array), lambda index: float(array[index].mean()), samples, seed)


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm's step-down adjustment of a family of p-values (same order, capped at 1).

    The i-th smallest p is multiplied by ``m - i`` (i from 0) and the result made
    non-decreasing in that order, so an adjusted p below 0.05 rejects its null with
    the family-wise error rate held at 5%.
    """
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted
