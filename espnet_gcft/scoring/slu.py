"""Spoken language understanding scores: SLUE NER F1 and sentiment F1.

NER targets carry entities inline as ``TYPE FILL <phrase words> SEP`` (as in
ESPnet's SLUE-VoxPopuli recipe); sentiment targets start with the label.
"""

from collections import Counter
from typing import Dict, List, Sequence, Tuple

import numpy as np

from espnet_gcft.scoring.trn import ScoringError

NER_TYPES = ("PLACE", "QUANT", "ORG", "WHEN", "NORP", "PERSON", "LAW")
SENTIMENTS = ("Negative", "Neutral", "Positive")
FILL, SEP = "FILL", "SEP"

Entity = Tuple[str, str]  # (type, phrase)


def parse_ner(text: str, utt: str, where: str) -> Tuple[str, List[Entity]]:
    """Split a tagged text into the plain words and its ``(type, phrase)`` entities.

    Raises:
        ScoringError: an unclosed, nested or empty entity, or a stray FILL/SEP,
            naming the utterance.
    """
    words, entities = [], []
    tokens = text.split()
    index, current_type, phrase = 0, None, []
    while index < len(tokens):
        token = tokens[index]
        if token in NER_TYPES and index + 1 < len(tokens) and tokens[index + 1] == FILL:
            if current_type is not None:
                raise ScoringError(f"{where}: utterance ({utt}): entity {token} opens inside {current_type}")
            current_type, phrase = token, []
            index += 2
            continue
        if token == SEP:
            if current_type is None:
                raise ScoringError(f"{where}: utterance ({utt}): SEP without an open entity")
            if not phrase:
                raise ScoringError(f"{where}: utterance ({utt}): empty {current_type} entity")
            entities.append((current_type, " ".join(phrase)))
            current_type = None
        elif token == FILL:
            raise ScoringError(f"{where}: utterance ({utt}): FILL without an entity type before it")
        else:
            words.append(token)
            if current_type is not None:
                phrase.append(token)
        index += 1
    if current_type is not None:
        raise ScoringError(f"{where}: utterance ({utt}): {current_type} entity is not closed by SEP")
    return " ".join(words), entities


def parse_ner_hypothesis(text: str) -> Tuple[str, List[Entity], int]:
    """Plain words, ``(type, phrase)`` entities and the number of illegal tags of a hypothesis.

    Lenient, as ESPnet's SLUE-VoxPopuli scoring reads hypotheses (without its
    crash on a missing ``FILL``): an entity-type word opens an entity,
    dropping one already open; ``SEP`` closes the open entity, whose phrase is
    the words since its type word less the first ``FILL``. A ``SEP`` with no
    open entity, an entity whose phrase is empty, an entity still open at the
    end and a ``FILL`` outside an entity are ignored; each dropped or ignored
    tag counts once in the returned number.
    """
    words, entities = [], []
    illegal = 0
    current_type, phrase, fill_seen = None, [], False
    for token in text.split():
        if token in NER_TYPES:
            if current_type is not None:
                illegal += 1
            current_type, phrase, fill_seen = token, [], False
        elif token == SEP:
            if current_type is None or not phrase:
                illegal += 1
            else:
                entities.append((current_type, " ".join(phrase)))
            current_type = None
        elif token == FILL:
            if current_type is None:
                illegal += 1
            elif fill_seen:
                phrase.append(token)
            fill_seen = fill_seen or current_type is not None
        else:
            words.append(token)
            if current_type is not None:
                phrase.append(token)
    if current_type is not None:
        illegal += 1
    return " ".join(words), entities, illegal


def _f1(tp: int, n_hyp: int, n_ref: int) -> float:
    if n_hyp == 0 and n_ref == 0:
        return 1.0
    return 2.0 * tp / (n_hyp + n_ref) if (n_hyp + n_ref) else 0.0


def entity_counts(refs: Sequence[List[Entity]], hyps: Sequence[List[Entity]]) -> np.ndarray:
    """Per utterance and entity type: ``(true positives, hypothesis count, reference count)``.

    Shape ``(utterances, 3, types)``, types in :func:`entity_types` order. Pairs
    are matched per utterance as multisets (a repeated pair counts once per
    occurrence), so the counts of a set of utterances are the sums of their rows:
    a bootstrap resample's F1 is a sum and a division, not a rescoring.
    """
    kinds = entity_types(refs, hyps)
    column = {kind: i for i, kind in enumerate(kinds)}
    counts = np.zeros((len(refs), 3, len(kinds)), dtype=np.int64)
    for row, (ref, hyp) in enumerate(zip(refs, hyps)):
        ref_counts, hyp_counts = Counter(ref), Counter(hyp)
        for (kind, _), count in (ref_counts & hyp_counts).items():
            counts[row, 0, column[kind]] += count
        for (kind, _), count in hyp_counts.items():
            counts[row, 1, column[kind]] += count
        for (kind, _), count in ref_counts.items():
            counts[row, 2, column[kind]] += count
    return counts


