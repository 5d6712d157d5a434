"""Embed context texts with a text encoder into kaldiio ark/scp.

Usage::

    python -m espnet_gcft.bin.embed_context --text dump/context/dev/gen_title/text \\
        --out_dir dump/context/dev/gen_title --pooling mean --data_dir data/dev
    python -m espnet_gcft.bin.embed_context --text dump/context/dev/prev_gt/text \\
        --out_dir dump/context/dev/prev_gt --encoder bert-base-uncased --pooling cls --device cuda
    python -m espnet_gcft.bin.embed_context \\
        --text dump/context/dev/prev_gt/text dump/context/dev/gen_title/text \\
        --out_dir dump/context/dev/prev_gt dump/context/dev/gen_title

Writes ``<out_dir>/emb_<pooling>.ark`` and ``.scp`` (one float32 ``(L, C)``
matrix per utterance of ``--text``, in its order: ``L = 1`` for cls/mean, the
token count for sequence, ``L = 0`` for an empty text) and updates
``<out_dir>/meta.json`` (encoder, pooling, dim, counts, source text hash). The
default encoder is the embedded all-MiniLM-L6-v2. With ``--data_dir``, the ids
of ``--text`` must be those of ``<data_dir>/text``. An interrupted run resumes.
Several ``--text`` files (with as many ``--out_dir``) share one encoder load.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.embed import POOLINGS, TextEncoder, check_same_ids, embed_texts
from espnet_gcft.context.models import EMBEDDED_ENCODER
from espnet_gcft.fileio import file_hash, read_text


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--text", type=Path, nargs="+", required=True, help="<utt> <context text> file(s)")
    add("--out_dir", type=Path, nargs="+", required=True,
        help="where emb_<pooling>.{ark,scp} go, one per --text")
    add("--encoder", default=EMBEDDED_ENCODER, help="embedded name, local dir or hub name")
    add("--pooling", choices=POOLINGS, default="mean")
    add("--data_dir", type=Path, default=None, help="check ids against <data_dir>/text")
    add("--batch_size", type=int, default=32)
    add("--max_length", type=int, default=256, help="longest input in tokens")
    add("--device", default="cpu")
    add("--trust_remote_code", action="store_true")
    add("--no_progress", action="store_true")
    return parser


def main(argv=None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    if len(args.text) != len(args.out_dir):
        parser.error(f"{len(args.text)} --text file(s) but {len(args.out_dir)} --out_dir(s)")
    setup_logging()
    with reported_errors("embed_context"):
        # every input is checked before the encoder loads or anything is written
        all_texts = [read_text(path) for path in args.text]
        if args.data_dir is not None:
            reference = read_text(args.data_dir / "text")
            for path, texts in zip(args.text, all_texts):
                check_same_ids(texts, reference, str(path), str(args.data_dir / "text"))
        encoder = TextEncoder(args.encoder, args.pooling, args.device, args.max_length,
                              args.trust_remote_code)
        for path, texts, out_dir in zip(args.text, all_texts, args.out_dir):
            summary = embed_texts(texts, encoder, out_dir, file_hash(path),
                                  batch_size=args.batch_size, progress=not args.no_progress)
            logging.info(f"{out_dir}: {summary.line()}")


if __name__ == "__main__":
    main(sys.argv[1:])
