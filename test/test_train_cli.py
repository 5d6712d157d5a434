"""gcft_train and gcft_inference end to end on a tiny Kaldi data dir (real ESPnet)."""

from pathlib import Path
from typing import Optional

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from espnet_gcft.asr.context_data import ContextDataError
from espnet_gcft.asr.model import ContextError
from espnet_gcft.asr.task import GCFTTask
from espnet_gcft.bin import gcft_inference
from gcft_helpers import CONTEXT_DIM, UTTERANCES, build_model, run_cli, train_config, write_contexts

pytestmark = pytest.mark.slow


def _data_args(corpus: Path, context_scp: Optional[Path]):
    args = []
    for split in ("train", "valid"):
        for triple in (
            f"{corpus}/data/wav.scp,speech,sound",
            f"{corpus}/data/text,text,text",
            f"{context_scp},context,kaldi_ark" if context_scp else None,
        ):
            if triple:
                args += [f"--{split}_data_path_and_name_and_type", triple]
    return args


def _write_config(path: Path, wav2vec2_dir: Path, mode: str, **model_conf) -> Path:
    config = train_config(wav2vec2_dir, mode, **model_conf)
    config.pop("token_list")
    config.update(
        batch_type="sorted",
        batch_size=4,
        num_workers=0,
        num_att_plot=0,
        optim="adam",
        optim_conf={"lr": 0.001},
        use_tensorboard=False,
    )
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus, wav2vec2_dir):
    """collect-stats, then one epoch of distill training, then a resumed second epoch."""
    work = tmp_path_factory.mktemp("train")
    config = _write_config(work / "train.yaml", wav2vec2_dir, "distill")
    common = ["--config", config, "--token_list", corpus / "tokens.txt"]
    common += _data_args(corpus, corpus / "context" / "emb.scp")
    run_cli(
        "espnet_gcft.bin.gcft_train", *common, "--collect_stats", "true",
        "--train_shape_file", corpus / "data" / "wav.scp",
        "--valid_shape_file", corpus / "data" / "wav.scp",
        "--batch_type", "unsorted", "--output_dir", work / "stats",
    )
    shapes = [
        "--train_shape_file", work / "stats/train/speech_shape",
        "--valid_shape_file", work / "stats/valid/speech_shape",
    ]
    exp = work / "exp"
    first = run_cli("espnet_gcft.bin.gcft_train", *common, *shapes,
                    "--max_epoch", "1", "--output_dir", exp)
    first_epoch_mtime = (exp / "1epoch.pth").stat().st_mtime
    second = run_cli("espnet_gcft.bin.gcft_train", *common, *shapes,
                     "--max_epoch", "2", "--resume", "true", "--output_dir", exp)
    return dict(work=work, exp=exp, first=first, second=second,
                first_epoch_mtime=first_epoch_mtime)


def test_collect_stats_writes_context_shapes(trained):
    shape = (trained["work"] / "stats/train/context_shape").read_text().split("\n")
    rows = dict(line.split() for line in shape if line)
    assert rows["1-10-0000"] == f"0,{CONTEXT_DIM}" and rows["1-10-0001"] == f"1,{CONTEXT_DIM}"


def test_training_reports_loss_ctx(trained):
    log = trained["first"].stderr
    assert "1epoch results" in log and "loss_ctx=" in log
    # the student-teacher cosine of the validation set, every epoch
    results = next(line for line in log.splitlines() if "1epoch results" in line)
    assert "cos_ctx=" in results.split("[valid]")[1]
    assert (trained["exp"] / "1epoch.pth").is_file()


def test_resume_continues_from_the_checkpoint(trained):
    log = trained["second"].stderr
    assert "2epoch results" in log and "1epoch results" not in log
    assert (trained["exp"] / "2epoch.pth").is_file()
    assert (trained["exp"] / "1epoch.pth").stat().st_mtime == trained["first_epoch_mtime"]
    state = torch.load(trained["exp"] / "checkpoint.pth", weights_only=False)
    assert any(k.startswith("context_student.") for k in state["model"])


