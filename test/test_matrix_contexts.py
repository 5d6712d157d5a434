"""The experiment matrix's contexts: degraded contexts, previous utterances as rows, audio context."""

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from espnet_gcft.context.rows import RowsError, chain, stack_rows
from espnet_gcft.recipe.conditions import ConditionError, degraded_pairing, parse_degraded, sessions_of
from gcft_helpers import run_cli, write_contexts

# two sessions of four utterances, one of one
UTT2PREV = {"a0": "-", "a1": "a0", "a2": "a1", "a3": "a2",
            "b0": "-", "b1": "b0", "b2": "b1", "b3": "b2", "c0": "-"}


def contexts(dim=4):
    """One distinct (1, C) row per utterance (its index in every column), (0, C) for first ones."""
    return {u: (np.full((1, dim), i, np.float32) if p != "-" else np.zeros((0, dim), np.float32))
            for i, (u, p) in enumerate(UTT2PREV.items())}


def write_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "utt2prev").write_text("".join(f"{u} {p}\n" for u, p in UTT2PREV.items()))
    return data


@pytest.mark.parametrize("mode", ["replaced", "dropped"])
def test_degraded_touches_a_fraction_p_and_smaller_p_is_a_subset(mode):
    eligible = [u for u, p in UTT2PREV.items() if p != "-"]
    touched = {}
    for p in (0, 0.25, 0.5, 1):
        pairing = degraded_pairing(UTT2PREV, f"{mode}{p}", seed=1)
        touched[p] = {u for u, d in pairing.items() if d != u}
        assert len(touched[p]) == round(p * len(eligible))
        for utt in touched[p]:
            assert UTT2PREV[utt] != "-"  # a first utterance has nothing to degrade
            if mode == "dropped":
                assert pairing[utt] == "-"
            else:
                sessions = sessions_of(UTT2PREV)
                assert sessions[pairing[utt]] != sessions[utt] and UTT2PREV[pairing[utt]] != "-"
    assert touched[0] <= touched[0.25] <= touched[0.5] <= touched[1]


@pytest.mark.parametrize("bad", ["replaced", "replaced1.5", "dropped-0.1", "noisy0.5", "replaced0.5x"])
def test_degraded_condition_names_are_checked(bad):
    with pytest.raises(ConditionError, match=f"condition '{bad}'"):
        parse_degraded(bad)


def test_degraded_cli_drops_to_empty_rows_and_keeps_the_others(tmp_path):
    data = write_data(tmp_path)
    source = tmp_path / "prev_gt"
    write_contexts(source / "emb_mean", contexts())
    (source / "text").write_text("".join(f"{u} text of {u}\n" for u in UTT2PREV))
    out = tmp_path / "prev_gt_dropped0.5"
    run_cli("espnet_gcft.bin.context_condition", "--condition", "dropped0.5", "--data_dir", data,
            "--source_dir", source, "--scp_name", "emb_mean.scp", "--out_dir", out)
    got = kaldiio.load_scp(str(out / "emb_mean.scp"))
    mapping = dict(line.split() for line in (out / "map").read_text().splitlines())
    original = contexts()
    dropped = [u for u, d in mapping.items() if d == "-"]
    assert len(dropped) == 3  # half of the 6 utterances with a previous one, rounded
    for utt in UTT2PREV:
        if utt in dropped:
            assert got[utt].shape == (0, 4)
        else:
            np.testing.assert_array_equal(got[utt], original[utt])
    texts = dict(line.split(" ", 1) if " " in line else (line, "")
                 for line in (out / "text").read_text().splitlines())
    assert all(texts[u] == "" for u in dropped)
    bad = run_cli("espnet_gcft.bin.context_condition", "--condition", "dropped2", "--data_dir", data,
                  "--source_dir", source, "--out_dir", tmp_path / "bad", check=False)
    assert bad.returncode != 0 and "condition 'dropped2'" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_rows_are_the_previous_utterances_contexts_oldest_first(tmp_path):
    assert chain("a3", UTT2PREV, 3) == ["a1", "a2", "a3"]
    assert chain("a1", UTT2PREV, 3) == ["a0", "a1"]
    scp = write_contexts(tmp_path / "src" / "emb_mean", contexts())
    lengths = stack_rows(scp, UTT2PREV, 3, tmp_path / "rows3", "emb_mean")
    got = kaldiio.load_scp(str(tmp_path / "rows3" / "emb_mean.scp"))
    index = {u: i for i, u in enumerate(UTT2PREV)}
    # a3's rows: the contexts of a1 (text of a0), a2 (text of a1), a3 (text of a2)
    np.testing.assert_array_equal(got["a3"][:, 0], [index["a1"], index["a2"], index["a3"]])
    assert lengths == {"a0": 0, "a1": 1, "a2": 2, "a3": 3, "b0": 0, "b1": 1, "b2": 2, "b3": 3,
                       "c0": 0}
    assert [line.split()[0] for line in (tmp_path / "rows3" / "emb_mean.scp").read_text().splitlines()] \
        == list(UTT2PREV)
    assert sorted(p.name for p in (tmp_path / "rows3").iterdir()) == ["emb_mean.ark", "emb_mean.scp"]
    # N = 1 is the source itself
    one = kaldiio.load_scp(str(scp))
    stack_rows(scp, UTT2PREV, 1, tmp_path / "rows1", "emb_mean")
    for utt, matrix in kaldiio.load_scp(str(tmp_path / "rows1" / "emb_mean.scp")).items():
        np.testing.assert_array_equal(matrix, one[utt])


