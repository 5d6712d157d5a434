"""Context generation throughput with the embedded LLM: batched vs one at a time, and dedup.

Usage::

    tools/venv/bin/python bench/generation_throughput.py [--utterances 32] [--max_new_tokens 24]

Generates the ``title`` context for ``--utterances`` distinct previous texts
with SmolLM2-135M-Instruct on the CPU, once with ``--batch_size 16`` and once
one at a time, in the same run, and prints utterances per second for both and
their ratio. Then it runs a corpus where every previous text occurs three
times and prints how many LLM calls deduplication saved. One ``name: value``
line per figure.
"""

import argparse
from pathlib import Path
import tempfile
import time

from espnet_gcft.context.backends import GenerationParams, TransformersBackend
from espnet_gcft.context.generate import generate_context
from espnet_gcft.context.prompts import BUILTIN_PROMPTS

SUBJECTS = ["the budget", "fisheries", "the climate package", "trade with china", "roaming fees",
            "the common agricultural policy", "gas supplies", "the banking union"]
VERBS = ["voted on", "debated", "postponed the decision on", "welcomed the report on"]


def previous_texts(count: int) -> dict:
    """Distinct, parliament-like previous texts of varied length."""
    texts = {}
    for i in range(count):
        subject, verb = SUBJECTS[i % len(SUBJECTS)], VERBS[(i // len(SUBJECTS)) % len(VERBS)]
        tail = " and asked the commission to report back" * (i % 3)
        texts[f"utt{i:04d}"] = f"yesterday the house {verb} {subject}{tail} (item {i})"
    return texts


def run(backend, previous, batch_size, params) -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = generate_context(previous, BUILTIN_PROMPTS["title"], backend, params, Path(tmp),
                                   batch_size=batch_size, progress=False)
        return time.perf_counter() - start, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=32)
    parser.add_argument("--max_new_tokens", type=int, default=24)
    args = parser.parse_args()
    backend = TransformersBackend("smollm2-135m-instruct")
    params = GenerationParams(max_new_tokens=args.max_new_tokens)
    previous = previous_texts(args.utterances)
    run(backend, dict(list(previous.items())[:2]), 2, params)  # warm-up
    batched, _ = run(backend, previous, 16, params)
    single, _ = run(backend, previous, 1, params)
    print(f"utterances: {len(previous)}")
    print(f"utt_per_s_batch16: {len(previous) / batched:.3f}")
    print(f"utt_per_s_batch1: {len(previous) / single:.3f}")
    print(f"batch_speedup: {single / batched:.2f}")
    repeated = {f"{utt}-{copy}": text for utt, text in list(previous.items())[:16] for copy in range(3)}
    _, summary = run(backend, repeated, 16, params)
    print(f"dedup_utterances: {summary.utterances}")
    print(f"dedup_llm_calls: {summary.generated}")
    print(f"dedup_calls_saved: {summary.utterances - summary.generated}")


if __name__ == "__main__":
    main()
