"""The mini recipe end to end (stages 1-8), reruns, runners and bad input in a recipe.

This is the proof that `make demo` works: the same run.sh, gcft.sh and configs,
on a few sessions of the corpus with one training epoch per variant.
"""

import json
import subprocess

import pytest
import yaml

from gcft_helpers import QUICK, RECIPE, SETS, VARIANTS, run_recipe

pytestmark = pytest.mark.slow


@pytest.fixture
def recipe(mini_recipe):
    return mini_recipe


@pytest.fixture
def full_run(mini_run):
    return mini_run


def run(recipe, *args, check=True):
    return run_recipe(recipe, *args, check=check)


def test_every_design_file_exists(recipe, full_run):
    for dset in SETS:
        for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2prev"):
            assert (recipe / "data" / dset / name).is_file(), (dset, name)
        for name in ("wav.scp", "text", "utt2prev"):
            assert (recipe / "dump" / "raw" / dset / name).is_file(), (dset, name)
        for source in ("prev_gt", "gen_title"):
            context = recipe / "dump" / "context" / dset / source
            for name in ("text", "emb_mean.ark", "emb_mean.scp", "meta.json"):
                assert (context / name).is_file(), (dset, source, name)
        assert (recipe / "dump" / "context" / dset / "gen_title" / "generation.jsonl").is_file()
        for name in ("report.json", "report.md"):
            assert (recipe / "dump" / "context" / dset / name).is_file(), (dset, name)
    for variant in VARIANTS:
        exp = recipe / "exp" / variant
        assert (exp / "config.yaml").is_file() and (exp / "valid.loss.ave.pth").exists()
        assert (exp / "images").is_dir() and (exp / "packed.zip").is_file()
        decode = exp / "decode_test"
        for name in ("ref.trn", "hyp.trn", "result.txt", "score.json"):
            assert (decode / name).is_file(), (variant, name)
        score = json.loads((decode / "score.json").read_text())
        assert {"wer", "cer", "context_word_acc"} <= set(score)
    assert (recipe / "exp" / "results.png").is_file()


def test_results_hold_every_variant(recipe, full_run):
    results = (recipe / "RESULTS.md").read_text()
    for variant in VARIANTS:
        assert f"| {variant} | test |" in results
    assert "context_word_acc" in results and "needs at inference" in results
    assert "| gen_title |" in results and "| prev_gt |" in results  # the context report


def test_variants_read_the_right_context(recipe, full_run):
    configs = {v: yaml.safe_load((recipe / "exp" / v / "config.yaml").read_text()) for v in VARIANTS}
    def context_file(variant):
        files = [p for p, name, _ in configs[variant]["train_data_path_and_name_and_type"] if name == "context"]
        return files[0] if files else None
    assert context_file("baseline") is None
    assert context_file("inject_gt").endswith("train/prev_gt/emb_mean.scp")
    assert context_file("gen_inject").endswith("train/gen_title/emb_mean.scp")
    assert context_file("gcaf").endswith("train/gen_title/emb_mean.scp")
    assert configs["gcaf"]["model_conf"]["context_mode"] == "distill"


def test_rerun_skips_finished_work(full_run):
    log = full_run[1].stdout
    assert "gen_title/text is up to date" in log
    assert "exp/gcaf is up to date" in log and "decode_test/score.json is up to date" in log


def test_missing_test_context_fails_inject_only(recipe, full_run):
    scp = recipe / "dump" / "context" / "test" / "prev_gt" / "emb_mean.scp"
    original = scp.read_text()
    dropped = original.splitlines()[2].split()[0]
    try:
        scp.write_text("".join(line + "\n" for line in original.splitlines() if not line.startswith(dropped)))
        common = [*QUICK, "--stage", "7", "--stop_stage", "7"]
        run(recipe, *common, "--variants", "baseline gcaf")
        proc = run(recipe, *common, "--variants", "inject_gt", check=False)
        assert proc.returncode != 0
        log = (recipe / "exp" / "inject_gt" / "decode_test" / "log" / "decode.1.log").read_text()
        assert dropped in log and "no context" in log
    finally:
        scp.write_text(original)


def test_missing_audio_stops_stage_2_naming_the_utterance(recipe, full_run, tmp_path):
    wav_scp = recipe / "data" / "test" / "wav.scp"
    original = wav_scp.read_text()
    first_utt = original.split()[0]
    try:
        wav_scp.write_text(original.replace(original.split("\n")[0].split()[1], "/nonexistent.flac", 1))
        proc = run(recipe, *QUICK, "--stage", "2", "--stop_stage", "2", check=False)
        assert proc.returncode != 0
        assert f"utterance {first_utt}" in proc.stdout + proc.stderr
        assert "/nonexistent.flac" in proc.stdout + proc.stderr
    finally:
        wav_scp.write_text(original)
        run(recipe, *QUICK, "--stage", "2", "--stop_stage", "2")


def test_local_runner_names_the_failed_job(tmp_path):
    runner = RECIPE / "utils" / "run.sh"
    proc = subprocess.run([str(runner), "JOB=1:3", str(tmp_path / "log/t.JOB.log"),
                           "test JOB -ne 2 && echo job JOB"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "job 2 failed" in proc.stderr and str(tmp_path / "log/t.2.log") in proc.stderr
    assert "job 1 failed" not in proc.stderr
    assert "job 3" in (tmp_path / "log/t.3.log").read_text()
    assert (tmp_path / "log/t.1.log").read_text().startswith("# test 1 -ne 2 && echo job 1")


def test_options_help_and_bad_option():
    proc = subprocess.run(["./run.sh", "--help"], cwd=RECIPE, capture_output=True, text=True)
    assert proc.returncode == 0 and "--gen_nj" in proc.stdout and "(default: 1)" in proc.stdout
    proc = subprocess.run(["./run.sh", "--no_such_option", "1"], cwd=RECIPE, capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option --no_such_option" in proc.stderr
