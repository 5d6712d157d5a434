"""utils/slurm.sh against a real one-node Slurm cluster (tools/slurm_local.sh).

The module starts its own cluster (config, munge key, state and logs in a
temporary GCFT_SLURM_DIR, on free ports) and always stops it at the end. It
needs root (to install slurm-wlm and munge with apt-get when missing and to
run the daemons); otherwise the tests are skipped with the reason.
"""

import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLURM_LOCAL = ROOT / "tools" / "slurm_local.sh"
SLURM_SH = ROOT / "egs2" / "mini_gcft" / "gcft1" / "utils" / "slurm.sh"

pytestmark = pytest.mark.slow


def free_port_pair(start: int = 16817) -> int:
    """A port p such that p (slurmctld) and p + 1 (slurmd) are free on this host."""
    for port in range(start, start + 400, 2):
        try:
            for p in (port, port + 1):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for the test cluster")


def tail(text: str, n: int = 3000) -> str:
    return text[-n:]


@pytest.fixture(scope="module")
def slurm():
    """Environment (SLURM_CONF etc.) of a running one-node cluster; stopped at teardown."""
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (apt-get install, munged, slurmd)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("Slurm is not installed and there is no apt-get to install it")
    # Short path (the munge socket path is limited) that user munge can reach.
    cluster_dir = Path(tempfile.mkdtemp(prefix="gcft_slurm_", dir="/tmp"))
    cluster_dir.chmod(0o755)
    env = dict(os.environ, GCFT_SLURM_DIR=str(cluster_dir),
               GCFT_SLURM_PORT=str(free_port_pair()), GCFT_SLURM_TIMEOUT="90")
    try:
        proc = subprocess.run([str(SLURM_LOCAL), "start"], env=env, capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0:
            if shutil.which("slurmctld") is None or shutil.which("munged") is None:
                pytest.skip(f"slurm-wlm/munge could not be installed: {tail(proc.stderr, 1000)}")
            raise AssertionError(f"slurm_local.sh start failed ({proc.returncode}):\n"
                                 f"{tail(proc.stdout)}\n{tail(proc.stderr)}")
        conf = cluster_dir / "etc" / "slurm.conf"
        assert f"export SLURM_CONF={conf}" in proc.stdout
        env["SLURM_CONF"] = str(conf)
        yield env
    finally:
        stop = subprocess.run([str(SLURM_LOCAL), "stop"], env=env, capture_output=True,
                              text=True, timeout=120)
        if stop.returncode == 0:
            shutil.rmtree(cluster_dir, ignore_errors=True)
        else:
            print(f"slurm_local.sh stop failed:\n{stop.stdout}\n{stop.stderr}", file=sys.stderr)


def slurm_sh(env, cwd, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(SLURM_SH), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def squeue(env, name: str) -> list:
    """[(job id, state)] of the jobs (array tasks) called ``name``."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %t"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def wait_for(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_cluster_is_up_and_start_is_idempotent(slurm):
    proc = subprocess.run([str(SLURM_LOCAL), "start"], env=slurm, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "already running" in proc.stdout
    status = subprocess.run([str(SLURM_LOCAL), "status"], env=slurm, capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    for daemon in ("munged", "slurmctld", "slurmd"):
        assert f"{daemon}: running" in status.stdout
    assert "idle" in status.stdout and "debug*" in status.stdout
    # the machine's own config is left alone
    conf = Path(slurm["SLURM_CONF"]).read_text()
    assert "PartitionName=debug" in conf and "/etc/slurm" not in conf


def test_failed_task_is_named_and_the_others_logged(slurm, tmp_path):
    proc = slurm_sh(slurm, tmp_path, "JOB=1:3", tmp_path / "log/t.JOB.log",
                    "test JOB -ne 2 && echo job JOB")
    assert proc.returncode == 1, proc.stderr
    assert str(tmp_path / "log/t.2.log") in proc.stderr
    assert "t.1.log" not in proc.stderr and "t.3.log" not in proc.stderr
    log1 = (tmp_path / "log/t.1.log").read_text()
    assert log1.startswith("# test 1 -ne 2 && echo job 1")
    assert "job 1\n" in log1 and log1.rstrip().endswith("with status 0")
    assert "job 3\n" in (tmp_path / "log/t.3.log").read_text()
    assert (tmp_path / "log/t.2.log").read_text().rstrip().endswith("with status 1")


def test_array_numbered_like_the_recipe(slurm, tmp_path):
    """`${gen_cmd} JOB=1:N log/generate.JOB.log python3 -m ... --shard JOB/2 --out_dir dir/shard.JOB`
    (written JOB=01:2 here: leading zeros are the same range)."""
    conf = tmp_path / "conf" / "slurm.conf"
    conf.parent.mkdir()
    conf.write_text("partition=\nmem=512M  # per task\nnum_threads=1\ntime=\n"
                    "gpu_option=--gres=gpu:{gpu}\nextra_args=\n")
    script = ("import os, sys; print('args', sys.argv[1:]); print('cwd', os.getcwd()); "
              "print('marker', os.environ.get('GCFT_TEST_MARKER')); print('python', sys.executable); "
              "os.makedirs(sys.argv[-1], exist_ok=True)")
    env = dict(slurm, GCFT_TEST_MARKER="carried over")
    proc = slurm_sh(env, tmp_path, "--config", "conf/slurm.conf", "JOB=01:2", "exp/log/generate.JOB.log",
                    sys.executable, "-c", script, "--shard", "JOB/2", "--out_dir", "exp/shard.JOB")
    assert proc.returncode == 0, proc.stderr
    for index in (1, 2):
        log = (tmp_path / f"exp/log/generate.{index}.log").read_text()
        assert f"args ['--shard', '{index}/2', '--out_dir', 'exp/shard.{index}']" in log
        assert f"cwd {tmp_path}" in log and "marker carried over" in log
        assert f"python {sys.executable}" in log
        assert log.rstrip().endswith("with status 0")
        assert (tmp_path / f"exp/shard.{index}").is_dir()
    assert not (tmp_path / "exp/log/generate.0.log").exists()
    assert not (tmp_path / "exp/log/generate.3.log").exists()


def test_single_job_options_reach_sbatch(slurm, tmp_path):
    """`${cuda_cmd} --gpu 0 --num_threads 1 dir/train.log python3 -m ...` with --mem over the config."""
    conf = tmp_path / "slurm.conf"
    conf.write_text("mem=300M\nnum_threads=2\n")
    proc = slurm_sh(slurm, tmp_path, "--gpu", "0", "--num_threads", "1", "--config", conf,
                    "--mem", "600M", "exp/train.log", "bash", "-c",
                    'echo "cpus $SLURM_CPUS_PER_TASK mem $SLURM_MEM_PER_NODE"')
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "exp/train.log").read_text()
    assert "cpus 1 mem 600" in log, log


def test_squeue_and_scontrol_see_the_job(slurm, tmp_path):
    job = subprocess.Popen([str(SLURM_SH), "JOB=1:1", "log/watch.JOB.log", "sleep 5"], cwd=tmp_path,
                           env=slurm, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tasks = wait_for(lambda: [t for t in squeue(slurm, "watch") if t[1] == "R"], 30,
                         "squeue to show the job running")
        job_id = tasks[0][0].split("_")[0]
        show = subprocess.run(["scontrol", "show", "job", job_id], env=slurm, capture_output=True,
                              text=True, check=True).stdout
        assert "JobState=RUNNING" in show and f"WorkDir={tmp_path}" in show
        _, err = job.communicate(timeout=60)
        assert job.returncode == 0, err
    finally:
        if job.poll() is None:
            job.kill()
    assert "sleep 5" in (tmp_path / "log/watch.1.log").read_text()
    # no accounting database: finished jobs are in the jobcomp log instead of sacct
    jobcomp = Path(slurm["GCFT_SLURM_DIR"]) / "log" / "jobcomp.log"
    wait_for(lambda: jobcomp.is_file() and f"ArrayJobId={job_id} " in jobcomp.read_text(), 15,
             "the job in jobcomp.log")


def test_ctrl_c_cancels_the_array(slurm, tmp_path):
    job = subprocess.Popen([str(SLURM_SH), "JOB=1:2", "log/nap.JOB.log", "sleep 60"], cwd=tmp_path,
                           env=slurm, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(state == "R" for _, state in squeue(slurm, "nap")), 30,
                 "squeue to show the job running")
        # "R" in squeue comes before the task's shell has opened its log
        wait_for((tmp_path / "log/nap.1.log").is_file, 30, "the task to open its log")
        job.send_signal(signal.SIGINT)
        # generous limits: on a loaded machine slurmctld answers slowly
        _, err = job.communicate(timeout=120)
        assert job.returncode != 0 and "cancelled job" in err
        wait_for(lambda: not squeue(slurm, "nap"), 120, "the cancelled job to leave squeue")
    finally:
        if job.poll() is None:
            job.kill()
    assert "with status" not in (tmp_path / "log/nap.1.log").read_text()


def _emb(recipe: Path, scp: Path) -> dict:
    """utt -> matrix of an scp whose ark paths are relative to the recipe dir."""
    import kaldiio

    return {line.split()[0]: kaldiio.load_mat(str(recipe / line.split()[1]))
            for line in scp.read_text().splitlines()}


def test_recipe_stages_3_4_7_through_slurm_equal_the_local_run(slurm, mini_recipe, mini_run,
                                                               tmp_path_factory):
    """Generation (2 shards), embedding and decoding (2 jobs) as Slurm array jobs."""
    import numpy as np

    from gcft_helpers import QUICK, VARIANTS, copy_recipe, run_recipe

    recipe = copy_recipe(tmp_path_factory.mktemp("slurm_repo"), mini_recipe, outputs=True)
    # the test set's contexts and the default decodes again, through Slurm (the
    # other sets are up to date and skipped; the decode-time conditions are left out)
    shutil.rmtree(recipe / "dump" / "context" / "test")
    for variant in VARIANTS:
        shutil.rmtree(recipe / "exp" / variant / "decode_test")
    env = dict(slurm, cmd_backend="slurm")
    run_recipe(recipe, *QUICK, "--stage", "3", "--stop_stage", "4", "--gen_nj", "2", env=env)
    run_recipe(recipe, *QUICK, "--stage", "7", "--stop_stage", "7", "--inference_nj", "2",
               "--conditions=", env=env)
    for dset in ["test"]:
        for source in ("prev_gt", "gen_title"):
            local = mini_recipe / "dump" / "context" / dset / source
            remote = recipe / "dump" / "context" / dset / source
            assert (remote / "text").read_text() == (local / "text").read_text(), (dset, source)
            local_emb = _emb(mini_recipe, local / "emb_mean.scp")
            remote_emb = _emb(recipe, remote / "emb_mean.scp")
            assert list(local_emb) == list(remote_emb)
            for utt in local_emb:
                np.testing.assert_allclose(remote_emb[utt], local_emb[utt], atol=1e-5)
    for index in (1, 2):  # one generation job per shard for every stale output
        log = recipe / "dump" / "context" / "log" / f"generate.{index}.log"
        assert ", job " in log.read_text()  # written by the Slurm job
    for variant in VARIANTS:
        local = mini_recipe / "exp" / variant / "decode_test"
        remote = recipe / "exp" / variant / "decode_test"
        assert (remote / "hyp.trn").read_text() == (local / "hyp.trn").read_text(), variant
        assert json.loads((remote / "score.json").read_text()) == \
            json.loads((local / "score.json").read_text())
        assert ", job " in (remote / "log" / "decode.2.log").read_text()

    # A failing array task fails the stage and names its log.
    shutil.rmtree(recipe / "exp" / "baseline" / "decode_test")
    proc = run_recipe(recipe, *QUICK, "--stage", "7", "--stop_stage", "7", "--variants", "baseline",
                      "--inference_nj", "2", "--inference_model", "missing.pth", env=env, check=False)
    assert proc.returncode != 0
    assert "exp/baseline/decode_test/log/decode.1.log" in proc.stderr + proc.stdout


def test_ctrl_c_on_the_recipe_cancels_the_training_jobs(slurm, mini_recipe, mini_run,
                                                        tmp_path_factory):
    """Ctrl-C reaches the whole foreground process group; the variants' trainings run
    side by side as background jobs of gcft.sh, which bash starts with SIGINT
    ignored: their Slurm jobs must be cancelled all the same."""
    from gcft_helpers import QUICK, copy_recipe

    recipe = copy_recipe(tmp_path_factory.mktemp("interrupt_repo"), mini_recipe, outputs=True)
    env = dict(slurm, cmd_backend="slurm", HF_HUB_OFFLINE="1")
    run = subprocess.Popen(["./run.sh", *QUICK, "--stage", "5", "--stop_stage", "6",
                            "--expdir", "exp_interrupted", "--pretrain_config", ""], cwd=recipe, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        wait_for(lambda: len(squeue(slurm, "train")) >= 2 or run.poll() is not None, 600,
                 "two variants' training jobs in squeue")
        assert run.poll() is None, run.communicate()[0][-3000:]
        os.killpg(run.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        out, _ = run.communicate(timeout=180)
        assert run.returncode != 0
        assert "Interrupted" in out and "cancelled job" in out
        wait_for(lambda: not squeue(slurm, "train"), 180, "every training job to leave squeue")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        for job_id, _ in squeue(slurm, "train"):
            subprocess.run(["scancel", job_id.split("_")[0]], env=slurm, check=False)


def test_ddp_training_with_srun_on_the_cluster(slurm, mini_recipe, mini_run, tmp_path_factory):
    """The recipe's training as one Slurm job of 2 tasks whose ranks srun starts
    (scripts/srun_ranks.sh, gloo on the CPU); the trained model decodes."""
    from gcft_helpers import QUICK, check_ddp_training, copy_recipe, run_recipe

    recipe = copy_recipe(tmp_path_factory.mktemp("srun_repo"), mini_recipe, outputs=True)
    env = dict(slurm, cmd_backend="slurm")
    run_recipe(recipe, *QUICK, "--stage", "5", "--stop_stage", "7", "--expdir", "exp_srun",
               "--pretrain_config", "", "--variants", "gcaf", "--train_procs", "2",
               "--dist_launcher", "slurm", "--conditions=", env=env)
    check_ddp_training(recipe / "exp_srun", ["gcaf"])
    log = (recipe / "exp_srun" / "gcaf" / "train.log").read_text()
    assert log.splitlines()[0].startswith("# scripts/srun_ranks.sh ")
    assert ", job " in log  # written by the Slurm job
    score = json.loads((recipe / "exp_srun" / "gcaf" / "decode_test" / "score.json").read_text())
    assert score["n_utterances"] > 0
