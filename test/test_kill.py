"""Kill anywhere, lose nothing: the quick mini recipe, its whole process group killed
with SIGKILL at points spread over stages 1-8 in one chained run (kill, rerun the
same command up to the next point, kill again), then rerun to the end, equals the
suite's uninterrupted quick run (conftest's ``mini_run``).

What "equals" means, file by file (every file under data/, dump/, exp/ and the
RESULTS, logs and locks aside):

- byte for byte (RESULTS.md's date aside): everything else: data dirs, formatted audio and token lists,
  context texts and LLM records (greedy decoding), text embeddings and context
  reports, collect-stats, the tiny SSL model, the models (``1epoch.pth``,
  ``valid.loss.*.pth``: training is seeded, and a kill inside an epoch makes the
  rerun train that epoch again from the last finished one), their training
  curves, the decode dirs (hypotheses, ``ref.trn``/``hyp.trn``, scores, sclite's
  report, forced choices), the run stamps and RESULTS.md/.json/.png. Absolute
  paths (``wav.scp``) are compared with each recipe's own root replaced.
- same names, keys and shapes (``_same_structure``), not bytes: what records the
  clock: ESPnet's resume checkpoint (``checkpoint.pth``: its reporter holds the
  epochs' timings) and the timing curves (``images/*_time.png``). The packed
  models (``packed.zip``) are compared byte for byte: packing is deterministic.
"""

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from gcft_helpers import QUICK, copy_recipe, start_recipe

pytestmark = pytest.mark.slow

# (the event the kill waits for, where it lands, a file that the step being killed has not
# finished yet). An event is a line of the run's log or a file state, both written early in
# the step named, which then runs on for seconds (a Python start-up at least): the kill
# lands inside that step on any machine, fast or slow. The test asserts the stage each kill
# lands in and reports whether the unfinished file was indeed missing. One point per kind
# of step (a data script, generation, embedding, collect-stats, an epoch, decoding,
# RESULTS): formatting and the pretraining epoch are the same kinds as stage 1's data
# script and a variant's epoch, and each point costs a restart and the redone step.
KILL_POINTS = [
    (("log", "wrote data/test_far/utt2prev"), "stage 1: inside local/data.sh (the tiny SSL model)",
     "exp/ssl/tiny_wav2vec2"),
    (("lines", "dump/context/*/gen_title/shard.*/generation.jsonl"), "stage 3: inside LLM generation",
     "dump/context/test/gen_title/.text.stamp"),
    (("file", "dump/context/train/log/embed_mean.log"), "stage 4: inside embedding",
     "dump/context/test/.report.json.stamp"),
    (("file", "exp/stats_char/stats.log"), "stage 5: inside collect-stats", "exp/stats_char/.done"),
    (("holds", "exp/gcaf/train.log", "epoch started"), "stage 6: inside a variant's epoch",
     "exp/gcaf/1epoch.pth"),
    (("file", "exp/gcaf/decode_test/log/decode.1.log"), "stage 7: inside decoding",
     "exp/gcaf/decode_test/.score.json.stamp"),
    (("log", "Stage 8:"), "stage 8: while RESULTS is written", "RESULTS.json"),
]
RESULTS = ("RESULTS.md", "RESULTS.json", "RESULTS.png")


def records_time(rel):
    """Outputs that record the clock (see the module docstring)."""
    return rel.name == "checkpoint.pth" or \
        (rel.parent.name == "images" and rel.name.endswith("_time.png"))


def happened(recipe, log_path, event):
    """Whether the event (see KILL_POINTS) has happened in the run."""
    kind, what, *text = event
    if kind == "log":
        return what in log_path.read_text()
    if kind == "file":
        return (recipe / what).exists()
    if kind == "lines":
        return any(p.stat().st_size > 0 for p in recipe.glob(what))
    path = recipe / what
    return path.is_file() and text[0] in path.read_text(errors="replace")


def run_until(recipe, log_path, event, timeout=600):
    """Start the run; as soon as the event happens, SIGKILL its whole process group.
    Returns (exit code if it ended first, else None; the log at the kill)."""
    proc = start_recipe(recipe, log_path, *QUICK)
    deadline = time.monotonic() + timeout
    while not happened(recipe, log_path, event):
        if proc.poll() is not None:
            return proc.returncode, "(ended before the event)"
        assert time.monotonic() < deadline, f"{event} not seen in {timeout} s: {log_path.read_text()[-2000:]}"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return None, log_path.read_text()


