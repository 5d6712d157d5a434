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


def _scored_decode(root, variant, condition, right, refs):
    hyps = [(u, t if ok else t.replace("knight", "xnight")) for (u, t), ok in zip(refs, right)]
    suffix = "" if condition == "gt" else f"_{condition}"
    out = root / "exp" / variant / f"decode_test{suffix}"
    _decode(out, refs, hyps, right)
    scores = score("asr", out / "ref.trn", out / "hyp.trn", use_sclite=False,
                   homophones=root / "dump" / "raw" / "test" / "homophones",
                   forced_choice=out / "forced_choice")
    (out / "score.json").write_text(json.dumps(scores))


def test_degradation_table_and_tagged_variants_in_results(run_dirs):
    root, _, _ = run_dirs
    refs = [(f"u{i:02d}", f"they talked about the {'knight' if i % 2 else 'night'}")
            for i in range(ITEMS)]
    # inject_gt loses its advantage as more contexts are replaced; gcaf reads none
    for p, right_count in (("0.5", 28), ("1", 20)):
        _scored_decode(root, "inject_gt", f"replaced{p}", [i < right_count for i in range(ITEMS)], refs)
    _scored_decode(root, "gcaf", "gt", [i < 22 for i in range(ITEMS)], refs)
    _scored_decode(root, "inject_gt_rows_n2", "gt", [i < 30 for i in range(ITEMS)], refs)
    run_cli("espnet_gcft.bin.make_results", "--exp_dir", root / "exp",
            "--variants", "baseline", "inject_gt", "gcaf", "inject_gt_rows_n2", "--test_sets", "test",
            "--conditions", "gt", "replaced0.5", "replaced1", "--context_dir", root / "dump" / "context",
            "--pooling", "cls", "--out", root / "RESULTS.md")
    records = json.loads((root / "RESULTS.json").read_text())
    by = {(r["variant"], r["condition"], r["metric"]): r for r in records}
    assert by[("inject_gt", "replaced1", "homophone_acc_P")]["value"] == pytest.approx(50.0)
    assert by[("inject_gt_rows_n2", "gt", "homophone_acc_P")]["value"] == pytest.approx(75.0)
    assert "p_vs_baseline" in by[("inject_gt_rows_n2", "gt", "homophone_acc_P")]
    results = (root / "RESULTS.md").read_text()
    table = results.split("## Degraded context (test, replaced): homophone_acc_P (n=40)")[1]
    table = table.split("\n## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()
            if line.startswith("| inject_gt") or line.startswith("| gcaf")}
    assert "p=0 | p vs baseline | p=0.5 | p vs baseline | p=1 |" in table.splitlines()[2]
    cells = rows["inject_gt"].split(" | ")
    assert cells[1].startswith("90.0 [") and cells[3].startswith("70.0 [") and cells[5].startswith("50.0 [")
    gcaf = rows["gcaf (no context at inference: one decode)"].split(" | ")
    assert gcaf[1] == gcaf[3] == gcaf[5] and gcaf[1].startswith("55.0 [")
    # a tagged sweep point is costed as its variant
    assert "| inject_gt_rows_n2 |" in results.split("## Cost at inference")[1]
    assert "previous transcript + text encoder" in results.split("| inject_gt_rows_n2 |")[-1].splitlines()[0]


