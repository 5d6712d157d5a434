"""Context-decided words: the forced choice between two spellings, and decoded spellings.

A data dir's ``homophones`` file lists the items, one per line::

    <utt> <type> <position> <word> <alternative> [<cue_seen>]

``type`` says what decides the spelling (``P``: only the previous sentence,
``P2``/``P3``: only the sentence 2/3 back, ``W``: the previous sentence and a
topic word of the current one, ``C``: the current sentence alone, ``S``: a
distill-only topic word of the current one, after a neutral sentence; any
other label is kept as it is), ``position`` is the 0-based index of the word among
the plain words of the reference (entity tags and a leading sentiment label
do not count), ``word`` its right spelling and ``alternative`` the other one.
``cue_seen`` (optional: ``yes``/``part``/``no``/``-``) says what of the
deciding sentence's topic words occur in training: both, one, neither.

An **entity item** decides an entity's type instead of a spelling: its
``word`` and ``alternative`` are both entity labels, a type of
:data:`~espnet_gcft.scoring.slu.NER_TYPES` or ``O`` (no entity), e.g.
``<utt> P 3 PERSON PLACE yes`` or ``<utt> P 3 O ORG no``, and ``position``
is the plain-word index of the entity's first word. Its alternative reference
(:func:`swap_word`) is the same text with the other tag before the entity,
or with the ``TYPE FILL ... SEP`` wrapping removed (alternative ``O``) or
added around the one word at ``position`` (word ``O``). Entity labels are
reserved: an item with one entity label and one word is an error.

Two measures read it:

- the **forced choice** (:func:`forced_choice_outcomes`): the model scores the
  reference with the right spelling (type) against the same reference with
  the alternative (CTC log-likelihoods written by ``gcft_inference
  --homophones``); an item is right when the right one scores strictly
  higher. Reported as ``homophone_acc_<type>``, and as
  ``entity_type_acc_<type>`` for entity items (:func:`item_groups`);
- the **decoded spelling** (:func:`decoded_spellings`): the hypothesis word
  aligned to the item's position is the right spelling, the alternative, or
  something else (including nothing). Entity items are left out: both of
  their references have the same words, so a decoded word tells nothing about
  the type (the decoded types are what the NER F1 scores measure).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from espnet_gcft.fileio import read_table
from espnet_gcft.scoring.slu import FILL, NER_TYPES, SENTIMENTS, SEP
from espnet_gcft.scoring.stats import wilson_interval
from espnet_gcft.scoring.trn import ScoringError

PathLike = Union[str, Path]
ITEM_TYPES = ("P", "W", "C", "P2", "P3", "S")
# cue_seen -> the metric suffix of its items (what training saw of the deciding sentence)
CUE_SEEN = {"yes": "seen", "part": "part_seen", "no": "unseen"}
NO_ENTITY = "O"
ENTITY_LABELS = NER_TYPES + (NO_ENTITY,)


@dataclass(frozen=True)
class Item:
    """One context-decided word of one utterance."""

    utt: str
    kind: str
    position: int
    word: str
    alternative: str
    cue_seen: str = "-"

    @property
    def is_entity(self) -> bool:
        """An entity item: ``word`` and ``alternative`` are entity types (``O``: none)."""
        return self.word in ENTITY_LABELS and self.alternative in ENTITY_LABELS


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
        labels = [f for f in fields[3:5] if f in ENTITY_LABELS]
        if len(labels) == 1:
            raise ScoringError(f"{path}:{lineno}: utterance {utt}: {labels[0]!r} is an entity "
                               f"type but {(set(fields[3:5]) - set(labels)).pop()!r} is not: an "
                               f"entity item names two of {', '.join(ENTITY_LABELS)}")
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


def entity_spans(words: Sequence[str]) -> List[Tuple[int, str, int]]:
    """Per plain word of a target: its token index, its entity type (``O``: none) and
    the token index of its entity's type tag (-1 outside an entity)."""
    spans = []
    kind, opened = NO_ENTITY, -1
    for index in plain_word_indices(words):
        # the tags between the previous plain word and this one open or close entities
        start = spans[-1][0] + 1 if spans else 0
        for tag in range(start, index):
            if words[tag] in NER_TYPES and tag + 1 < index and words[tag + 1] == FILL:
                kind, opened = words[tag], tag
            elif words[tag] == SEP:
                kind, opened = NO_ENTITY, -1
        spans.append((index, kind, opened))
    return spans


def _entity(label: str, starts: bool = True) -> str:
    if label == NO_ENTITY:
        return "no entity"
    return f"the {'start' if starts else 'inside'} of an entity of type {label}"


def swap_entity_type(text: str, item: Item) -> str:
    """``text`` with the entity at the item's position given the alternative type.

    The tag before the entity is replaced; with alternative ``O`` the
    ``TYPE FILL`` before the entity and the ``SEP`` after it are removed; with
    word ``O`` the one word at the position is wrapped in ``TYPE FILL ... SEP``.

    Raises:
        ScoringError: the reference has no entity of the item's type starting
            at its position (or, for ``O``, the word there is inside an entity).
    """
    words = text.split()
    spans = entity_spans(words)
    if item.position >= len(spans):
        raise ScoringError(f"utterance {item.utt}: expected {_entity(item.word)} at word "
                           f"{item.position} of {text!r}, which has {len(spans)} words")
    index, kind, opened = spans[item.position]
    starts = kind == NO_ENTITY or opened == index - 2
    if kind != item.word or not starts:
        raise ScoringError(f"utterance {item.utt}: expected {_entity(item.word)} at word "
                           f"{item.position} of {text!r}, found {_entity(kind, starts)}")
    if item.word == NO_ENTITY:
        words[index:index + 1] = [item.alternative, FILL, words[index], SEP]
    elif item.alternative == NO_ENTITY:
        close = next((j for j in range(index, len(words)) if words[j] == SEP), None)
        if close is None:
            raise ScoringError(f"utterance {item.utt}: the {kind} entity at word "
                               f"{item.position} of {text!r} is not closed by {SEP}")
        del words[close]
        del words[opened:index]
    else:
        words[opened] = item.alternative
    return " ".join(words)


def swap_word(text: str, item: Item) -> str:
    """``text`` with the item's word replaced by its alternative spelling
    (for an entity item, its entity given the alternative type: :func:`swap_entity_type`).

    Raises:
        ScoringError: the word at the item's position is not the item's word.
    """
    if item.is_entity:
        return swap_entity_type(text, item)
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
    """Forced-choice metric -> utterances: ``homophone_acc_<type>`` per item type,
    ``entity_type_acc_<type>`` for entity items, each also by cue_seen
    (``..._<type>_seen_cue`` / ``_part_seen_cue`` / ``_unseen_cue``)."""
    groups: Dict[str, List[str]] = {}
    for utt, item in items.items():
        metric = "entity_type_acc" if item.is_entity else "homophone_acc"
        groups.setdefault(f"{metric}_{item.kind}", []).append(utt)
        if item.cue_seen in CUE_SEEN:
            name = f"{metric}_{item.kind}_{CUE_SEEN[item.cue_seen]}_cue"
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
    a deleted word is ``other``. Entity items are left out (both of their
    references have the same words).
    """
    by_utt = {}
    for trn_id, ref, hyp in pairs:
        by_utt[trn_id] = (ref, hyp)
        for index, char in enumerate(trn_id):
            if char == "-":
                by_utt.setdefault(trn_id[index + 1:], (ref, hyp))
    spellings = {}
    for utt, item in items.items():
        if utt not in by_utt or item.is_entity:
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
