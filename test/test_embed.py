"""Context embeddings with the embedded all-MiniLM-L6-v2, written as kaldiio ark/scp."""

import json

import kaldiio
import numpy as np
import pytest

from espnet_gcft.context.embed import EmbeddingError, TextEncoder, check_same_ids, embed_texts
from gcft_helpers import run_cli

TEXTS = {
    "u1": "the parliament voted on the budget",
    "u2": "",
    "u3": "fisheries policy — réforme, 東京",
    "u4": "a much longer sentence about the common agricultural policy and its reform",
    "u5": "trade",
}


@pytest.fixture(scope="module")
def encoders():
    return {p: TextEncoder("all-minilm-l6-v2", pooling=p) for p in ("cls", "mean", "sequence")}


@pytest.fixture(scope="module")
def embedded(encoders, tmp_path_factory):
    out = tmp_path_factory.mktemp("emb")
    for encoder in encoders.values():
        embed_texts(TEXTS, encoder, out, "hash0", batch_size=2, progress=False)
    return out


def test_shapes_dims_and_empty_rows(embedded, encoders):
    for pooling in ("cls", "mean", "sequence"):
        scp = embedded / f"emb_{pooling}.scp"
        assert [line.split()[0] for line in scp.read_text().splitlines()] == list(TEXTS)
        matrices = kaldiio.load_scp(str(scp))
        for utt, text in TEXTS.items():
            matrix = matrices[utt]
            assert matrix.dtype == np.float32 and matrix.ndim == 2 and matrix.shape[1] == 384
            if not text:
                assert matrix.shape[0] == 0
            elif pooling == "sequence":
                tokens = encoders["sequence"].tokenizer(text)["input_ids"]
                assert matrix.shape[0] == len(tokens)
            else:
                assert matrix.shape[0] == 1
    meta = json.loads((embedded / "meta.json").read_text())
    assert meta["emb_mean"]["dim"] == 384 and meta["emb_mean"]["empty"] == 1
    assert meta["emb_sequence"]["identity"]["source_hash"] == "hash0"
    assert not list(embedded.glob("*.partial*"))


def test_mean_pooling_is_the_mean_of_the_sequence(embedded):
    mean = kaldiio.load_scp(str(embedded / "emb_mean.scp"))
    sequence = kaldiio.load_scp(str(embedded / "emb_sequence.scp"))
    cls = kaldiio.load_scp(str(embedded / "emb_cls.scp"))
    for utt in ("u1", "u3", "u4"):
        np.testing.assert_allclose(mean[utt][0], sequence[utt].mean(axis=0), atol=1e-4)
        np.testing.assert_allclose(cls[utt][0], sequence[utt][0], atol=1e-4)


class StopAfter(TextEncoder):
    """The real encoder, stopped (like a killed job) after ``calls`` batches."""

    calls = 1

    def __call__(self, texts):
        if self.calls == 0:
            raise KeyboardInterrupt("stopped")
        self.calls -= 1
        return super().__call__(texts)


def test_interrupted_embedding_resumes_to_the_same_result(embedded, tmp_path):
    stopping = StopAfter("all-minilm-l6-v2", pooling="mean")
    with pytest.raises(KeyboardInterrupt):
        embed_texts(TEXTS, stopping, tmp_path, "hash0", batch_size=2, progress=False)
    assert (tmp_path / "emb_mean.partial.scp").is_file() and not (tmp_path / "emb_mean.scp").exists()
    summary = embed_texts(TEXTS, TextEncoder("all-minilm-l6-v2", pooling="mean"), tmp_path, "hash0",
                          batch_size=2, progress=False)
    assert summary.resumed == 2 and summary.embedded + summary.empty + summary.resumed == len(TEXTS)
    resumed = kaldiio.load_scp(str(tmp_path / "emb_mean.scp"))
    reference = kaldiio.load_scp(str(embedded / "emb_mean.scp"))
    assert list(resumed) == list(reference)
    for utt in TEXTS:
        np.testing.assert_allclose(resumed[utt], reference[utt], atol=1e-5)


class NaNEncoder(TextEncoder):
    def __call__(self, texts):
        out = super().__call__(texts)
        return [m * np.nan if t.startswith("trade") else m for t, m in zip(texts, out)]


def test_nan_output_names_the_utterance(tmp_path):
    with pytest.raises(EmbeddingError, match="u5.*NaN"):
        embed_texts(TEXTS, NaNEncoder("all-minilm-l6-v2", pooling="cls"), tmp_path, "h",
                    progress=False)


def test_ids_must_match_the_data_dir():
    with pytest.raises(EmbeddingError, match="u9 of ref is missing"):
        check_same_ids(TEXTS, {**TEXTS, "u9": "x"}, "ctx", "ref")
    with pytest.raises(EmbeddingError, match="u1 is not in ref"):
        check_same_ids(TEXTS, {"u2": ""}, "ctx", "ref")


def test_cli_checks_ids_against_the_data_dir(tmp_path, corpus):
    text = tmp_path / "text"
    text.write_text("1-10-0000\n1-10-0001 hello there\n")
    proc = run_cli("espnet_gcft.bin.embed_context", "--text", text, "--out_dir", tmp_path / "out",
                   "--data_dir", corpus / "data", check=False)
    assert proc.returncode == 1 and "1-10-0002" in proc.stderr and "missing" in proc.stderr
    run_cli("espnet_gcft.bin.embed_context", "--text", text, "--out_dir", tmp_path / "out",
            "--pooling", "cls", "--no_progress")
    matrices = kaldiio.load_scp(str(tmp_path / "out" / "emb_cls.scp"))
    assert matrices["1-10-0000"].shape == (0, 384) and matrices["1-10-0001"].shape == (1, 384)


def test_cli_embeds_several_sources_with_one_encoder_load(tmp_path):
    """Several --text/--out_dir pairs give what one call per source gives."""
    texts = {"a": "u1 the knight rode out\nu2\n", "b": "u1 a story of flour\nu2 pears\n"}
    for name, content in texts.items():
        (tmp_path / f"{name}.txt").write_text(content)
    run_cli("espnet_gcft.bin.embed_context", "--text", tmp_path / "a.txt", tmp_path / "b.txt",
            "--out_dir", tmp_path / "both_a", tmp_path / "both_b", "--no_progress")
    run_cli("espnet_gcft.bin.embed_context", "--text", tmp_path / "b.txt",
            "--out_dir", tmp_path / "only_b", "--no_progress")
    both = kaldiio.load_scp(str(tmp_path / "both_b" / "emb_mean.scp"))
    alone = kaldiio.load_scp(str(tmp_path / "only_b" / "emb_mean.scp"))
    for utt in ("u1", "u2"):
        np.testing.assert_allclose(both[utt], alone[utt], atol=1e-6)
    assert kaldiio.load_scp(str(tmp_path / "both_a" / "emb_mean.scp"))["u2"].shape == (0, 384)
    proc = run_cli("espnet_gcft.bin.embed_context", "--text", tmp_path / "a.txt", tmp_path / "b.txt",
                   "--out_dir", tmp_path / "x", check=False)
    assert proc.returncode == 2 and "2 --text file(s) but 1 --out_dir(s)" in proc.stderr
