"""How much each context source tells about the utterance it serves, before any training.

For every source (``prev_gt``, ``gen_<prompt>``, ...) and over the utterances
that have a previous one, with one text encoder for everything:

- ``sim_current``: mean cosine between the context embedding and the embedding
  of the utterance's own reference text;
- ``sim_shuffled``: the same with each context paired to an utterance of
  another session (seeded); ``lift`` = sim_current - sim_shuffled;
- ``top1`` / ``mrr``: retrieving the utterance's own context among ``K``
  candidates (its own and K-1 from other sessions) by similarity to its text;
- ``echo``: mean cosine to the ground-truth previous text (a context that only
  repeats the previous sentence has echo near 1);
- ``empty``: utterances with a previous one whose context is empty (counted,
  left out of the means).

Every mean comes with a bootstrap 95% interval over utterances. On a set too
small for ``K`` candidates (a smoke test), ``K`` shrinks with a warning and is
recorded per source; a set with one session gets no shuffled or retrieval figures.
"""

from dataclasses import dataclass
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np

from espnet_gcft.context.history import NO_PREVIOUS
from espnet_gcft.errors import InputError

logger = logging.getLogger(__name__)

METRICS = ("sim_current", "sim_shuffled", "lift", "top1", "mrr", "echo")


class ReportError(InputError, ValueError):
    """Inputs that cannot be reported on (names the source and utterances)."""


def sessions_of(utt2prev: Dict[str, str]) -> Dict[str, str]:
    """utterance -> its session, named by the first utterance of its chain."""
    session: Dict[str, str] = {}
    for start in utt2prev:
        path, utt = [], start
        while utt not in session:
            path.append(utt)
            previous = utt2prev.get(utt, NO_PREVIOUS)
            if previous == NO_PREVIOUS or previous not in utt2prev:
                session[utt] = utt
            elif len(path) > len(utt2prev):
                raise ReportError(f"utt2prev has a cycle through {start}")
            else:
                utt = previous
        for member in path:
            session[member] = session[utt]
    return session


def shuffled_partners(utts: Sequence[str], session: Dict[str, str], rng: np.random.Generator,
                      count: int = 1) -> List[List[int]]:
    """For each utterance, ``count`` distinct indices of utterances from other sessions."""
    groups = np.array([session[u] for u in utts])
    partners = []
    for index, utt in enumerate(utts):
        others = np.flatnonzero(groups != session[utt])
        if len(others) < count:
            raise ReportError(
                f"utterance {utt}: only {len(others)} utterance(s) in other sessions, "
                f"{count} needed (use a set with more sessions or a smaller --num_candidates)"
            )
        partners.append(rng.choice(others, size=count, replace=False).tolist())
    return partners


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _bootstrap(values: np.ndarray, rng: np.random.Generator, rounds: int) -> List[float]:
    if len(values) == 0:
        return [float("nan"), float("nan")]
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


@dataclass
class SourceInput:
    """One context source: utterance -> embedding ``(C,)``, or None when empty."""

    name: str
    vectors: Dict[str, Optional[np.ndarray]]


