"""One writer per output: a second run that would write what a live run is writing
refuses to start and names it; a run with other outputs goes on beside it; the
lock ends with the run, also when its process group is killed with SIGKILL. A run
that only reads an output waits for its writer; readers go on side by side.

The running run is real: the mini recipe's run.sh, held inside stage 1 by a
local/data.sh that waits while a file ``hold`` exists.
"""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from gcft_helpers import copy_recipe, start_recipe, wait_for_log

pytestmark = pytest.mark.slow  # real run.sh runs

HOLDING_DATA_SH = """#!/usr/bin/env bash
# test stand-in: wait inside stage 1 while ./hold exists, then the real stage 1
# (gcft.sh's check of the options before stage 1 goes to the real one at once)
[ -z "${GCFT_CHECK_ONLY:-}" ] || exec local/data_real.sh "$@"
if [ -e hold ]; then touch started; while [ -e hold ]; do sleep 0.2; done; sleep 600; fi
exec local/data_real.sh "$@"
"""


def run_recipe(recipe, *args, timeout=180):
    """./run.sh in its own process group, killed as a whole if it outlives ``timeout``
    (a run that should have refused would otherwise wait in the held stage forever)."""
    proc = subprocess.Popen(["./run.sh", *args], cwd=recipe, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"run.sh {' '.join(args)} still running after {timeout} s:\n{stdout[-2000:]}{stderr[-2000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture
def held_run(tmp_path):
    """A run.sh of stages 1-1 in its own process group, waiting inside local/data.sh."""
    recipe = copy_recipe(tmp_path, quick=False)
    (recipe / "local" / "data.sh").rename(recipe / "local" / "data_real.sh")
    (recipe / "local" / "data.sh").write_text(HOLDING_DATA_SH)
    (recipe / "local" / "data.sh").chmod(0o755)
    (recipe / "hold").touch()
    proc = start_recipe(recipe, tmp_path / "held.log", "--stage", "1", "--stop_stage", "1")
    deadline = time.monotonic() + 120
    while not (recipe / "started").exists():
        assert proc.poll() is None, (tmp_path / "held.log").read_text()
        assert time.monotonic() < deadline, "the held run never reached stage 1"
        time.sleep(0.2)
    yield recipe, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_second_run_refuses_a_side_run_goes_on_and_the_lock_dies_with_the_run(held_run):
    recipe, held = held_run
    second = run_recipe(recipe, "--stage", "1", "--stop_stage", "1", timeout=60)
    assert second.returncode == 3, second.stdout + second.stderr
    message = re.search(r"refusing to start: data/(\w+) is being written by another run "
                        r"\(pid (\d+), started (\S+), on (\S+), in (.+?)\)", second.stderr)
    assert message, second.stderr
    # the pid named is the held run's gcft.sh, in the held run's process group
    held_pid = int(message.group(2))
    assert os.getpgid(held_pid) == held.pid
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", message.group(3))
    assert message.group(4) == socket.gethostname()
    assert message.group(5) == str(recipe)
    assert not (recipe / "data" / "train").exists()  # the refused run wrote nothing
    assert "Stage 1" not in second.stdout

    # an NER run writes other sets (train_ner, dev_ner, test_ner): it runs beside the held one
    (recipe / "hold").unlink()  # new data.sh calls go straight on; the held one keeps waiting
    side = run_recipe(recipe, "--task", "ner", "--stage", "1", "--stop_stage", "1")
    assert side.returncode == 0, side.stdout[-3000:] + side.stderr[-3000:]
    assert (recipe / "data" / "train_ner" / "wav.scp").exists()
    assert held.poll() is None

    # kill -9 of the held run's whole process group: its locks go with it
    os.killpg(held.pid, signal.SIGKILL)
    held.wait()
    again = run_recipe(recipe, "--stage", "1", "--stop_stage", "1")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert (recipe / "data" / "train" / "utt2prev").exists()
    # the lock file names its last holder; no lock is left held
    holder = (recipe / "data" / ".locks" / "train.lock").read_text()
    assert re.match(r"pid (\d+), started ", holder) and int(holder.split(",")[0][4:]) != held_pid


def test_a_shared_step_waits_for_the_run_writing_it(tmp_path):
    """Stage 4 takes its turn on dump/context: while another process holds that lock the
    run waits, saying for whom, and goes on once it is released."""
    import fcntl

    recipe = copy_recipe(tmp_path, quick=False)
    lock = recipe / "dump" / ".locks" / "context.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        lock.write_text("pid 4242, started 2026-01-01T00:00:00, on elsewhere, in /elsewhere\n")
        log = tmp_path / "stage4.log"
        proc = start_recipe(recipe, log, "--stage", "4", "--stop_stage", "4")
        try:
            assert wait_for_log(proc, log, "waiting for another run"), log.read_text()
            time.sleep(1)
            assert proc.poll() is None  # still waiting
            assert ("waiting for another run, which is writing dump/context (pid 4242, started "
                    "2026-01-01T00:00:00, on elsewhere, in /elsewhere)") in log.read_text()
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert lock.read_text().startswith("pid ") and "4242" not in lock.read_text()


def test_a_lock_still_held_by_a_killed_runs_last_jobs_is_waited_for(tmp_path):
    """After kill -9 of a run's process group the kernel may still be tearing its jobs
    down while the named holder is already gone: the next run waits for the lock
    (--lock_grace) instead of refusing. A holder on another host cannot be checked
    and is refused as if alive."""
    import fcntl

    recipe = copy_recipe(tmp_path, quick=False)
    lock = recipe / "data" / ".locks" / "train.lock"
    lock.parent.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    with open(lock, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        # another host: its pid means nothing here, so the run refuses at once
        lock.write_text(f"pid {gone.pid}, started 2026-01-01T00:00:00, on elsewhere, in {recipe}\n")
        refused = run_recipe(recipe, "--stage", "1", "--stop_stage", "1", timeout=60)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert f"(pid {gone.pid}, started 2026-01-01T00:00:00, on elsewhere, in {recipe})" in refused.stderr

        # this host, a holder no longer running: wait for its dying jobs
        lock.write_text(f"pid {gone.pid}, started 2026-01-01T00:00:00, on {socket.gethostname()}, in {recipe}\n")
        log = tmp_path / "grace.log"
        proc = start_recipe(recipe, log, "--stage", "1", "--stop_stage", "1")
        try:
            assert wait_for_log(proc, log, "is gone; waiting up to 60 s for its last processes to exit"), \
                log.read_text()
            assert proc.poll() is None
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
    assert proc.wait(timeout=120) == 0, log.read_text()
    assert (recipe / "data" / "train" / "utt2prev").exists()
    assert f"pid {gone.pid}," not in lock.read_text()


HOLD_THEN_GO_DATA_SH = """#!/usr/bin/env bash
# test stand-in: wait inside stage 1 while ./hold exists, then the real stage 1
# (the real one's options, which gcft.sh reads to check --local_data_opts)
# <options>
task=asr                 # [asr|ner|sentiment] the target text
max_sessions=0           # [int >= 0] keep only the first N sessions per split
# </options>
[ -z "${GCFT_CHECK_ONLY:-}" ] || exec local/data_real.sh "$@"
if [ -e hold ]; then touch started; while [ -e hold ]; do sleep 0.2; done; fi
exec local/data_real.sh "$@"
"""
ONE_SESSION = ["--local_data_opts", "--max_sessions 1", "--variants", "baseline inject_gt",
               "--prompts", ""]


def test_a_reader_waits_for_the_run_writing_its_input(tmp_path):
    """A run of stage 3 reads dump/raw/<set>, which a run of stages 1-2 of the same sets is
    writing: it waits, naming the writer, and goes on once the writer has finished."""
    recipe = copy_recipe(tmp_path, quick=False)
    (recipe / "local" / "data.sh").rename(recipe / "local" / "data_real.sh")
    (recipe / "local" / "data.sh").write_text(HOLD_THEN_GO_DATA_SH)
    (recipe / "local" / "data.sh").chmod(0o755)
    (recipe / "hold").touch()
    writer = start_recipe(recipe, tmp_path / "writer.log", "--stage", "1", "--stop_stage", "2", *ONE_SESSION)
    reader = None
    try:
        deadline = time.monotonic() + 120
        while not (recipe / "started").exists():
            assert writer.poll() is None and time.monotonic() < deadline, (tmp_path / "writer.log").read_text()
            time.sleep(0.2)
        log = tmp_path / "reader.log"
        reader = start_recipe(recipe, log, "--stage", "3", "--stop_stage", "3", *ONE_SESSION)
        assert wait_for_log(reader, log, "waiting for another run, which is writing dump/raw/"), log.read_text()
        time.sleep(1)
        assert reader.poll() is None and "Stage 3" not in log.read_text()
        (recipe / "hold").unlink()
        assert writer.wait(timeout=300) == 0, (tmp_path / "writer.log").read_text()[-3000:]
        assert reader.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        for proc in (writer, reader):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert text.index("waiting for another run") < text.index("Stage 3")
    assert (recipe / "dump" / "context" / "train" / "prev_gt" / "text").exists()


def test_readers_go_side_by_side_and_a_writer_refuses_while_one_reads(tmp_path):
    """Another run reading dump/raw/train (a shared flock, its holder line marked "reading"):
    a second reader goes on at once; a run that would rewrite it refuses, naming the reader."""
    import fcntl

    recipe = copy_recipe(tmp_path, quick=False)
    made = run_recipe(recipe, "--stage", "1", "--stop_stage", "2", *ONE_SESSION)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    lock = recipe / "dump" / "raw" / ".locks" / "train.lock"
    with open(lock, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_SH)
        lock.write_text(f"pid 4242, started 2026-01-01T00:00:00, on elsewhere, in /elsewhere\nreading\n")
        reader = run_recipe(recipe, "--stage", "3", "--stop_stage", "3", *ONE_SESSION)
        assert reader.returncode == 0, reader.stdout[-3000:] + reader.stderr[-3000:]
        assert "waiting for another run" not in reader.stdout
        lock.write_text(f"pid 4242, started 2026-01-01T00:00:00, on elsewhere, in /elsewhere\nreading\n")
        writer = run_recipe(recipe, "--stage", "2", "--stop_stage", "2", *ONE_SESSION)
        assert writer.returncode == 3, writer.stdout[-3000:] + writer.stderr[-3000:]
        assert ("refusing to start: dump/raw/train is being read by another run (pid 4242, started "
                "2026-01-01T00:00:00, on elsewhere, in /elsewhere)") in writer.stderr
