"""Session decoding with the model's own hypotheses as context, and a stage-7 style decode:
one by one against batched.

Usage::

    tools/venv/bin/python bench/session_decode.py --recipe egs2/mini_gcft/gcft1 \\
        --model exp/gen_inject [--sessions 16] [--batch_sessions 8] [--batch_size 16]

Decodes the first ``--sessions`` sessions of the recipe's test set with
``--context self`` twice in one process: each session alone
(``transcribe_session``: one LLM and encoder call per utterance) and
``--batch_sessions`` sessions side by side (``transcribe_sessions``: utterance i of
each in one step, the contexts generated and embedded as one batch). Prints
utterances per second of each and their ratio, one ``name: value`` line per
figure, and whether both gave the same texts. The LLM and encoder are loaded
before the clock starts.

On the demo's P items (an inject model) it also prints how often
``transcribe(wav, previous=[cue])`` and ``previous=[the other sense's cue]``
spell the item differently (``cue_changes_spelling_percent``).

Then a stage-7 style decode of the same utterances with their ground-truth
contexts (the recipe's ``emb_<pooling>.scp`` of the model's source; audio alone
for an audio-only model): one utterance at a time (``encode``) against
``--batch_size`` at a time (``encode_batch``: the upstream per waveform, the rest
batched), with the share of identical texts.
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
    parser.add_argument("--batch_size", type=int, default=16, help="stage-7 style batch")
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
    stage7(s2t, data, [u for session in sessions_of(data)[:args.sessions] for u in session], wavs,
           args.batch_size)
    if s2t.context_mode == "inject" and (data / "homophones").is_file():
        cue_check(s2t, data, wavs)


def cue_check(s2t, data: Path, wavs) -> None:
    """On the demo's P items: transcribe(previous=[its cue]) against previous=[the other
    sense's cue] (the opposite condition's pairing): the share spelt differently, and right."""
    import soundfile

    from espnet_gcft.fileio import read_text
    from espnet_gcft.scoring.homophones import read_homophones

    words = read_text(data / "transcript")
    prev = {fields[0]: fields[1] for _, fields in read_table(data / "utt2prev", 2, 2)}
    donor = {fields[0]: fields[1] for _, fields in read_table(
        data.parent.parent / "context" / data.name / "prev_gt_opposite" / "map", 2, 2)}
    items = [item for item in read_homophones(data / "homophones").values() if item.kind == "P"]
    changed = right = 0
    for item in items:
        wav, _ = soundfile.read(wavs[item.utt], dtype="float32")
        spelt = [(s2t.transcribe(wav, previous=[words[prev[utt]]]).split() + [""] * (item.position + 1))
                 [item.position] for utt in (item.utt, donor[item.utt])]
        changed += spelt[0] != spelt[1]
        right += spelt[0] == item.word
    print(f"p_items: {len(items)}")
    print(f"cue_changes_spelling_percent: {100 * changed / len(items):.1f}")
    print(f"right_cue_spells_right_percent: {100 * right / len(items):.1f}")


def stage7(s2t, data: Path, utts, wavs, batch_size: int) -> None:
    """Stage 7's decode of ``utts`` (ground-truth contexts): one by one against batched."""
    import kaldiio
    import soundfile

    speech = [soundfile.read(wavs[u], dtype="float32")[0] for u in utts]
    contexts = None
    if s2t.context_mode == "inject":
        spec = s2t.context_spec
        scp = data.parent.parent / "context" / data.name / spec["source"] / f"emb_{spec['pooling']}.scp"
        table = kaldiio.load_scp(str(scp))
        contexts = [table[u] for u in utts]
    start = time.perf_counter()
    alone = [s2t.recognize(wav, None if contexts is None else contexts[i], utts[i])[0]
             for i, wav in enumerate(speech)]
    one_by_one = len(utts) / (time.perf_counter() - start)
    start = time.perf_counter()
    together = []
    for first in range(0, len(utts), batch_size):
        part = slice(first, first + batch_size)
        together += [hyp[0] for hyp in s2t.recognize_batch(
            speech[part], None if contexts is None else contexts[part], utts[part])]
    batched = len(utts) / (time.perf_counter() - start)
    print(f"stage7_one_by_one_utt_per_s: {one_by_one:.2f}")
    print(f"stage7_batched_utt_per_s: {batched:.2f}")
    print(f"stage7_batched_over_one_by_one: {batched / one_by_one:.2f}")
    print(f"stage7_same_texts_percent: {100 * sum(a == b for a, b in zip(alone, together)) / len(utts):.1f}")


if __name__ == "__main__":
    main()
