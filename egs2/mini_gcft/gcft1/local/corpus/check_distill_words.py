#!/usr/bin/env python3
"""Check the distill-only topic words before any training: do their teachers carry the sense?

Usage (from the recipe dir, with the venv: ``. ./path.sh``)::

    python3 local/corpus/check_distill_words.py [--corpus local/corpus/corpus.tsv] [--min_acc 75]

GCAF's student can learn, from the current audio, only what its teacher holds.
A training topic sentence of a distill-only word has as its teacher the embedded
LLM title of the previous sentence, a topic sentence of the same sense. This
script makes those teachers as the demo recipe does (the ``title`` prompt, 12
new tokens, SmolLM2-135M-Instruct; all-MiniLM-L6-v2, mean pooling) and the cue
centroids the demo's diagnostics use (the mean teacher of the training P and W
items of each spelling), and prints, per distill-only word, how often the
teacher of a topic sentence naming it lies nearer its own sense's centroid than
the other spelling's (raw embeddings, and centred on the training teachers'
mean). That share is an upper bound for what a student can learn of the word;
the corpus's words were picked by it. Exits 1 when a word falls below
``--min_acc`` percent.
"""

import argparse
import csv
from pathlib import Path
import sys
from typing import Dict, List

import numpy as np

from espnet_gcft.context.backends import GenerationParams, build_backend
from espnet_gcft.context.embed import TextEncoder
from espnet_gcft.context.generate import clean_output
from espnet_gcft.context.models import EMBEDDED_ENCODER, EMBEDDED_LLM
from espnet_gcft.context.prompts import get_prompt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from write_corpus import DISTILL_TOPICS, other_sense  # noqa: E402


def titles(texts: List[str], batch: int = 16) -> Dict[str, str]:
    backend = build_backend("transformers", model=EMBEDDED_LLM)
    prompt, params = get_prompt("title"), GenerationParams(max_new_tokens=12)
    distinct = sorted(set(texts))
    out = {}
    for start in range(0, len(distinct), batch):
        chunk = distinct[start:start + batch]
        raws = backend.generate([backend.render(prompt, t) for t in chunk], params)
        out.update({t: clean_output(raw, prompt.user.format(previous=t)) for t, raw in zip(chunk, raws)})
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parent / "corpus.tsv")
    parser.add_argument("--min_acc", type=float, default=50.0)
    args = parser.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    # (sense, previous text) of the training P/W items and of the distill topic sentences
    items, topics = [], []
    for previous, row in zip(rows, rows[1:]):
        same_session = previous["utt_id"].rsplit("-", 1)[0] == row["utt_id"].rsplit("-", 1)[0]
        if row["split"] != "train" or not same_session:
            continue
        if row["type"] in ("P", "W"):
            items.append((row["word"], previous["text"]))
        elif row["type"] == "topic" and row["word"] in DISTILL_TOPICS:
            topics.append((row["word"], row["text"], previous["text"]))
    made = titles([t for _, t in items] + [p for _, _, p in topics])
    encoder = TextEncoder(EMBEDDED_ENCODER, pooling="mean")

    def embed(texts: List[str]) -> np.ndarray:
        return np.stack([m[0] for start in range(0, len(texts), 64)
                         for m in encoder([made[t] for t in texts[start:start + 64]])])

    item_teachers = embed([t for _, t in items])
    topic_teachers = embed([p for _, _, p in topics])
    mean = np.concatenate([item_teachers, topic_teachers]).mean(axis=0)
    centroids = {sense: item_teachers[[s == sense for s, _ in items]].mean(axis=0)
                 for sense in DISTILL_TOPICS}
    hits: Dict[str, List[tuple]] = {}
    for (sense, text, _), teacher in zip(topics, topic_teachers):
        other = other_sense(sense)
        raw = cosine(teacher, centroids[sense]) > cosine(teacher, centroids[other])
        centred = cosine(teacher - mean, centroids[sense] - mean) > \
            cosine(teacher - mean, centroids[other] - mean)
        for word in DISTILL_TOPICS[sense]:
            if word in text.split():
                hits.setdefault(word, []).append((raw, centred))
    print(f"{len(items)} training P/W items (cue centroids), {len(topics)} distill topic sentences "
          "with a previous one; per word: n, nearest own centroid % (raw, centred)")
    low = []
    for sense, words in DISTILL_TOPICS.items():
        for word in words:
            got = hits.get(word, [])
            raw = 100 * np.mean([r for r, _ in got]) if got else 0.0
            centred = 100 * np.mean([c for _, c in got]) if got else 0.0
            print(f"{sense:8s} {word:10s} n={len(got):3d} raw {raw:5.1f} centred {centred:5.1f}")
            if min(raw, centred) < args.min_acc:
                low.append(word)
    every = [h for got in hits.values() for h in got]
    print(f"all: raw {100 * np.mean([r for r, _ in every]):.1f}, "
          f"centred {100 * np.mean([c for _, c in every]):.1f}")
    if low:
        sys.exit(f"below {args.min_acc}%: {' '.join(low)}")


if __name__ == "__main__":
    main()
