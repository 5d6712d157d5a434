"""Scoring: hand-computed cases, sclite vs jiwer, and every error path."""

import json

import pytest

from espnet_gcft.scoring.score import score
from espnet_gcft.scoring.slu import entity_f1, parse_ner
from espnet_gcft.scoring.trn import ScoringError, read_trn, write_trn
from espnet_gcft.scoring.wer import find_sclite
from gcft_helpers import run_cli

SCLITE = find_sclite()
needs_sclite = pytest.mark.skipif(SCLITE is None, reason="sclite not installed (tools/install_sctk.sh)")


def _trn(path, rows):
    write_trn(path, [(utt, "spk", words) for utt, words in rows])
    return path


@pytest.fixture
def asr_files(tmp_path):
    ref = _trn(tmp_path / "ref.trn", [("u1", "a b c d"), ("u2", "e f"), ("u3", "the knight fell")])
    hyp = _trn(tmp_path / "hyp.trn", [("u1", "a x c"), ("u2", "e f g"), ("u3", "the night fell")])
    return ref, hyp


@pytest.mark.parametrize("use_sclite", [False, pytest.param(True, marks=needs_sclite)])
def test_asr_hand_computed(asr_files, use_sclite):
    # u1: 1 sub (b->x) + 1 del (d); u2: 1 ins (g); u3: 1 sub (knight->night); 9 words
    scores = score("asr", *asr_files, use_sclite=use_sclite)
    assert scores["n_ref_words"] == 9
    assert (scores["substitutions"], scores["deletions"], scores["insertions"]) == (2, 1, 1)
    assert scores["wer"] == pytest.approx(100 * 4 / 9, abs=1e-3)
    assert scores["engine"] == ("sclite" if use_sclite else "jiwer")


@needs_sclite
def test_sclite_and_jiwer_agree(tmp_path):
    ref = _trn(tmp_path / "r.trn", [("a", "one two three four five"), ("b", "six seven"),
                                    ("c", "eight nine ten"), ("d", "")])
    hyp = _trn(tmp_path / "h.trn", [("a", "one too three five five extra"), ("b", ""),
                                    ("c", "Eight nine ten"), ("d", "noise")])
    by_sclite = score("asr", ref, hyp, use_sclite=True, result_txt=tmp_path / "result.txt")
    by_jiwer = score("asr", ref, hyp, use_sclite=False)
    for key in ("wer", "n_ref_words", "substitutions", "deletions", "insertions"):
        assert by_sclite[key] == by_jiwer[key], key
    report = (tmp_path / "result.txt").read_text()
    assert "Sum/Avg" in report
    # the report is the same however often the decode is scored (no scratch dir names in it)
    assert "System name:   hyp.trn" in report
    score("asr", ref, hyp, use_sclite=True, result_txt=tmp_path / "again.txt")
    assert (tmp_path / "again.txt").read_text() == report


def test_ner_hand_computed(tmp_path):
    ref = _trn(tmp_path / "ref.trn", [
        ("u1", "PERSON FILL anna SEP met PERSON FILL anna SEP in PLACE FILL paris SEP"),
        ("u2", "the ORG FILL commission SEP agreed"),
    ])
    hyp = _trn(tmp_path / "hyp.trn", [
        ("u1", "PERSON FILL anna SEP met anna in PLACE FILL paris SEP"),
        ("u2", "the PLACE FILL commission SEP agreed WHEN FILL today SEP"),
    ])
    scores = score("ner", ref, hyp, use_sclite=False)
    # pairs: ref 4 (anna x2, paris, commission), hyp 4; tp = anna x1 + paris = 2
    assert scores["f1_micro"] == pytest.approx(100 * 2 * 2 / (4 + 4))
    # per type: PERSON 2*1/(1+2)=2/3, PLACE 2*1/(2+1)=2/3, ORG 0, WHEN 0 -> mean 1/3
    assert scores["f1_macro"] == pytest.approx(100 / 3, abs=1e-3)
    # labels only: PERSON 1 of 2, PLACE 1 (paris) of hyp 2 / ref 1 -> same as pairs here
    assert scores["label_f1_micro"] == pytest.approx(50.0)
    # text without tags: 5 + 3 reference words; u2 hyp inserts "today"
    assert scores["n_ref_words"] == 8 and scores["wer"] == pytest.approx(12.5)


def test_label_f1_ignores_phrases():
    refs = [[("PLACE", "paris"), ("ORG", "un")]]
    hyps = [[("PLACE", "pari"), ("ORG", "un")]]
    assert entity_f1(refs, hyps)["f1_micro"] == pytest.approx(50.0)
    labels = entity_f1([[(k, "") for k, _ in r] for r in refs], [[(k, "") for k, _ in h] for h in hyps])
    assert labels["f1_micro"] == pytest.approx(100.0)