def outputs(recipe):
    """Every data, dump, exp and RESULTS file of a recipe, logs and locks aside."""
    found = {}
    for top in ("data", "dump", "exp"):
        for path in (recipe / top).rglob("*"):
            rel = path.relative_to(recipe)
            if path.is_file() and ".locks" not in rel.parts and path.suffix != ".log" \
                    and "log" not in rel.parts[:-1] and "att_ws" not in rel.parts:
                found[rel] = path
    for name in RESULTS:
        if (recipe / name).is_file():
            found[Path(name)] = recipe / name
    return found


def _same_structure(got, want):
    """Equal up to what records the clock: a checkpoint's tensor names and shapes,
    an image present (not empty)."""
    if got.suffix == ".pth":
        import torch

        def shapes(obj, prefix=""):
            if isinstance(obj, torch.Tensor):
                return {prefix: tuple(obj.shape)}
            if isinstance(obj, dict):
                out = {}
                for key, value in obj.items():
                    out.update(shapes(value, f"{prefix}/{key}"))
                return out
            if isinstance(obj, (list, tuple)):
                out = {}
                for index, value in enumerate(obj):
                    out.update(shapes(value, f"{prefix}/{index}"))
                return out
            return {}

        load = lambda p: torch.load(p, map_location="cpu", weights_only=False)  # noqa: E731
        return shapes(load(got)) == shapes(load(want))
    return got.stat().st_size > 0 or want.stat().st_size == 0


def comparable(rel, content):
    """RESULTS.md heads its table with the day it was made: two runs on either side of
    midnight write the same results."""
    if rel.name == "RESULTS.md":
        return re.sub(rb"^[0-9]{4}-[0-9]{2}-[0-9]{2},", b"<date>,", content, flags=re.M)
    return content


def compare(recipe, ref):
    """(files only one side has, files differing in bytes, files differing in structure)."""
    got, want = outputs(recipe), outputs(ref)
    missing = sorted(str(p) for p in got.keys() ^ want.keys())
    bytes_differ, structure_differ = [], []
    for rel in sorted(want.keys() & got.keys()):
        if records_time(rel):
            if not _same_structure(got[rel], want[rel]):
                structure_differ.append(str(rel))
            continue
        a = comparable(rel, got[rel].read_bytes().replace(str(recipe).encode(), b"<recipe>"))
        b = comparable(rel, want[rel].read_bytes().replace(str(ref).encode(), b"<recipe>"))
        if a != b:
            bytes_differ.append(str(rel))
    return missing, bytes_differ, structure_differ


def test_killed_anywhere_the_rerun_equals_the_uninterrupted_run(mini_recipe, mini_run, tmp_path):
    recipe = copy_recipe(tmp_path)
    for name in RESULTS:  # the committed demo RESULTS: stage 8 must write its own
        (recipe / name).unlink(missing_ok=True)
    landed = []
    for index, (event, where, unfinished) in enumerate(KILL_POINTS):
        rc, log = run_until(recipe, tmp_path / f"run{index}.log", event)
        assert rc is None, f"run {index} ended before its kill {where} (exit code {rc}): {log[-3000:]}"
        stages = re.findall(r"\) Stage (\d):", log)
        assert stages and stages[-1] == where[6], f"run {index}: killed in stage {stages[-1:]}, not {where}"
        inside = "inside" if not (recipe / unfinished).exists() else f"after {unfinished} was made"
        landed.append(f"{where} ({inside}): {log.rstrip().splitlines()[-1]}")
    final = tmp_path / "final.log"
    proc = start_recipe(recipe, final, *QUICK)
    assert proc.wait(timeout=900) == 0, final.read_text()[-3000:]
    print("\n".join(landed))

    torn = [str(p) for p in recipe.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
    assert torn == []
    missing, bytes_differ, structure_differ = compare(recipe, mini_recipe)
    assert missing == []
    assert bytes_differ == []
    assert structure_differ == []
    # the comparison covers every kind of output named above
    names = {str(p) for p in outputs(recipe)}
    for expected in ("data/train/wav.scp", "dump/raw/test/wav.scp", "dump/context/test/gen_title/text",
                     "dump/context/test/prev_gt/emb_mean.ark", "exp/gcaf/decode_test/hyp.trn",
                     "exp/inject_gt/decode_test/score.json", "RESULTS.json", "RESULTS.md"):
        assert expected in names, expected
    records = json.loads((recipe / "RESULTS.json").read_text())
    assert records and all("value" in r for r in records)
