"""Context-decided words, intervals and paired tests, lenient NER hypotheses: hand-computed cases."""

import json
from math import comb

import pytest

from espnet_gcft.scoring.homophones import (
    Item,
    align,
    decoded_spellings,
    read_homophones,
    swap_word,
)
from espnet_gcft.scoring.score import score
from espnet_gcft.scoring.slu import parse_ner_hypothesis
from espnet_gcft.scoring.stats import (
    bootstrap_interval,
    error_rate,
    mcnemar_exact,
    paired_bootstrap,
    wilson_interval,
)
from espnet_gcft.scoring.trn import ScoringError, write_trn
from espnet_gcft.scoring.wer import find_sclite, matched_pairs_p
from gcft_helpers import run_cli

SCLITE = find_sclite()


def _trn(path, rows):
    write_trn(path, [(utt, "spk", words) for utt, words in rows])
    return path


def test_wilson_interval_known_values():
    # 0 of 8 (the old demo's figure): [0, 32.4]%
    low, high = wilson_interval(0, 8)
    assert low == 0.0 and high == pytest.approx(0.3244, abs=1e-4)
    low, high = wilson_interval(120, 240)
    assert (low, high) == (pytest.approx(0.4372, abs=1e-4), pytest.approx(0.5628, abs=1e-4))


def test_mcnemar_exact_is_the_two_sided_binomial_tail():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2 ** 10)
    assert mcnemar_exact(7, 3) == pytest.approx(2 * sum(comb(10, i) for i in range(4)) / 2 ** 10)
    assert mcnemar_exact(5, 5) == 1.0


def test_bootstrap_interval_holds_the_rate_and_the_paired_test_sees_a_gap():
    counts = [(1, 10)] * 50 + [(0, 10)] * 50  # WER 5%
    low, high = bootstrap_interval(len(counts), error_rate(counts))
    assert low < 0.05 < high and high - low < 0.05
    worse = [(3, 10)] * 100  # 30% on the same utterances
    assert paired_bootstrap(100, error_rate(counts), error_rate(worse)) < 0.01
    assert paired_bootstrap(100, error_rate(counts), error_rate(counts)) == 1.0


@pytest.mark.skipif(SCLITE is None, reason="sclite not installed (tools/install_sctk.sh)")
def test_sclite_matched_pairs_test(tmp_path):
    refs = [(f"u{i}", "the knight rode into the village") for i in range(40)]
    ref = _trn(tmp_path / "ref.trn", refs)
    good = _trn(tmp_path / "good.trn", refs)
    bad = _trn(tmp_path / "bad.trn", [(u, "the night rode to village" if i % 3 else
                                        "the night rode into the village")
                                       for i, (u, _) in enumerate(refs)])
    assert matched_pairs_p(SCLITE, ref, good, bad) < 0.001
    assert matched_pairs_p(SCLITE, ref, good, good) == pytest.approx(1.0)
    # the same difference on every segment: sc_stats reports Z = 0; it is certain
    same = _trn(tmp_path / "same.trn", [(u, "the night rode into the village") for u, _ in refs])
    assert matched_pairs_p(SCLITE, ref, good, same) == 0.0


def test_swap_word_counts_plain_words_only():
    item = Item("u", "P", 2, "knight", "night")
    assert swap_word("look at knight now", item) == "look at night now"
    # NER tags and a sentiment label are not words of the transcript
    assert swap_word("Neutral PERSON FILL anna SEP saw knight", Item("u", "P", 2, "knight", "night")) \
        == "Neutral PERSON FILL anna SEP saw night"
    with pytest.raises(ScoringError, match="expected 'knight' at word 2"):
        swap_word("look at the knight", item)


def test_read_homophones_names_bad_lines(tmp_path):
    path = tmp_path / "homophones"
    path.write_text("u1 P 3 knight night yes\nu2 W x pear pair\n")
    with pytest.raises(ScoringError, match="homophones:2: utterance u2"):
        read_homophones(path)
    path.write_text("u1 P 3 knight knight\n")
    with pytest.raises(ScoringError, match="alternative equals"):
        read_homophones(path)


def test_decoded_spelling_is_read_at_the_aligned_position():
    assert align("a b c".split(), "a c".split()) == [0, None, 1]
    items = {"1": Item("1", "P", 3, "knight", "night"), "2": Item("2", "P", 3, "knight", "night"),
             "3": Item("3", "W", 3, "pear", "pair"), "4": Item("4", "P", 1, "tale", "tail")}
    pairs = [
        # a deleted word before the homophone: still aligned to it
        ("spk-1", "they talked about knight", "they about knight"),
        ("spk-2", "they talked about knight", "they talked about night"),
        # the right word elsewhere in the hypothesis does not count
        ("spk-3", "look at the pear", "pear at the bear"),
        ("spk-4", "a tale", "a"),
    ]
    assert decoded_spellings(items, pairs) == {"1": "right", "2": "alternative", "3": "other",
                                               "4": "other"}


