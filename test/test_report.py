"""Context informativeness report: known answers on constructed data."""

import json

import numpy as np
import pytest

from espnet_gcft.context.report import (
    ReportError,
    SourceInput,
    report_source,
    sessions_of,
    shuffled_partners,
)
from gcft_helpers import run_cli

# 6 sessions x 4 utterances; each utterance has its own random direction.
SESSIONS, LENGTH, DIM = 6, 4, 16


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(1)
    utt2prev, current = {}, {}
    for s in range(SESSIONS):
        for i in range(LENGTH):
            utt = f"s{s}-{i}"
            utt2prev[utt] = f"s{s}-{i - 1}" if i else "-"
            current[utt] = rng.standard_normal(DIM)
    previous = {u: (current[p] if p != "-" else None) for u, p in utt2prev.items()}
    return utt2prev, current, previous


def test_identical_context_is_perfect(toy):
    utt2prev, current, previous = toy
    row = report_source(SourceInput("oracle", dict(current)), current, previous, utt2prev,
                        bootstrap=200)
    assert row["sim_current"] == pytest.approx(1.0)
    assert row["top1"] == 1.0 and row["mrr"] == 1.0
    assert row["lift"] > 0.5
    low, high = row["lift_ci95"]
    assert low <= row["lift"] <= high
    assert row["n"] == SESSIONS * (LENGTH - 1) and row["n_empty"] == 0


def test_random_context_has_no_lift(toy):
    utt2prev, current, previous = toy
    rng = np.random.default_rng(7)
    utts = list(current)
    copied = {u: current[utts[rng.integers(len(utts))]] for u in utts}
    row = report_source(SourceInput("random", copied), current, previous, utt2prev, bootstrap=200)
    assert abs(row["lift"]) < 0.2
    assert row["lift_ci95"][0] < 0 < row["lift_ci95"][1] or abs(row["lift"]) < 0.1


def test_previous_text_echo_is_one(toy):
    utt2prev, current, previous = toy
    row = report_source(SourceInput("prev_gt", dict(previous)), current, previous, utt2prev,
                        bootstrap=100)
    assert row["echo"] == pytest.approx(1.0)


def test_empty_contexts_are_counted_not_averaged(toy):
    utt2prev, current, previous = toy
    vectors = dict(current)
    for utt in ("s0-1", "s1-2", "s2-3"):
        vectors[utt] = None
    row = report_source(SourceInput("holes", vectors), current, previous, utt2prev, bootstrap=100)
    assert row["n_empty"] == 3 and row["n"] == SESSIONS * (LENGTH - 1) - 3
    assert row["sim_current"] == pytest.approx(1.0)


def test_shuffled_pairing_never_uses_the_own_session(toy):
    utt2prev, _, _ = toy
    session = sessions_of(utt2prev)
    assert session["s3-2"] == "s3-0" and session["s3-0"] == "s3-0"
    utts = list(utt2prev)
    partners = shuffled_partners(utts, session, np.random.default_rng(0), count=9)
    for utt, others in zip(utts, partners):
        assert len(set(others)) == 9
        assert all(session[utts[i]] != session[utt] for i in others)


def test_small_sets_shrink_the_candidates_or_drop_the_retrieval(toy, caplog):
    utt2prev, current, previous = toy
    # two sessions of 4: 3 usable utterances each (the first has no previous one)
    small = {u: p for u, p in utt2prev.items() if u[:2] in ("s0", "s1")}
    row = report_source(SourceInput("oracle", dict(current)), current, previous, small,
                        bootstrap=50)
    assert row["num_candidates"] == 4 and row["top1"] == 1.0
    assert "4 retrieval candidates instead of 10" in caplog.text
    one_session = {u: p for u, p in utt2prev.items() if u.startswith("s2")}
    row = report_source(SourceInput("oracle", dict(current)), current, previous, one_session,
                        bootstrap=50)
    assert row["sim_current"] == pytest.approx(1.0) and row["echo"] is not None
    assert row["num_candidates"] is None and row["lift"] is None and row["mrr"] is None


def test_missing_ids_are_named(toy):
    utt2prev, current, previous = toy
    vectors = {u: v for u, v in current.items() if u not in ("s4-1", "s5-3")}
    with pytest.raises(ReportError, match=r"source partial has no entry for 2 utterance\(s\): s4-1, s5-3"):
        report_source(SourceInput("partial", vectors), current, previous, utt2prev)


def test_cli_on_text_with_the_real_encoder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    sessions = {
        "a": ["the fishermen sailed out at dawn", "their nets came back full of cod",
              "the harbour market sold the fish by noon"],
        "b": ["the orchestra tuned their violins", "the conductor raised his baton",
              "the symphony filled the concert hall"],
        "c": ["the farmer ploughed the wet field", "he planted wheat in long rows",
              "rain helped the young crop grow"],
    }
    text, utt2prev, same, other = [], [], [], []
    keys = list(sessions)
    for s, lines in sessions.items():
        for i, line in enumerate(lines):
            utt = f"{s}-{i}"
            text.append(f"{utt} {line}")
            utt2prev.append(f"{utt} {f'{s}-{i - 1}' if i else '-'}")
            same.append(f"{utt} {line}")
            wrong = sessions[keys[(keys.index(s) + 1) % 3]][i]
            other.append(f"{utt} {wrong}" if i != 1 else utt)  # one empty context per session
    (data / "text").write_text("\n".join(text) + "\n")
    (data / "utt2prev").write_text("\n".join(utt2prev) + "\n")
    for name, lines in (("oracle", same), ("wrong", other)):
        (tmp_path / "ctx" / name).mkdir(parents=True)
        (tmp_path / "ctx" / name / "text").write_text("\n".join(lines) + "\n")
    run_cli("espnet_gcft.bin.context_report", "--data_dir", data, "--context_dir", tmp_path / "ctx",
            "--num_candidates", "3", "--bootstrap", "100", "--out", tmp_path / "out")
    rows = {r["source"]: r for r in json.loads((tmp_path / "out" / "report.json").read_text())["sources"]}
    assert rows["oracle"]["sim_current"] == pytest.approx(1.0, abs=1e-5)
    assert rows["oracle"]["top1"] == 1.0
    assert rows["wrong"]["n_empty"] == 3 and rows["wrong"]["n"] == 3
    assert rows["wrong"]["lift"] < rows["oracle"]["lift"]
    table = (tmp_path / "out" / "report.md").read_text()
    assert "| oracle | 6 | 0 |" in table and "| wrong | 3 | 3 |" in table