def test_sweep_results_gather_points_and_references(run_dirs):
    root, _, _ = run_dirs
    refs = [(f"u{i:02d}", f"they talked about the {'knight' if i % 2 else 'night'}")
            for i in range(ITEMS)]
    sweep = root / "exp" / "sweep"
    for tag, right_count in (("dw0.1", 24), ("dw1.0", 30)):
        _scored_decode(root, f"gcaf_{tag}", "gt", [i < right_count for i in range(ITEMS)], refs)
        run_cli("espnet_gcft.bin.make_results", "--exp_dir", root / "exp",
                "--variants", "baseline", f"gcaf_{tag}", "--test_sets", "test",
                "--context_dir", root / "dump" / "context", "--out", sweep / tag / "RESULTS.md")
    _scored_decode(root, "gcaf", "gt", [i < 22 for i in range(ITEMS)], refs)
    run_cli("espnet_gcft.bin.make_sweep_results", "--exp_dir", root / "exp", "--sweep_dir", sweep,
            "--raw_dir", root / "dump" / "raw", "--variants", "gcaf",
            "--point", "dw1.0", "distill_weight=1.0", "--point", "dw0.1", "distill_weight=0.1",
            "--reference", "gcaf", "distill_weight=0.3", "--out", root / "RESULTS_sweep.md",
            "--plot", root / "RESULTS_sweep.png")
    records = json.loads((root / "RESULTS_sweep.json").read_text())
    acc = {r["settings"]["distill_weight"]: r for r in records if r["metric"] == "homophone_acc_P"}
    assert {k: v["value"] for k, v in acc.items()} == {"0.1": 60.0, "0.3": 55.0, "1.0": 75.0}
    assert acc["0.3"]["point"] == "gcaf" and acc["1.0"]["variant"] == "gcaf_dw1.0"
    assert all("p_vs_baseline" in r and "ci_low" in r for r in acc.values())
    table = (root / "RESULTS_sweep.md").read_text().split("## gcaf on test")[1]
    order = [line.split(" | ")[0].strip("| ") for line in table.splitlines()
             if line.startswith("| 0") or line.startswith("| 1")]
    assert order == ["0.1", "0.3", "1.0"]  # rows sorted by the swept value
    assert (root / "RESULTS_sweep.png").stat().st_size > 0
    missing = run_cli("espnet_gcft.bin.make_sweep_results", "--exp_dir", root / "exp", "--sweep_dir",
                      sweep, "--variants", "gcaf", "--point", "dw9", "distill_weight=9",
                      "--out", root / "bad.md", check=False)
    assert missing.returncode != 0 and "sweep point dw9" in missing.stderr
    assert not (root / "bad.md").exists()


def _items_run(root, task, dset, refs, items, base_right, inject_right):
    """Scored baseline and inject_gt decodes of one set with the given items."""
    raw = root / "dump" / "raw" / dset
    raw.mkdir(parents=True)
    (raw / "homophones").write_text("".join(f"{u} {line}\n" for u, line in items))
    for variant, right in (("baseline", base_right), ("inject_gt", inject_right)):
        out = root / "exp" / variant / f"decode_{dset}"
        _decode(out, refs, refs, right)
        scores = score(task, out / "ref.trn", out / "hyp.trn", use_sclite=False,
                       homophones=raw / "homophones", forced_choice=out / "forced_choice")
        (out / "score.json").write_text(json.dumps(scores))
    (root / "dump" / "context").mkdir(exist_ok=True)
    run_cli("espnet_gcft.bin.make_results", "--exp_dir", root / "exp", "--variants", "baseline",
            "inject_gt", "--test_sets", dset, "--task", task,
            "--context_dir", root / "dump" / "context", "--out", root / "RESULTS.md")
    records = json.loads((root / "RESULTS.json").read_text())
    return {(r["variant"], r["metric"]): r for r in records}, (root / "RESULTS.md").read_text()


