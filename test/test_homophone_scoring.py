"""Context-decided words, intervals and paired tests, lenient NER hypotheses: hand-computed cases."""

import json
from math import comb
import re

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


@pytest.mark.parametrize("text, item, swapped", [
    # the tag before the entity changes
    ("they talked about PERSON FILL washington SEP", Item("u", "P", 3, "PERSON", "PLACE"),
     "they talked about PLACE FILL washington SEP"),
    # an organisation becomes a plain word: the wrapping goes, a multi-word entity whole
    ("PERSON FILL anna SEP met ORG FILL apple inc SEP today", Item("u", "P", 2, "ORG", "O"),
     "PERSON FILL anna SEP met apple inc today"),
    # a plain word becomes an entity: the one word at the position is wrapped
    ("Neutral nobody forgot apple", Item("u", "P", 2, "O", "ORG"),
     "Neutral nobody forgot ORG FILL apple SEP"),
])
def test_swap_word_gives_an_entity_item_the_other_type(text, item, swapped):
    assert swap_word(text, item) == swapped


@pytest.mark.parametrize("text, item, message", [
    ("they talked about apple", Item("u", "P", 3, "ORG", "O"),
     "expected the start of an entity of type ORG at word 3 of 'they talked about apple', "
     "found no entity"),
    ("nobody forgot ORG FILL apple SEP", Item("u", "P", 2, "O", "ORG"),
     "expected no entity at word 2 of 'nobody forgot ORG FILL apple SEP', "
     "found the start of an entity of type ORG"),
    ("ORG FILL big apple SEP", Item("u", "P", 1, "ORG", "O"), "found the inside of an entity"),
    ("they talked about PLACE FILL georgia SEP", Item("u", "P", 3, "PERSON", "PLACE"),
     "found the start of an entity of type PLACE"),
    ("nobody forgot", Item("u", "P", 2, "O", "ORG"), "which has 2 words"),
])
def test_swap_word_refuses_an_entity_item_its_reference_does_not_hold(text, item, message):
    with pytest.raises(ScoringError, match=re.escape(message)):
        swap_word(text, item)


def test_read_homophones_names_bad_lines(tmp_path):
    path = tmp_path / "homophones"
    path.write_text("u1 P 3 knight night yes\nu2 W x pear pair\n")
    with pytest.raises(ScoringError, match="homophones:2: utterance u2"):
        read_homophones(path)
    path.write_text("u1 P 3 knight knight\n")
    with pytest.raises(ScoringError, match="alternative equals"):
        read_homophones(path)
    # an entity item names two entity types; O and O are the same type
    path.write_text("u1 P 3 PERSON PLACE yes\nu2 P 3 ORG apple no\n")
    with pytest.raises(ScoringError, match="homophones:2: utterance u2: 'ORG' is an entity type "
                                           "but 'apple' is not"):
        read_homophones(path)
    path.write_text("u1 P 3 O O\n")
    with pytest.raises(ScoringError, match="homophones:1: utterance u1: the alternative equals"):
        read_homophones(path)
    path.write_text("u1 P 3 PERSON PLACE yes\nu2 P2 4 knight night no\n")
    items = read_homophones(path)
    assert items["u1"].is_entity and not items["u2"].is_entity


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


def test_decoded_spellings_leave_entity_items_out():
    items = {"1": Item("1", "P", 3, "PERSON", "PLACE"), "2": Item("2", "P", 1, "pear", "pair")}
    pairs = [("spk-1", "they talked about washington", "they talked about washington"),
             ("spk-2", "a pear", "a pair")]
    assert decoded_spellings(items, pairs) == {"2": "alternative"}


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


def test_entity_items_are_scored_as_entity_type_acc(tmp_path):
    """NER targets with entity items, a homophone item and a plain utterance."""
    refs = [("e1", "they talked about PERSON FILL washington SEP"),
            ("e2", "nobody forgot apple"),
            ("e3", "we all heard about ORG FILL orange SEP"),
            ("e4", "they talked about PLACE FILL jordan SEP"),
            ("h1", "look at the knight"),
            ("x1", "PERSON FILL anna SEP went to PLACE FILL paris SEP")]
    hyps = [("e1", "they talked about PLACE FILL washington SEP"),
            ("e2", "nobody forgot apple"),
            ("e3", "we all heard about orange"),
            ("e4", "they talked about PLACE FILL jordan SEP"),
            ("h1", "look at the night"),
            ("x1", "PERSON FILL anna SEP went to PLACE FILL paris SEP")]
    ref, hyp = _trn(tmp_path / "ref.trn", refs), _trn(tmp_path / "hyp.trn", hyps)
    homophones = tmp_path / "homophones"
    homophones.write_text("e1 P 3 PERSON PLACE yes\ne2 P 2 O ORG no\ne3 P 4 ORG O no\n"
                          "e4 P 3 PLACE PERSON yes\nh1 P 3 knight night yes\n")
    forced = tmp_path / "forced_choice"
    # right wins for e1, e2 and h1; loses for e3 and e4
    forced.write_text("e1 -1.0 -2.0\ne2 -1.0 -4.0\ne3 -3.0 -1.0\ne4 -2.0 -2.0\nh1 -1.0 -2.0\n")
    scores = score("ner", ref, hyp, use_sclite=False, homophones=homophones, forced_choice=forced)
    assert scores["entity_type_acc_P"] == 50.0 and scores["intervals"]["entity_type_acc_P"]["n"] == 4
    assert scores["entity_type_acc_P_seen_cue"] == 50.0  # e1 right, e4 tied
    assert scores["entity_type_acc_P_unseen_cue"] == 50.0  # e2 right, e3 wrong
    # the homophone item keeps its own record; entity items are not in it
    assert scores["homophone_acc_P"] == 100.0 and scores["intervals"]["homophone_acc_P"]["n"] == 1
    # the decoded-spelling measure reads the homophone item only
    assert scores["n_context_words"] == 1 and scores["context_word_alt"] == 100.0
    # the decoded types are what SLUE F1 scores: 5 reference and 4 hypothesis
    # entities, 3 of them alike (e1's type and e3's tags are lost)
    assert scores["n_ref_entities"] == 5 and scores["n_hyp_entities"] == 4
    assert scores["label_f1_micro"] == pytest.approx(100 * 2 * 3 / (4 + 5), abs=1e-3)
