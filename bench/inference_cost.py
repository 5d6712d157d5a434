"""What each variant costs: latency, peak memory and parameters of the deployed path.

Usage::

    tools/venv/bin/python bench/inference_cost.py [--repeats 3] [--utterances 4] [--seconds 4]
    tools/venv/bin/python bench/inference_cost.py --quick     # tiny sizes, for the test

Speech model: the recipes' ``conf/ssl_base/train_<variant>.yaml`` (for the
audio variants those of inject_gt and gcaf, ``context_dim`` = the upstream's
hidden size) built by ``GCFTTask.build_model``, with the upstream swapped for a wav2vec2-base-sized
model (12 layers, 768 hidden, 3072 FFN, base conv stack; random weights, saved
locally, loaded through S3PRL's ``hf_wav2vec2_custom``), saved as an exp dir
(``config.yaml`` + checkpoint) and loaded by ``GCFTSpeech2Text.from_pretrained``
with CTC greedy decoding, as ``gcft_inference`` does. Text contexts come from
the embedded all-MiniLM-L6-v2 (mean pooling, ``C = 384``), generations from the
embedded SmolLM2-135M-Instruct (the recipes' default prompt ``next_sentence``,
32 new tokens, greedy).

Per utterance, each variant runs the whole path a deployment runs:

- ``gen_inject``: LLM generation on the previous transcript, text encoding of
  the generation, speech model;
- ``inject_gt``: text encoding of the previous transcript, speech model;
- ``audio_inject``: a frozen copy of the same S3PRL upstream on the previous
  utterance's audio, its hidden states averaged over layers and then over
  frames (``(1, C)``, ``C`` = the upstream's hidden size), speech model;
- ``gcaf``, ``audio_gcaf``, ``baseline``: the speech model only.

All variants read the same ``--utterances`` synthetic 16 kHz waveforms of
``--seconds`` seconds (and the same fixed previous transcripts). Each variant
runs in its own process, which loads what its path needs, decodes one
utterance untimed (warm-up), then every utterance timed. It reports, as
medians over its utterances (all of the same length; a median resists other
work on a shared machine), the wall-clock latency per utterance
(``latency_ms``) and the CPU time the process spent on it (``cpu_ms``, which
other work on the machine barely changes); its peak resident memory
(``peak_mem_mb``: ``VmHWM``, so each variant's peak is its own, loading
included) and its resident memory after decoding (``rss_mb``: ``VmRSS``); and
the parameters it loaded (``params``: speech model + LLM + text encoder +
upstream copy, as its path needs). The processes are interleaved: each repeat
runs every variant once, in the order of ``VARIANTS`` in even repeats and
reversed in odd ones (slow drifts in the machine's load cancel, and baseline
and gcaf always run back to back). Every ``<figure>_ratio_<a>_<b>`` is
computed per repeat; the median over repeats is printed with its ``_spread``:
max - min of the per-repeat ratios. The per-variant figures (and
``load_s_<variant>``, the loading time, not in the latency) are medians over
repeats.

Baseline against gcaf in one process: a last process loads both speech models
the same way and decodes all utterances with each, ``--repeats`` rounds in
alternating order; ``latency_ratio_gcaf_baseline_same_process`` (and
``cpu_ratio_...``) is the median of the per-round ratios (spread: max - min).
Separate processes run at different moments of the machine's load; this
ratio compares the two models under the same load, so it separates the
models' difference from the machine's noise.

Training figure, in the same process: the baseline and the gcaf model, built
from the same configs, read their batches through ESPnet's data path
(``sound`` audio, ``text``, and for gcaf the ``context`` data key from the
kaldi ark written by ``embed_texts``, stage 4's writer); a step is batch read
+ forward + backward + gradient clipping + the configured Adam step, the CNN
frozen as configured. After one untimed step each, ``--train_steps`` steps per
model alternate (baseline first in even steps, gcaf first in odd ones);
``train_step_ratio_gcaf_baseline`` (wall clock) and
``train_step_cpu_ratio_gcaf_baseline`` are medians of the per-pair ratios,
their spreads the max - min.

Every process runs ``--threads`` torch threads (default 1): on a machine shared
with other work, two OpenMP threads per process wait on each other whenever a
core is taken, and a forward pass then swings several-fold from call to call.

The loading that inference used before the upstream was built from its config
alone: ``baseline_upstream_copy`` is the baseline loaded as ESPnet's
``Speech2Text`` loads it (the upstream built with its weight file read, then
ESPnet's ``S3prlFrontend`` keeping a deep copy of the upstream's initial weights,
which inference never reads; then the checkpoint loaded over it). It runs
beside the variants in every repeat; ``peak_mem_ratio_baseline_upstream_copy``
is its peak memory over the baseline's (before over after).

Prints bare ``name: value`` lines.
"""

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "egs2" / "TEMPLATE" / "gcft1" / "conf" / "ssl_base"
# In the order the processes run: baseline and gcaf side by side (the pair with targets).
VARIANTS = ("baseline", "gcaf", "audio_gcaf", "inject_gt", "audio_inject", "gen_inject")
# the baseline loaded as before the weightless build (the upstream's weights read and copied)
UPSTREAM_COPY = "baseline_upstream_copy"


