"""Builders for the test fixtures: tiny SSL model, tiny corpus, configs, batches."""

import os
from pathlib import Path
import shutil
import subprocess
import sys
import time
from typing import Dict, Optional

import kaldiio
import numpy as np
import soundfile
import torch
import yaml

CONTEXT_DIM = 8
TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "e", "<space>", "<sos/eos>"]
# Two sessions (LibriSpeech-style ids <spk>-<chapter>-<NNNN>), four utterances each.
UTTERANCES = {
    "1-10-0000": "abc de",
    "1-10-0001": "bad cab",
    "1-10-0002": "dead",
    "1-10-0003": "a bed",
    "2-20-0000": "cede",
    "2-20-0001": "ace bead",
    "2-20-0002": "dab",
    "2-20-0003": "bee cad",
}


def make_tiny_wav2vec2(out_dir: Path) -> Path:
    """A randomly initialised 2-layer wav2vec2 (hidden 32) with its feature extractor."""
    from espnet_gcft.recipe.tiny_ssl import build_wav2vec2

    return build_wav2vec2(out_dir, {"vocab_size": 8})


def make_tiny_s3prl_checkpoint(path: Path, family: str) -> Path:
    """A randomly initialised 2-layer (hidden 32) checkpoint in S3PRL's converted format of
    the wav2vec2, hubert or wavlm family, as S3PRL's hub entries download them."""
    from dataclasses import asdict

    conv = "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2"  # stride 320, as the base models
    size = dict(encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64,
                encoder_attention_heads=2, conv_feature_layers=conv, conv_pos=16, conv_pos_groups=4)
    torch.manual_seed(0)
    if family == "wav2vec2":
        from s3prl.upstream.wav2vec2.wav2vec2_model import (AudioPretrainingConfig, Wav2Vec2Config,
                                                            Wav2Vec2Model)

        config = Wav2Vec2Config(**size, final_dim=16, latent_vars=8, latent_groups=2)
        state = {"task_cfg": asdict(AudioPretrainingConfig()), "model_cfg": asdict(config),
                 "model_weight": Wav2Vec2Model(config).state_dict()}
    elif family == "hubert":
        from s3prl.upstream.hubert.hubert_model import (HubertConfig, HubertModel,
                                                        HubertPretrainingConfig)

        config, task = HubertConfig(**size, final_dim=16, label_rate=50), HubertPretrainingConfig()
        symbols = [["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(10)]]
        state = {"task_cfg": asdict(task), "model_cfg": asdict(config), "dictionaries_symbols": symbols,
                 "model_weight": HubertModel(config, task, symbols).state_dict()}
    else:
        from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

        config = dict(size, relative_position_embedding=True, num_buckets=32, max_distance=64,
                      gru_rel_pos=True)
        state = {"cfg": config, "model": WavLM(WavLMConfig(config)).state_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def make_tiny_corpus(root: Path, seed: int = 0) -> Path:
    """Write ``root/data`` (wav.scp, text, utt2spk, spk2utt, utt2prev) and contexts.

    Contexts: ``root/context/emb.{ark,scp}`` with one ``(1, C)`` matrix per
    utterance and ``(0, C)`` for the first of each session; ``root/tokens.txt``.
    """
    rng = np.random.default_rng(seed)
    data = root / "data"
    (root / "wav").mkdir(parents=True)
    data.mkdir()
    wav_lines, text_lines, spk_lines, prev_lines = [], [], [], []
    previous: Dict[str, str] = {}
    for utt, text in UTTERANCES.items():
        seconds = 0.6 + 0.1 * len(text) / 2
        samples = int(16000 * seconds)
        t = np.arange(samples) / 16000
        wave = 0.1 * np.sin(2 * np.pi * (200 + 40 * len(text)) * t)
        wave = wave + 0.01 * rng.standard_normal(samples)
        path = root / "wav" / f"{utt}.wav"
        soundfile.write(path, wave.astype(np.float32), 16000)
        spk, chapter, _ = utt.split("-")
        session = f"{spk}-{chapter}"
        wav_lines.append(f"{utt} {path}")
        text_lines.append(f"{utt} {text}")
        spk_lines.append(f"{utt} {session}")
        prev_lines.append(f"{utt} {previous.get(session, '-')}")
        previous[session] = utt
    for name, lines in (
        ("wav.scp", wav_lines),
        ("text", text_lines),
        ("utt2spk", spk_lines),
        ("utt2prev", prev_lines),
    ):
        (data / name).write_text("\n".join(lines) + "\n")
    sessions: Dict[str, list] = {}
    for line in spk_lines:
        utt, spk = line.split()
        sessions.setdefault(spk, []).append(utt)
    (data / "spk2utt").write_text(
        "".join(f"{s} {' '.join(u)}\n" for s, u in sessions.items())
    )
    (root / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    contexts = {
        utt: np.zeros((0, CONTEXT_DIM), np.float32)
        if prev == "-"
        else rng.standard_normal((1, CONTEXT_DIM)).astype(np.float32)
        for utt, prev in (line.split() for line in prev_lines)
    }
    write_contexts(root / "context" / "emb", contexts)
    return root


def write_contexts(prefix: Path, contexts: Dict[str, np.ndarray]) -> Path:
    """Write ``prefix.ark`` + ``prefix.scp``; return the scp path."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{prefix}.ark,{prefix}.scp") as writer:
        for utt, matrix in contexts.items():
            writer(utt, matrix)
    return Path(f"{prefix}.scp")


def train_config(
    wav2vec2_dir: Path,
    context_mode: str,
    context_dim: int = CONTEXT_DIM,
    ctc_weight: float = 0.3,
    student_conf: Optional[dict] = None,
    **model_conf,
) -> dict:
    """A training config (as a dict) for the tiny model in the given mode."""
    config = {
        "frontend": "s3prl",
        "frontend_conf": {
            "frontend_conf": {
                "upstream": "hf_wav2vec2_custom",
                "path_or_url": str(wav2vec2_dir),
            },
            "multilayer_feature": True,
        },
        "normalize": "utterance_mvn",
        "encoder": "transformer",
        "encoder_conf": {
            "output_size": 32,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 1,
            "input_layer": "conv2d2",
        },
        "decoder": "transformer",
        "decoder_conf": {"attention_heads": 2, "linear_units": 64, "num_blocks": 1},
        "model": "gcft",
        "model_conf": {"ctc_weight": ctc_weight, "context_mode": context_mode, **model_conf},
        "context_fusion": "cross_attention",
        "context_fusion_conf": {"attention_dim": 16, "num_heads": 2},
        "context_student": "pooling_fc",
        "context_student_conf": student_conf or {"pooling": "attention"},
        "token_type": "char",
        "token_list": list(TOKENS),
        "seed": 0,
    }
    if context_mode != "none":
        config["model_conf"]["context_dim"] = context_dim
    return config


def build_model(config: dict, tmp_path: Path):
    """Build a model through GCFTTask's parser and build_model, from a YAML file."""
    from espnet_gcft.asr.task import GCFTTask

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    args = GCFTTask.get_parser().parse_args(["--config", str(path)])
    torch.manual_seed(0)
    return GCFTTask.build_model(args), args


def make_batch(batch: int = 2, context_dim: int = CONTEXT_DIM, context_rows=(1, 0)):
    """A padded batch: speech, text and a (B, L, C) context with given row counts."""
    gen = torch.Generator().manual_seed(0)
    speech_lengths = torch.tensor([16000, 12000][:batch])
    speech = torch.randn(batch, int(speech_lengths.max()), generator=gen) * 0.1
    text = torch.tensor([[2, 3, 4, 7, 5], [3, 2, 5, -1, -1]][:batch])
    text_lengths = torch.tensor([5, 3][:batch])
    rows = max(max(context_rows), 1)
    context = torch.zeros(batch, rows, context_dim)
    for i, n in enumerate(context_rows[:batch]):
        context[i, :n] = torch.randn(n, context_dim, generator=gen)
    context_lengths = torch.tensor(context_rows[:batch])
    return dict(
        speech=speech,
        speech_lengths=speech_lengths,
        text=text,
        text_lengths=text_lengths,
        context=context,
        context_lengths=context_lengths,
        utt_id=[f"utt{i}" for i in range(batch)],
    )


def run_cli(module: str, *args, check: bool = True, cwd=None,
            env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args...`` as a user would (offline; ``env``: instead of
    this process's environment)."""
    env = dict(os.environ if env is None else env, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs2" / "mini_gcft" / "gcft1"
VARIANTS = ["baseline", "inject_gt", "gen_inject", "gcaf"]
SETS = ["train", "dev", "test"]
# A quick mini recipe: 6 sessions per split (the first 6 test sessions hold a P/W item of
# every sense, so every item has an `opposite` cue), one prompt, short generations,
# one epoch of pretraining and of each variant.
QUICK = ["--local_data_opts", "--max_sessions 6", "--prompts", "title", "--context_prompt", "title",
         "--gen_max_new_tokens", "8", "--train_jobs", "2", "--train_config_dir", "conf_quick",
         "--pretrain_config", "conf_quick/pretrain.yaml", "--gen_nj", "2"]
# The quick run's job runner: refuses job 0 like ESPnet's run.pl (numbering from 1).
STRICT_RUNNER = Path(__file__).resolve().parent / "fixtures" / "strict_run.sh"


def copy_recipe(root: Path, source: Path = RECIPE, outputs: bool = False, quick: bool = True) -> Path:
    """A recipe under ``root`` in the repository layout (``egs2/<corpus>/gcft1``).

    ``tools`` and ``egs2/TEMPLATE`` are links to this checkout (made once per
    ``root``). With ``outputs`` the recipe's data, dump and exp dirs are copied
    too; with ``quick`` one-epoch copies of its training configs go to conf_quick.
    """
    if not (root / "tools").exists():
        (root / "tools").symlink_to(ROOT / "tools")
        (root / "egs2").mkdir()
        (root / "egs2" / "TEMPLATE").symlink_to(ROOT / "egs2" / "TEMPLATE")
    target = root / "egs2" / source.parent.name / source.name
    ignored = () if outputs else ("data", "dump", "exp", "RESULTS*.md", "downloads")
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(*ignored))
    quick_conf = target / "conf_quick"
    if quick and not quick_conf.exists():
        quick_conf.mkdir()
        for name in sorted(p.stem for p in (target / "conf").glob("*.yaml")
                           if p.stem.startswith("train_") or p.stem == "pretrain"):
            config = yaml.safe_load((target / "conf" / f"{name}.yaml").read_text())
            config.update(max_epoch=1, keep_nbest_models=1)
            (quick_conf / f"{name}.yaml").write_text(yaml.safe_dump(config))
    return target


def run_recipe(recipe: Path, *args, check: bool = True, env: Optional[dict] = None):
    """``./run.sh args...`` in a recipe dir; raises with the output tail on failure."""
    env = dict(env or os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"run.sh {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def start_recipe(recipe: Path, log_path: Path, *args) -> subprocess.Popen:
    """``./run.sh args...`` in the background and in its own process group (a test can
    kill it with all its jobs at once), its output going to ``log_path``."""
    with open(log_path, "w") as log:
        return subprocess.Popen(["./run.sh", *args], cwd=recipe, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))


def wait_for_log(proc: subprocess.Popen, log_path: Path, text: str, timeout: float = 60) -> bool:
    """Wait until ``text`` is in the log of the running ``proc``: True, or False if the
    run ended first; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"{text!r} not logged in {timeout} s:\n{log_path.read_text()[-2000:]}"
        time.sleep(0.1)
    return True


def check_ddp_training(exp: Path, variants) -> dict:
    """What every rank of a 2-rank DDP training wrote (asr.ddp_audit), checked:
    both ranks ran the same number of batches, different utterances at every
    step, and ended with identical parameters. Returns {variant: rank-0 report}."""
    import json

    reports = {}
    for variant in variants:
        ranks = [json.loads((exp / variant / "ddp" / f"rank{k}.json").read_text()) for k in (0, 1)]
        assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
        assert ranks[0]["batches_run"] == ranks[1]["batches_run"] > 0, variant
        assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) > 0
        for step, (first, second) in enumerate(zip(ranks[0]["batches"], ranks[1]["batches"])):
            assert first and second, (variant, step)
            assert not set(first) & set(second), (variant, step, first, second)
        assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"], variant
        reports[variant] = ranks[0]
    return reports
