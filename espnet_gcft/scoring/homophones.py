"""Context-decided words: the forced choice between two spellings, and decoded spellings.

A data dir's ``homophones`` file lists the items, one per line::

    <utt> <type> <position> <word> <alternative> [<cue_seen>]

``type`` says what decides the spelling (``P``: only the previous sentence,
``W``: the previous sentence and a topic word of the current one, ``C``: the
current sentence alone; any other label is kept as it is), ``position`` is the
0-based index of the word among the plain words of the reference (entity tags
and a leading sentiment label do not count), ``word`` its right spelling and
``alternative`` the other one. ``cue_seen`` (optional: ``yes``/``no``/``-``)
says whether the deciding sentence occurs in training.

Two measures read it:

- the **forced choice** (:func:`forced_choice_accuracy`): the model scores the
  reference with the right spelling against the same reference with the
  alternative (CTC log-likelihoods written by ``gcft_inference
  --homophones``); an item is right when the right spelling scores strictly
  higher;
- the **decoded spelling** (:func:`decoded_spellings`): the hypothesis word
  aligned to the item's position is the right spelling, the alternative, or
  something else (including nothing).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from espnet_gcft.fileio import read_table
from espnet_gcft.scoring.slu import FILL, NER_TYPES, SENTIMENTS, SEP
from espnet_gcft.scoring.stats import wilson_interval
from espnet_gcft.scoring.trn import ScoringError

PathLike = Union[str, Path]
ITEM_TYPES = ("P", "W", "C")


@dataclass(frozen=True)
class Item:
    """One context-decided word of one utterance."""

    utt: str
    kind: str
    position: int
    word: str
    alternative: str
    cue_seen: str = "-"


def read_homophones(path: PathLike) -> Dict[str, Item]:
    """``utt -> Item`` from a ``homophones`` file; errors name the file and line."""
    items: Dict[str, Item] = {}
    for lineno, fields in read_table(path, min_fields=5, max_fields=6):
        utt, kind, position = fields[0], fields[1], fields[2]
        if not position.isdigit():
            raise ScoringError(f"{path}:{lineno}: utterance {utt}: position {position!r} "
                               "is not a non-negative integer")
        if utt in items:
            raise ScoringError(f"{path}:{lineno}: utterance {utt} has a second item")
        if fields[3] == fields[4]:
            raise ScoringError(f"{path}:{lineno}: utterance {utt}: the alternative equals "
                               f"the word {fields[3]!r}")
        items[utt] = Item(utt, kind, int(position), fields[3], fields[4],
                          fields[5] if len(fields) > 5 else "-")
    return items


def plain_word_indices(words: Sequence[str]) -> List[int]:
    """Indices of the plain words of a target: entity tags and a leading label left out."""
    indices = []
    index = 0
    if words and words[0] in SENTIMENTS:
        index = 1
    while index < len(words):
        token = words[index]
        if token in NER_TYPES and index + 1 < len(words) and words[index + 1] == FILL:
            index += 2
            continue
        if token not in (FILL, SEP):
            indices.append(index)
        index += 1
    return indices


def swap_word(text: str, item: Item) -> str:
    """``text`` with the item's word replaced by its alternative spelling.

    Raises:
        ScoringError: the word at the item's position is not the item's word.
    """
    words = text.split()
    plain = plain_word_indices(words)
    if item.position >= len(plain) or words[plain[item.position]] != item.word:
        found = words[plain[item.position]] if item.position < len(plain) else "nothing"
        raise ScoringError(f"utterance {item.utt}: expected {item.word!r} at word "
                           f"{item.position} of {text!r}, found {found!r}")
    words[plain[item.position]] = item.alternative
    return " ".join(words)


def read_forced_choice(path: PathLike) -> Dict[str, Tuple[float, float]]:
    """``utt -> (log p(right), log p(alternative))`` from a ``forced_choice`` file."""
    scores = {}
    for lineno, fields in read_table(path, min_fields=3, max_fields=3):
        try:
            scores[fields[0]] = (float(fields[1]), float(fields[2]))
        except ValueError:
            raise ScoringError(f"{path}:{lineno}: expected '<utt> <logp> <logp>'") from None
    return scores


def forced_choice_outcomes(items: Dict[str, Item], scores: Dict[str, Tuple[float, float]],
                           scores_name: str) -> Dict[str, bool]:
    """``utt -> right?`` for every item; an item without a score is an error."""
    missing = [u for u in items if u not in scores]
    if missing:
        raise ScoringError(f"{scores_name}: no forced-choice score for {len(missing)} "
                           f"item(s), e.g. utterance {missing[0]}")
    return {utt: scores[utt][0] > scores[utt][1] for utt in items}


def accuracy_record(right: int, n: int) -> Dict[str, float]:
    """``value``, ``ci_low``, ``ci_high`` (percent, Wilson 95%) and ``n`` of ``right / n``."""
    low, high = wilson_interval(right, n)
    return {"value": round(100.0 * right / n, 4) if n else 0.0,
            "ci_low": round(100.0 * low, 4), "ci_high": round(100.0 * high, 4), "n": n}


def item_groups(items: Dict[str, Item]) -> Dict[str, List[str]]:
    """Metric suffix -> utterances: one group per type, and the P/W items by cue_seen."""
    groups: Dict[str, List[str]] = {}
    for utt, item in items.items():
        groups.setdefault(item.kind, []).append(utt)
        if item.cue_seen in ("yes", "no"):
            name = f"{item.kind}_{'seen' if item.cue_seen == 'yes' else 'unseen'}_cue"
            groups.setdefault(name, []).append(utt)
    return groups


def align(ref: Sequence[str], hyp: Sequence[str]) -> List[Optional[int]]:
    """For each reference word, the index of the hypothesis word aligned to it (None: deleted).

    Levenshtein alignment (substitution, insertion and deletion cost 1);
    among equal-cost paths, matches and substitutions are preferred.
    """
    rows, cols = len(ref) + 1, len(hyp) + 1
    cost = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = i
    for j in range(cols):
        cost[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            diagonal = cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            cost[i][j] = min(diagonal, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    aligned: List[Optional[int]] = [None] * len(ref)
    i, j = len(ref), len(hyp)
    while i > 0 and j > 0:
        if cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            aligned[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return aligned


def decoded_spellings(items: Dict[str, Item],
                      pairs: Sequence[Tuple[str, str, str]]) -> Dict[str, str]:
    """utt -> ``right`` / ``alternative`` / ``other``: what the hypothesis has at each item.

    ``pairs`` are ``(trn id, plain reference, plain hypothesis)``; a trn id is
    ``<spk>-<utt>``, so an item's utterance also matches a trn id ending in
    ``-<utt>``. The hypothesis word aligned to the item's position decides;
    a deleted word is ``other``.
    """
    by_utt = {}
    for trn_id, ref, hyp in pairs:
        by_utt[trn_id] = (ref, hyp)
        for index, char in enumerate(trn_id):
            if char == "-":
                by_utt.setdefault(trn_id[index + 1:], (ref, hyp))
    spellings = {}
    for utt, item in items.items():
        if utt not in by_utt:
            continue
        ref, hyp = (s.lower().split() for s in by_utt[utt])
        if item.position >= len(ref) or ref[item.position] != item.word.lower():
            raise ScoringError(f"utterance {utt}: expected {item.word!r} at word "
                               f"{item.position} of the reference {' '.join(ref)!r}")
        target = align(ref, hyp)[item.position]
        decoded = hyp[target] if target is not None else None
        spellings[utt] = ("right" if decoded == item.word.lower()
                          else "alternative" if decoded == item.alternative.lower() else "other")
    return spellings