def test_rows_errors_name_the_utterance(tmp_path):
    partial = {u: m for u, m in contexts().items() if u != "a1"}
    scp = write_contexts(tmp_path / "src" / "emb_mean", partial)
    with pytest.raises(RowsError, match="no context for utterance a1 \\(a previous utterance of a2\\)"):
        stack_rows(scp, UTT2PREV, 2, tmp_path / "out", "emb_mean")
    assert not (tmp_path / "out" / "emb_mean.scp").exists()
    with pytest.raises(RowsError, match="at least 1"):
        stack_rows(scp, UTT2PREV, 0, tmp_path / "out", "emb_mean")


def frontend_config(wav2vec2_dir, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "frontend": "s3prl",
        "frontend_conf": {"frontend_conf": {"upstream": "hf_wav2vec2_custom",
                                            "path_or_url": str(wav2vec2_dir)},
                          "multilayer_feature": False}}))
    return config


def test_audio_context_is_the_layer_average_of_the_previous_audio(wav2vec2_dir, corpus, tmp_path):
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from espnet_gcft.asr.audio_context import UpstreamEncoder

    config = frontend_config(wav2vec2_dir, tmp_path)
    data = corpus / "data"
    out = tmp_path / "prev_audio"
    run_cli("espnet_gcft.bin.embed_audio_context", "--data_dir", data, "--config", config,
            "--pooling", "mean", "--out_dir", out, "--no_progress")
    got = kaldiio.load_scp(str(out / "emb_mean.scp"))
    utt2prev = dict(line.split() for line in (data / "utt2prev").read_text().splitlines())
    assert list(got) == [line.split()[0] for line in (data / "wav.scp").read_text().splitlines()]
    # the same computation by hand: the HF model's hidden states (all layers, as S3PRL
    # returns them), averaged over layers, then over frames, of the previous utterance
    model = Wav2Vec2Model.from_pretrained(wav2vec2_dir).eval()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(wav2vec2_dir)
    encoder = UpstreamEncoder(config, data / "wav.scp", pooling="mean")
    for utt, prev in utt2prev.items():
        if prev == "-":
            assert got[utt].shape == (0, encoder.dim)
            continue
        wave = extractor(encoder.waveform(prev), sampling_rate=16000,
                         return_tensors="pt").input_values
        with torch.no_grad():
            hidden = model(wave, output_hidden_states=True).hidden_states
        # over the frames S3PRL counts as valid, ceil(samples / 320): it pads the HF
        # model's frames by repeating the last one (what ESPnet's frontend sees too)
        frames = -(-len(encoder.waveform(prev)) // 320)
        states = torch.stack(hidden).mean(0)[0]
        pad = states[-1:].expand(frames - states.shape[0], -1)
        expected = torch.cat([states, pad])[:frames].mean(0).numpy()
        assert got[utt].shape == (1, encoder.dim)
        np.testing.assert_allclose(got[utt][0], expected, rtol=1e-3, atol=1e-4)
    # sequence pooling keeps every frame; cls does not exist for audio
    sequence = UpstreamEncoder(config, data / "wav.scp", pooling="sequence")
    first_prev = next(p for p in utt2prev.values() if p != "-")
    assert sequence([first_prev])[0].shape[0] > 1
    bad = run_cli("espnet_gcft.bin.embed_audio_context", "--data_dir", data, "--config", config,
                  "--pooling", "cls", "--out_dir", tmp_path / "cls", check=False)
    assert bad.returncode != 0 and "no [CLS] frame" in bad.stderr


def test_audio_context_from_a_checkpoint_uses_its_upstream(wav2vec2_dir, corpus, tmp_path):
    from espnet_gcft.asr.audio_context import AudioContextError, UpstreamEncoder

    config = frontend_config(wav2vec2_dir, tmp_path)
    data = corpus / "data"
    plain = UpstreamEncoder(config, data / "wav.scp")
    state = {f"frontend.upstream.{k}": v * 0.5 if v.is_floating_point() else v
             for k, v in plain.upstream.state_dict().items()}
    state["ctc.ctc_lo.weight"] = torch.zeros(3, 3)
    checkpoint = tmp_path / "model.pth"
    torch.save(state, checkpoint)
    loaded = UpstreamEncoder(config, data / "wav.scp", checkpoint=checkpoint)
    utt = next(iter(kaldiio.load_scp(str(corpus / "context" / "emb.scp"))))
    assert not np.allclose(loaded([utt])[0], plain([utt])[0])
    torch.save({"encoder.x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(AudioContextError, match="no frontend.upstream"):
        UpstreamEncoder(config, data / "wav.scp", checkpoint=tmp_path / "other.pth")
    with pytest.raises(AudioContextError, match="no audio for utterance nope"):
        plain(["nope"])
