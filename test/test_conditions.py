"""Decode-time conditions (shuffled, opposite) and the diagnostics of what a context knew."""

import json

import numpy as np
import pytest

from espnet_gcft.fileio import read_text
from espnet_gcft.recipe.conditions import (
    ConditionError,
    degraded_pairing,
    opposite_pairing,
    sessions_of,
    shuffled_pairing,
)
from espnet_gcft.recipe.diagnostics import llm_diagnostics, student_diagnostics
from espnet_gcft.scoring.homophones import Item
from gcft_helpers import run_cli, write_contexts

# two sessions of three utterances, one of one
UTT2PREV = {"a0": "-", "a1": "a0", "a2": "a1", "b0": "-", "b1": "b0", "b2": "b1", "c0": "-"}
ITEMS = {"a1": Item("a1", "P", 3, "knight", "night"), "a2": Item("a2", "C", 3, "night", "knight"),
         "b1": Item("b1", "W", 3, "night", "knight"), "b2": Item("b2", "P", 3, "knight", "night")}


def test_sessions_follow_utt2prev():
    sessions = sessions_of(UTT2PREV)
    assert sessions["a2"] == sessions["a0"] == "a0" and sessions["b1"] == "b0"
    assert sessions["c0"] == "c0"


def test_shuffled_takes_another_sessions_context_and_keeps_first_utterances():
    pairing = shuffled_pairing(UTT2PREV, seed=3)
    sessions = sessions_of(UTT2PREV)
    for utt, donor in pairing.items():
        if UTT2PREV[utt] == "-":
            assert donor == utt
        else:
            assert sessions[donor] != sessions[utt] and UTT2PREV[donor] != "-"
    assert pairing == shuffled_pairing(UTT2PREV, seed=3)  # fixed by the seed
    with pytest.raises(ConditionError, match="two sessions"):
        shuffled_pairing({"a0": "-", "a1": "a0"})


def test_shuffled_donors_are_cues_of_other_sessions_and_replaced_draws_its_own():
    """With items, shuffled gives every utterance the context of a P or W item of another
    session: a cue, which carries a sense (not an opener or a C item's neutral sentence).
    replaced1 re-pairs every utterance too, but with its own draw."""
    sessions = sessions_of(UTT2PREV)
    for seed in range(5):
        pairing = shuffled_pairing(UTT2PREV, seed=seed, items=ITEMS)
        for utt, donor in pairing.items():
            if UTT2PREV[utt] != "-":
                assert ITEMS[donor].kind in ("P", "W") and sessions[donor] != sessions[utt], (utt, donor)
    draws = [(shuffled_pairing(UTT2PREV, seed=s, items=ITEMS), degraded_pairing(UTT2PREV, "replaced1", s))
             for s in range(5)]
    assert any(shuffled != replaced for shuffled, replaced in draws)


def test_opposite_gives_context_decided_items_the_other_senses_context():
    pairing = opposite_pairing(list(UTT2PREV), ITEMS, seed=0)
    assert pairing["a1"] == "b1" and pairing["b1"] in ("a1", "b2")
    assert pairing["b2"] == "b1"
    # a C item and the other utterances keep their own context
    assert pairing["a2"] == "a2" and pairing["a0"] == "a0"
    lonely = {"a1": Item("a1", "P", 3, "pear", "pair")}
    with pytest.raises(ConditionError, match="utterance a1: no P/W item spells 'pair'"):
        opposite_pairing(["a1"], lonely)