@pytest.fixture
def homophone_decode(tmp_path):
    refs = [("u1", "look at knight"), ("u2", "look at night"), ("u3", "look at pear"),
            ("u4", "the sail and boat"), ("u5", "nothing here")]
    hyps = [("u1", "look at knight"), ("u2", "look at knight"), ("u3", "look at pair"),
            ("u4", "the sail and boat"), ("u5", "nothing here")]
    (tmp_path / "homophones").write_text(
        "u1 P 2 knight night yes\nu2 P 2 night knight no\nu3 W 2 pear pair yes\n"
        "u4 C 1 sail sale -\n")
    # right wins for u1, u3 and u4; loses for u2
    (tmp_path / "forced_choice").write_text(
        "u1 -1.0 -5.0\nu2 -4.0 -2.0\nu3 -3.0 -3.5\nu4 -0.5 -9.0\n")
    return (_trn(tmp_path / "ref.trn", refs), _trn(tmp_path / "hyp.trn", hyps),
            tmp_path / "homophones", tmp_path / "forced_choice")


def test_forced_choice_accuracy_per_type_with_intervals(homophone_decode):
    ref, hyp, homophones, forced = homophone_decode
    scores = score("asr", ref, hyp, use_sclite=False, homophones=homophones, forced_choice=forced)
    assert scores["homophone_acc_P"] == pytest.approx(50.0)
    assert scores["homophone_acc_W"] == pytest.approx(100.0)
    assert scores["homophone_acc_C"] == pytest.approx(100.0)
    assert scores["homophone_acc_P_seen_cue"] == 100.0 and scores["homophone_acc_P_unseen_cue"] == 0.0
    low, high = wilson_interval(1, 2)
    assert scores["intervals"]["homophone_acc_P"] == {
        "ci_low": pytest.approx(100 * low, abs=1e-3), "ci_high": pytest.approx(100 * high, abs=1e-3),
        "n": 2}
    # decoded: u1 right, u2 alternative, u3 alternative, u4 right
    assert scores["context_word_acc"] == 50.0 and scores["context_word_alt"] == 50.0
    assert scores["context_word_other"] == 0.0 and scores["n_context_words"] == 4
    assert scores["intervals"]["wer"]["n"] == 5


def test_forced_choice_needs_every_item(homophone_decode, tmp_path):
    ref, hyp, homophones, _ = homophone_decode
    partial = tmp_path / "partial"
    partial.write_text("u1 -1.0 -5.0\n")
    with pytest.raises(ScoringError, match="no forced-choice score for 3 item"):
        score("asr", ref, hyp, use_sclite=False, homophones=homophones, forced_choice=partial)


def test_cli_scores_homophones(homophone_decode):
    ref, hyp, homophones, forced = homophone_decode
    proc = run_cli("espnet_gcft.bin.score", "--task", "asr", "--ref", ref, "--hyp", hyp,
                   "--no_sclite", "--homophones", homophones, "--forced_choice", forced)
    assert json.loads(proc.stdout)["homophone_acc_P"] == pytest.approx(50.0)


@pytest.mark.parametrize("text, words, entities, illegal", [
    ("PERSON FILL anna SEP met PLACE FILL paris SEP", "anna met paris",
     [("PERSON", "anna"), ("PLACE", "paris")], 0),
    # no FILL: the phrase is the words after the type word (ESPnet's score.py would crash)
    ("PERSON anna SEP went", "anna went", [("PERSON", "anna")], 0),
    # a type word opens an entity and drops the open one
    ("PERSON FILL anna PLACE FILL paris SEP", "anna paris", [("PLACE", "paris")], 1),
    # SEP with no open entity; SEP right after the type word; entity open at the end
    ("anna SEP met PLACE SEP ORG FILL un", "anna met un", [], 3),
    # a FILL outside an entity is ignored and counted
    ("FILL anna", "anna", [], 1),
])
def test_lenient_ner_hypothesis(text, words, entities, illegal):
    assert parse_ner_hypothesis(text) == (words, entities, illegal)


def test_ner_hypothesis_with_illegal_tags_is_scored_not_refused(tmp_path):
    ref = _trn(tmp_path / "ref.trn", [("u1", "PERSON FILL anna SEP met PLACE FILL paris SEP")])
    hyp = _trn(tmp_path / "hyp.trn", [("u1", "PERSON anna SEP met PLACE FILL paris")])
    scores = score("ner", ref, hyp, use_sclite=False)
    assert scores["n_illegal"] == 1  # the PLACE entity is still open at the end
    assert scores["f1_micro"] == pytest.approx(100 * 2 * 1 / (1 + 2))
    assert scores["wer"] == 0.0
    assert set(scores["intervals"]) >= {"f1_micro", "label_f1_micro", "wer", "cer"}
