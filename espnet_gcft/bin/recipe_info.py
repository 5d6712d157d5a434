"""Small lookups the stage script makes: one line on standard output each.

Usage::

    python -m espnet_gcft.bin.recipe_info prompt_hash title [--prompt_file prompts.yaml]
    python -m espnet_gcft.bin.recipe_info ner_symbols          # sentencepiece's user-defined symbols
    python -m espnet_gcft.bin.recipe_info context_dim dump/context/train/prev_audio/meta.json emb_mean
    python -m espnet_gcft.bin.recipe_info score_summary exp/gcaf/decode_test/score.json
    python -m espnet_gcft.bin.recipe_info config_value conf/train_gcaf.yaml model_conf.distill_weight

- ``prompt_hash``: the hash of a prompt's text (part of a generation's stamp);
- ``ner_symbols``: the NER tags and the entity delimiters, comma-separated;
- ``context_dim``: the dimension of an embedding file, from its ``meta.json``;
- ``score_summary``: a decode's scores, ``name value`` with two decimals;
- ``config_value``: a value of a YAML config, by its dotted key.
"""

import argparse
import json
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors
from espnet_gcft.errors import InputError, MissingInputError


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prompt = commands.add_parser("prompt_hash")
    prompt.add_argument("prompt")
    prompt.add_argument("--prompt_file", default="")
    commands.add_parser("ner_symbols")
    dim = commands.add_parser("context_dim")
    dim.add_argument("meta", type=Path)
    dim.add_argument("key")
    summary = commands.add_parser("score_summary")
    summary.add_argument("score", type=Path)
    value = commands.add_parser("config_value")
    value.add_argument("config", type=Path)
    value.add_argument("key", help="dotted key, e.g. model_conf.distill_weight")
    args = parser.parse_args(argv)
    with reported_errors(parser.prog):
        if args.command == "prompt_hash":
            from espnet_gcft.context.prompts import get_prompt

            print(get_prompt(args.prompt, args.prompt_file or None).hash)
        elif args.command == "ner_symbols":
            from espnet_gcft.scoring.slu import FILL, NER_TYPES, SEP

            print(",".join(NER_TYPES + (FILL, SEP)))
        elif args.command == "context_dim":
            if not args.meta.is_file():
                raise MissingInputError(f"{args.meta} is missing: embed the context first")
            entry = json.loads(args.meta.read_text()).get(args.key)
            if not entry or "dim" not in entry:
                raise InputError(f"{args.meta}: no {args.key} entry with a dim")
            print(entry["dim"])
        elif args.command == "config_value":
            import yaml

            if not args.config.is_file():
                raise MissingInputError(f"{args.config}: no such config")
            node = yaml.safe_load(args.config.read_text())
            for part in args.key.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise InputError(f"{args.config}: no {args.key}")
                node = node[part]
            print(node)
        else:
            scores = json.loads(args.score.read_text())
            print(", ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items())
                            if isinstance(v, float)))


if __name__ == "__main__":
    main(sys.argv[1:])
