"""Job runners, cmd.sh and option parsing of the recipes: no training, no recipe run."""

import os
import subprocess

import pytest

from gcft_helpers import RECIPE

RUN_SH = RECIPE / "utils" / "run.sh"


def runner(*args, **kwargs):
    return subprocess.run([str(RUN_SH), *map(str, args)], capture_output=True, text=True, **kwargs)


def test_local_runner_names_the_failed_job(tmp_path):
    proc = runner("JOB=1:3", tmp_path / "log/t.JOB.log", "test JOB -ne 2 && echo job JOB")
    assert proc.returncode == 1
    assert f"job 2 failed: (no error line) (log: {tmp_path / 'log/t.2.log'})" in proc.stderr
    assert "job 1 failed" not in proc.stderr
    assert "job 3" in (tmp_path / "log/t.3.log").read_text()
    assert (tmp_path / "log/t.1.log").read_text().startswith("# test 1 -ne 2 && echo job 1")


def test_a_failed_job_says_why(tmp_path):
    """The runner's line carries the job's error line (a Python exception's last line,
    not its traceback), and $GCFT_FAILED_JOBS gets it for gcft.sh's failure line."""
    failed = tmp_path / "failed"
    script = "import sys; print('loading'); sys.stdout.flush(); raise ValueError('bad value JOB')"
    proc = runner("JOB=1:2", tmp_path / "log/t.JOB.log", f'python3 -c "{script}"; echo done',
                  env=dict(os.environ, GCFT_FAILED_JOBS=str(failed)))
    assert proc.returncode == 0, proc.stderr  # (the echo after it succeeded)
    proc = runner("JOB=1:2", tmp_path / "log/t.JOB.log", f'python3 -c "{script}"',
                  env=dict(os.environ, GCFT_FAILED_JOBS=str(failed)))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"{RUN_SH}: job {i} failed: ValueError: bad value {i} (log: {tmp_path}/log/t.{i}.log)"
                     for i in (1, 2)]
    assert failed.read_text().splitlines() == [f"{tmp_path}/log/t.{i}.log\tValueError: bad value {i}"
                                               for i in (1, 2)]


def test_local_runner_reads_leading_zeros_and_refuses_an_empty_range(tmp_path):
    proc = runner("JOB=01:03", tmp_path / "log/t.JOB.log", "echo job JOB")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == ["t.1.log", "t.2.log", "t.3.log"]
    assert "job 2\n" in (tmp_path / "log/t.2.log").read_text()
    proc = runner("JOB=3:1", tmp_path / "log/e.JOB.log", "echo job JOB")
    assert proc.returncode == 2 and "empty job range JOB=3:1" in proc.stderr
    proc = runner("JOB=7", tmp_path / "log/s.JOB.log", "echo job JOB")
    assert proc.returncode == 0 and "job 7\n" in (tmp_path / "log/s.7.log").read_text()


def test_both_runners_share_one_job_range_parser():
    utils = RECIPE / "utils"
    for name in ("run.sh", "slurm.sh"):
        text = (utils / name).read_text()
        assert "job_range.sh" in text and "job_range_parse" in text, name
        assert "BASH_REMATCH" not in text, f"{name} parses JOB=a:b itself"


