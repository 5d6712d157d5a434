"""LLM context generation with the embedded SmolLM2-135M-Instruct GGUF."""

import json
import logging
from pathlib import Path
import shutil

import pytest

from espnet_gcft.context.backends import BackendError, GenerationParams, TransformersBackend, build_backend
from espnet_gcft.context.generate import (
    RECORDS,
    GenerationError,
    Job,
    clean_output,
    generate_context,
    generate_jobs,
    merge_shards,
    parse_shard,
    read_records,
    shard_of,
)
from espnet_gcft.context.prompts import BUILTIN_PROMPTS, Prompt, PromptError, get_prompt, load_prompt_file
from espnet_gcft.fileio import read_text
from gcft_helpers import run_cli

PARAMS = GenerationParams(max_new_tokens=6)
PREVIOUS = {
    "s1-0": "",
    "s1-1": "the parliament voted on the budget",
    "s1-2": "the vote was postponed until march",
    "s2-0": "",
    "s2-1": "die kommission hat heute über zölle gesprochen — 東京",
    "s2-2": "the parliament voted on the budget",  # same input as s1-1: generated once
    "s3-1": "fisheries policy needs a reform",
}
# Another set: one input of PREVIOUS, one new.
OTHER = {"d-0": "", "d-1": PREVIOUS["s1-1"], "d-2": "a sentence no set has seen"}
# A third: every input already in PREVIOUS or OTHER.
THIRD = {"t-1": OTHER["d-2"], "t-2": PREVIOUS["s3-1"]}


