"""The corpus recipes' stages 1-7 on the fixture releases with the tiny CPU config.

Each recipe runs as a user would run its smoke test:
``./run.sh $(cat conf/tiny/args) --local_data_opts "--corpus_dir <fixture>" --stop_stage 7``.
The three runs go concurrently (two cores: most of their time is single-threaded
ESPnet start-up). SLUE-VoxPopuli trains all four variants; the other two train
baseline and gcaf, whose plumbing is the same across corpora; what differs per
corpus (data, segments, targets, scoring, blind test sets) is checked on each.
"""

import json
import os
from pathlib import Path
import subprocess
from typing import Dict

import pytest
import yaml

from gcft_helpers import ROOT, VARIANTS, copy_recipe

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUNS = {
    "slue-voxpopuli": ["--variants", " ".join(VARIANTS)],
    "slue-voxceleb": ["--variants", "baseline gcaf"],
    "librilight": ["--variants", "baseline gcaf", "--test_sets", "test_other"],
}


def read_table(path: Path) -> Dict[str, str]:
    return dict(line.split(maxsplit=1) if " " in line else (line, "")
                for line in path.read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """corpus -> recipe dir, after stages 1-7 of all three ran concurrently."""
    root = tmp_path_factory.mktemp("corpus_repo")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    procs = {}
    for corpus, extra in RUNS.items():
        recipe = copy_recipe(root, ROOT / "egs2" / corpus / "gcft1", quick=False)
        tiny = (recipe / "conf" / "tiny" / "args").read_text().split()
        args = [*tiny, "--local_data_opts", f"--corpus_dir {FIXTURES / corpus}",
                "--stop_stage", "7", *extra]
        log = open(recipe / "run.log", "w")
        procs[corpus] = (recipe, log, subprocess.Popen(["./run.sh", *args], cwd=recipe, env=env,
                                                       stdout=log, stderr=subprocess.STDOUT))
    failed = []
    for corpus, (recipe, log, proc) in procs.items():
        proc.wait()
        log.close()
        if proc.returncode != 0:
            failed.append(f"{corpus}:\n{(recipe / 'run.log').read_text()[-4000:]}")
    if failed:
        raise AssertionError("\n\n".join(failed))
    return {corpus: recipe for corpus, (recipe, _, _) in procs.items()}


def exp(recipe: Path) -> Path:
    return recipe / "exp" / "hf_wav2vec2_custom"  # run.sh: exp/<ssl>


def test_voxpopuli_scores_ner_and_decodes_the_blind_test(runs):
    recipe = runs["slue-voxpopuli"]
    for variant in VARIANTS:
        score = json.loads((exp(recipe) / variant / "decode_devel" / "score.json").read_text())
        for key in ("wer", "f1_micro", "f1_macro", "label_f1_micro", "label_f1_macro"):
            assert key in score, (variant, score)
        assert score["n_utterances"] == 3 and score["n_ref_entities"] == 3
        ref = (exp(recipe) / variant / "decode_devel" / "ref.trn").read_text()
        assert "ORG FILL the european parliament SEP" in ref
    test_ids = set(read_table(recipe / "data" / "test" / "wav.scp"))
    for variant in ("baseline", "gcaf"):
        decode = exp(recipe) / variant / "decode_test"
        hyps = (decode / "hyp.trn").read_text().splitlines()
        # "<words> (<spk>-<utt>)"; an unknown speaker is the utterance itself
        assert len(hyps) == len(test_ids)
        assert all(any(line.endswith(f"-{utt})") for line in hyps) for utt in test_ids)
        assert not (decode / "ref.trn").exists() and not (decode / "score.json").exists()
    # the blind test has no previous text: no contexts, and the variants that need one skip it
    for variant in ("inject_gt", "gen_inject"):
        assert not (exp(recipe) / variant / "decode_test").exists()
    assert not (recipe / "dump" / "context" / "test").exists()
    assert (recipe / "dump" / "context" / "train" / "gen_title" / "emb_mean.scp").is_file()
    # the LLM read transcripts, never NER tags
    prompts = (recipe / "dump" / "context" / "train" / "gen_title" / "generation.jsonl").read_text()
    assert "the commission met in brussels" in prompts and "FILL" not in prompts


def test_ssl_choice_reaches_collect_stats_and_training(runs):
    """run.sh --ssl <name> becomes the upstream of stage 5 and stage 6 (merged into the config)."""
    recipe = runs["slue-voxpopuli"]
    option = "--frontend_conf frontend_conf.upstream=hf_wav2vec2_custom"
    for log in (exp(recipe) / "stats_char" / "stats.log", exp(recipe) / "gcaf" / "train.log"):
        assert option in log.read_text().splitlines()[0], log
    config = yaml.safe_load((exp(recipe) / "gcaf" / "config.yaml").read_text())
    assert config["frontend_conf"]["frontend_conf"] == {
        "upstream": "hf_wav2vec2_custom", "path_or_url": "exp/ssl/tiny_wav2vec2"}


def test_voxceleb_cuts_segments_and_scores_sentiment(runs):
    recipe = runs["slue-voxceleb"]
    samples = read_table(recipe / "dump" / "raw" / "train" / "utt2num_samples")
    segments = read_table(recipe / "data" / "train" / "segments")
    assert set(samples) == set(segments)
    for utt, fields in segments.items():
        start, end = map(float, fields.split()[1:])
        assert abs(int(samples[utt]) - (end - start) * 16000) <= 1
    for variant in ("baseline", "gcaf"):
        score = json.loads((exp(recipe) / variant / "decode_devel" / "score.json").read_text())
        assert "macro_f1" in score and "wer" in score
        assert (exp(recipe) / variant / "decode_test" / "hyp.trn").is_file()
    ref = (exp(recipe) / "gcaf" / "decode_devel" / "ref.trn").read_text()
    assert ref.startswith("Negative the tour was exhausting")


def test_librilight_scores_wer_on_librispeech_sets(runs):
    recipe = runs["librilight"]
    for variant in ("baseline", "gcaf"):
        for dset in ("test_other",):
            score = json.loads((exp(recipe) / variant / f"decode_{dset}" / "score.json").read_text())
            assert score["n_utterances"] == 3 and "wer" in score
    # the chapter missing utterance 0002: the context of 0003 is the text of 0001
    prev = read_table(recipe / "dump" / "context" / "train_10h" / "prev_gt" / "text")
    text = read_table(recipe / "data" / "train_10h" / "transcript")
    assert prev["1088-134315-0003"] == text["1088-134315-0001"]
    assert prev.get("1088-134315-0000", "") == ""