def entity_types(refs: Sequence[List[Entity]], hyps: Sequence[List[Entity]]) -> List[str]:
    return sorted({kind for entities in list(refs) + list(hyps) for kind, _ in entities})


def f1_from_counts(totals: np.ndarray) -> Dict[str, float]:
    """Micro and macro F1 (percent) from summed ``(tp, hyp, ref)`` counts per type.

    The macro average runs over the types that occur in the references or the
    hypotheses of these utterances; none at all scores 100 (nothing to find,
    nothing found).
    """
    tp, n_hyp, n_ref = (totals[i] for i in range(3))
    present = (n_hyp + n_ref) > 0
    micro = _f1(int(tp.sum()), int(n_hyp.sum()), int(n_ref.sum()))
    if present.any():
        macro = float(np.mean(2.0 * tp[present] / (n_hyp[present] + n_ref[present])))
    else:
        macro = 1.0
    return {"f1_micro": round(100 * micro, 4), "f1_macro": round(100 * macro, 4)}


def entity_f1(refs: Sequence[List[Entity]], hyps: Sequence[List[Entity]]) -> Dict[str, float]:
    """SLUE F1 over ``(type, phrase)`` pairs, micro and macro over types, in percent."""
    return f1_from_counts(entity_counts(refs, hyps).sum(axis=0))


def label_entities(entities: Sequence[List[Entity]]) -> List[List[Entity]]:
    """The entities with their phrases blanked: what label F1 matches."""
    return [[(kind, "") for kind, _ in utterance] for utterance in entities]


def parse_ner_pairs(pairs: List[Tuple[str, str, str]], ref_name: str):
    """Plain pairs, per-utterance reference and hypothesis entities, and the illegal tag count.

    References are parsed strictly (:func:`parse_ner`), hypotheses leniently
    (:func:`parse_ner_hypothesis`).
    """
    plain, ref_entities, hyp_entities = [], [], []
    illegal = 0
    for utt, ref, hyp in pairs:
        ref_words, ref_ents = parse_ner(ref, utt, ref_name)
        hyp_words, hyp_ents, hyp_illegal = parse_ner_hypothesis(hyp)
        illegal += hyp_illegal
        plain.append((utt, ref_words, hyp_words))
        ref_entities.append(ref_ents)
        hyp_entities.append(hyp_ents)
    return plain, ref_entities, hyp_entities, illegal


def ner_scores(ref_entities: Sequence[List[Entity]],
               hyp_entities: Sequence[List[Entity]]) -> Dict[str, float]:
    """Entity F1 (``f1_*``) and label F1 (``label_f1_*``), micro and macro, in percent."""
    scores = entity_f1(ref_entities, hyp_entities)
    labels = entity_f1(label_entities(ref_entities), label_entities(hyp_entities))
    scores.update(label_f1_micro=labels["f1_micro"], label_f1_macro=labels["f1_macro"])
    return scores


def split_sentiment(text: str, utt: str, where: str, allow_other: bool) -> Tuple[str, str]:
    """``(label, rest)``; a reference must start with one of ``SENTIMENTS``.

    With ``allow_other`` (hypotheses), a text whose first word is no label
    gives the label ``""`` (a wrong label) and keeps all its words as the rest.
    """
    words = text.split()
    if words and words[0] in SENTIMENTS:
        return words[0], " ".join(words[1:])
    if allow_other:
        return "", " ".join(words)
    if not words:
        raise ScoringError(f"{where}: utterance ({utt}) has no sentiment label")
    raise ScoringError(
        f"{where}: utterance ({utt}) starts with {words[0]!r}, not one of {', '.join(SENTIMENTS)}"
    )


def parse_sentiment_pairs(pairs: List[Tuple[str, str, str]], ref_name: str):
    """Plain pairs (labels removed), gold labels and predicted labels.

    A hypothesis may start with anything: one without a label gets the label
    ``""``, a wrong label, and keeps all its words for WER.
    """
    gold, pred, plain = [], [], []
    for utt, ref, hyp in pairs:
        ref_label, ref_rest = split_sentiment(ref, utt, ref_name, allow_other=False)
        hyp_label, hyp_rest = split_sentiment(hyp, utt, "", allow_other=True)
        gold.append(ref_label)
        pred.append(hyp_label)
        plain.append((utt, ref_rest, hyp_rest))
    return plain, gold, pred


def sentiment_macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Macro F1 (percent) over the sentiment labels present in gold or predicted labels."""
    labels = sorted((set(gold) | set(pred)) & set(SENTIMENTS))
    f1s = []
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred))
        f1s.append(_f1(tp, list(pred).count(label), list(gold).count(label)))
    return round(100 * sum(f1s) / len(f1s), 4) if f1s else 0.0