@pytest.mark.parametrize("mode", ["greedy", "beam"])
def test_inference_writes_a_decode_dir_from_audio_alone(trained, corpus, mode):
    out = trained["exp"] / f"decode_{mode}"
    run_cli(
        "espnet_gcft.bin.gcft_inference", "--model", trained["exp"],
        "--data_path_and_name_and_type", f"{corpus}/data/wav.scp,speech,sound",
        "--output_dir", out, "--decode_mode", mode, "--beam_size", "2",
    )
    for name in ("text", "token", "token_int", "score"):
        lines = (out / name).read_text().splitlines()
        assert [line.split()[0] for line in lines] == list(UTTERANCES), name
    for line in (out / "score").read_text().splitlines():
        assert np.isfinite(float(line.split()[1]))


@pytest.fixture(scope="module")
def inject_exp(tmp_path_factory, wav2vec2_dir):
    """An (untrained) inject model saved as an exp dir: config.yaml + checkpoint."""
    exp = tmp_path_factory.mktemp("inject_exp")
    model, args = build_model(train_config(wav2vec2_dir, "inject"), exp)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    return exp


def test_inject_inference_reads_context(inject_exp, corpus, tmp_path):
    out = tmp_path / "decode"
    gcft_inference.main([
        "--model", str(inject_exp), "--decode_mode", "greedy", "--output_dir", str(out),
        "--data_path_and_name_and_type", f"{corpus}/data/wav.scp,speech,sound",
        "--data_path_and_name_and_type", f"{corpus}/context/emb.scp,context,kaldi_ark",
    ])
    assert len((out / "text").read_text().splitlines()) == len(UTTERANCES)


def test_inject_inference_without_a_context_entry_writes_nothing(inject_exp, corpus, tmp_path,
                                                                capsys):
    contexts = dict(kaldiio.load_scp(str(corpus / "context" / "emb.scp")))
    contexts.pop("2-20-0002")
    scp = write_contexts(tmp_path / "partial", contexts)
    out = tmp_path / "decode"
    with pytest.raises(SystemExit):
        gcft_inference.main([
            "--model", str(inject_exp), "--output_dir", str(out),
            "--data_path_and_name_and_type", f"{corpus}/data/wav.scp,speech,sound",
            "--data_path_and_name_and_type", f"{scp},context,kaldi_ark",
        ])
    error = capsys.readouterr().err
    assert "gcft_inference: error:" in error and "no context for 1 utterance(s)" in error
    assert "2-20-0002" in error
    assert not out.exists()


def test_api_refuses_context_for_audio_only_models(trained, corpus):
    from espnet_gcft.asr.inference import GCFTSpeech2Text
    import soundfile

    s2t = GCFTSpeech2Text.from_pretrained(trained["exp"], decode_mode="greedy")
    wav, _ = soundfile.read(corpus / "wav" / "1-10-0001.wav", dtype="float32")
    assert isinstance(s2t.transcribe(wav), str)
    with pytest.raises(ContextError, match="audio\\s+alone"):
        s2t.transcribe(wav, context=np.zeros((1, CONTEXT_DIM), np.float32))


def _train_in_process(corpus, wav2vec2_dir, tmp_path, context_scp, mode="inject", **conf):
    config = _write_config(tmp_path / "train.yaml", wav2vec2_dir, mode, **conf)
    out = tmp_path / "exp"
    GCFTTask.main(cmd=[
        "--config", str(config), "--token_list", str(corpus / "tokens.txt"),
        *map(str, _data_args(corpus, context_scp)),
        "--train_shape_file", str(corpus / "data/wav.scp"),
        "--valid_shape_file", str(corpus / "data/wav.scp"),
        "--batch_type", "unsorted", "--output_dir", str(out),
    ])
    return out


def test_training_without_a_context_entry_names_it(corpus, wav2vec2_dir, tmp_path):
    contexts = dict(kaldiio.load_scp(str(corpus / "context" / "emb.scp")))
    contexts.pop("1-10-0003")
    scp = write_contexts(tmp_path / "partial", contexts)
    with pytest.raises(ContextDataError, match="1-10-0003"):
        _train_in_process(corpus, wav2vec2_dir, tmp_path, scp)
    assert not (tmp_path / "exp").exists()


def test_training_with_wrong_context_dim_names_both(corpus, wav2vec2_dir, tmp_path):
    with pytest.raises(ContextDataError, match=rf"1-10-0000.*dim {CONTEXT_DIM} != context_dim 5"):
        _train_in_process(corpus, wav2vec2_dir, tmp_path, corpus / "context" / "emb.scp",
                          mode="distill", context_dim=5)
    assert not (tmp_path / "exp").exists()