def test_opposite_takes_far_cues_from_their_own_type_and_entity_types_from_the_other():
    items = {"f1": Item("f1", "P2", 3, "knight", "night"), "f2": Item("f2", "P3", 3, "night", "knight"),
             "f3": Item("f3", "P2", 3, "night", "knight"), "p1": Item("p1", "P", 3, "night", "knight"),
             "p2": Item("p2", "W", 3, "knight", "night"),
             "e1": Item("e1", "P", 3, "PERSON", "PLACE"), "e2": Item("e2", "P", 3, "PLACE", "PERSON"),
             "e3": Item("e3", "P", 3, "O", "ORG")}
    paired = [u for u in items if u not in ("f2", "e3")]
    for seed in range(5):
        pairing = opposite_pairing(paired, items, seed=seed)
        # a P2 item's donor is a P2 item (its cue as far back), never the P3 or P item
        assert pairing["f1"] == "f3" and pairing["f3"] == "f1"
        # P and W items trade among themselves, as before
        assert pairing["p1"] == "p2" and pairing["p2"] == "p1"
        assert pairing["e1"] == "e2" and pairing["e2"] == "e1"
    with pytest.raises(ConditionError, match="utterance f2: no P3 item spells 'knight'"):
        opposite_pairing(["f2"], items)
    with pytest.raises(ConditionError, match="utterance e3: no P/W item spells 'ORG'"):
        opposite_pairing(["e3"], items)


def test_cli_writes_a_repaired_scp_into_the_same_ark(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "utt2prev").write_text("".join(f"{u} {p}\n" for u, p in UTT2PREV.items()))
    (data / "homophones").write_text("".join(
        f"{u} {i.kind} {i.position} {i.word} {i.alternative}\n" for u, i in ITEMS.items()))
    source = tmp_path / "prev_gt"
    contexts = {u: np.zeros((0, 2), np.float32) if p == "-" else
                np.full((1, 2), float(index), np.float32)
                for index, (u, p) in enumerate(UTT2PREV.items())}
    write_contexts(source / "emb_mean", contexts)
    (source / "text").write_text("".join(f"{u} cue of {u}\n" for u in UTT2PREV))
    out = tmp_path / "prev_gt_opposite"
    run_cli("espnet_gcft.bin.context_condition", "--condition", "opposite", "--data_dir", data,
            "--source_dir", source, "--scp_name", "emb_mean.scp", "--out_dir", out)
    import kaldiio

    repaired = dict(kaldiio.load_scp(str(out / "emb_mean.scp")))
    donors = dict(line.split() for line in (out / "map").read_text().splitlines())
    for utt in UTT2PREV:
        np.testing.assert_array_equal(repaired[utt], contexts[donors[utt]])
        assert read_text(out / "text")[utt] == f"cue of {donors[utt]}"
    assert donors["a1"] == "b1"
    proc = run_cli("espnet_gcft.bin.context_condition", "--condition", "opposite", "--data_dir",
                   tmp_path / "nowhere", "--source_dir", source, "--out_dir", out, check=False)
    assert proc.returncode == 1 and "context_condition: error:" in proc.stderr


def test_student_diagnostics_tell_a_sense_carrying_student_from_a_constant_one():
    knight, night = np.array([[1.0, 0.2]]), np.array([[0.2, 1.0]])
    teacher = {"a1": knight, "b1": night, "b2": knight, "a2": np.zeros((0, 2))}
    items = {u: i for u, i in ITEMS.items() if u != "a2"}
    good = {"a1": knight, "b1": night, "b2": knight}
    records = student_diagnostics(good, teacher, items)
    assert records["student_sense_acc_P"]["value"] == 100.0 and records["student_sense_acc_P"]["n"] == 2
    assert records["student_teacher_cos"]["value"] == pytest.approx(100.0)
    constant = {u: np.array([[1.0, 1.0]]) for u in good}
    records = student_diagnostics(constant, teacher, items)
    assert records["student_sense_acc_P"]["value"] + records["student_sense_acc_W"]["value"] < 200
    assert records["student_teacher_cos"]["n"] == 3  # a2 has no teacher


