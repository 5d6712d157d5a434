"""Faults a cluster user meets, on the quick mini recipe: a full disk.

The reference is the suite's uninterrupted quick run (conftest's ``mini_run``).
"""

import json
import re
import subprocess

import pytest

from gcft_helpers import QUICK, copy_recipe, run_recipe

pytestmark = pytest.mark.slow


def _mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")


def _score(exp, variant):
    return json.loads((exp / variant / "decode_test" / "score.json").read_text())


def test_a_full_disk_fails_one_line_keeps_earlier_outputs_and_the_rerun_completes(
        mini_recipe, mini_run, tmp_path):
    """--expdir on a 12 MB tmpfs: collect-stats and the shared pretraining fit, the
    variants' checkpoints do not. The run fails in stage 6 with one line naming the
    stage and the dir; stats and pretraining are kept (the rerun finds them up to date);
    after the tmpfs grows, the same command finishes with the reference run's scores."""
    copy = copy_recipe(tmp_path, mini_recipe, outputs=True)
    small = copy / "exp_small"
    _mount_tmpfs(small, "12m")
    try:
        command = [*QUICK, "--stage", "5", "--variants", "baseline gcaf", "--conditions", "",
                   "--expdir", "exp_small", "--results", "RESULTS_small.md"]
        failed = run_recipe(copy, *command, check=False)
        assert failed.returncode != 0
        lines = [line for line in failed.stderr.splitlines() if "no space left" in line]
        assert len(lines) == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
        assert re.fullmatch(r"\./gcft\.sh: stage 6 failed: no space left on the filesystem of "
                            r"exp_small \((\S+): (\d+) KiB free now\); free space there and run the "
                            r"same command again", lines[0]), lines[0]
        assert lines[0].split("(")[1].split(":")[0] == str(small)
        stats = sorted(p.relative_to(small / "stats_char") for p in (small / "stats_char").rglob("*")
                       if p.is_file())
        assert (small / "stats_char" / ".done").exists() and (small / "pretrain" / ".done").exists()
        stats_before = {p: (small / "stats_char" / p).read_bytes() for p in stats}
        assert not (small / "gcaf" / ".done").exists() and not (small / "baseline" / ".done").exists()

        subprocess.run(["mount", "-o", "remount,size=200m", str(small)], check=True)
        again = run_recipe(copy, *command)
        assert "exp_small/stats_char is up to date" in again.stdout
        assert "exp_small/pretrain is up to date" in again.stdout
        assert {p: (small / "stats_char" / p).read_bytes() for p in stats} == stats_before
        for variant in ("baseline", "gcaf"):
            assert (small / variant / ".done").exists()
            got, want = _score(small, variant), _score(mini_recipe / "exp", variant)
            assert got == want, (variant, got, want)
        assert (copy / "RESULTS_small.json").exists()
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_a_failed_job_says_why_on_the_terminal(tmp_path):
    """A job that fails under the local runner (here the LLM generation job of stage 3,
    given a sampling temperature its parameters refuse) puts its error line and its log
    on the terminal: the runner's line and the stage's failure line."""
    recipe = copy_recipe(tmp_path, quick=False)
    one = ["--local_data_opts", "--max_sessions 1", "--prompts", "title"]
    made = run_recipe(recipe, "--stop_stage", "2", *one)
    proc = run_recipe(recipe, "--stage", "3", "--stop_stage", "3", *one,
                      "--gen_args", "--do_sample --temperature 0", check=False)
    assert made.returncode == 0 and proc.returncode != 0, proc.stderr
    log = "dump/context/log/generate.log"
    assert re.search(r"utils/run.sh: job 1 failed: .*temperature.* \(log: " + log + r"\)", proc.stderr), \
        proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"\./gcft\.sh: stage 3 failed: .*temperature.*must be > 0.* \(log: " + log + r"\)",
                        last), proc.stderr
