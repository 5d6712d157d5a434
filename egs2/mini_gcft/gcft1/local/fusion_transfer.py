#!/usr/bin/env python3
"""Where a distilled (gcaf) model's chain from audio to spelling holds and where it breaks.

The model spells an S item right only if (1) its student hears the item's distill-only
word and predicts a context of the right sense, and (2) its fusion reads such a context as
that sense. ``student_sense_acc_S`` (stage 7's diagnostics) measures (1) against the cue
centroids; this measures (2): the model's own fusion fed, in place of its student,

- on P items, the teacher (the embedding of the generated context of the real cue):
  ``fusion_teacher_acc_P``, what the fusion learnt in training;
- on S items, the centroid of the training teachers of the item's sense, once over the
  cue-decided (P) items (``fusion_cue_centroid_acc_S``) and once over the topic sentences
  of the distill-only words (``fusion_topic_centroid_acc_S``): what a student that
  predicted its targets' mean perfectly would give;
- and, for comparison, its student (``fusion_student_acc_P``, ``fusion_student_acc_S``).

Accuracy is the CTC forced choice between the reference and the reference with the item's
other spelling (as ``forced_choice`` in the decode dirs), with a 95% Wilson interval.

    python local/fusion_transfer.py --model exp/gcaf --out exp/gcaf/decode_test/fusion_transfer.json
"""

import argparse
import collections
import json
import logging
import sys
from pathlib import Path

import kaldiio
import numpy as np
import soundfile
from tqdm import tqdm

from espnet_gcft.asr.inference import GCFTSpeech2Text
from espnet_gcft.bin.common import reported_errors
from espnet_gcft.errors import InputError
from espnet_gcft.scoring.homophones import read_homophones, swap_word
from espnet_gcft.scoring.stats import wilson_interval


def read_table(path: Path) -> dict:
    """``key -> rest of the line`` of a Kaldi-style two-column file."""
    return dict(line.rstrip("\n").split(" ", 1) for line in path.open(encoding="utf-8") if line.strip())


def pooled(matrix: np.ndarray) -> np.ndarray:
    """The mean of a (L, C) context's rows (the demo's contexts have one row)."""
    return matrix.mean(axis=0)


def centroids(data: Path, contexts, pick) -> dict:
    """``sense -> (1, C) mean teacher`` over the training utterances ``pick`` names."""
    rows = collections.defaultdict(list)
    for utt, sense in pick.items():
        matrix = contexts[utt]
        if matrix.shape[0]:
            rows[sense].append(pooled(matrix))
    if not rows:
        raise InputError(f"{data}: no training teacher to average")
    return {sense: np.mean(v, axis=0, dtype=np.float64).astype(np.float32)[None] for sense, v in rows.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="exp dir of a distill model")
    parser.add_argument("--train_dir", type=Path, default=Path("dump/raw/train"))
    parser.add_argument("--test_dir", type=Path, default=Path("dump/raw/test"))
    parser.add_argument("--source", default="gen_title", help="the context source the model was trained on")
    parser.add_argument("--embedding", default="emb_mean", help="the embedding file's name in the source dir")
    parser.add_argument("--out", type=Path, required=True, help="JSON of the accuracies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    with reported_errors("fusion_transfer"):
        s2t = GCFTSpeech2Text.from_pretrained(args.model, decode_mode="greedy")
        model = s2t.asr_model
        if s2t.context_mode != "distill":
            raise InputError(f"{args.model}: a {s2t.context_mode!r} model has no student to stand in for")

        def contexts(data_dir):
            path = Path("dump/context") / data_dir.name / args.source / f"{args.embedding}.scp"
            return kaldiio.load_scp(str(path))

        train_ctx, test_ctx = contexts(args.train_dir), contexts(args.test_dir)
        train_items = read_homophones(args.train_dir / "homophones")
        cue = centroids(args.train_dir, train_ctx,
                        {u: i.word for u, i in train_items.items() if i.kind == "P"})
        types = read_table(args.train_dir / "utt2type")
        topic = centroids(args.train_dir, train_ctx,
                          {u: s for u, s in read_table(args.train_dir / "distill_topics").items()
                           if types.get(u) == "topic"})
        items = read_homophones(args.test_dir / "homophones")
        wavs, texts = read_table(args.test_dir / "wav.scp"), read_table(args.test_dir / "text")

        def right(utt, context):
            """Whether the forced choice picks the reference, the fusion reading ``context``
            (None: the model's own student)."""
            wav, rate = soundfile.read(wavs[utt], dtype="float32")
            model.context_mode = "distill" if context is None else "inject"
            try:
                encoded, _ = s2t.encode(wav, context, utt)
            finally:
                model.context_mode = "distill"
            reference = texts[utt]
            score, other = s2t.ctc_log_likelihood(encoded, [reference, swap_word(reference, items[utt])])
            return score > other

        results = collections.defaultdict(list)
        for utt, item in tqdm(sorted(items.items()), desc="fusion_transfer", unit="item", disable=None):
            if item.kind == "P":
                results["fusion_teacher_acc_P"].append(right(utt, test_ctx[utt]))
                results["fusion_student_acc_P"].append(right(utt, None))
            elif item.kind == "S":
                for name, table in (("cue", cue), ("topic", topic)):
                    if item.word not in table:
                        raise InputError(f"{args.train_dir}: no training teacher of the sense {item.word!r} "
                                         f"(item {utt})")
                    results[f"fusion_{name}_centroid_acc_S"].append(right(utt, table[item.word]))
                results["fusion_student_acc_S"].append(right(utt, None))
        report = {}
        for name, hits in sorted(results.items()):
            low, high = wilson_interval(sum(hits), len(hits))
            report[name] = {"value": round(100 * sum(hits) / len(hits), 4), "ci_low": round(100 * low, 4),
                            "ci_high": round(100 * high, 4), "n": len(hits)}
            logging.info(f"{name}: {report[name]['value']:.1f} [{report[name]['ci_low']:.1f}, "
                         f"{report[name]['ci_high']:.1f}] (n={len(hits)})")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