def test_far_cue_and_entity_type_records(tmp_path):
    # test_far: 20 P2 items (baseline right on 10, inject_gt on 18) and 12 P3 items
    refs = [(f"f{i:02d}", f"nobody forgot the {'knight' if i % 2 else 'night'}") for i in range(32)]
    items = [(u, f"{'P2' if i < 20 else 'P3'} 3 {t.split()[-1]} "
                 f"{'night' if t.endswith('knight') else 'knight'} {'yes' if i % 4 < 2 else 'no'}")
             for i, (u, t) in enumerate(refs)]
    base = [i % 2 == 0 for i in range(32)]
    inject = [i < 18 or (i >= 20 and i % 2 == 0) for i in range(32)]
    by, results = _items_run(tmp_path / "far", "asr", "test_far", refs, items, base, inject)
    p2 = by[("inject_gt", "homophone_acc_P2")]
    assert p2["value"] == pytest.approx(90.0) and p2["n"] == 20 and p2["ci_low"] < 90 < p2["ci_high"]
    # inject_gt right on 9 P2 items the baseline is wrong on, wrong on 1 it is right on
    assert p2["p_vs_baseline"] == pytest.approx(mcnemar_exact(9, 1))
    assert by[("inject_gt", "homophone_acc_P3")]["n"] == 12
    assert by[("inject_gt", "homophone_acc_P3")]["p_vs_baseline"] == 1.0
    assert by[("baseline", "homophone_acc_P2_seen_cue")]["n"] == 10
    assert "homophone_acc_P2 (n=20)" in results and "homophone_acc_P3 (n=12)" in results

    # test_ner: 24 entity items (right types alternate) and a homophone item
    names = ["washington", "jordan", "apple"]
    refs = []
    items = []
    for i in range(24):
        name = names[i % 3]
        kind = ("PERSON" if i % 2 else "PLACE") if name != "apple" else ("ORG" if i % 2 else "O")
        other = {"PERSON": "PLACE", "PLACE": "PERSON", "ORG": "O", "O": "ORG"}[kind]
        refs.append((f"e{i:02d}", f"they talked about {name}" if kind == "O"
                     else f"they talked about {kind} FILL {name} SEP"))
        items.append((f"e{i:02d}", f"P 3 {kind} {other} {'yes' if i < 12 else 'no'}"))
    refs.append(("h00", "look at the knight"))
    items.append(("h00", "P 3 knight night yes"))
    base = [i % 2 == 0 for i in range(25)]
    inject = [i < 20 or i == 24 for i in range(25)]
    by, results = _items_run(tmp_path / "ner", "ner", "test_ner", refs, items, base, inject)
    entity = by[("inject_gt", "entity_type_acc_P")]
    assert entity["value"] == pytest.approx(100 * 20 / 24) and entity["n"] == 24
    assert entity["ci_low"] < entity["value"] < entity["ci_high"]
    # inject_gt right on 10 items the baseline is wrong on, wrong on 2 it is right on
    assert entity["p_vs_baseline"] == pytest.approx(mcnemar_exact(10, 2))
    assert by[("inject_gt", "entity_type_acc_P_unseen_cue")]["n"] == 12
    assert by[("inject_gt", "homophone_acc_P")]["n"] == 1  # the homophone item alone
    assert {"f1_micro", "label_f1_micro"} <= {m for _, m in by}
    assert "entity_type_acc_P (n=24)" in results


def test_sweep_chart_plots_each_panel_against_the_setting_it_sweeps():
    """inject_gt varies num_prev and prev_mode: x is num_prev (numeric, 3 values), one line per
    mode; gcaf varies distill_weight only; a variant with one point has no panel."""
    from espnet_gcft.recipe.sweep import _setting_order, _x_key

    def record(variant, **settings):
        return {"variant": variant, "settings": settings, "set": "test", "metric": "wer", "value": 1.0}

    inject = [record("inject_gt", prev_mode="join", num_prev="1"),
              record("inject_gt_rows_n2", prev_mode="rows", num_prev="2"),
              record("inject_gt_join_n3", prev_mode="join", num_prev="3")]
    gcaf = [record("gcaf", distill_weight="0.3"), record("gcaf_dw1.0", distill_weight="1.0")]
    keys = _setting_order(inject + gcaf)
    assert keys == ["prev_mode", "num_prev", "distill_weight"]
    assert _x_key(inject, keys) == "num_prev"
    assert _x_key(gcaf, keys) == "distill_weight"
    assert _x_key(gcaf[:1], keys) == ""
    assert _x_key([record("gen_inject", context_prompt=p) for p in ("title", "topic")], ["context_prompt"]) \
        == "context_prompt"


def test_holm_adjusts_within_each_family_and_the_headline_is_one():
    from espnet_gcft.recipe.results import add_holm
    from espnet_gcft.recipe.results_report import table_family
    from espnet_gcft.scoring.stats import holm

    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []
    records = [dict(variant=v, set="test", condition="gt", metric=m, value=1.0, p_vs_baseline=p)
               for v, m, p in (("gcaf", "homophone_acc_S", 0.001), ("gcaf", "homophone_acc_P", 0.02),
                               ("inject_gt", "homophone_acc_P", 0.01), ("gcaf", "wer", 0.2))]
    records.append(dict(variant="gcaf", set="test", condition="gt", metric="student_gain", value=3.0))
    headline = [dict(variant="gcaf", set="test", condition="gt", metric="homophone_acc_S", target="x")]
    add_holm(records, table_family, headline)
    assert records[0]["family"] == "headline" and records[0]["p_holm"] == pytest.approx(0.001)
    assert records[1]["family"] == records[2]["family"] != records[3]["family"]
    assert records[1]["p_holm"] == pytest.approx(0.02) and records[2]["p_holm"] == pytest.approx(0.02)
    assert records[3]["p_holm"] == pytest.approx(0.2) and "p_holm" not in records[4]
