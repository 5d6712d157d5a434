"""Score a decode: WER (sclite or jiwer), SLUE NER F1, sentiment macro F1.

Usage::

    python -m espnet_gcft.bin.score --task asr --ref exp/gcaf/decode_test/ref.trn \\
        --hyp exp/gcaf/decode_test/hyp.trn --result_txt exp/gcaf/decode_test/result.txt
    python -m espnet_gcft.bin.score --task ner --ref ref.trn --hyp hyp.trn
    python -m espnet_gcft.bin.score --task sentiment --ref ref.trn --hyp hyp.trn --no_sclite

Prints one JSON object. Every task reports ``wer`` (percent), ``n_ref_words``,
``substitutions``, ``deletions``, ``insertions``, ``cer`` and which ``engine``
counted the words: sclite when installed (its report goes to ``--result_txt``),
otherwise jiwer with one warning. ``ner`` adds ``f1_micro``, ``f1_macro`` over
(type, phrase) pairs and ``label_f1_micro``, ``label_f1_macro`` over types
(SLUE's definitions, percent), with WER on the text without tags; ``sentiment``
adds ``macro_f1`` and ``accuracy`` of the first word, with WER on the rest.
``--homophones`` (a data dir's list of context-decided words) adds
``context_word_acc`` / ``context_word_alt`` / ``context_word_other``: the share
of those words whose aligned hypothesis word is the right spelling, the
alternative or something else; with ``--forced_choice`` (written by
``gcft_inference --homophones``) also ``homophone_acc_<type>``, the share of
items whose reference outscores the same text with the alternative spelling,
and for entity items (``word`` and ``alternative`` entity types)
``entity_type_acc_<type>``, the same with the entity's other type.
Under ``intervals``, every rate has its 95% interval and ``n`` (bootstrap over
utterances for WER/CER, Wilson for accuracies). Utterance ids must match
between the files.
"""

import argparse
import json
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.scoring.score import TASKS, score


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--ref", type=Path, required=True, help="reference trn")
    parser.add_argument("--hyp", type=Path, required=True, help="hypothesis trn")
    parser.add_argument("--sclite", default=None, help="sclite binary (default: found)")
    parser.add_argument("--no_sclite", action="store_true", help="count with jiwer")
    parser.add_argument("--result_txt", type=Path, default=None, help="keep sclite's report here")
    parser.add_argument("--homophones", type=Path, default=None,
                        help="<utt> <type> <position> <word> <alternative> file: adds context_word_*")
    parser.add_argument("--forced_choice", type=Path, default=None,
                        help="forced_choice file of the decode dir: adds homophone_acc_<type> "
                             "(entity_type_acc_<type> for entity items)")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging("WARNING")
    with reported_errors("score"):
        scores = score(args.task, args.ref, args.hyp, args.sclite, not args.no_sclite,
                       args.result_txt, args.homophones, args.forced_choice)
    print(json.dumps(scores, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
