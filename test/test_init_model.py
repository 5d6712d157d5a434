"""gcft.sh --init_model: ESPnet's --init_param for a run that starts from another run's
checkpoint, with the layers indexed by token left out when the token lists differ."""

import pytest
import yaml

from espnet_gcft.errors import InputError
from espnet_gcft.recipe.init_model import TOKEN_LAYERS, describe_init, init_param
from gcft_helpers import run_cli


def _checkpoint(tmp_path, tokens, inline=True):
    exp = tmp_path / "exp" / "pretrain"
    exp.mkdir(parents=True)
    (exp / "valid.loss.ave.pth").write_bytes(b"not read")
    if inline:
        token_list = tokens
    else:
        token_list = str(tmp_path / "asr_tokens.txt")
        (tmp_path / "asr_tokens.txt").write_text("".join(f"{t}\n" for t in tokens))
    (exp / "config.yaml").write_text(yaml.safe_dump({"token_list": token_list, "model": "gcft"}))
    return exp / "valid.loss.ave.pth"


def _tokens(tmp_path, name, tokens):
    path = tmp_path / name
    path.write_text("".join(f"{t}\n" for t in tokens))
    return path


ASR = ["<blank>", "<unk>", "<space>", "a", "b", "<sos/eos>"]
NER = ["<blank>", "<unk>", "<space>", "a", "b", "P", "E", "<sos/eos>"]


@pytest.mark.parametrize("inline", [True, False])
def test_the_same_token_list_takes_every_parameter_over(tmp_path, inline):
    checkpoint = _checkpoint(tmp_path, ASR, inline)
    assert init_param(checkpoint, _tokens(tmp_path, "tokens.txt", ASR)) == str(checkpoint)


@pytest.mark.parametrize("tokens", [NER, ASR[:3] + ["b", "a"] + ASR[5:]])
def test_another_token_list_leaves_the_token_layers_out(tmp_path, tokens):
    """More tokens, or the same ones in another order: the rows would mean other tokens."""
    checkpoint = _checkpoint(tmp_path, ASR)
    assert init_param(checkpoint, _tokens(tmp_path, "tokens.txt", tokens)) == \
        f"{checkpoint}:::ctc.ctc_lo,decoder.embed,decoder.output_layer"
    assert TOKEN_LAYERS == ("ctc.ctc_lo", "decoder.embed", "decoder.output_layer")


def test_the_results_header_names_the_layers_left_at_random_init(tmp_path):
    checkpoint = _checkpoint(tmp_path, ASR)
    assert describe_init(str(checkpoint)) == f"`{checkpoint}`"
    assert describe_init(init_param(checkpoint, _tokens(tmp_path, "ner.txt", NER))) == (
        f"`{checkpoint}` (another token list: `ctc.ctc_lo`, `decoder.embed`, "
        "`decoder.output_layer` at random init)")


def test_errors_name_the_missing_file(tmp_path):
    tokens = _tokens(tmp_path, "tokens.txt", ASR)
    with pytest.raises(InputError, match="nowhere.pth: no such checkpoint"):
        init_param(tmp_path / "nowhere.pth", tokens)
    checkpoint = _checkpoint(tmp_path, ASR)
    (checkpoint.parent / "config.yaml").unlink()
    with pytest.raises(InputError, match="config.yaml: no training config beside the checkpoint"):
        init_param(checkpoint, tokens)
    (checkpoint.parent / "config.yaml").write_text("model: gcft\n")
    with pytest.raises(InputError, match="config.yaml: no token_list"):
        init_param(checkpoint, tokens)


def test_cli_prints_the_init_param_and_reports_bad_input(tmp_path):
    checkpoint = _checkpoint(tmp_path, ASR)
    proc = run_cli("espnet_gcft.bin.init_param", "--checkpoint", checkpoint,
                   "--token_list", _tokens(tmp_path, "ner.txt", NER))
    assert proc.stdout.strip() == f"{checkpoint}:::ctc.ctc_lo,decoder.embed,decoder.output_layer"
    proc = run_cli("espnet_gcft.bin.init_param", "--checkpoint", checkpoint,
                   "--token_list", tmp_path / "absent.txt", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("absent.txt: no such token list")


def test_spm_train_keeps_the_tags_whole(tmp_path):
    """Stage 2's bpe token list: sentencepiece trained through the recipe's CLI, the NER tags
    as user-defined symbols (one token each); a malformed flag is an error naming it."""
    import sentencepiece as spm

    text = tmp_path / "train_text"
    text.write_text("".join(f"PERSON FILL {name} SEP went to PLACE FILL {town} SEP\n"
                            for name in ("maria", "tom", "sofia", "john")
                            for town in ("paris", "dublin", "madrid")) * 4)
    prefix = tmp_path / "bpe"
    run_cli("espnet_gcft.bin.spm_train", f"--input={text}", "--vocab_size=30", "--model_type=unigram",
            f"--model_prefix={prefix}", "--character_coverage=1.0",
            "--user_defined_symbols=PERSON,PLACE,FILL,SEP")
    pieces = spm.SentencePieceProcessor(model_file=str(prefix) + ".model").encode(
        "PERSON FILL maria SEP", out_type=str)
    assert {"PERSON", "FILL", "SEP"} <= set(pieces) and "P" not in pieces
    proc = run_cli("espnet_gcft.bin.spm_train", f"--input={text}", "vocab_size", check=False)
    assert proc.returncode == 1 and "got 'vocab_size'" in proc.stderr
