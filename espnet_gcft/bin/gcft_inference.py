"""Decode a data set with a GCFT model into an ESPnet-style decode dir.

Usage::

    # gcaf / baseline: audio only
    python -m espnet_gcft.bin.gcft_inference --model exp/gcaf \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound \\
        --output_dir exp/gcaf/decode_test --decode_mode greedy

    # inject_gt / gen_inject: audio + context
    python -m espnet_gcft.bin.gcft_inference --model exp/inject_gt \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound \\
        --data_path_and_name_and_type dump/context/test/prev_gt/emb_mean.scp,context,kaldi_ark \\
        --output_dir exp/inject_gt/decode_test --config conf/decode.yaml

Writes ``text``, ``token``, ``token_int`` and ``score`` (``<utt> <value>``
lines) into the output dir. With ``--homophones`` (a data dir's list of
context-decided words) and ``--reference`` (its target texts), it also writes
``forced_choice``: ``<utt> <log p(reference)> <log p(reference with the
alternative spelling)>`` (for an entity item: with the entity's other type)
under the CTC branch, from the same encoder pass as the decoding. A ``distill`` (gcaf) model also writes its student's context
prediction of every utterance to ``student.{ark,scp}``. The inputs are checked before decoding starts (an
``inject`` model needs a context for every utterance, with the model's
dimension and finite values), and the files appear only once every utterance
is decoded, so a failed run leaves no partial decode dir behind.
"""

import argparse
import logging
import os
from pathlib import Path
import sys
from typing import List, Optional

from espnet_gcft.asr.compat import defer_unused_imports

defer_unused_imports()  # a CLI: before ESPnet is imported (see defer_import)

from espnet2.fileio.read_text import read_2columns_text  # noqa: E402
from espnet2.train.dataset import ESPnetDataset  # noqa: E402
from espnet2.utils import config_argparse  # noqa: E402
from espnet2.utils.types import str_or_none  # noqa: E402
from tqdm import tqdm  # noqa: E402

from espnet_gcft.asr.context_data import validate_context_scp  # noqa: E402
from espnet_gcft.asr.inference import GCFTSpeech2Text  # noqa: E402
from espnet_gcft.bin.common import (add_decode_options, decode_options, reported_errors,  # noqa: E402
                                    setup_logging)
from espnet_gcft.errors import InputError, MissingInputError  # noqa: E402
from espnet_gcft.fileio import read_text, write_ark_atomic  # noqa: E402
from espnet_gcft.scoring.homophones import read_homophones, swap_word  # noqa: E402

OUTPUT_FILES = ("text", "token", "token_int", "score")


def get_parser() -> argparse.ArgumentParser:
    parser = config_argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="exp dir or packed model zip")
    parser.add_argument("--model_file", type=str_or_none, default=None,
                        help="checkpoint name inside the exp dir")
    parser.add_argument("--data_path_and_name_and_type", action="append", required=True,
                        type=lambda s: tuple(s.split(",")),
                        help="path,name,type: speech (sound) and, for inject, context (kaldi_ark)")
    parser.add_argument("--output_dir", required=True, help="decode dir to write")
    add_decode_options(parser)
    parser.add_argument("--homophones", type=Path, default=None,
                        help="<utt> <type> <position> <word> <alternative> file: write forced_choice")
    parser.add_argument("--reference", type=Path, default=None,
                        help="<utt> <target text> file (the set's text), needed by --homophones")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--log_level", default="INFO",
                        choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    return parser


def decode(args: argparse.Namespace) -> int:
    """Decode every utterance; return the number decoded."""
    triples = [tuple(t) for t in args.data_path_and_name_and_type]
    for triple in triples:
        if len(triple) != 3:
            raise InputError(f"--data_path_and_name_and_type wants path,name,type; got {triple}")
        if not Path(triple[0]).is_file():
            raise MissingInputError(f"{triple[0]} (--data_path_and_name_and_type {triple[1]}): "
                                    "no such file")
    by_name = {name: (path, kind) for path, name, kind in triples}
    if "speech" not in by_name:
        raise InputError("--data_path_and_name_and_type needs a `speech` entry")
    s2t = GCFTSpeech2Text.from_pretrained(
        args.model,
        model_file=args.model_file,
        device=args.device,
        **decode_options(args),
    )
    speech_ids = list(read_2columns_text(by_name["speech"][0]))
    if s2t.context_mode == "inject":
        if "context" not in by_name:
            raise InputError("an 'inject' model needs a `context` entry (path,context,kaldi_ark)")
        validate_context_scp(by_name["context"][0], s2t.asr_model.context_dim,
                             required_keys_file=by_name["speech"][0])
    elif "context" in by_name:
        raise InputError(
            f"a {s2t.context_mode!r} model runs from audio alone: drop the `context` entry"
        )
    items = {}
    references = {}
    if args.homophones is not None:
        if args.reference is None:
            raise InputError("--homophones needs --reference (the target texts of the set)")
        items = read_homophones(args.homophones)
        references = read_text(args.reference)
    dataset = ESPnetDataset(triples, float_dtype="float32")
    lines = {name: [] for name in OUTPUT_FILES}
    choices = []
    students = {}
    if args.batch_size < 1:
        raise InputError(f"--batch_size must be >= 1, got {args.batch_size}")
    progress = tqdm(total=len(speech_ids), desc="decode", unit="utt", disable=None)
    for first in range(0, len(speech_ids), args.batch_size):
        batch_ids = speech_ids[first:first + args.batch_size]
        data = [dataset[utt_id][1] for utt_id in batch_ids]
        contexts = [d["context"] for d in data] if s2t.context_mode == "inject" else None
        encoded, lengths = s2t.encode_batch([d["speech"] for d in data], contexts, batch_ids)
        predicted = s2t.student_predictions() if s2t.context_mode == "distill" else None
        for b, utt_id in enumerate(batch_ids):
            frames = encoded[b:b + 1, :int(lengths[b])]
            text, tokens, ids, score = s2t.decode(frames)
            lines["text"].append(f"{utt_id} {text or ''}".rstrip())
            lines["token"].append(f"{utt_id} {' '.join(tokens)}".rstrip())
            lines["token_int"].append(f"{utt_id} {' '.join(map(str, ids))}".rstrip())
            lines["score"].append(f"{utt_id} {score}")
            if utt_id in items:
                if utt_id not in references:
                    raise InputError(f"{args.reference}: no reference for utterance {utt_id}")
                reference = references[utt_id]
                right, alternative = s2t.ctc_log_likelihood(
                    frames, [reference, swap_word(reference, items[utt_id])])
                choices.append(f"{utt_id} {right:.4f} {alternative:.4f}")
            if predicted is not None:
                students[utt_id] = predicted[b]
        progress.update(len(batch_ids))
    progress.close()
    if items:
        lines["forced_choice"] = choices
    write_decode_dir(Path(args.output_dir), lines, students)
    return len(speech_ids)


def write_decode_dir(output_dir: Path, lines: dict, students: Optional[dict] = None) -> None:
    """Write each file to a temporary name, then rename them all into place.

    ``students``: utt -> (Lq, C) student prediction, written as
    ``student.{ark,scp}``.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, content in lines.items():
        tmp = output_dir / f".{name}.tmp"
        tmp.write_text("".join(line + "\n" for line in content), encoding="utf-8")
    if students:
        write_ark_atomic(output_dir / "student.ark", output_dir / "student.scp", students.items())
    for name in lines:
        os.replace(output_dir / f".{name}.tmp", output_dir / name)


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level)
    with reported_errors("gcft_inference"):
        count = decode(args)
    logging.info(f"decoded {count} utterances into {args.output_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