def test_resampled_f1_is_the_f1_of_the_resampled_utterances(tmp_path):
    """The bootstrap's F1 of an index array (repeats included) equals scoring those
    utterances from scratch: the per-utterance counts are summed, not approximated."""
    import numpy as np

    from espnet_gcft.scoring.score import load_decode
    from espnet_gcft.scoring.slu import label_entities, ner_scores

    ref = _trn(tmp_path / "ref.trn", [
        ("u1", "PERSON FILL anna SEP met PERSON FILL anna SEP in PLACE FILL paris SEP"),
        ("u2", "the ORG FILL commission SEP agreed"),
        ("u3", "nothing here"),
        ("u4", "WHEN FILL today SEP in PLACE FILL rome SEP"),
    ])
    hyp = _trn(tmp_path / "hyp.trn", [
        ("u1", "PERSON FILL anna SEP met anna in PLACE FILL paris SEP"),
        ("u2", "the PLACE FILL commission SEP agreed WHEN FILL today SEP"),
        ("u3", "nothing here"),
        ("u4", "WHEN FILL today SEP in PLACE FILL roma SEP"),
    ])
    decode = load_decode("ner", ref, hyp)
    refs, hyps = [r for r, _ in decode.labels], [h for _, h in decode.labels]
    for index in ([0, 0, 3], [2, 2], [1, 3, 3, 0], [2]):
        direct = ner_scores([refs[i] for i in index], [hyps[i] for i in index])
        for metric in ("f1_micro", "f1_macro", "label_f1_micro", "label_f1_macro"):
            assert decode.f1_statistic(metric)(np.asarray(index)) == pytest.approx(direct[metric]), (index, metric)
    # an utterance without entities anywhere scores 100: nothing to find, nothing found
    assert decode.f1_statistic("f1_macro")(np.asarray([2, 2])) == 100.0
    assert label_entities([[("PLACE", "rome")]]) == [[("PLACE", "")]]


@pytest.mark.parametrize("text, message", [
    ("PLACE FILL paris", "not closed by SEP"),
    ("PLACE FILL ORG FILL x SEP SEP", "opens inside PLACE"),
    ("paris SEP", "SEP without an open entity"),
    ("FILL paris SEP", "FILL without an entity type"),
    ("PLACE FILL SEP", "empty PLACE entity"),
])
def test_malformed_tags_name_the_utterance(text, message):
    with pytest.raises(ScoringError, match=rf"\(u7\).*{message}"):
        parse_ner(text, "u7", "hyp.trn")


def test_sentiment_hand_computed(tmp_path):
    ref = _trn(tmp_path / "ref.trn", [("a", "Positive great talk"), ("b", "Negative bad"),
                                      ("c", "Neutral so so"), ("d", "Positive fine")])
    hyp = _trn(tmp_path / "hyp.trn", [("a", "Positive great talk"), ("b", "Neutral bad"),
                                      ("c", "Neutral so"), ("d", "fine")])
    scores = score("sentiment", ref, hyp, use_sclite=False)
    # Positive: tp1 hyp1 ref2 -> 2/3; Negative: 0; Neutral: tp1 hyp2 ref1 -> 2/3
    assert scores["macro_f1"] == pytest.approx(100 * (2 / 3 + 0 + 2 / 3) / 3, abs=1e-3)
    assert scores["accuracy"] == pytest.approx(50.0)
    # rest of the text: a 2/2, b 1/1, c "so so"->"so" 1 del; d has no label (a wrong
    # label) and keeps all its words: "fine"->"fine"; 6 words
    assert scores["wer"] == pytest.approx(100 * 1 / 6, abs=1e-3)


def test_sentiment_reference_needs_a_label(tmp_path):
    ref = _trn(tmp_path / "ref.trn", [("a", "great talk")])
    hyp = _trn(tmp_path / "hyp.trn", [("a", "Positive great talk")])
    with pytest.raises(ScoringError, match=r"\(spk-a\) starts with 'great'"):
        score("sentiment", ref, hyp, use_sclite=False)


def test_mismatched_ids_are_named(tmp_path):
    ref = _trn(tmp_path / "ref.trn", [("u1", "a"), ("u2", "b")])
    hyp = _trn(tmp_path / "hyp.trn", [("u1", "a"), ("u3", "b")])
    with pytest.raises(ScoringError, match=r"\(spk-u2\).*missing"):
        score("asr", ref, hyp, use_sclite=False)


def test_empty_and_malformed_files(tmp_path):
    (tmp_path / "empty.trn").write_text("\n")
    with pytest.raises(ScoringError, match="empty file"):
        read_trn(tmp_path / "empty.trn")
    (tmp_path / "bad.trn").write_text("a b c\n")
    with pytest.raises(ScoringError, match="bad.trn:1"):
        read_trn(tmp_path / "bad.trn")
    (tmp_path / "dup.trn").write_text("a (x-1)\nb (x-1)\n")
    with pytest.raises(ScoringError, match=r"dup.trn:2: utterance \(x-1\) appears twice"):
        read_trn(tmp_path / "dup.trn")


def test_cli_prints_one_json_object(asr_files, tmp_path):
    proc = run_cli("espnet_gcft.bin.score", "--task", "asr", "--ref", asr_files[0],
                   "--hyp", asr_files[1], "--no_sclite")
    scores = json.loads(proc.stdout)
    assert scores["wer"] == pytest.approx(100 * 4 / 9, abs=1e-3)
    bad = _trn(tmp_path / "bad.trn", [("zz", "a")])
    proc = run_cli("espnet_gcft.bin.score", "--task", "asr", "--ref", asr_files[0], "--hyp", bad,
                   check=False)
    assert proc.returncode == 1 and "score: error:" in proc.stderr and "Traceback" not in proc.stderr
