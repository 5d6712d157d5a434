"""The mini recipe end to end (stages 1-8), reruns, runners and bad input in a recipe.

This is the proof that `make demo` works: the same run.sh, gcft.sh and configs,
on a few sessions of the corpus with one training epoch per variant.
"""

import json
import os
import re
import subprocess
import zipfile

import kaldiio
import numpy as np
import pytest
import yaml

from gcft_helpers import QUICK, SETS, VARIANTS, copy_recipe, run_recipe

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
        for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2prev", "homophones"):
            assert (recipe / "data" / dset / name).is_file(), (dset, name)
        for name in ("wav.scp", "text", "utt2prev", "homophones"):
            assert (recipe / "dump" / "raw" / dset / name).is_file(), (dset, name)
        for source in ("prev_gt", "gen_title"):
            context = recipe / "dump" / "context" / dset / source
            for name in ("text", "emb_mean.ark", "emb_mean.scp", "meta.json"):
                assert (context / name).is_file(), (dset, source, name)
        assert (recipe / "dump" / "context" / dset / "gen_title" / "generation.jsonl").is_file()
        for name in ("report.json", "report.md"):
            assert (recipe / "dump" / "context" / dset / name).is_file(), (dset, name)
    assert (recipe / "exp" / "pretrain" / "valid.loss.ave.pth").is_file()
    for variant in VARIANTS:
        exp = recipe / "exp" / variant
        assert (exp / "config.yaml").is_file() and (exp / "valid.loss.ave.pth").exists()
        assert (exp / "images").is_dir() and (exp / "packed.zip").is_file()
        # how its context was made travels with the model
        spec = yaml.safe_load((exp / "context.yaml").read_text())
        assert spec["variant"] == variant and spec.get("pooling", "mean") == "mean"
        with zipfile.ZipFile(exp / "packed.zip") as packed:
            assert packed.read("model/context.yaml") == (exp / "context.yaml").read_bytes()
        config = yaml.safe_load((exp / "config.yaml").read_text())
        assert config["init_param"] == ["exp/pretrain/valid.loss.ave.pth"]
        conditions = ["gt"] + (["shuffled", "opposite", "hyp", "self"]
                               if variant in ("inject_gt", "gen_inject") else [])
        for condition in conditions:
            decode = exp / ("decode_test" + ("" if condition == "gt" else f"_{condition}"))
            for name in ("ref.trn", "hyp.trn", "result.txt", "score.json", "forced_choice"):
                assert (decode / name).is_file(), (variant, condition, name)
            score = json.loads((decode / "score.json").read_text())
            assert {"wer", "cer", "context_word_acc", "homophone_acc_P", "homophone_acc_W",
                    "homophone_acc_C"} <= set(score)
            assert score["intervals"]["homophone_acc_P"]["n"] > 0
    assert (recipe / "exp" / "gcaf" / "decode_test" / "student.scp").is_file()
    for variant in ("inject_gt", "gen_inject"):  # the session decode's own contexts
        assert (recipe / "exp" / variant / "decode_test_self" / "self" / "context.scp").is_file()
    for source in ("prev_hyp", "gen_title_hyp", "prev_gt_shuffled", "prev_gt_opposite"):
        assert (recipe / "dump" / "context" / "test" / source / "emb_mean.scp").is_file(), source
    for name in ("RESULTS.md", "RESULTS.json", "RESULTS.png"):
        assert (recipe / name).is_file(), name


