"""Session decoding with the model's own hypotheses as context: one by one against side by side.

Usage::

    tools/venv/bin/python bench/session_decode.py --recipe egs2/mini_gcft/gcft1 \\
        --model exp/gen_inject [--sessions 16] [--batch_sessions 8]

Decodes the first ``--sessions`` sessions of the recipe's test set with
``--context self`` twice in one process: each session alone
(``transcribe_session``: one LLM and encoder call per utterance) and
``--batch_sessions`` sessions side by side (``transcribe_sessions``: utterance i of
each in one step, the contexts generated and embedded as one batch). Prints
utterances per second of each and their ratio, one ``name: value`` line per
figure, and whether both gave the same texts. The LLM and encoder are loaded
before the clock starts.
"""

import argparse
import os
from pathlib import Path
import time

from espnet_gcft.asr.inference import GCFTSpeech2Text
from espnet_gcft.bin.transcribe import sessions_of
from espnet_gcft.context.spec import read_context_spec
from espnet_gcft.fileio import read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", type=Path, default=Path("egs2/mini_gcft/gcft1"))
    parser.add_argument("--model", default="exp/gen_inject", help="exp dir or packed.zip, in the recipe")
    parser.add_argument("--data_dir", default="dump/raw/test", help="in the recipe")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--batch_sessions", type=int, default=8)
    parser.add_argument("--context_spec", type=Path, default=None,
                        help="a context.yaml for a model of a run that wrote none")
    args = parser.parse_args()
    context_spec = args.context_spec.resolve() if args.context_spec else None
    os.chdir(args.recipe)
    s2t = GCFTSpeech2Text.from_pretrained(args.model, decode_mode="greedy")
    if context_spec is not None:
        s2t.context_spec = read_context_spec(context_spec)
    data = Path(args.data_dir)
    wavs = {fields[0]: fields[1] for _, fields in read_table(data / "wav.scp", 2, 2)}
    sessions = [[wavs[u] for u in session] for session in sessions_of(data)[:args.sessions]]
    utterances = sum(len(session) for session in sessions)
    s2t.transcribe_session(sessions[0][:2], context="self")  # loads the LLM and the encoder
    start = time.perf_counter()
    alone = [s2t.transcribe_session(session, context="self") for session in sessions]
    one_by_one = utterances / (time.perf_counter() - start)
    start = time.perf_counter()
    together = []
    for first in range(0, len(sessions), args.batch_sessions):
        together += s2t.transcribe_sessions(sessions[first:first + args.batch_sessions], context="self")
    batched = utterances / (time.perf_counter() - start)
    print(f"sessions: {len(sessions)}")
    print(f"utterances: {utterances}")
    print(f"one_by_one_utt_per_s: {one_by_one:.2f}")
    print(f"batched_utt_per_s: {batched:.2f}")
    print(f"batched_over_one_by_one: {batched / one_by_one:.2f}")
    print(f"same_texts: {int(alone == together)}")


if __name__ == "__main__":
    main()
