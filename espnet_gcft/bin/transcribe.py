"""Transcribe a data dir session by session, each utterance with the context a deployment has.

Usage::

    python -m espnet_gcft.bin.transcribe --model exp/inject_gt/packed.zip \\
        --data_dir dump/raw/test --context self --output_dir OUT

The sessions come from ``<data_dir>/utt2prev`` (each starts at an utterance whose
previous is ``-``); their utterances are decoded in order through
``GCFTSpeech2Text.transcribe_session``: ``--context self`` feeds each utterance
the model's own earlier hypotheses of its session, ``none`` no previous text,
``gt`` the data dir's transcripts (``transcript``, else ``text``);
``--batch_sessions`` sessions go side by side (utterance *i* of each in one
step, their contexts generated and embedded as one batch). Writes
``<output_dir>/text`` (Kaldi form, in ``wav.scp`` order). With
``--write_context`` an inject model's contexts, each utterance's as it was
decoded, go to ``<output_dir>/context.scp`` (kaldiio, in ``wav.scp`` order; the
arks under ``<output_dir>/context/``, one per step of sessions): the recipe's
``self`` condition scores the forced choice with them. Finished sessions are
kept in ``<output_dir>/text.sessions`` as they end, so a rerun after a kill
decodes only the sessions that had not finished (the same model and options;
other ones start over).
"""

import argparse
import hashlib
import json
import logging
from pathlib import Path
import sys
import time
from typing import Dict, List, Optional

from espnet_gcft.asr.compat import defer_unused_imports
from espnet_gcft.bin.common import add_decode_options, decode_options, reported_errors, setup_logging

defer_unused_imports()  # a CLI: before ESPnet is imported (see defer_import)

from espnet2.utils import config_argparse  # noqa: E402
from espnet_gcft.errors import InputError  # noqa: E402
from espnet_gcft.fileio import (file_hash, read_table, read_text, write_ark_atomic,  # noqa: E402
                                write_table_atomic, write_text_atomic)

logger = logging.getLogger("transcribe")


class SessionError(InputError, ValueError):
    """A data dir whose utt2prev does not make sessions; names the file and utterance."""


def sessions_of(data_dir: Path) -> List[List[str]]:
    """The sessions of a data dir, each its utterances in order, in wav.scp order of their starts."""
    wav_scp, utt2prev_path = data_dir / "wav.scp", data_dir / "utt2prev"
    for path in (wav_scp, utt2prev_path):
        if not path.is_file():
            raise SessionError(f"{path}: no such file (sessions come from utt2prev)")
    utts = [fields[0] for _, fields in read_table(wav_scp, 2)]
    prev: Dict[str, str] = {}
    for lineno, fields in read_table(utt2prev_path, 2, 2):
        prev[fields[0]] = fields[1]
    following: Dict[str, str] = {}
    for utt in utts:
        if utt not in prev:
            raise SessionError(f"{utt2prev_path}: no line for utterance {utt} of wav.scp")
        before = prev[utt]
        if before == "-":
            continue
        if before not in prev:
            raise SessionError(f"{utt2prev_path}: utterance {utt} follows {before}, which is not in wav.scp")
        if before in following:
            raise SessionError(f"{utt2prev_path}: {following[before]} and {utt} both follow {before}")
        following[before] = utt
    sessions = []
    for utt in utts:
        if prev[utt] != "-":
            continue
        session = [utt]
        while session[-1] in following:
            session.append(following[session[-1]])
        sessions.append(session)
    covered = sum(len(s) for s in sessions)
    if covered != len(utts):
        raise SessionError(f"{utt2prev_path}: {len(utts) - covered} utterance(s) belong to no session "
                           "that starts with '-' (a cycle?)")
    return sessions