def test_a_packed_model_transcribes_alone_elsewhere(recipe, full_run, tmp_path):
    """exp/gcaf/packed.zip copied alone to another dir, loaded by a fresh process offline
    (nothing of the recipe beside it: its upstream is exp/ssl/tiny_wav2vec2 in the
    recipe), transcribes test utterances as the recipe's decode did."""
    import shutil
    import sys

    shutil.copy(recipe / "exp" / "gcaf" / "packed.zip", tmp_path / "gcaf.zip")
    hyps = dict(line.split(maxsplit=1) if " " in line else (line, "")
                for line in (recipe / "exp" / "gcaf" / "decode_test" / "text").read_text().splitlines())
    wav_scp = dict(line.split(maxsplit=1) for line in
                   (recipe / "dump" / "raw" / "test" / "wav.scp").read_text().splitlines())
    utts = sorted(hyps)[:3]
    for utt in utts:  # the audio only, copied beside the zip
        shutil.copy(recipe / wav_scp[utt], tmp_path / (utt + os.path.splitext(wav_scp[utt])[1]))
    script = ("import glob, sys, soundfile\n"
              "from espnet_gcft.asr.inference import GCFTSpeech2Text\n"
              "s2t = GCFTSpeech2Text.from_pretrained('gcaf.zip', decode_mode='greedy')\n"
              "for utt in sys.argv[1:]:\n"
              "    wav, _ = soundfile.read(glob.glob(utt + '.*')[0], dtype='float32')\n"
              "    print(utt, s2t.transcribe(wav))\n")
    proc = subprocess.run([sys.executable, "-c", script, *utts], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ, HF_HUB_OFFLINE="1",
                                              GCFT_CACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = dict(line.split(maxsplit=1) if " " in line else (line, "")
               for line in proc.stdout.splitlines())
    # (the decode's text file is a Kaldi table: runs of spaces in a hypothesis become one)
    assert {u: " ".join(t.split()) for u, t in got.items()} == {utt: hyps[utt] for utt in utts}


@pytest.mark.parametrize("variant", ["inject_gt", "gen_inject"])
def test_the_cli_on_a_packed_model_elsewhere_gives_the_recipes_self_decode(recipe, full_run, tmp_path,
                                                                           variant):
    """The packed model copied alone to a temporary dir, run by the transcribe CLI with
    context self, writes exactly the text of the recipe's self decode (stage 7, the same
    sessions side by side: run.sh's self_batch_sessions)."""
    import shutil

    from gcft_helpers import run_cli

    shutil.copy(recipe / "exp" / variant / "packed.zip", tmp_path / "model.zip")
    batch = re.search(r"^self_batch_sessions=(\d+)", (recipe / "gcft.sh").read_text(), re.M).group(1)
    run_cli("espnet_gcft.bin.transcribe", "--model", tmp_path / "model.zip", "--data_dir",
            "dump/raw/test", "--context", "self", "--config", "conf/decode.yaml",
            "--batch_sessions", batch, "--output_dir", tmp_path / "out", cwd=recipe,
            env=dict(os.environ, HF_HUB_OFFLINE="1", GCFT_CACHE=str(tmp_path / "cache")))
    recipe_self = recipe / "exp" / variant / "decode_test_self"
    got = (tmp_path / "out" / "text").read_text()
    assert got == (recipe_self / "self" / "text").read_text()
    # and the recipe's scoring pass, fed those contexts, gave the same words (make_trn checks it)
    assert [line.split() for line in got.splitlines()] == \
        [line.split() for line in (recipe_self / "text").read_text().splitlines()]


def test_the_previous_sentence_chooses_the_spelling(recipe, full_run, monkeypatch):
    """The packed inject_gt's transcribe(wav, previous=[cue]) gives the recipe's gt decode of a
    P item and previous=[the other sense's cue] its opposite decode: the context the model
    makes from a previous text is the one whose spelling RESULTS scores. (The quick run's
    one-epoch model barely reads its context; on the demo's model the two spell most P items
    differently: bench/session_decode.py's cue_changes_spelling_percent.)"""
    import soundfile

    from espnet_gcft.asr.inference import GCFTSpeech2Text
    from espnet_gcft.scoring.homophones import read_homophones

    monkeypatch.chdir(recipe)
    raw = recipe / "dump" / "raw" / "test"
    words = dict((line.split(maxsplit=1) + [""])[:2] for line in (raw / "transcript").read_text().splitlines())
    utt2prev = dict(line.split() for line in (raw / "utt2prev").read_text().splitlines())
    wav_scp = dict(line.split(maxsplit=1) for line in (raw / "wav.scp").read_text().splitlines())
    # the opposite condition's pairing: each P item's donor, an item of the other sense
    donor = dict(line.split() for line in
                 (recipe / "dump" / "context" / "test" / "prev_gt_opposite" / "map").read_text().splitlines())
    decodes = {condition: dict((line.split(maxsplit=1) + [""])[:2] for line in
                               (recipe / "exp" / "inject_gt" / f"decode_test{suffix}" / "text")
                               .read_text().splitlines())
               for condition, suffix in (("gt", ""), ("opposite", "_opposite"))}
    items = [item for item in read_homophones(raw / "homophones").values() if item.kind == "P"]
    assert items
    s2t = GCFTSpeech2Text.from_pretrained(recipe / "exp" / "inject_gt" / "packed.zip",
                                          decode_mode="greedy")
    differ = 0
    for item in items:
        wav, _ = soundfile.read(wav_scp[item.utt], dtype="float32")
        cue, other = words[utt2prev[item.utt]], words[utt2prev[donor[item.utt]]]
        assert cue != other
        for condition, text in (("gt", cue), ("opposite", other)):
            # (stage 7 encodes 16 at a time: the same frames up to float rounding)
            differ += " ".join(s2t.transcribe(wav, previous=[text]).split()) != decodes[condition][item.utt]
    assert differ <= 0.01 * 2 * len(items), (differ, 2 * len(items))


def test_batched_decoding_agrees_with_one_by_one(recipe, full_run, monkeypatch):
    """Stage 7 encodes conf/decode.yaml's batch_size utterances at once (the upstream on each
    alone, the rest padded and masked): against each utterance encoded alone, >= 99% of the
    texts are identical and every forced choice is the same."""
    import soundfile

    from espnet_gcft.asr.inference import GCFTSpeech2Text
    from espnet_gcft.scoring.homophones import read_homophones, swap_word

    monkeypatch.chdir(recipe)
    assert yaml.safe_load((recipe / "conf" / "decode.yaml").read_text())["batch_size"] > 1
    raw = recipe / "dump" / "raw" / "test"
    wav_scp = dict(line.split(maxsplit=1) for line in (raw / "wav.scp").read_text().splitlines())
    references = dict((line.split(maxsplit=1) + [""])[:2] for line in (raw / "text").read_text().splitlines())
    items = read_homophones(raw / "homophones")
    for variant, source in (("baseline", None), ("inject_gt", "prev_gt"), ("gcaf", None)):
        decode = recipe / "exp" / variant / "decode_test"
        batched = dict((line.split(maxsplit=1) + [""])[:2] for line in (decode / "text").read_text().splitlines())
        chosen = {fields[0]: float(fields[1]) > float(fields[2]) for fields in
                  (line.split() for line in (decode / "forced_choice").read_text().splitlines())}
        contexts = kaldiio.load_scp(f"dump/context/test/{source}/emb_mean.scp") if source else None
        s2t = GCFTSpeech2Text.from_pretrained(recipe / "exp" / variant, decode_mode="greedy")
        same = 0
        for utt, path in wav_scp.items():
            wav, _ = soundfile.read(path, dtype="float32")
            frames, _ = s2t.encode(wav, None if contexts is None else contexts[utt], utt)
            same += " ".join((s2t.decode(frames)[0] or "").split()) == batched[utt]
            if utt in items:
                right, other = s2t.ctc_log_likelihood(
                    frames, [references[utt], swap_word(references[utt], items[utt])])
                assert (right > other) == chosen[utt], (variant, utt)
        assert same >= 0.99 * len(wav_scp), (variant, same, len(wav_scp))


def test_previous_texts_make_the_context_the_model_trained_on(recipe, full_run, monkeypatch):
    """From its context.yaml alone, an inject model makes, from the previous utterances'
    transcripts, the contexts that stages 3-4 made for it (the LLM's title, embedded)."""
    from espnet_gcft.asr.inference import GCFTSpeech2Text

    monkeypatch.chdir(recipe)
    raw = recipe / "dump" / "raw" / "test"
    words = dict((line.split(maxsplit=1) + [""])[:2] for line in (raw / "transcript").read_text().splitlines())
    utt2prev = dict(line.split() for line in (raw / "utt2prev").read_text().splitlines())
    utts = list(words)[:6]  # a session's start and the utterances after it
    assert utt2prev[utts[0]] == "-"
    previous = [[words[utt2prev[u]]] if utt2prev[u] != "-" else [] for u in utts]
    for variant, source in (("inject_gt", "prev_gt"), ("gen_inject", "gen_title")):
        s2t = GCFTSpeech2Text.from_pretrained(recipe / "exp" / variant, decode_mode="greedy")
        made = s2t.context_pipeline()(previous)
        trained_on = dict(kaldiio.load_scp(str(recipe / "dump" / "context" / "test" / source /
                                               "emb_mean.scp")))
        for utt, matrix in zip(utts, made):
            np.testing.assert_allclose(matrix, trained_on[utt], atol=1e-4, err_msg=f"{variant} {utt}")


def test_results_hold_every_variant_condition_and_interval(recipe, full_run):
    results = (recipe / "RESULTS.md").read_text()
    for variant in VARIANTS:
        assert f"| {variant} | gt |" in results
    for condition in ("shuffled", "opposite", "hyp", "self"):
        assert f"| inject_gt | {condition} |" in results
    assert "homophone_acc_P (n=" in results and "needs at inference" in results
    assert "![results](RESULTS.png)" in results
    assert "| gen_title |" in results and "| prev_gt |" in results  # the context report
    # what the run used, read from its outputs
    assert "LLM `smollm2-135m-instruct`" in results and "text encoder `all-minilm-l6-v2` (mean)" in results
    records = json.loads((recipe / "RESULTS.json").read_text())
    assert isinstance(records, list)
    keys = {"variant", "set", "condition", "metric", "value", "ci_low", "ci_high", "n",
            "commit", "seed", "command"}
    for record in records:
        assert keys <= set(record), record
        if record["metric"].startswith("homophone_acc"):
            assert 0 <= record["ci_low"] <= record["value"] <= record["ci_high"] <= 100, record
    by = {(r["variant"], r["condition"], r["metric"]): r for r in records}
    for variant in VARIANTS:
        for suffix in ("P", "W", "C"):
            assert (variant, "gt", f"homophone_acc_{suffix}") in by
    # paired tests against the baseline, not of the baseline with itself
    assert "p_vs_baseline" not in by[("baseline", "gt", "wer")]
    assert 0 <= by[("inject_gt", "gt", "homophone_acc_P")]["p_vs_baseline"] <= 1
    for variant in ("inject_gt", "gen_inject"):  # the deployable condition, tested like the rest
        self_p = by[(variant, "self", "homophone_acc_P")]
        assert self_p["n"] > 0 and 0 <= self_p["p_vs_baseline"] <= 1, self_p
    assert 0 <= by[("gcaf", "gt", "wer")]["p_vs_baseline"] <= 1
    assert ("gcaf", "gt", "student_teacher_cos") in by and ("gen_inject", "gt", "llm_has_right") in by
    # the collapse metric: the student's cosine to its teacher over the mean teacher's (0: collapsed)
    gain = by[("gcaf", "gt", "student_gain")]
    assert gain["n"] > 0 and gain["ci_low"] <= gain["value"] <= gain["ci_high"], gain


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
    assert "generating" not in log and "training it again" not in log
    # stage 1 rewrote the data dirs with the same content: they keep their time
    # stamps, so formatting and everything after it is still up to date
    for dset in SETS:
        assert f"dump/raw/{dset} is up to date" in log, dset
    for source in ("train/gen_title/text", "test/gen_title/emb_mean.scp", "test/prev_gt/emb_mean.scp",
                   "test/prev_hyp/emb_mean.scp", "test/gen_title_hyp/text",
                   "test/prev_gt_shuffled/emb_mean.scp"):
        assert f"dump/context/{source} is up to date" in log, source
    for variant in VARIANTS:
        assert f"exp/{variant} is up to date" in log, variant
        assert f"exp/{variant}/decode_test/score.json is up to date" in log, variant
    assert "exp/inject_gt/decode_test_hyp/score.json is up to date" in log


def _steps_run(log: str) -> dict:
    """What a rerun redid: generated sources, trained variants, decodes."""
    return {
        "generated": sorted(set(re.findall(r"generating (dump/context/\S+)", log))),
        "trained": sorted(set(re.findall(r"Stage 6: train (\w+) .*\n(?!.*is up to date)", log))),
        "decoded": sorted(d for d in set(re.findall(r"-> (exp/\S+/decode_\S+)\n", log))
                          if f"{d}/score.json is up to date" not in log),
    }


def test_a_changed_option_redoes_exactly_the_steps_it_feeds(recipe, full_run, tmp_path):
    """Generation length, a training config's content, the inference config: each redoes its steps."""
    copy = copy_recipe(tmp_path, recipe, outputs=True)
    quick = list(QUICK)
    quick[quick.index("--gen_max_new_tokens") + 1] = "7"
    # the LLM's generation length feeds generation, the gen_* embeddings, the variants
    # that read them and their decodes; nothing of baseline or inject_gt
    steps = _steps_run(run(copy, *quick, "--stage", "3", "--stop_stage", "7",
                           "--conditions", "").stdout)
    assert steps["generated"] == ["dump/context/dev/gen_title", "dump/context/test/gen_title",
                                  "dump/context/train/gen_title"]
    assert steps["trained"] == ["gcaf", "gen_inject"]
    assert steps["decoded"] == ["exp/gcaf/decode_test", "exp/gen_inject/decode_test"]
    # a training config's content: that variant only
    config = copy / "conf_quick" / "train_gcaf.yaml"
    config.write_text(config.read_text().replace("distill_weight: 0.3", "distill_weight: 0.5"))
    steps = _steps_run(run(copy, *quick, "--stage", "3", "--stop_stage", "7",
                           "--conditions", "").stdout)
    assert steps["generated"] == [] and steps["trained"] == ["gcaf"]
    assert steps["decoded"] == ["exp/gcaf/decode_test"]
    # the inference config: every decode, no training
    decode_conf = copy / "conf" / "decode.yaml"
    decode_conf.write_text(decode_conf.read_text() + "# changed\n")
    steps = _steps_run(run(copy, *quick, "--stage", "6", "--stop_stage", "7",
                           "--conditions", "").stdout)
    assert steps["trained"] == [] and len(steps["decoded"]) == len(VARIANTS)


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
    # on a copy: a rerun of stage 2 makes dump/raw newer than the run's contexts, which
    # later tests of the quick run expect to be up to date
    copy = copy_recipe(tmp_path, recipe, outputs=True)
    wav_scp = copy / "data" / "test" / "wav.scp"
    original = wav_scp.read_text()
    first_utt = original.split()[0]
    wav_scp.write_text(original.replace(original.split("\n")[0].split()[1], "/nonexistent.flac", 1))
    proc = run(copy, *QUICK, "--stage", "2", "--stop_stage", "2", check=False)
    assert proc.returncode != 0
    assert f"utterance {first_utt}" in proc.stdout + proc.stderr
    assert "/nonexistent.flac" in proc.stdout + proc.stderr
    wav_scp.write_text(original)
    run(copy, *QUICK, "--stage", "2", "--stop_stage", "2")


def test_jobs_are_numbered_from_one_for_espnet_runners(recipe, full_run):
    """The quick run's runner (test/fixtures/strict_run.sh) refuses job 0 as
    ESPnet's run.pl/queue.pl/slurm.pl do; every range it saw starts at 1."""
    calls = (recipe / "runner_calls.txt").read_text().splitlines()
    ranges = [call for call in calls if not call.startswith("single ")]
    assert any("generate.JOB.log" in call for call in ranges)  # --gen_nj 2
    assert any("decode.JOB.log" in call for call in ranges)
    assert all(re.match(r"JOB=1:[0-9]+ ", call) for call in ranges), ranges
    # stage 3: one generation job range for all sets (the hyp condition adds its own)
    assert sum(call.endswith(" dump/context/log/generate.JOB.log") for call in ranges) == 1, ranges


def test_stage_3_loads_the_llm_once_per_shard(recipe, full_run):
    """Stage 3 ran the three sets' generation in one process per shard (--gen_nj 2),
    each loading the LLM once, not once per set."""
    for index in (1, 2):
        log = (recipe / "dump" / "context" / "log" / f"generate.{index}.log").read_text()
        assert log.count("loading LLM smollm2-135m-instruct") == 1, log
        for dset in SETS:
            assert f"dump/context/{dset}/gen_title/shard.{index}: " in log, (dset, log)


def test_ddp_training_with_torchrun_through_the_recipe(recipe, full_run, tmp_path_factory):
    """ESPnet's DDP on the CPU (gloo), 2 ranks started by torchrun inside the recipe's
    own training step; the trained models decode."""
    from gcft_helpers import check_ddp_training

    copy = copy_recipe(tmp_path_factory.mktemp("ddp_repo"), recipe, outputs=True)
    variants = "baseline"  # the variant that stopped at its first DDP step (test_model.py has why)
    run_recipe(copy, *QUICK, "--stage", "5", "--stop_stage", "7", "--expdir", "exp_ddp",
               "--pretrain_config", "", "--variants", variants, "--train_procs", "2",
               "--conditions=")
    reports = check_ddp_training(copy / "exp_ddp", variants.split())
    for variant in variants.split():
        log = (copy / "exp_ddp" / variant / "train.log").read_text()
        assert "torch.distributed.run" in log.splitlines()[0]
        score = json.loads((copy / "exp_ddp" / variant / "decode_test" / "score.json").read_text())
        assert score["n_utterances"] > 0 and "wer" in score
        assert reports[variant]["batches_run"] >= 2


def test_sweep_of_audio_and_row_contexts_reuses_the_run(recipe, full_run, tmp_path_factory, monkeypatch):
    """sweep.sh --jobs 2 on the quick run: two points (N = 2 previous utterances as rows,
    alpha 1.0 and 0.5) of audio_inject and gcaf side by side in tagged exp dirs, a
    degraded decode, RESULTS_sweep with the untagged gcaf as a reference point; nothing
    the run already made is made again, and the rows context both points read is made
    once."""
    copy = copy_recipe(tmp_path_factory.mktemp("sweep_repo"), recipe, outputs=True)
    proc = subprocess.run(
        ["./sweep.sh", "--variants", "audio_inject gcaf", "--grid", "prev_mode=rows",
         "--grid", "num_prev=2", "--grid", "distill_weight=1.0 0.5", "--jobs", "2",
         "--reference", "gcaf:prev_mode=join,num_prev=1,distill_weight=0.3",
         "--", *QUICK, "--conditions", "replaced0.5"],
        cwd=copy, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the points ran side by side, each output line prefixed with its point
    tags = ("rows_n2_dw1.0", "rows_n2_dw0.5")
    logs = {tag: "".join(line[len(tag) + 3:] + "\n" for line in proc.stdout.splitlines()
                         if line.startswith(f"[{tag}] ")) for tag in tags}
    for tag in tags:
        steps = _steps_run(logs[tag])
        assert steps["generated"] == [] and steps["trained"] == ["audio_inject", "gcaf"], tag
        assert f"-> exp/gcaf_{tag}\n" in logs[tag]
        assert "exp/pretrain is up to date" in logs[tag]
        assert f"Sweep point {tag} finished" in proc.stdout
    rows = "dump/context/train/prev_audio_rows2/emb_mean.scp"
    made = [tag for tag in tags if re.search(rf"{rows}: \d+ utterances", logs[tag])]
    found = [tag for tag in tags if f"{rows} is up to date" in logs[tag]]
    assert len(made) == 1 and found == [t for t in tags if t not in made], \
        {tag: logs[tag][-2000:] for tag in tags}
    monkeypatch.chdir(copy)  # scp files name their arks relative to the recipe dir, as ESPnet's do
    for dset in SETS:
        rows = kaldiio.load_scp(str(copy / "dump" / "context" / dset / "prev_audio_rows2"
                                    / "emb_mean.scp"))
        utt2prev = dict(line.split() for line in
                        (copy / "dump" / "raw" / dset / "utt2prev").read_text().splitlines())
        audio = kaldiio.load_scp(str(copy / "dump" / "context" / dset / "prev_audio" / "emb_mean.scp"))
        for utt, prev in utt2prev.items():
            # rows: the audio contexts of p(i) and i, oldest first
            expected = [m for m in (audio[prev] if prev != "-" else None, audio[utt]) if m is not None]
            np.testing.assert_array_equal(rows[utt], np.concatenate(expected))
    config = yaml.safe_load((copy / "exp" / "gcaf_rows_n2_dw1.0" / "config.yaml").read_text())
    assert config["model_conf"]["distill_weight"] == 1.0
    audio_config = yaml.safe_load((copy / "exp" / "audio_inject_rows_n2_dw1.0" / "config.yaml").read_text())
    assert audio_config["model_conf"]["context_dim"] == 128  # the tiny upstream's width, not 384
    assert (copy / "exp" / "audio_inject_rows_n2_dw1.0" / "decode_test_replaced0.5" / "score.json").is_file()
    records = json.loads((copy / "RESULTS_sweep.json").read_text())
    points = {(r["variant"], r["point"]) for r in records}
    assert points == {(f"{v}_{tag}", tag) for v in ("audio_inject", "gcaf") for tag in tags} \
        | {("gcaf", "gcaf")}
    assert yaml.safe_load((copy / "exp" / "gcaf_rows_n2_dw0.5" / "config.yaml").read_text()
                          )["model_conf"]["distill_weight"] == 0.5
    acc = [r for r in records if r["metric"] == "homophone_acc_P" and r["variant"] != "gcaf"]
    assert acc and all("ci_low" in r and "p_vs_baseline" in r for r in acc)
    assert (copy / "RESULTS_sweep.png").stat().st_size > 0
    assert "## audio_inject on test" in (copy / "RESULTS_sweep.md").read_text()
    # each point's RESULTS header names its own alpha and context source, not the untagged
    # run's (exp/gcaf: 0.3, gen_title)
    for tag, alpha in zip(tags, ("1.0", "0.5")):
        header = (copy / "exp" / "sweep" / tag / "RESULTS.md").read_text().split("\n\n")[1]
        assert f"distill_weight {alpha};" in header, header
        assert "context source `gen_title_rows2`" in header, header


def test_train_degrade_trains_on_degraded_contexts_made_once(recipe, full_run, tmp_path, monkeypatch):
    """--train_degrade dropped0.5: the training and validation contexts of the variant's
    source are the degraded copy (half of them L = 0, the rest the source's rows), the
    variant trains on it, and a rerun finds the copy up to date."""
    copy = copy_recipe(tmp_path, recipe, outputs=True)
    common = [*QUICK, "--stage", "6", "--stop_stage", "6", "--variants", "gcaf", "--tag", "td",
              "--train_degrade", "dropped0.5"]
    first = run(copy, *common)
    assert "Stage 6: train gcaf (conf_quick/train_gcaf.yaml, context: gen_title_dropped0.5" in first.stdout
    monkeypatch.chdir(copy)  # the scp files name their arks relative to the recipe dir
    for dset in ("train", "dev"):
        degraded = kaldiio.load_scp(str(copy / "dump" / "context" / dset / "gen_title_dropped0.5"
                                        / "emb_mean.scp"))
        source = kaldiio.load_scp(str(copy / "dump" / "context" / dset / "gen_title" / "emb_mean.scp"))
        kept = [u for u in source if len(degraded[u])]
        dropped = [u for u in source if len(source[u]) and not len(degraded[u])]
        assert kept and dropped, dset
        assert all(np.array_equal(degraded[u], source[u]) for u in kept)
    config = yaml.safe_load((copy / "exp" / "gcaf_td" / "config.yaml").read_text())
    assert any("gen_title_dropped0.5/emb_mean.scp" in path for path, _, _ in config["train_data_path_and_name_and_type"])
    again = run(copy, *common)
    assert "dump/context/train/gen_title_dropped0.5/emb_mean.scp is up to date" in again.stdout
    assert "exp/gcaf_td is up to date" in again.stdout


def test_ner_run_fine_tunes_the_asr_pretraining(recipe, full_run, tmp_path_factory, monkeypatch):
    """./run.sh --task ner after the asr run: no pretraining of its own; its variants start
    from the asr run's exp/pretrain (--init_model), every parameter taken over but the CTC
    output layer, since the NER token list is another (sentencepiece, the tags whole, built
    through bin/spm_train); it decodes, a rerun finds the training up to date and one
    starting from another model trains again."""
    import torch

    from espnet_gcft.asr.task import GCFTTask
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    copy = copy_recipe(tmp_path_factory.mktemp("ner_repo"), recipe, outputs=True)
    # two sessions per split (the asr run's six give the quick run its time; these add to it)
    args = [*QUICK, "--local_data_opts", "--max_sessions 2", "--pretrain_config", "", "--task", "ner",
            "--variants", "baseline", "--train_args", "--max_epoch 1", "--conditions="]
    # the baseline reads no context: stages 3-4 (generation, embedding) are left out
    run(copy, *args, "--stop_stage", "2")
    log = run(copy, *args, "--stage", "5", "--stop_stage", "7").stdout
    init = "exp/pretrain/valid.loss.ave.pth"
    assert (f"every variant starts from {init} (--init_model, no shared pretraining); another "
            "token list: ctc.ctc_lo,decoder.embed,decoder.output_layer keep their random init") in log
    assert not (copy / "exp_ner" / "pretrain").exists()
    asr_tokens = (copy / "data" / "token_list" / "char" / "tokens.txt").read_text().split()
    ner_tokens = (copy / "data" / "token_list" / "bpe60_ner" / "tokens.txt").read_text().split()
    # sentencepiece pieces, each tag one token
    assert {"PERSON", "PLACE", "ORG", "FILL", "SEP"} <= set(ner_tokens) and asr_tokens != ner_tokens
    exp = copy / "exp_ner" / "baseline"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["init_param"] == [f"{init}:::ctc.ctc_lo,decoder.embed,decoder.output_layer"]
    assert json.loads((exp / "decode_test_ner" / "score.json").read_text())["n_utterances"] > 0
    # ESPnet's loading of that --init_param into the NER model: everything but ctc.ctc_lo is
    # the asr pretraining's (its decoder-free CTC model has no decoder layers)
    monkeypatch.chdir(copy)
    model, _ = GCFTTask.build_model_from_file(exp / "config.yaml")
    load_pretrained_model(config["init_param"][0], model, ignore_init_mismatch=False)
    pretrained = torch.load(init, map_location="cpu")
    loaded = model.state_dict()
    assert set(pretrained) == set(loaded)
    for key, value in pretrained.items():
        if key.startswith("ctc.ctc_lo"):
            assert loaded[key].shape[0] == len(ner_tokens) != value.shape[0], key
        else:
            assert torch.equal(loaded[key], value), key
    rerun = run(copy, *args, "--stage", "6", "--stop_stage", "6").stdout
    assert "exp_ner/baseline is up to date" in rerun
    # another model to start from: the training is redone
    other = run(copy, *args, "--init_model", "exp/baseline/valid.loss.ave.pth",
                "--stage", "6", "--stop_stage", "6").stdout
    assert "exp_ner/baseline is out of date (its options or inputs changed)" in other
    assert yaml.safe_load((exp / "config.yaml").read_text())["init_param"] == [
        "exp/baseline/valid.loss.ave.pth:::ctc.ctc_lo,decoder.embed,decoder.output_layer"]
