"""Score a hypothesis trn against a reference trn for one task."""

from collections import Counter
import logging
from pathlib import Path
from typing import Dict, List, Optional

from espnet_gcft.context.kaldi import read_table
from espnet_gcft.scoring.slu import ner_scores, sentiment_scores
from espnet_gcft.scoring.trn import PathLike, paired, read_trn
from espnet_gcft.scoring.wer import find_sclite, word_error_rate

logger = logging.getLogger(__name__)
TASKS = ("asr", "ner", "sentiment")


def character_error_rate(pairs) -> float:
    """CER in percent (spaces count as characters), case-insensitive."""
    import jiwer

    refs = [r.lower() for _, r, _ in pairs if r]
    hyps = [h.lower() for _, r, h in pairs if r]
    return round(100.0 * jiwer.cer(refs, hyps), 4) if refs else 0.0


def context_word_accuracy(pairs, context_words: Dict[str, List[str]]) -> Dict[str, float]:
    """Share (percent) of the listed context-dependent words that the hypothesis spells right.

    A listed word counts as right when the hypothesis of its utterance holds it
    (each occurrence in the hypothesis is used once). trn ids are
    ``<spk>-<utt>``, so an utterance id also matches a trn id ending in ``-<utt>``.
    """
    hyps = {}
    for trn_id, _, hyp in pairs:
        words = Counter(hyp.lower().split())
        hyps[trn_id] = words
        for index, char in enumerate(trn_id):
            if char == "-":
                hyps.setdefault(trn_id[index + 1:], words)
    right = total = 0
    for utt, words in context_words.items():
        if utt not in hyps:
            continue
        for word in words:
            total += 1
            if hyps[utt][word.lower()] > 0:
                hyps[utt][word.lower()] -= 1
                right += 1
    return {"context_word_acc": round(100.0 * right / total, 4) if total else 0.0,
            "n_context_words": total}


def read_context_words(path: PathLike) -> Dict[str, List[str]]:
    """``<utt> <word> [<word> ...]`` lines (utterances without words may be absent)."""
    return {fields[0]: fields[1:] for _, fields in read_table(path, min_fields=1)}


def score(
    task: str,
    ref_trn: PathLike,
    hyp_trn: PathLike,
    sclite: Optional[str] = None,
    use_sclite: bool = True,
    result_txt: Optional[Path] = None,
    context_words: Optional[PathLike] = None,
) -> Dict[str, float]:
    """All figures of ``task`` as a dict (see the ``score`` CLI).

    Args:
        task: ``asr`` | ``ner`` | ``sentiment``.
        ref_trn, hyp_trn: trn files with the same utterance ids.
        sclite: sclite path (default: found on PATH or in Debian's location).
        use_sclite: False to use jiwer even when sclite is installed.
        result_txt: where to keep sclite's full report.
        context_words: ``<utt> <word>...`` file of context-dependent words;
            adds ``context_word_acc`` and ``n_context_words``.
    """
    if task not in TASKS:
        raise ValueError(f"--task must be one of {TASKS}, got {task!r}")
    pairs = paired(read_trn(ref_trn), read_trn(hyp_trn), str(ref_trn), str(hyp_trn))
    scores: Dict[str, float] = {"n_utterances": len(pairs)}
    if task == "ner":
        extra, pairs = ner_scores(pairs, str(ref_trn), str(hyp_trn))
        scores.update(extra)
    elif task == "sentiment":
        extra, pairs = sentiment_scores(pairs, str(ref_trn), str(hyp_trn))
        scores.update(extra)
    sclite_path = find_sclite(sclite) if use_sclite else None
    if use_sclite and sclite_path is None:
        logger.warning("sclite not found (tools/install_sctk.sh installs it): WER from jiwer")
    scores.update(word_error_rate(pairs, sclite_path, result_txt))
    scores["cer"] = character_error_rate(pairs)
    if context_words is not None:
        scores.update(context_word_accuracy(pairs, read_context_words(context_words)))
    return scores