@pytest.fixture(scope="module")
def backend():
    return TransformersBackend("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def reference(backend, tmp_path_factory):
    """An uninterrupted, unsharded run."""
    out = tmp_path_factory.mktemp("reference")
    summary = generate_context(PREVIOUS, BUILTIN_PROMPTS["title"], backend, PARAMS, out,
                               batch_size=2, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def separate(backend, reference, tmp_path_factory):
    """OTHER and THIRD as separate single-job runs, each reusing the earlier sets' outputs."""
    other = tmp_path_factory.mktemp("other")
    generate_context(OTHER, BUILTIN_PROMPTS["title"], backend, PARAMS, other,
                     batch_size=2, progress=False, reuse_dirs=[reference[0]])
    third = tmp_path_factory.mktemp("third")
    generate_context(THIRD, BUILTIN_PROMPTS["title"], backend, PARAMS, third,
                     batch_size=2, progress=False, reuse_dirs=[reference[0], other])
    return reference[0], other, third


class FailingAfter:
    """The real backend, stopped (like a killed job) after ``calls`` batches."""

    def __init__(self, backend, calls):
        self.backend, self.calls = backend, calls
        self.model_id, self.window = backend.model_id, backend.window

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def generate(self, prompts, params):
        if self.calls == 0:
            raise KeyboardInterrupt("stopped")
        self.calls -= 1
        return self.backend.generate(prompts, params)


def test_generation_writes_text_and_records(reference):
    out, summary = reference
    texts = read_text(out / "text")
    assert list(texts) == list(PREVIOUS)
    assert texts["s1-0"] == "" and texts["s2-0"] == ""
    assert all(texts[u] for u in PREVIOUS if PREVIOUS[u])
    assert summary.empty == 2 and summary.generated == 4 and summary.reused == 1
    records = {r["utt"]: r for r in read_records(out / RECORDS)}
    assert set(records) == set(PREVIOUS)
    title = BUILTIN_PROMPTS["title"]
    for utt, rec in records.items():
        assert rec["prompt_id"] == "title" and rec["prompt_hash"] == title.hash
        assert rec["params"] == PARAMS.as_dict()
        if PREVIOUS[utt]:
            assert PREVIOUS[utt] in rec["prompt"] and isinstance(rec["raw"], str)
            assert "\n" not in rec["text"] and not rec["text"].lower().startswith("assistant")
        else:
            assert rec["raw"] is None and rec["prompt"] is None
    assert records["s2-2"]["text"] == records["s1-1"]["text"]
    assert "東京" in records["s2-1"]["previous"]


def test_interrupted_run_resumes_to_the_same_result(backend, reference, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        generate_context(PREVIOUS, BUILTIN_PROMPTS["title"], FailingAfter(backend, 1), PARAMS,
                         tmp_path, batch_size=2, progress=False)
    assert not (tmp_path / "text").exists()
    first = read_records(tmp_path / RECORDS)
    assert 0 < len(first) < len(PREVIOUS)
    summary = generate_context(PREVIOUS, BUILTIN_PROMPTS["title"], backend, PARAMS, tmp_path,
                               batch_size=2, progress=False)
    assert summary.generated == 2  # 4 distinct inputs, 2 done before the stop
    assert (tmp_path / "text").read_text() == (reference[0] / "text").read_text()
    again = generate_context(PREVIOUS, BUILTIN_PROMPTS["title"], backend, PARAMS, tmp_path,
                             batch_size=2, progress=False)
    assert again.generated == 0 and again.reused == len(PREVIOUS)


def test_torn_last_record_is_dropped(backend, reference, tmp_path):
    lines = (reference[0] / RECORDS).read_text().splitlines(keepends=True)
    (tmp_path / RECORDS).write_text("".join(lines[:-1]) + lines[-1][:20])
    generate_context(PREVIOUS, BUILTIN_PROMPTS["title"], backend, PARAMS, tmp_path,
                     batch_size=2, progress=False)
    assert (tmp_path / "text").read_text() == (reference[0] / "text").read_text()


def test_changed_prompt_is_never_reused(backend, reference, tmp_path):
    for name in (RECORDS, "text"):
        (tmp_path / name).write_text((reference[0] / name).read_text())
    old = BUILTIN_PROMPTS["title"]
    changed = Prompt(old.id, old.system, old.user + " Be brief.")
    summary = generate_context(PREVIOUS, changed, backend, PARAMS, tmp_path,
                               batch_size=2, progress=False)
    assert summary.generated == 4 and summary.reused == 1
    hashes = {r["prompt_hash"] for r in read_records(tmp_path / RECORDS)}
    assert hashes == {old.hash, changed.hash}


def test_shards_merge_to_the_unsharded_result(backend, reference, separate, tmp_path):
    """Two shard runs of two jobs each (sets PREVIOUS and OTHER): each job's shards
    merge to its unsharded output."""
    title = BUILTIN_PROMPTS["title"]
    shard_dirs, other_dirs, generated = [], [], 0
    for index in range(2):
        shard_dirs.append(tmp_path / f"shard.{index}")
        other_dirs.append(tmp_path / "other" / f"shard.{index}")
        summaries = generate_jobs(
            [Job(PREVIOUS, title, shard_dirs[-1]), Job(OTHER, title, other_dirs[-1])],
            backend, PARAMS, batch_size=2, shard=(index, 2), progress=False)
        generated += sum(s.generated for s in summaries)
    # an utterance's shard is its input's (equal inputs, in any job, in one shard) or,
    # without a previous text, its id's; every distinct input is generated once
    assert generated == len({t for t in {**PREVIOUS, **OTHER}.values() if t})
    for index, shard_dir in enumerate(shard_dirs + other_dirs):
        for record in read_records(shard_dir / RECORDS):
            assert shard_of(record["key"] or record["utt"], 2) == index % 2, (shard_dir, record)
    assert min(len(read_text(d / "text")) for d in shard_dirs) > 0
    merge_shards(list(PREVIOUS), shard_dirs, tmp_path / "merged")
    assert (tmp_path / "merged" / "text").read_text() == (reference[0] / "text").read_text()
    assert len(read_records(tmp_path / "merged" / RECORDS)) == len(PREVIOUS)
    merge_shards(list(OTHER), other_dirs, tmp_path / "other" / "merged")
    assert (tmp_path / "other" / "merged" / "text").read_text() == (separate[1] / "text").read_text()
    with pytest.raises(GenerationError, match=r"in no shard of 1"):
        merge_shards(list(PREVIOUS), shard_dirs[:1], tmp_path / "bad")
    with pytest.raises(GenerationError, match=r"is in shard .*shard.0 and shard .*shard.0"):
        merge_shards(list(PREVIOUS), [shard_dirs[0], shard_dirs[0]], tmp_path / "bad")


def test_long_previous_text_is_cut_from_the_left_with_one_warning(backend, tmp_path, caplog):
    previous = {"a-1": "word " * 300 + "the final words", "a-2": "short text", "a-3": "x " * 200}
    with caplog.at_level(logging.WARNING):
        summary = generate_context(previous, BUILTIN_PROMPTS["topic"], backend, PARAMS, tmp_path,
                                   max_input_tokens=80, progress=False)
    assert summary.truncated == 2
    warnings = [r for r in caplog.records if "cut from the left" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("2 ")
    records = {r["utt"]: r for r in read_records(tmp_path / RECORDS)}
    assert records["a-1"]["previous"].endswith("the final words")
    assert records["a-2"]["previous"] == "short text"
    assert backend.count_tokens(records["a-1"]["prompt"]) <= 80


def test_clean_output():
    assert clean_output("assistant: Budget vote\nmore text") == "Budget vote"
    assert clean_output("<|im_start|>assistant\n  Title:  \"The  Budget\"  ") == "The Budget"
    assert clean_output("Write a title: x\nThe answer", "Write a title: x") == "The answer"
    assert clean_output("\n\n  \n") == ""


def test_prompt_file_and_errors(tmp_path):
    path = tmp_path / "prompts.yaml"
    path.write_text("- id: summary\n  system: You summarise.\n  user: 'Summarise: {previous}'\n")
    assert load_prompt_file(path)["summary"].messages("x")[1]["content"] == "Summarise: x"
    assert get_prompt("summary", path).system == "You summarise."
    path.write_text("- id: broken\n  user: no placeholder\n")
    with pytest.raises(PromptError, match=r"\{previous\}"):
        load_prompt_file(path)
    with pytest.raises(PromptError, match="unknown prompt"):
        get_prompt("nope")


def test_vllm_without_the_package_is_a_clear_error():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    with pytest.raises(BackendError, match="pip install 'espnet_gcft\\[vllm\\]'"):
        build_backend("vllm", model="smollm2-135m-instruct")


def test_parse_shard():
    # job numbers from 1, as ESPnet's runners count them; 0-based inside
    assert parse_shard("1/4") == (0, 4) and parse_shard("4/4") == (3, 4)
    for bad in ("0/4", "5/4", "a/b", "1"):
        with pytest.raises(GenerationError, match="--shard"):
            parse_shard(bad)


def test_cli_generates_and_merges(tmp_path, corpus):
    """Two shard processes, each running two jobs (the second a copy of the first set)
    with one LLM load; the shards of each job merge."""
    data = corpus / "data"
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    out, out_copy = tmp_path / "gen", tmp_path / "gen_copy"
    for index in (1, 2):
        proc = run_cli("espnet_gcft.bin.generate_context",
                       "--job", data, "-", "topic", out / f"shard.{index}",
                       "--job", copy, "text", "topic", out_copy / f"shard.{index}",
                       "--max_new_tokens", "4", "--shard", f"{index}/2", "--no_progress")
        assert proc.stderr.count("loading LLM smollm2-135m-instruct") == 1, proc.stderr
        assert f"{out_copy / f'shard.{index}'}: " in proc.stderr
        assert " 0 generated" in proc.stderr.split(str(out_copy))[-1]  # all from the first job
    for target in (out, out_copy):
        run_cli("espnet_gcft.bin.merge_context", "--data_dir", data, "--out_dir", target,
                target / "shard.1", target / "shard.2")
    texts = read_text(out / "text")
    assert list(texts) == list(read_text(data / "text"))
    assert texts["1-10-0000"] == "" and texts["1-10-0001"]
    assert read_text(out_copy / "text") == texts
    records = [json.loads(line) for line in (out / RECORDS).read_text().splitlines()]
    assert {r["utt"] for r in records} == set(texts)
    # bad input stops before the LLM is loaded, naming the prompt or file
    proc = run_cli("espnet_gcft.bin.generate_context", "--data_dir", data, "--prompt", "nope",
                   "--out_dir", out, check=False)
    assert proc.returncode == 1 and "unknown prompt 'nope'" in proc.stderr
    proc = run_cli("espnet_gcft.bin.generate_context", "--job", data, "-", "topic", out,
                   "--job", tmp_path, "-", "topic", out_copy, check=False)
    assert proc.returncode == 1 and str(tmp_path / "text") in proc.stderr
    assert "loading LLM" not in proc.stderr
    proc = run_cli("espnet_gcft.bin.generate_context", "--job", data, "-", "topic", out,
                   "--job", copy, "-", "topic", out, check=False)
    assert proc.returncode == 1 and f"jobs 1 and 2 both write {out}" in proc.stderr
    proc = run_cli("espnet_gcft.bin.generate_context", "--job", data, "-", "topic", out,
                   "--prompt", "title", check=False)
    assert proc.returncode == 2 and "--job and --prompt" in proc.stderr


def test_concurrent_starts_convert_the_gguf_once(tmp_path):
    """Jobs starting together on an empty cache (array tasks, recipes side by side)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, GCFT_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    code = ("import logging; logging.basicConfig(level='INFO');"
            "from espnet_gcft.context.backends import loadable_model;"
            "print(loadable_model('smollm2-135m-instruct')[0])")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [proc.communicate() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    assert len({out.strip() for out, _ in outputs}) == 1
    assert sum("converting" in err for _, err in outputs) == 1
    converted = list((tmp_path / "cache" / "gguf").iterdir())
    assert [p.name for p in converted if not p.name.startswith(".")] == [Path(outputs[0][0].strip()).name]


def test_other_sets_outputs_are_reused_not_regenerated(backend, reference, separate, tmp_path):
    """A previous text already generated for another set (same prompt, model, parameters) is reused."""
    _, other, third = separate
    records = {r["utt"]: r for r in read_records(other / RECORDS)}
    assert [records[u]["reused"] for u in ("d-1", "d-2")] == [True, False]
    assert read_text(other / "text")["d-1"] == read_text(reference[0] / "text")["s1-1"]
    assert all(r["reused"] for r in read_records(third / RECORDS))
    # other parameters: nothing of the other set fits
    longer = GenerationParams(max_new_tokens=7)
    summary = generate_context(OTHER, BUILTIN_PROMPTS["title"], backend, longer, tmp_path / "x",
                               batch_size=2, progress=False, reuse_dirs=[reference[0]])
    assert summary.generated == 2


def _first_batch(records_path: Path, batches: int) -> str:
    """The lines of ``generation.jsonl`` up to the end of its first ``batches`` LLM batches
    of 2 distinct inputs (what a job killed after them had written)."""
    lines = records_path.read_text().splitlines(keepends=True)
    keys = []
    for number, line in enumerate(lines):
        record = json.loads(line)
        if record["raw"] is not None and not record["reused"] and record["key"] not in keys:
            if len(keys) == 2 * batches:
                return "".join(lines[:number])
            keys.append(record["key"])
    raise AssertionError(f"{records_path} has fewer than {2 * batches + 1} generated inputs")


def test_jobs_share_one_backend_resume_and_equal_separate_runs(backend, separate, tmp_path):
    """Three jobs in one run: the first resumes a partial generation.jsonl (killed after
    its first batch); the later ones reuse what the earlier generated; every output is
    the one separate single-job runs make, records included."""
    dirs = [tmp_path / name for name in ("train", "dev", "test")]
    dirs[0].mkdir()
    (dirs[0] / RECORDS).write_text(_first_batch(separate[0] / RECORDS, 1))
    title = BUILTIN_PROMPTS["title"]
    summaries = generate_jobs(
        [Job(PREVIOUS, title, dirs[0]), Job(OTHER, title, dirs[1]), Job(THIRD, title, dirs[2])],
        backend, PARAMS, batch_size=2, progress=False,
    )
    assert [s.generated for s in summaries] == [2, 1, 0]  # 4 inputs, 2 done before the kill
    assert [s.reused for s in summaries] == [len(PREVIOUS) - 2, 1, 2]
    for made, alone in zip(dirs, separate):
        assert (made / "text").read_text() == (alone / "text").read_text(), made
        assert (made / RECORDS).read_text() == (alone / RECORDS).read_text(), made
    with pytest.raises(GenerationError, match=r"jobs 1 and 3 both write .*train"):
        generate_jobs([Job(OTHER, title, dirs[0]), Job(THIRD, title, dirs[1]),
                       Job(THIRD, title, tmp_path / "x" / ".." / "train")], backend, PARAMS)


def test_llm_and_previous_text_read_the_plain_transcript(tmp_path, corpus):
    """With NER tags in `text`, the CLIs that feed an LLM read `transcript` by default."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("utt2prev", "wav.scp"):
        (data / name).write_text((corpus / "data" / name).read_text())
    plain = read_text(corpus / "data" / "text")
    (data / "text").write_text("".join(f"{u} PERSON FILL {t} SEP\n" for u, t in plain.items()))
    (data / "transcript").write_text("".join(f"{u} {t}\n" for u, t in plain.items()))
    run_cli("espnet_gcft.bin.make_prev_text", "--data_dir", data, "--out_dir", tmp_path / "prev")
    previous = read_text(tmp_path / "prev" / "text")
    assert previous["1-10-0001"] == plain["1-10-0000"]
    run_cli("espnet_gcft.bin.generate_context", "--data_dir", data, "--prompt", "title",
            "--out_dir", tmp_path / "gen", "--max_new_tokens", "2", "--no_progress")
    records = [json.loads(line) for line in (tmp_path / "gen" / RECORDS).read_text().splitlines()]
    assert all("FILL" not in (r["previous"] or "") for r in records)
    assert any(r["previous"] == plain["1-10-0000"] for r in records)
