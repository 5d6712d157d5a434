"""Context embedding throughput with the embedded all-MiniLM-L6-v2, per pooling.

Usage::

    tools/venv/bin/python bench/embedding_throughput.py [--utterances 512] [--batch_size 32]

Embeds the same texts with cls, mean and sequence pooling in one run (CPU) and
prints utterances per second for each, one ``name: value`` line per figure.
"""

import argparse
from pathlib import Path
import tempfile
import time

from espnet_gcft.context.embed import POOLINGS, TextEncoder, embed_texts

WORDS = ("the parliament voted on the budget and asked the commission to report on fisheries "
         "trade climate roaming gas banking agriculture").split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()
    texts = {f"utt{i:05d}": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(5 + i % 25))
             for i in range(args.utterances)}
    print(f"utterances: {len(texts)}")
    for pooling in POOLINGS:
        encoder = TextEncoder("all-minilm-l6-v2", pooling=pooling)
        encoder(["warm up"])  # first-call initialisation stays out of the timing
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            embed_texts(texts, encoder, Path(tmp), "bench", batch_size=args.batch_size,
                        progress=False)
            seconds = time.perf_counter() - start
        print(f"utt_per_s_{pooling}: {len(texts) / seconds:.1f}")


if __name__ == "__main__":
    main()
