"""A bad option fails before any work: every option of gcft.sh's options block, given a
value its [spec] refuses, stops the run with one line naming it and exit status 2, with no
data, dump or exp dir made; the checks across options, sweep.sh's grid and run_matrix.sh
too. Each run is a real ./gcft.sh in a copy of the mini recipe.

An option added to the block without a spec, or of a kind this test cannot give a bad value
of, fails test_every_option_has_a_refusable_spec: the walk covers every declared option.
"""

import os
from pathlib import Path
import subprocess

import pytest

from espnet_gcft.recipe.options import KINDS, Option, OptionError, check_value, read_block, parse_spec
from gcft_helpers import copy_recipe

TEMPLATE = Path(__file__).resolve().parents[1] / "egs2" / "TEMPLATE" / "gcft1"
REQUIRED = {"train_set": "train", "valid_set": "dev", "test_sets": "test"}
# kind -> values its spec refuses, whatever the option
BAD = {
    "choice": ["bogus"], "words": ["bogus"], "name": ["a/b"], "names": ["a/b"], "path": ["a b"],
    "md path": ["results.txt"], "file": ["/no/such/file"], "files": ["/no/such/file"],
    "dir": ["/no/such/dir"], "model": ["/no/such/model"], "command": ["no-such-command"],
    "device": ["gpu0"], "variants": ["gcaf_x"], "variant": ["gcaf_x"],
    "conditions": ["replaced1.5"], "degradation": ["replaced1.5"], "prompts": ["no_such_prompt"],
    "prompt": ["no_such_prompt"], "options": ["--no_such_option 1"],
}


def bad_values(option: Option):
    """Values the option's spec refuses: of another type, out of its range, of no kind it takes."""
    if option.kind in ("int", "float"):
        values = ["abc"]
        if option.low is not None:
            values.append(str(int(option.low) - 1) if option.kind == "int" else str(option.low - 0.5))
        if option.high is not None:
            values.append(str(int(option.high) + 1) if option.kind == "int" else str(option.high + 0.5))
        return values
    values = list(BAD.get(option.kind, []))
    if not option.empty_ok and option.kind != "options":
        values.append("")
    return values


OPTIONS = read_block(TEMPLATE / "gcft.sh")


def gcft(recipe: Path, *args, env=None):
    options = dict(REQUIRED)
    flat = []
    for name, value in options.items():
        if f"--{name}" not in args:
            flat += [f"--{name}", value]
    return subprocess.run(["./gcft.sh", *flat, *args], cwd=recipe, capture_output=True, text=True,
                          timeout=120, env=dict(env or os.environ, HF_HUB_OFFLINE="1"))


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return copy_recipe(tmp_path_factory.mktemp("options"), quick=False)


def made(recipe: Path):
    return sorted(p.name for p in recipe.iterdir() if p.name in ("data", "dump", "exp"))


def test_every_option_has_a_refusable_spec():
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names)) > 50
    for option in OPTIONS:
        assert option.kind != "text", f"--{option.name}: [text] refuses nothing; give it a kind"
        assert bad_values(option), f"--{option.name} [{option.spec}]: no value its spec refuses"


@pytest.mark.parametrize("option", OPTIONS, ids=[o.name for o in OPTIONS])
def test_a_bad_value_of_any_option_stops_before_any_work(recipe, option):
    for value in bad_values(option):
        proc = gcft(recipe, f"--{option.name}", value)
        assert proc.returncode == 2, (option.name, value, proc.stdout[-2000:], proc.stderr[-2000:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"--{option.name}" in lines[0], (option.name, value, proc.stderr)
        if option.kind not in ("options", "command"):  # (their own parser's words; no python)
            assert f"[{option.spec}]" in lines[0]
        assert proc.stdout == ""
        assert made(recipe) == [], (option.name, value)


@pytest.mark.parametrize("args, says", [
    (["--stage", "5", "--stop_stage", "2"], "selects no stage"),
    (["--init_model", "conf/decode.yaml", "--pretrain_config", "conf/pretrain.yaml"], "give one"),
    (["--variants", "audio_gcaf", "--pooling", "cls"], "no [CLS] frame"),
    (["--variants", "gcaf", "--prompts", ""], "read(s) generated context"),
    (["--context_prompt", "topic", "--prompts", "title"], "is not one of --prompts"),
    (["--variants", "audio_gcaf", "--train_config_dir", "conf/../local"], "train_audio_gcaf.yaml"),
    (["--results_extra", "inject_gt_nowhere"], "no exp/inject_gt_nowhere"),
    (["--local_data_opts", "--max_sessions -1"], "--max_sessions -1"),
    (["--local_data_opts", "--bogus 1"], "has no option --bogus"),
    (["--llm_gguf_file", "missing.gguf", "--llm", "conf"], "no GGUF file missing.gguf"),
])
def test_checks_across_options_stop_before_any_work(recipe, args, says):
    proc = gcft(recipe, *args)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert made(recipe) == []


@pytest.mark.parametrize("grid, says", [
    ([], "no --grid"),
    (["--grid", "distill_weight="], "wants key="),
    (["--grid", "alpha=0.1"], "cannot sweep alpha"),
    (["--grid", "distill_weight=0.1 -1"], "distill_weight=-1 is out of range"),
    (["--grid", "pooling=mean median"], "pooling=median"),
    (["--grid", "num_prev=2", "--grid", "num_prev=x"], "num_prev=x is not an integer"),
    (["--grid", "train_degrade=replaced2"], "train_degrade=replaced2"),
])
def test_sweep_checks_every_grid_key_and_value_before_the_first_point(recipe, grid, says):
    proc = subprocess.run(["./sweep.sh", "--variants", "gcaf", *grid], cwd=recipe, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert not (recipe / "exp").exists()


@pytest.mark.parametrize("args", [["--step", "7"], ["--step", "x"]])
def test_run_matrix_checks_its_step(recipe, args):
    proc = subprocess.run(["./run_matrix.sh", *args], cwd=recipe, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "--step" in proc.stderr, proc.stderr
    assert made(recipe) == []


def test_spec_grammar_refuses_what_it_cannot_read(tmp_path):
    for spec in ("integer", "int >= x", "file, stages 5-", "file, nowhere"):
        with pytest.raises(OptionError):
            parse_spec(Option("x", "", spec, ""), "here")
    script = tmp_path / "s.sh"
    script.write_text("# <options>\nnj=4  # parallel jobs\n# </options>\n")
    with pytest.raises(OptionError, match="must start with its \\[spec\\]"):
        read_block(script)
    option = parse_spec(Option("p", "", "file or empty, stages 5-6 and 8", ""), "here")
    assert option.empty_ok and option.stages == (5, 6, 8)
    assert check_value(option, "/no/such", {"stage": "7", "stop_stage": "7"}, script) is None
    assert check_value(option, "/no/such", {"stage": "7", "stop_stage": "8"}, script)
    assert set(BAD) >= set(KINDS) - {"text"} | {"choice", "words", "options"}