def main(argv=None) -> None:
    # --config: a YAML of these options, e.g. a recipe's conf/decode.yaml (as gcft_inference's)
    parser = config_argparse.ArgumentParser(description=__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--model", type=Path, required=True, help="exp dir or packed.zip")
    add("--model_file", default=None, help="checkpoint name inside an exp dir (default: the "
        "first of GCFTSpeech2Text's MODEL_FILES there)")
    add("--data_dir", type=Path, required=True, help="Kaldi data dir: wav.scp, utt2prev")
    add("--context", choices=("self", "none", "gt"), default="self")
    add("--output_dir", type=Path, required=True)
    add("--device", default="cpu")
    add_decode_options(parser, decode_mode="greedy")
    add("--batch_sessions", type=int, default=8,
        help="sessions decoded side by side: utterance i of each in one step, their contexts "
             "generated and embedded as one batch")
    add("--log_every", type=int, default=10, help="a progress line every N sessions")
    add("--write_context", action="store_true",
        help="also write the contexts the utterances were decoded with (context.scp)")
    args = parser.parse_args(argv)
    for name in ("batch_sessions", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    setup_logging()
    with reported_errors(parser.prog):
        from espnet_gcft.asr.inference import GCFTSpeech2Text

        sessions = sessions_of(args.data_dir)
        wavs = {fields[0]: fields[1] for _, fields in read_table(args.data_dir / "wav.scp", 2, 2)}
        transcripts = None
        if args.context == "gt":
            source = args.data_dir / "transcript"
            transcripts = read_text(source if source.is_file() else args.data_dir / "text")
        args.output_dir.mkdir(parents=True, exist_ok=True)
        done_path = args.output_dir / "text.sessions"
        identity = json.dumps({"model": str(args.model.resolve()),
                               "model_digest": _digest(args.model, args.model_file),
                               "data_dir": str(args.data_dir.resolve()), "context": args.context,
                               # the sessions and utterance ids, not wav.scp's bytes: its paths are
                               # absolute in a recipe, so two copies of one recipe would differ in
                               # more than their root (the kill test compares them, root replaced)
                               "data": [_digest(args.data_dir / "utt2prev"),
                                        hashlib.sha256(" ".join(wavs).encode()).hexdigest()[:16]],
                               "decode": decode_options(args), "batch_size": args.batch_size,
                               "batch_sessions": args.batch_sessions})
        done = _finished(done_path, identity, args.output_dir if args.write_context else None)
        s2t = GCFTSpeech2Text.from_pretrained(args.model, model_file=args.model_file,
                                              device=args.device, **decode_options(args))
        if args.write_context and s2t.context_mode != "inject":
            raise SessionError(f"{args.model}: a {s2t.context_mode!r} model decodes from audio "
                               "alone: it has no contexts to --write_context")
        start, todo = time.time(), [s for s in sessions if s[0] not in done]
        logger.info(f"{len(sessions)} session(s), {len(sessions) - len(todo)} already done")
        with open(done_path, "a", encoding="utf-8") as out:
            if out.tell() == 0:
                out.write(identity + "\n")
            finished = 0
            for first in range(0, len(todo), args.batch_sessions):
                group = todo[first:first + args.batch_sessions]
                context = [[transcripts.get(u, "") for u in session] for session in group] \
                    if transcripts is not None else args.context
                contexts = {} if args.write_context else None
                texts = s2t.transcribe_sessions([[wavs[u] for u in session] for session in group],
                                                context=context, names=group, contexts_out=contexts,
                                                batch_size=args.batch_size)
                record = {}
                if contexts is not None:
                    # the step's contexts before its sessions count as finished
                    record["context"] = f"{CONTEXT_DIR}/{group[0][0]}.scp"
                    write_ark_atomic(args.output_dir / CONTEXT_DIR / f"{group[0][0]}.ark",
                                     args.output_dir / record["context"],
                                     ((u, contexts[u]) for session in group for u in session))
                for session, hyps in zip(group, texts):
                    out.write(json.dumps({"session": session, "text": hyps, **record},
                                         ensure_ascii=False) + "\n")
                    done[session[0]] = {"text": dict(zip(session, hyps)), **record}
                out.flush()
                before, finished = finished, finished + len(group)
                if finished // args.log_every > before // args.log_every or finished == len(todo):
                    logger.info(f"{finished}/{len(todo)} session(s) decoded, "
                                f"{time.time() - start:.0f} s")
        texts = {u: t for session in done.values() for u, t in session["text"].items()}
        if args.write_context:
            index = {}
            for name in dict.fromkeys(session["context"] for session in done.values()):
                for _, fields in read_table(args.output_dir / name, 2, 2):
                    index[fields[0]] = fields[1]
            write_table_atomic(args.output_dir / "context.scp", ((u, index[u]) for u in wavs))
        write_table_atomic(args.output_dir / "text", ((u, texts[u]) for u in wavs))
        logger.info(f"wrote {args.output_dir / 'text'} ({len(texts)} utterances)")


CONTEXT_DIR = "context"


def _digest(path: Path, model_file: Optional[str] = None) -> str:
    """A file's content hash (an exp dir: its checkpoint's; "" when there is none)."""
    path = path if path.is_file() else path / (model_file or "valid.loss.ave.pth")
    return file_hash(path) if path.is_file() else ""


def _finished(path: Path, identity: str, context_dir: Optional[Path] = None) -> Dict[str, dict]:
    """Sessions finished by an earlier run with the same identity (first line); else none.

    ``context_dir``: contexts are wanted; a session whose record names no context
    scp, or one that is gone, is decoded again."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != identity:
        logger.warning(f"{path}: from another model, data dir or context: starting over")
        path.unlink()
        return {}
    done, kept = {}, [lines[0]]
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a kill: that session is decoded again
            logger.warning(f"{path}: dropping a line cut short (a killed run); its session is redone")
            write_text_atomic(path, "".join(k + "\n" for k in kept))
            break
        kept.append(line)
        if context_dir is not None and not (record.get("context")
                                            and (context_dir / record["context"]).is_file()):
            continue
        done[record["session"][0]] = {"text": dict(zip(record["session"], record["text"])),
                                      **({"context": record["context"]} if "context" in record
                                         else {})}
    return done


if __name__ == "__main__":
    main(sys.argv[1:])
