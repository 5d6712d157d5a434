"""Embed the previous utterance's audio with the frozen SSL upstream (the ``prev_audio`` source).

Usage::

    python -m espnet_gcft.bin.embed_audio_context --data_dir dump/raw/dev \\
        --config conf/train_audio_inject.yaml --pooling mean \\
        --out_dir dump/context/dev/prev_audio
    python -m espnet_gcft.bin.embed_audio_context --data_dir dump/raw/dev \\
        --config exp/pretrain/config.yaml --checkpoint exp/pretrain/valid.loss.ave.pth \\
        --out_dir dump/context/dev/prev_audio --device cuda

For every utterance of ``<data_dir>/wav.scp`` (in its order), the S3PRL upstream
of ``--config`` (its ``frontend_conf``; with ``--checkpoint``, that
checkpoint's ``frontend.upstream.*`` parameters: the shared pretrained model)
runs on the audio of the previous utterance (``<data_dir>/utt2prev``); the
hidden states of all layers are averaged and pooled over frames (``mean``:
``L = 1``; ``sequence``: ``L`` frames). Writes ``<out_dir>/emb_<pooling>.{ark,scp}``
(``L = 0`` for the first utterance of a session) and updates ``meta.json``,
as ``embed_context`` does for texts; an interrupted run resumes.
"""

import argparse
import hashlib
import logging
from pathlib import Path
import sys

from espnet_gcft.asr.compat import defer_unused_imports
from espnet_gcft.bin.common import reported_errors, setup_logging

defer_unused_imports()  # a CLI: before ESPnet is imported (see defer_import)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--data_dir", type=Path, required=True, help="the set's data dir (wav.scp, utt2prev)")
    add("--config", type=Path, required=True,
        help="training config (or an exp dir's config.yaml) with frontend: s3prl")
    add("--checkpoint", type=Path, default=None,
        help="ESPnet checkpoint whose upstream parameters replace the config's")
    add("--pooling", default="mean", help="mean | sequence")
    add("--out_dir", type=Path, required=True)
    add("--device", default="cpu")
    add("--no_progress", action="store_true")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("embed_audio_context"):
        from espnet_gcft.asr.audio_context import UpstreamEncoder, previous_utterances
        from espnet_gcft.context.embed import embed_texts
        from espnet_gcft.context.history import read_utt2prev
        from espnet_gcft.fileio import file_hash, read_table

        wav_scp = args.data_dir / "wav.scp"
        utts = [fields[0] for _, fields in read_table(wav_scp, min_fields=2)]
        previous = previous_utterances(read_utt2prev(args.data_dir / "utt2prev"), utts)
        identity = hashlib.sha256()
        for path in (wav_scp, args.data_dir / "utt2prev", args.config, args.checkpoint):
            if path is not None:
                identity.update(file_hash(path).encode())
        encoder = UpstreamEncoder(args.config, wav_scp, args.checkpoint, args.pooling, args.device)
        logging.info(f"upstream {encoder.name}: {encoder.dim}-dim states, layers averaged, "
                     f"{args.pooling} over frames")
        summary = embed_texts(previous, encoder, args.out_dir, identity.hexdigest()[:16],
                              batch_size=8, progress=not args.no_progress)
        logging.info(f"{args.out_dir}: {summary.line()}")


if __name__ == "__main__":
    main(sys.argv[1:])