def context_kind(variant: str):
    """What a variant's context embedding is made from: "text", "audio" or None (registry)."""
    from espnet_gcft.recipe.variants import get_variant

    context = get_variant(variant).context
    return None if context == "none" else "audio" if context == "prev_audio" else "text"


PROMPT = "next_sentence"  # gcft.sh's default context_prompt (first of its prompts)
TOKENS = ["<blank>", "<unk>"] + list("abcdefghijklmnopqrstuvwxyz'") + ["<space>", "<sos/eos>"]
SENTENCES = [
    "the parliament voted on the budget for next year",
    "we asked the commission to report on fisheries",
    "the climate package needs the support of every member state",
    "trade with our neighbours has grown since the last agreement",
    "roaming fees will end for all citizens next summer",
    "the banking union protects savers across the continent",
    "farmers expect a fair share of the agricultural budget",
    "gas supplies must be secured before the winter begins",
]
# wav2vec2-base (transformers' Wav2Vec2Config defaults, given explicitly).
BASE_SSL = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, conv_dim=[512] * 7, num_conv_pos_embeddings=128,
                num_conv_pos_embedding_groups=16)
QUICK_ENCODER = dict(output_size=32, attention_heads=2, linear_units=64, num_blocks=1)
QUICK_FUSION = dict(attention_dim=16, num_heads=2)
RESULT = "RESULT "


# ---------------------------------------------------------------- preparation


def prepare(work: Path, args: argparse.Namespace) -> dict:
    """Upstream, exp dirs, audio, data dir with the context ark; returns the plan."""
    import soundfile
    import torch
    from transformers import AutoConfig
    import yaml

    from espnet_gcft.asr.task import GCFTTask
    from espnet_gcft.context.backends import loadable_model
    from espnet_gcft.context.embed import TextEncoder, embed_texts
    from espnet_gcft.context.models import EMBEDDED_ENCODER, EMBEDDED_LLM, resolve_model
    from espnet_gcft.recipe.tiny_ssl import build_wav2vec2

    ssl_config = {"vocab_size": 8} if args.quick else BASE_SSL
    ssl_dir = build_wav2vec2(work / "ssl", ssl_config)
    loadable_model(EMBEDDED_LLM)  # the one-off GGUF conversion stays out of the children
    dims = {"text": AutoConfig.from_pretrained(resolve_model(EMBEDDED_ENCODER)[0]).hidden_size,
            "audio": AutoConfig.from_pretrained(ssl_dir).hidden_size}
    exps, built = {}, {}
    for variant in VARIANTS:
        from espnet_gcft.recipe.variants import get_variant

        source = context_kind(variant)
        config = yaml.safe_load((CONF / get_variant(variant).config).read_text())
        config["frontend_conf"] = {
            "frontend_conf": {"upstream": "hf_wav2vec2_custom", "path_or_url": str(ssl_dir)},
            "multilayer_feature": True,
        }
        config.update(token_list=TOKENS, token_type="char")
        if source is not None:
            config["model_conf"]["context_dim"] = dims[source]
        if args.quick:
            config["encoder_conf"].update(QUICK_ENCODER)
            if "context_fusion_conf" in config:
                config["context_fusion_conf"].update(QUICK_FUSION)
        key = yaml.safe_dump(config)
        if key not in built:
            exp = work / f"exp_{len(built)}"
            exp.mkdir()
            (exp / "train.yaml").write_text(key)
            parsed = GCFTTask.get_parser().parse_args(["--config", str(exp / "train.yaml")])
            torch.manual_seed(0)
            model = GCFTTask.build_model(parsed)
            torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
            # what ESPnet's trainer writes, and Speech2Text reads back
            (exp / "config.yaml").write_text(yaml.safe_dump(vars(parsed), sort_keys=False))
            del model
            built[key] = exp
        exps[variant] = str(built[key])
    rng = np.random.default_rng(0)
    data = work / "data"
    (data / "wav").mkdir(parents=True)
    samples = int(16000 * args.seconds)
    utts, wav_lines, text_lines, previous = [], [], [], {}
    for i in range(args.utterances):
        utt = f"utt{i:03d}"
        t = np.arange(samples) / 16000
        wave = 0.1 * np.sin(2 * np.pi * (150 + 20 * i) * t) + 0.02 * rng.standard_normal(samples)
        soundfile.write(data / "wav" / f"{utt}.wav", wave.astype(np.float32), 16000)
        utts.append(utt)
        wav_lines.append(f"{utt} {data / 'wav' / f'{utt}.wav'}\n")
        text_lines.append(f"{utt} {SENTENCES[i % len(SENTENCES)]}\n")
        previous[utt] = SENTENCES[(i - 1) % len(SENTENCES)]
    (data / "wav.scp").write_text("".join(wav_lines))
    (data / "text").write_text("".join(text_lines))
    encoder = TextEncoder(EMBEDDED_ENCODER, pooling="mean")
    embed_texts(previous, encoder, data / "context", "bench", progress=False)
    return {"exps": exps, "data": str(data), "utts": utts, "previous": previous,
            "max_new_tokens": 4 if args.quick else 32}