def test_options_help_and_bad_option():
    proc = subprocess.run(["./run.sh", "--help"], cwd=RECIPE, capture_output=True, text=True)
    assert proc.returncode == 0 and "--gen_nj" in proc.stdout and "(default: 1)" in proc.stdout
    proc = subprocess.run(["./run.sh", "--no_such_option", "1"], cwd=RECIPE, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "unknown option --no_such_option" in proc.stderr


@pytest.mark.parametrize("option", ["--HOME", "--PATH", "--help_message", "--command_line"])
def test_only_declared_options_are_accepted(option, tmp_path):
    """A shell variable that is not in the options block is no option."""
    proc = subprocess.run(["./run.sh", option, str(tmp_path / "nowhere")], cwd=RECIPE,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"unknown option {option}" in proc.stderr
    assert "Usage:" in proc.stderr  # the help


def test_local_data_options_are_checked_too():
    proc = subprocess.run(["local/data.sh", "--HOME", "/nowhere"], cwd=RECIPE, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "unknown option --HOME" in proc.stderr


def test_cmd_backend_names_a_runner_or_fails(tmp_path):
    env = dict(os.environ, cmd_backend="no_such_runner_command")
    proc = subprocess.run(["./run.sh", "--stage", "9"], cwd=RECIPE, capture_output=True, text=True,
                          env=env)
    assert proc.returncode != 0
    assert "cmd_backend=no_such_runner_command" in proc.stderr


CORPUS_RECIPES = ("slue-voxpopuli", "librilight", "slue-voxceleb")


def code_lines(path):
    return [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("corpus", CORPUS_RECIPES)
def test_corpus_run_sh_holds_only_what_differs(corpus):
    run_sh = RECIPE.parents[1] / corpus / "gcft1" / "run.sh"
    lines = code_lines(run_sh)
    assert len(lines) <= 25, lines
    assert any(line.startswith("scripts/run_ssl_base.sh") for line in lines)
    assert not any("--llm" in line or "--text_encoder" in line for line in lines)


def test_ssl_is_a_gcft_option():
    proc = subprocess.run(["./gcft.sh", "--help"], cwd=RECIPE, capture_output=True, text=True)
    assert proc.returncode == 0 and "--ssl " in proc.stdout


def test_setup_creates_a_recipe_that_runs(tmp_path):
    from gcft_helpers import copy_recipe

    copy_recipe(tmp_path)  # tools/ and egs2/TEMPLATE linked to this checkout
    setup = tmp_path / "egs2" / "TEMPLATE" / "gcft1" / "setup.sh"
    proc = subprocess.run([str(setup), "egs2/my_corpus/gcft1"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    recipe = tmp_path / "egs2" / "my_corpus" / "gcft1"
    for name in ("gcft.sh", "cmd.sh", "path.sh", "utils/run.sh", "scripts/run_ssl_base.sh",
                 "conf/train_gcaf.yaml", "conf/decode.yaml", "conf/slurm.conf", "conf/tiny/args"):
        assert (recipe / name).exists(), name  # the link resolves
    assert len(code_lines(recipe / "run.sh")) <= 25
    proc = subprocess.run(["./run.sh", "--help"], cwd=recipe, capture_output=True, text=True)
    assert proc.returncode == 0 and "--train_set" in proc.stdout
    # stage 1 says what to fill in instead of running on nothing
    proc = subprocess.run(["./run.sh", "--stop_stage", "1"], cwd=recipe, capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "fill in how data/<set> is made" in proc.stderr
    # a second setup into the same dir, or outside egs2/<corpus>/gcft1, is refused
    proc = subprocess.run([str(setup), "egs2/my_corpus/gcft1"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "exists" in proc.stderr
    proc = subprocess.run([str(setup), "elsewhere"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "next to egs2/TEMPLATE" in proc.stderr


def test_pool_wait_for_waits_for_the_named_jobs_only(tmp_path):
    """Stage 7 waits for its gt decodes while the self decodes run on (jobs.sh's
    pool_wait_for): the named jobs end, the others keep running, and a failed job
    makes it return 1. A pool_wait_for that waited for every job would hang on the
    gate below (the timeout turns that into a failure)."""
    script = f"""
        set -u
        source {RECIPE / "scripts" / "lib" / "jobs.sh"}
        pool_run 2 long bash -c 'until [ -e {tmp_path}/gate ]; do sleep 0.05; done; touch {tmp_path}/long'
        pool_run 2 short touch {tmp_path}/short
        pool_wait_for short || exit 3
        [ -e {tmp_path}/short ] && [ ! -e {tmp_path}/long ] || exit 4
        touch {tmp_path}/gate
        pool_wait_for long || exit 5
        [ -e {tmp_path}/long ] || exit 6
        pool_run 2 bad false
        pool_wait_for bad && exit 7
        echo "failed: ${{pool_failed[*]}}"
    """
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() == "failed: bad"
