"""Measure what each context source tells about its utterance (before any training).

Usage::

    python -m espnet_gcft.bin.context_report --data_dir dump/raw/dev --text transcript \\
        --context_dir dump/context/dev --out dump/context/dev
    python -m espnet_gcft.bin.context_report --data_dir data/dev --context_dir dump/context/dev \\
        --sources prev_gt gen_title gen_topic --encoder all-minilm-l6-v2 --pooling mean --out report_dir

Writes ``<out>/report.json`` and ``<out>/report.md``. For every source (a dir of
``--context_dir`` with a ``text`` file) and over the utterances that have a
previous one: ``sim_current`` (mean cosine between the context and the
utterance's own text, one encoder for both; sequences are mean-pooled),
``sim_shuffled`` (contexts paired with utterances of other sessions) and
``lift``, ``top1``/``mrr`` (finding the own context among ``--num_candidates``),
``echo`` (cosine to the ground-truth previous text) and the number of empty
contexts, each mean with a bootstrap 95% interval.
"""

import argparse
import json
import logging
from pathlib import Path
import sys

import numpy as np

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.embed import POOLINGS, TextEncoder
from espnet_gcft.context.history import previous_texts, read_utt2prev
from espnet_gcft.context.models import EMBEDDED_ENCODER
from espnet_gcft.context.report import ReportError, SourceInput, markdown_table, report_source
from espnet_gcft.fileio import read_text, transcript_file, write_text_atomic


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data_dir", type=Path, required=True, help="data dir with utt2prev and the texts")
    add("--text", default=None,
        help="file of --data_dir with the plain reference transcripts "
             "(default: transcript if present, else text)")
    add("--context_dir", type=Path, required=True, help="dir with one sub-dir per source")
    add("--sources", nargs="+", default=None, help="sources to report (default: every sub-dir)")
    add("--encoder", default=EMBEDDED_ENCODER)
    add("--pooling", choices=POOLINGS, default="mean")
    add("--num_candidates", type=int, default=10, help="K of the retrieval test")
    add("--seed", type=int, default=0)
    add("--bootstrap", type=int, default=1000, help="bootstrap rounds of the 95% intervals")
    add("--batch_size", type=int, default=64)
    add("--device", default="cpu")
    add("--out", type=Path, required=True, help="dir for report.json and report.md")
    return parser


def embed_all(encoder: TextEncoder, texts, batch_size: int):
    """utterance -> (C,) vector, mean over rows for sequences; None for empty text."""
    keys = [u for u, t in texts.items() if t]
    vectors = {u: None for u, t in texts.items() if not t}
    for first in range(0, len(keys), batch_size):
        chunk = keys[first:first + batch_size]
        for utt, matrix in zip(chunk, encoder([texts[u] for u in chunk])):
            vectors[utt] = np.asarray(matrix, dtype=np.float64).mean(axis=0)
    return vectors


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("context_report"):
        texts = read_text(transcript_file(args.data_dir, args.text))
        utt2prev = read_utt2prev(args.data_dir / "utt2prev")
        sources = args.sources or sorted(p.name for p in args.context_dir.iterdir()
                                         if (p / "text").is_file())
        if not sources:
            raise FileNotFoundError(f"{args.context_dir}: no source dirs with a text file")
        encoder = TextEncoder(args.encoder, args.pooling, args.device)
        current = embed_all(encoder, texts, args.batch_size)
        empty = [u for u in utt2prev if current.get(u) is None]
        if empty:
            raise ReportError(f"{transcript_file(args.data_dir, args.text)}: no reference text for {empty[0]}")
        previous = embed_all(encoder, previous_texts(texts, utt2prev), args.batch_size)
        rows = []
        for name in sources:
            source_texts = read_text(args.context_dir / name / "text")
            vectors = embed_all(encoder, source_texts, args.batch_size)
            rows.append(report_source(SourceInput(name, vectors), current, previous, utt2prev,
                                      args.num_candidates, args.seed, args.bootstrap))
            logging.info(f"{name}: lift {rows[-1]['lift']}, top1 {rows[-1]['top1']}")
        meta = {"data_dir": str(args.data_dir), "encoder": args.encoder, "pooling": args.pooling,
                "num_candidates": args.num_candidates, "seed": args.seed, "sources": rows}
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "report.json", json.dumps(meta, indent=2) + "\n")
        title = f"Context sources of {args.data_dir.name} ({args.encoder}, {args.pooling})"
        write_text_atomic(args.out / "report.md", markdown_table(rows, title))
    logging.info(f"wrote {args.out}/report.json and report.md")


if __name__ == "__main__":
    main(sys.argv[1:])
