"""Stage 8 on hand-made decodes: records, intervals, paired tests, and what the run used."""

import json

import pytest

from espnet_gcft.scoring.score import score
from espnet_gcft.scoring.stats import mcnemar_exact
from espnet_gcft.scoring.trn import write_trn
from gcft_helpers import run_cli

# 40 P items; the baseline is right on 20, inject_gt on 36 (16 more, none fewer)
ITEMS = 40


def _decode(out, refs, hyps, right):
    out.mkdir(parents=True)
    write_trn(out / "ref.trn", [(u, "spk", t) for u, t in refs])
    write_trn(out / "hyp.trn", [(u, "spk", t) for u, t in hyps])
    (out / "forced_choice").write_text(
        "".join(f"{u} {-1.0 if ok else -3.0} -2.0\n" for (u, _), ok in zip(refs, right)))


@pytest.fixture
def run_dirs(tmp_path):
    refs = [(f"u{i:02d}", f"they talked about the {'knight' if i % 2 else 'night'}")
            for i in range(ITEMS)]
    raw = tmp_path / "dump" / "raw" / "test"
    raw.mkdir(parents=True)
    (raw / "homophones").write_text("".join(
        f"{u} P 4 {t.split()[-1]} {'night' if t.endswith('knight') else 'knight'} yes\n"
        for u, t in refs))
    exp = tmp_path / "exp"
    base_right = [i < 20 for i in range(ITEMS)]
    inject_right = [i < 36 for i in range(ITEMS)]
    for variant, right in (("baseline", base_right), ("inject_gt", inject_right)):
        hyps = [(u, t if ok else t.replace("knight", "xnight")) for (u, t), ok in zip(refs, right)]
        out = exp / variant / "decode_test"
        _decode(out, refs, hyps, right)
        scores = score("asr", out / "ref.trn", out / "hyp.trn", use_sclite=False,
                       homophones=raw / "homophones", forced_choice=out / "forced_choice")
        (out / "score.json").write_text(json.dumps(scores))
    # what a corpus run used: a 7B LLM and BERT, as the context files record them
    context = tmp_path / "dump" / "context" / "test"
    (context / "gen_title").mkdir(parents=True)
    (context / "gen_title" / "generation.jsonl").write_text(
        json.dumps({"utt": "u01", "model": "Qwen/Qwen2.5-7B-Instruct", "text": "x"}) + "\n")
    (context / "prev_gt").mkdir()
    for source in ("prev_gt", "gen_title"):
        (context / source / "meta.json").write_text(json.dumps(
            {"emb_cls": {"encoder": "bert-base-uncased", "pooling": "cls", "dim": 768}}))
    return tmp_path, base_right, inject_right


def test_records_carry_intervals_tests_and_the_models_the_run_used(run_dirs):
    root, base_right, inject_right = run_dirs
    run_cli("espnet_gcft.bin.make_results", "--exp_dir", root / "exp",
            "--variants", "baseline", "inject_gt", "--test_sets", "test",
            "--conditions", "gt", "shuffled", "--context_dir", root / "dump" / "context",
            "--pooling", "cls", "--seed", "3", "--command", "./run.sh --seed 3",
            "--out", root / "RESULTS.md", "--plot", root / "RESULTS.png")
    records = json.loads((root / "RESULTS.json").read_text())
    by = {(r["variant"], r["condition"], r["metric"]): r for r in records}
    inject = by[("inject_gt", "gt", "homophone_acc_P")]
    assert inject["value"] == pytest.approx(90.0) and inject["n"] == ITEMS
    assert inject["ci_low"] < 90.0 < inject["ci_high"]
    only_inject = sum(a and not b for a, b in zip(inject_right, base_right))
    assert inject["p_vs_baseline"] == pytest.approx(mcnemar_exact(only_inject, 0))
    assert "p_vs_baseline" not in by[("baseline", "gt", "homophone_acc_P")]
    assert 0 <= by[("inject_gt", "gt", "wer")]["p_vs_baseline"] < 0.05
    assert all(r["seed"] == 3 and r["command"] == "./run.sh --seed 3" for r in records)
    assert not any(r["condition"] == "shuffled" for r in records)  # not decoded: no record
    results = (root / "RESULTS.md").read_text()
    assert "LLM `Qwen/Qwen2.5-7B-Instruct`" in results
    assert "text encoder `bert-base-uncased` (cls)" in results
    assert "smollm2" not in results.lower() and "minilm" not in results.lower()
    assert "seed 3" in results and "![results](RESULTS.png)" in results
    assert (root / "RESULTS.png").stat().st_size > 0