def test_training_with_nan_context_names_it(corpus, wav2vec2_dir, tmp_path):
    contexts = dict(kaldiio.load_scp(str(corpus / "context" / "emb.scp")))
    contexts["2-20-0001"] = contexts["2-20-0001"].copy()
    contexts["2-20-0001"][0, 2] = np.inf
    scp = write_contexts(tmp_path / "bad", contexts)
    with pytest.raises(ContextDataError, match="2-20-0001.*NaN or inf"):
        _train_in_process(corpus, wav2vec2_dir, tmp_path, scp)
    assert not (tmp_path / "exp").exists()


def test_distill_training_without_the_context_key_is_refused(corpus, wav2vec2_dir, tmp_path):
    with pytest.raises(ValueError, match="distill.*`context`.*--train_data_path_and_name_and_type"):
        _train_in_process(corpus, wav2vec2_dir, tmp_path, None, mode="distill")
    assert not (tmp_path / "exp").exists()


def test_inject_decode_depends_on_its_context(inject_exp, corpus, tmp_path):
    """The same inject model and audio with two context files: scores and forced choices differ."""
    contexts = dict(kaldiio.load_scp(str(corpus / "context" / "emb.scp")))
    flipped = write_contexts(tmp_path / "flipped", {u: -3.0 * m for u, m in contexts.items()})
    homophones = tmp_path / "homophones"
    homophones.write_text("1-10-0001 P 0 bad dab yes\n2-20-0003 W 1 cad cab no\n")
    outputs = {}
    for name, scp in (("own", corpus / "context" / "emb.scp"), ("flipped", flipped)):
        out = tmp_path / name
        gcft_inference.main([
            "--model", str(inject_exp), "--decode_mode", "greedy", "--output_dir", str(out),
            "--data_path_and_name_and_type", f"{corpus}/data/wav.scp,speech,sound",
            "--data_path_and_name_and_type", f"{scp},context,kaldi_ark",
            "--homophones", str(homophones), "--reference", f"{corpus}/data/text",
        ])
        outputs[name] = ((out / "score").read_text(), (out / "forced_choice").read_text())
    assert outputs["own"][0] != outputs["flipped"][0]
    assert outputs["own"][1] != outputs["flipped"][1]
    lines = outputs["own"][1].splitlines()
    assert [line.split()[0] for line in lines] == ["1-10-0001", "2-20-0003"]
    right, alternative = map(float, lines[0].split()[1:])
    assert right != alternative and right < 0 and alternative < 0


def test_distill_decode_writes_the_student_prediction(trained, corpus, tmp_path):
    out = tmp_path / "decode"
    run_cli("espnet_gcft.bin.gcft_inference", "--model", trained["exp"], "--decode_mode", "greedy",
            "--data_path_and_name_and_type", f"{corpus}/data/wav.scp,speech,sound",
            "--output_dir", out)
    students = dict(kaldiio.load_scp(str(out / "student.scp")))
    assert list(students) == list(UTTERANCES)
    assert all(m.shape == (1, CONTEXT_DIM) for m in students.values())


def test_probe_sense_reads_the_encoder_and_writes_its_record(trained, corpus, tmp_path):
    """probe_sense encodes the distill_topics sentences of two data dirs with a real model
    and writes probe_sense_acc with its interval over the test sentences."""
    import json
    import shutil

    dirs = {}
    for name in ("train", "test"):
        dirs[name] = tmp_path / name
        shutil.copytree(corpus / "data", dirs[name])
        (dirs[name] / "distill_topics").write_text(
            "".join(f"{utt} {'one' if utt.startswith('1-') else 'two'}\n" for utt in UTTERANCES))
    out = tmp_path / "probe" / "diagnostics.json"
    run_cli("espnet_gcft.bin.probe_sense", "--model", trained["exp"], "--train_data", dirs["train"],
            "--test_data", dirs["test"], "--out", out)
    record = json.loads(out.read_text())["probe_sense_acc"]
    assert record["n"] == len(UTTERANCES) and 0 <= record["ci_low"] <= record["value"] <= record["ci_high"]
    (dirs["test"] / "distill_topics").write_text(f"{next(iter(UTTERANCES))} three\n")
    refused = run_cli("espnet_gcft.bin.probe_sense", "--model", trained["exp"], "--train_data",
                      dirs["train"], "--test_data", dirs["test"], "--out", out, check=False)
    assert refused.returncode == 1 and "sense three has no training sentence" in refused.stderr
