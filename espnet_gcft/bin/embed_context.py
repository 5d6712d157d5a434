"""Embed context texts with a text encoder into kaldiio ark/scp.

Usage::

    python -m espnet_gcft.bin.embed_context --text dump/context/dev/gen_title/text \\
        --out_dir dump/context/dev/gen_title --pooling mean --data_dir data/dev
    python -m espnet_gcft.bin.embed_context --text dump/context/dev/prev_gt/text \\
        --out_dir dump/context/dev/prev_gt --encoder bert-base-uncased --pooling cls --device cuda

Writes ``<out_dir>/emb_<pooling>.ark`` and ``.scp`` (one float32 ``(L, C)``
matrix per utterance of ``--text``, in its order: ``L = 1`` for cls/mean, the
token count for sequence, ``L = 0`` for an empty text) and updates
``<out_dir>/meta.json`` (encoder, pooling, dim, counts, source text hash). The
default encoder is the embedded all-MiniLM-L6-v2. With ``--data_dir``, the ids
of ``--text`` must be those of ``<data_dir>/text``. An interrupted run resumes.
"""

import argparse
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.embed import POOLINGS, EmbeddingError, TextEncoder, check_same_ids, embed_texts
from espnet_gcft.context.kaldi import TableError, file_hash, read_text
from espnet_gcft.context.models import EMBEDDED_ENCODER, ModelNotFound


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--text", type=Path, required=True, help="<utt> <context text> file")
    add("--out_dir", type=Path, required=True, help="where emb_<pooling>.{ark,scp} go")
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
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("embed_context", (EmbeddingError, TableError, ModelNotFound,
                                           FileNotFoundError)):
        texts = read_text(args.text)
        if args.data_dir is not None:
            check_same_ids(texts, read_text(args.data_dir / "text"), str(args.text),
                           str(args.data_dir / "text"))
        encoder = TextEncoder(args.encoder, args.pooling, args.device, args.max_length,
                              args.trust_remote_code)
        summary = embed_texts(texts, encoder, args.out_dir, file_hash(args.text),
                              batch_size=args.batch_size, progress=not args.no_progress)
    logging.info(f"{args.out_dir}: {summary.line()}")


if __name__ == "__main__":
    main(sys.argv[1:])