def report_source(
    source: SourceInput,
    current: Dict[str, np.ndarray],
    previous: Dict[str, Optional[np.ndarray]],
    utt2prev: Dict[str, str],
    num_candidates: int = 10,
    seed: int = 0,
    bootstrap: int = 1000,
) -> dict:
    """Figures of one source (see the module docstring).

    Args:
        source: the context embeddings.
        current: utterance -> embedding of its own reference text.
        previous: utterance -> embedding of the ground-truth previous text.
        utt2prev: utterance -> previous utterance or ``-``.
        num_candidates: K, candidates in the retrieval test.
        seed: seed of the shuffled pairing, the candidates and the bootstrap.
        bootstrap: resampling rounds for the 95% intervals.
    """
    missing = [u for u in utt2prev if u not in source.vectors]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ReportError(f"source {source.name} has no entry for {len(missing)} utterance(s): {shown}")
    rng = np.random.default_rng(seed)
    session = sessions_of(utt2prev)
    with_previous = [u for u in utt2prev if utt2prev[u] != NO_PREVIOUS]
    usable = [u for u in with_previous if source.vectors[u] is not None]
    result = {"source": source.name, "n_with_previous": len(with_previous),
              "n_empty": len(with_previous) - len(usable), "n": len(usable)}
    if not usable:
        return {**result, **{m: None for m in METRICS}}
    context = _unit(np.stack([source.vectors[u] for u in usable]))  # (N, C)
    text = _unit(np.stack([current[u] for u in usable]))  # (N, C)
    sim_current = (context * text).sum(axis=1)  # (N,)
    groups = [session[u] for u in usable]
    fewest_others = min(len(groups) - groups.count(g) for g in set(groups))
    if fewest_others == 0:
        # one session: no other-session pairing, only sim_current and echo
        logger.warning(f"source {source.name}: every usable utterance is in one session; "
                       "no shuffled pairing or retrieval figures")
        partners = None
    else:
        if fewest_others < num_candidates - 1:
            # a small set (a smoke test): fewer candidates, said so, rather than no report
            logger.warning(f"source {source.name}: only {fewest_others} utterance(s) from other "
                           f"sessions for some utterances: {fewest_others + 1} retrieval "
                           f"candidates instead of {num_candidates}")
            num_candidates = fewest_others + 1
        partners = shuffled_partners(usable, session, rng, count=max(num_candidates - 1, 1))
    result["num_candidates"] = num_candidates if partners is not None else None
    per_utt = {"sim_current": sim_current}
    if partners is not None:
        per_utt.update(_shuffled_figures(context, text, sim_current, partners, num_candidates))
    echo_utts = [i for i, u in enumerate(usable) if previous.get(u) is not None]
    if echo_utts:
        prev = _unit(np.stack([previous[usable[i]] for i in echo_utts]))
        per_utt["echo"] = (context[echo_utts] * prev).sum(axis=1)
    for metric in METRICS:
        values = per_utt.get(metric)
        if values is None:
            result[metric] = None
            continue
        result[metric] = float(values.mean())
        result[f"{metric}_ci95"] = _bootstrap(values, rng, bootstrap)
    return result


def _shuffled_figures(context: np.ndarray, text: np.ndarray, sim_current: np.ndarray,
                      partners: List[List[int]], num_candidates: int) -> Dict[str, np.ndarray]:
    """Per-utterance ``sim_shuffled``, ``lift``, ``top1`` and ``mrr`` against other sessions."""
    first_partner = np.array([p[0] for p in partners])
    sim_shuffled = (context[first_partner] * text).sum(axis=1)
    ranks = []
    for index, others in enumerate(partners):
        candidates = context[[index] + others[: num_candidates - 1]]  # (K, C)
        scores = candidates @ text[index]
        ranks.append(1 + int((scores[1:] > scores[0]).sum()))
    ranks = np.array(ranks)
    return {
        "sim_shuffled": sim_shuffled,
        "lift": sim_current - sim_shuffled,
        "top1": (ranks == 1).astype(float),
        "mrr": 1.0 / ranks,
    }


def markdown_table(rows: List[dict], title: str) -> str:
    """A markdown table of report rows, means with their 95% intervals."""
    lines = [f"### {title}", "",
             "| source | n | empty | " + " | ".join(METRICS) + " |",
             "|---|---|---|" + "---|" * len(METRICS)]
    for row in rows:
        cells = []
        for metric in METRICS:
            value = row.get(metric)
            if value is None:
                cells.append("")
                continue
            low, high = row.get(f"{metric}_ci95", [float("nan")] * 2)
            cells.append(f"{value:.3f} [{low:.3f}, {high:.3f}]")
        lines.append(f"| {row['source']} | {row['n']} | {row['n_empty']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