def run_child(script_args: list, threads: int) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads))
    script_args = [*script_args, "--threads", str(threads)]
    proc = subprocess.run([sys.executable, __file__, *script_args], capture_output=True,
                          text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(script_args)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len(RESULT):])


# ---------------------------------------------------------------- children


def memory_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) resident memory of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def timed(call) -> tuple:
    """``(wall seconds, CPU seconds of this process)`` of ``call()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def medians(samples: list) -> list:
    """``[median wall, median CPU]`` of ``(wall, CPU)`` samples."""
    return [statistics.median(column) for column in zip(*samples)]


def read_waves(plan: dict) -> list:
    import soundfile

    data = Path(plan["data"])
    return [soundfile.read(data / "wav" / f"{u}.wav", dtype="float32")[0] for u in plan["utts"]]


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def audio_context(upstream, wave):
    """(1, C) context of a waveform: S3PRL hidden states, mean over layers, then over frames."""
    import torch

    with torch.no_grad():
        speech = torch.as_tensor(wave, dtype=torch.float32)[None]  # (1, S)
        hidden, lengths = upstream(speech, torch.tensor([speech.size(1)]))
        layers = torch.stack(hidden).mean(dim=0)[0, :int(lengths[0][0])]  # (T, C)
        return layers.mean(dim=0, keepdim=True).numpy()  # (1, C)


def infer_child(variant: str, plan: dict) -> dict:
    """Load what ``variant`` deploys, decode every utterance, report latency, memory, params."""
    from espnet_gcft.asr.compat import defer_unused_imports

    defer_unused_imports()  # what the inference CLI does before ESPnet is imported
    from espnet_gcft.asr.inference import GCFTSpeech2Text
    from espnet_gcft.context.backends import GenerationParams, TransformersBackend
    from espnet_gcft.context.embed import TextEncoder
    from espnet_gcft.context.generate import clean_output
    from espnet_gcft.context.models import EMBEDDED_ENCODER, EMBEDDED_LLM
    from espnet_gcft.context.prompts import BUILTIN_PROMPTS

    waves = read_waves(plan)
    texts = [plan["previous"][u] for u in plan["utts"]]
    start = time.perf_counter()
    if variant == "baseline_upstream_copy":  # ESPnet's usual loading, the copy included
        import torch

        exp = Path(plan["exps"]["baseline"])
        s2t = GCFTSpeech2Text(exp / "config.yaml", None, decode_mode="greedy")
        s2t.asr_model.load_state_dict(torch.load(exp / "valid.loss.ave.pth", weights_only=True))
        variant = "baseline"
    else:
        s2t = GCFTSpeech2Text.from_pretrained(plan["exps"][variant], decode_mode="greedy")
    loaded = [s2t.asr_model]
    from espnet_gcft.recipe.variants import get_variant

    beside = get_variant(variant).runs_beside
    source = context_kind(variant) if s2t.context_mode == "inject" else None
    if source == "text":
        encoder = TextEncoder(EMBEDDED_ENCODER, pooling="mean")
        loaded.append(encoder.model)
    if "llm" in beside:
        backend = TransformersBackend(EMBEDDED_LLM)
        loaded.append(backend.model)
        prompt, params = BUILTIN_PROMPTS[PROMPT], GenerationParams(plan["max_new_tokens"])
    if source == "audio":
        from s3prl.nn import S3PRLUpstream

        conf = s2t.asr_train_args.frontend_conf["frontend_conf"]
        upstream = S3PRLUpstream(conf["upstream"], path_or_url=conf["path_or_url"]).eval()
        upstream.requires_grad_(False)
        loaded.append(upstream)
    load_s = time.perf_counter() - start

    def context(i: int):
        if source == "audio":
            return audio_context(upstream, waves[i - 1])  # the previous utterance's audio
        if source is None:
            return None
        text = texts[i]
        if "llm" in beside:
            raw = backend.generate([backend.render(prompt, text)], params)[0]
            text = clean_output(raw, prompt.user.format(previous=text))
        return encoder([text])[0] if text else np.zeros((0, encoder.dim), np.float32)

    s2t.recognize(waves[0], context(0))  # warm-up, untimed
    wall, cpu = medians([timed(lambda: s2t.recognize(wave, context(i), plan["utts"][i]))
                         for i, wave in enumerate(waves)])
    return {"latency_ms": 1000 * wall, "cpu_ms": 1000 * cpu, "peak_mem_mb": memory_mb("VmHWM"),
            "rss_mb": memory_mb("VmRSS"), "params": sum(count(m) for m in loaded),
            "load_s": load_s}


def paired_child(plan: dict, rounds: int, steps: int, batch_size: int) -> dict:
    """Baseline against gcaf in one process: decoding rounds, then training steps."""
    from espnet_gcft.asr.compat import defer_unused_imports

    defer_unused_imports()  # what the CLIs do before ESPnet is imported
    from espnet_gcft.asr.inference import GCFTSpeech2Text

    waves = read_waves(plan)
    models = {v: GCFTSpeech2Text.from_pretrained(plan["exps"][v], decode_mode="greedy")
              for v in ("baseline", "gcaf")}
    for s2t in models.values():
        s2t.recognize(waves[0])  # warm-up, untimed
    rounds_of = {v: [] for v in models}  # variant: [[median wall, median CPU] per round]
    for r in range(rounds):
        for variant in list(models)[::-1] if r % 2 else models:
            s2t = models[variant]
            rounds_of[variant].append(medians([timed(lambda: s2t.recognize(w)) for w in waves]))
    del models, s2t
    return {"decode": rounds_of, "train": train_steps(plan, steps, batch_size)}


def train_steps(plan: dict, steps: int, batch_size: int) -> dict:
    """Alternating training steps of the baseline and the gcaf model: (wall, CPU) per step."""
    import torch

    from espnet_gcft.asr.task import GCFTTask

    data = Path(plan["data"])
    runs = {}
    for variant in ("baseline", "gcaf"):
        config = Path(plan["exps"][variant]) / "train.yaml"
        args = GCFTTask.get_parser().parse_args(["--config", str(config)])
        torch.manual_seed(0)
        model = GCFTTask.build_model(args).train()
        for prefix in args.freeze_param:  # as ESPnet's trainer freezes
            for name, param in model.named_parameters():
                if name == prefix or name.startswith(prefix + "."):
                    param.requires_grad_(False)
        triples = [(str(data / "wav.scp"), "speech", "sound"),
                   (str(data / "text"), "text", "text")]
        if context_kind(variant) is not None:
            triples.append((str(data / "context" / "emb_mean.scp"), "context", "kaldi_ark"))
        loader = GCFTTask.build_streaming_iterator(
            triples, GCFTTask.build_preprocess_fn(args, train=True),
            GCFTTask.build_collate_fn(args, train=True), key_file=str(data / "wav.scp"),
            batch_size=batch_size, dtype="float32", num_workers=0)
        runs[variant] = dict(model=model, args=args, loader=loader, batches=iter(loader),
                             optimizer=GCFTTask.build_optimizers(args, model)[0], times=[])

    def step(run: dict) -> None:
        try:
            utt_ids, batch = next(run["batches"])
        except StopIteration:
            run["batches"] = iter(run["loader"])
            utt_ids, batch = next(run["batches"])
        loss, _, _ = run["model"](**batch, utt_id=utt_ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run["model"].parameters(), run["args"].grad_clip)
        run["optimizer"].step()
        run["optimizer"].zero_grad()

    for run in runs.values():
        step(run)  # warm-up, untimed
    order = list(runs)
    for i in range(steps):
        for variant in order[i % 2:] + order[:i % 2]:
            runs[variant]["times"].append(timed(lambda: step(runs[variant])))
    return {variant: run["times"] for variant, run in runs.items()}


# ---------------------------------------------------------------- report


def print_ratio(name: str, ratios: list) -> None:
    """The median of per-repeat ratios and, beside it, their spread (max - min)."""
    print(f"{name}: {statistics.median(ratios):.4f}")
    print(f"{name}_spread: {max(ratios) - min(ratios):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of every variant")
    parser.add_argument("--utterances", type=int, default=4, help="utterances per run")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of every utterance")
    parser.add_argument("--train_steps", type=int, default=8, help="timed steps per model")
    parser.add_argument("--train_batch", type=int, default=2, help="utterances per training batch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--quick", action="store_true",
                        help="tiny upstream and encoder, 4 generated tokens (for the test)")
    parser.add_argument("--child", choices=VARIANTS + (UPSTREAM_COPY, "paired"), help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        plan = json.loads(args.plan.read_text())
        result = (infer_child(args.child, plan) if args.child != "paired" else
                  paired_child(plan, args.repeats, args.train_steps, args.train_batch))
        print(RESULT + json.dumps(result))
        return
    if min(args.repeats, args.utterances, args.train_steps, args.train_batch,
           args.threads) < 1 or args.seconds <= 0:
        parser.error("--repeats, --utterances, --seconds, --train_steps, --train_batch and "
                     "--threads must be positive")
    with tempfile.TemporaryDirectory(prefix="inference_cost-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(prepare(Path(tmp), args)))
        common = ["--plan", str(plan_path), "--repeats", str(args.repeats)]
        runs = {v: [] for v in VARIANTS + (UPSTREAM_COPY,)}
        for r in range(args.repeats):
            for variant in (VARIANTS[::-1] if r % 2 else VARIANTS) + (UPSTREAM_COPY,):
                runs[variant].append(run_child(["--child", variant, *common], args.threads))
        paired = run_child(["--child", "paired", *common, "--train_steps", str(args.train_steps),
                            "--train_batch", str(args.train_batch)], args.threads)
    print(f"utterances: {args.utterances}")
    print(f"seconds_per_utterance: {args.seconds:g}")
    print(f"repeats: {args.repeats}")
    print(f"threads: {args.threads}")
    for variant in VARIANTS:
        rows = runs[variant]
        for key, digits in (("latency_ms", 1), ("cpu_ms", 1), ("peak_mem_mb", 1), ("rss_mb", 1),
                            ("params", 0), ("load_s", 2)):
            print(f"{key}_{variant}: {statistics.median(r[key] for r in rows):.{digits}f}")
    pairs = [(v, "baseline") for v in VARIANTS[1:]] + [("gen_inject", "gcaf")]
    for figure, key in (("latency", "latency_ms"), ("cpu", "cpu_ms"),
                        ("peak_mem", "peak_mem_mb"), ("params", "params")):
        for a, b in pairs:
            print_ratio(f"{figure}_ratio_{a}_{b}",
                        [x[key] / y[key] for x, y in zip(runs[a], runs[b])])
    print(f"peak_mem_mb_{UPSTREAM_COPY}: "
          f"{statistics.median(r['peak_mem_mb'] for r in runs[UPSTREAM_COPY]):.1f}")
    print_ratio(f"peak_mem_ratio_{UPSTREAM_COPY}",
                [x["peak_mem_mb"] / y["peak_mem_mb"] for x, y in zip(runs[UPSTREAM_COPY], runs["baseline"])])
    decode, train = paired["decode"], paired["train"]
    for figure, column in (("latency", 0), ("cpu", 1)):
        print_ratio(f"{figure}_ratio_gcaf_baseline_same_process",
                    [g[column] / b[column] for g, b in zip(decode["gcaf"], decode["baseline"])])
    for variant in ("baseline", "gcaf"):
        wall, cpu = medians(train[variant])
        print(f"train_step_s_{variant}: {wall:.3f}")
        print(f"train_step_cpu_s_{variant}: {cpu:.3f}")
    for name, column in (("train_step_ratio", 0), ("train_step_cpu_ratio", 1)):
        print_ratio(f"{name}_gcaf_baseline",
                    [g[column] / b[column] for g, b in zip(train["gcaf"], train["baseline"])])

if __name__ == "__main__":
    main()