def test_llm_diagnostics_count_spellings_in_the_generated_context():
    generated = {"a1": "The Knight's Sword", "b1": "A quiet night (knight?)", "b2": "Castles"}
    records = llm_diagnostics(generated, ITEMS)
    # P/W items: a1 right, b1 right and alternative, b2 neither
    assert records["llm_has_right"]["value"] == pytest.approx(200 / 3, abs=1e-3)
    assert records["llm_has_alt"]["value"] == pytest.approx(100 / 3, abs=1e-3)
    assert json.loads(json.dumps(records))["llm_has_right"]["n"] == 3


def test_diagnostics_leave_entity_items_out():
    items = {"a1": Item("a1", "P", 3, "knight", "night"), "b1": Item("b1", "P", 3, "night", "knight"),
             "e1": Item("e1", "P", 3, "PERSON", "PLACE"), "e2": Item("e2", "P", 3, "PLACE", "PERSON")}
    generated = {"a1": "a knight", "b1": "dark", "e1": "a person", "e2": "a place"}
    assert llm_diagnostics(generated, items)["llm_has_right"]["n"] == 2
    vector = {u: np.array([[1.0, float(i)]]) for i, u in enumerate(items)}
    records = student_diagnostics(vector, vector, items)
    assert records["student_sense_acc_P"]["n"] == 2 and records["student_teacher_cos"]["n"] == 4


def test_probe_finds_a_linear_sense_and_not_noise(tmp_path):
    """The probe names the sense of test sentences whose pooled frames carry it linearly,
    and is near chance on frames that carry nothing."""
    from espnet_gcft.recipe.probe import probe_sense

    rng = np.random.default_rng(0)
    senses = ["knight", "night", "pear"]
    features = {}
    for name, count in (("train", 60), ("test", 30)):
        data = tmp_path / name
        data.mkdir()
        labels = {f"{name}{i:03d}": senses[i % 3] for i in range(count)}
        (data / "distill_topics").write_text("".join(f"{u} {s}\n" for u, s in labels.items()))
        for utt, sense in labels.items():
            frames = rng.normal(size=(5, 16))
            features[(name, utt)] = (frames, frames + 2.0 * np.eye(16)[senses.index(sense)])
    heard = probe_sense(lambda d, u: features[(d.name, u)][1], tmp_path / "train", tmp_path / "test")
    noise = probe_sense(lambda d, u: features[(d.name, u)][0], tmp_path / "train", tmp_path / "test")
    assert heard["probe_sense_acc"]["value"] == 100.0 and heard["probe_sense_acc"]["n"] == 30
    assert noise["probe_sense_acc"]["ci_low"] < 100 / 3 < noise["probe_sense_acc"]["ci_high"]


def test_student_gain_per_row_type():
    """student_gain: the cosine to the teacher above the training mean's, pooled and per
    row type; 0 for a student that predicts the mean (collapsed)."""
    mean = np.array([1.0, 1.0, 0.0])
    teacher = {"s1": np.array([[1.0, 1.0, 1.0]]), "s2": np.array([[1.0, 1.0, -1.0]]),
               "t1": np.array([[2.0, 2.0, 1.0]]), "o1": np.zeros((0, 3))}
    types = {"s1": "S", "s2": "S", "t1": "topic", "o1": "other"}
    perfect = {u: m if len(m) else mean[None] for u, m in teacher.items()}
    collapsed = {u: mean[None] for u in teacher}
    good = student_diagnostics(perfect, teacher, {}, mean, types)
    flat = student_diagnostics(collapsed, teacher, {}, mean, types)
    base = 100 * (1 - 2 / np.sqrt(2 * 3))  # 1 - cos(mean, [1, 1, +-1])
    assert good["student_gain_S"]["value"] == pytest.approx(base, abs=1e-3)
    assert good["student_gain"]["n"] == 3 and "student_gain_other" not in good  # no teacher
    assert "student_gain_topic" not in good  # one sentence: no interval
    assert flat["student_gain"]["value"] == pytest.approx(0.0, abs=1e-9)
