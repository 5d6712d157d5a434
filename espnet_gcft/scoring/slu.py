"""Spoken language understanding scores: SLUE NER F1 and sentiment F1.

NER targets carry entities inline as ``TYPE FILL <phrase words> SEP`` (as in
ESPnet's SLUE-VoxPopuli recipe); sentiment targets start with the label.
"""

from collections import Counter
from typing import Dict, List, Sequence, Tuple

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


def _f1(tp: int, n_hyp: int, n_ref: int) -> float:
    if n_hyp == 0 and n_ref == 0:
        return 1.0
    return 2.0 * tp / (n_hyp + n_ref) if (n_hyp + n_ref) else 0.0


def entity_f1(refs: Sequence[List[Entity]], hyps: Sequence[List[Entity]]) -> Dict[str, float]:
    """SLUE F1 over ``(type, phrase)`` pairs, micro and macro over types, in percent.

    Pairs are matched per utterance as multisets, so a repeated pair counts
    once per occurrence.
    """
    tp, n_ref, n_hyp = Counter(), Counter(), Counter()
    for ref, hyp in zip(refs, hyps):
        ref_counts, hyp_counts = Counter(ref), Counter(hyp)
        for (kind, _), count in ref_counts.items():
            n_ref[kind] += count
        for (kind, _), count in hyp_counts.items():
            n_hyp[kind] += count
        for pair, count in (ref_counts & hyp_counts).items():
            tp[pair[0]] += count
    kinds = sorted(set(n_ref) | set(n_hyp))
    micro = _f1(sum(tp.values()), sum(n_hyp.values()), sum(n_ref.values()))
    macro = sum(_f1(tp[k], n_hyp[k], n_ref[k]) for k in kinds) / len(kinds) if kinds else 1.0
    return {"f1_micro": round(100 * micro, 4), "f1_macro": round(100 * macro, 4)}


def ner_scores(pairs: List[Tuple[str, str, str]], ref_name: str, hyp_name: str):
    """``(scores, plain pairs)``: entity and label F1, and pairs with tags removed for WER."""
    plain, ref_entities, hyp_entities = [], [], []
    for utt, ref, hyp in pairs:
        ref_words, ref_ents = parse_ner(ref, utt, ref_name)
        hyp_words, hyp_ents = parse_ner(hyp, utt, hyp_name)
        plain.append((utt, ref_words, hyp_words))
        ref_entities.append(ref_ents)
        hyp_entities.append(hyp_ents)
    scores = entity_f1(ref_entities, hyp_entities)
    labels = entity_f1([[(k, "") for k, _ in r] for r in ref_entities],
                       [[(k, "") for k, _ in h] for h in hyp_entities])
    scores.update(label_f1_micro=labels["f1_micro"], label_f1_macro=labels["f1_macro"],
                  n_ref_entities=sum(map(len, ref_entities)),
                  n_hyp_entities=sum(map(len, hyp_entities)))
    return scores, plain


def split_sentiment(text: str, utt: str, where: str, allow_other: bool) -> Tuple[str, str]:
    """``(label, rest)``; a reference must start with one of ``SENTIMENTS``."""
    words = text.split()
    if not words:
        if allow_other:
            return "", ""
        raise ScoringError(f"{where}: utterance ({utt}) has no sentiment label")
    if words[0] not in SENTIMENTS and not allow_other:
        raise ScoringError(
            f"{where}: utterance ({utt}) starts with {words[0]!r}, not one of {', '.join(SENTIMENTS)}"
        )
    return words[0], " ".join(words[1:])


def sentiment_scores(pairs: List[Tuple[str, str, str]], ref_name: str, hyp_name: str):
    """``(scores, plain pairs)``: macro F1 and accuracy of the first word, and the rest for WER.

    A hypothesis may start with anything (a wrong label counts as an error);
    the macro F1 averages over the sentiment labels present in ref or hyp.
    """
    gold, pred, plain = [], [], []
    for utt, ref, hyp in pairs:
        ref_label, ref_rest = split_sentiment(ref, utt, ref_name, allow_other=False)
        hyp_label, hyp_rest = split_sentiment(hyp, utt, hyp_name, allow_other=True)
        gold.append(ref_label)
        pred.append(hyp_label)
        plain.append((utt, ref_rest, hyp_rest))
    labels = sorted((set(gold) | set(pred)) & set(SENTIMENTS))
    f1s = []
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred))
        f1s.append(_f1(tp, pred.count(label), gold.count(label)))
    accuracy = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    return {"macro_f1": round(100 * sum(f1s) / len(f1s), 4), "accuracy": round(100 * accuracy, 4)}, plain
