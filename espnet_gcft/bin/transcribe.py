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
``<output_dir>/text`` (Kaldi form, in ``wav.scp`` order). Finished sessions are
kept in ``<output_dir>/text.sessions`` as they end, so a rerun after a kill
decodes only the sessions that had not finished (the same model and options;
other ones start over).
"""

import argparse
import json
import logging
from pathlib import Path
import sys
import time
from typing import Dict, List

from espnet_gcft.asr.compat import defer_unused_imports
from espnet_gcft.bin.common import reported_errors, setup_logging

defer_unused_imports()  # a CLI: before ESPnet is imported (see defer_import)

from espnet_gcft.errors import InputError  # noqa: E402
from espnet_gcft.fileio import (file_hash, read_table, read_text, write_table_atomic,  # noqa: E402
                                write_text_atomic)

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
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--model", type=Path, required=True, help="exp dir or packed.zip")
    add("--data_dir", type=Path, required=True, help="Kaldi data dir: wav.scp, utt2prev")
    add("--context", choices=("self", "none", "gt"), default="self")
    add("--output_dir", type=Path, required=True)
    add("--device", default="cpu")
    add("--decode_mode", choices=("greedy", "beam"), default="greedy",
        help="as gcft_inference's (the mini recipe's conf/decode.yaml: greedy)")
    add("--batch_sessions", type=int, default=8,
        help="sessions decoded side by side: utterance i of each in one step, their contexts "
             "generated and embedded as one batch")
    add("--log_every", type=int, default=10, help="a progress line every N sessions")
    args = parser.parse_args(argv)
    if args.batch_sessions < 1:
        parser.error(f"--batch_sessions must be >= 1, got {args.batch_sessions}")
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
        identity = json.dumps({"model": str(args.model.resolve()), "model_digest": _digest(args.model),
                               "data_dir": str(args.data_dir.resolve()), "context": args.context,
                               "data": [_digest(args.data_dir / name) for name in ("wav.scp", "utt2prev")],
                               "decode_mode": args.decode_mode})
        done = _finished(done_path, identity)
        s2t = GCFTSpeech2Text.from_pretrained(args.model, decode_mode=args.decode_mode,
                                              device=args.device)
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
                texts = s2t.transcribe_sessions([[wavs[u] for u in session] for session in group],
                                                context=context, names=group)
                for session, hyps in zip(group, texts):
                    out.write(json.dumps({"session": session, "text": hyps}, ensure_ascii=False) + "\n")
                    done[session[0]] = dict(zip(session, hyps))
                out.flush()
                before, finished = finished, finished + len(group)
                if finished // args.log_every > before // args.log_every or finished == len(todo):
                    logger.info(f"{finished}/{len(todo)} session(s) decoded, "
                                f"{time.time() - start:.0f} s")
        texts = {u: t for session in done.values() for u, t in session.items()}
        write_table_atomic(args.output_dir / "text", ((u, texts[u]) for u in wavs))
        logger.info(f"wrote {args.output_dir / 'text'} ({len(texts)} utterances)")


def _digest(path: Path) -> str:
    """A file's content hash (an exp dir: its checkpoint's; "" when there is none)."""
    path = path if path.is_file() else path / "valid.loss.ave.pth"
    return file_hash(path) if path.is_file() else ""


def _finished(path: Path, identity: str) -> Dict[str, Dict[str, str]]:
    """Sessions finished by an earlier run with the same identity (first line); else none."""
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
        done[record["session"][0]] = dict(zip(record["session"], record["text"]))
    return done


if __name__ == "__main__":
    main(sys.argv[1:])
