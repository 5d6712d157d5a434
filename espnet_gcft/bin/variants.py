"""The variant registry and a run's directory layout, for the recipe scripts.

Usage::

    python -m espnet_gcft.bin.variants                 # one line per variant
    python -m espnet_gcft.bin.variants --names         # their names
    eval "$(python -m espnet_gcft.bin.variants --shell --variants "baseline gcaf" \\
        --expdir exp --tag dw0.1 --num_prev 1 --prev_mode join \\
        --context_prompt title --context_tag "" --prompts "title")"

``--shell`` prints bash assignments (see :func:`shell_lines`): the known
variants, and for each variant of ``--variants`` its context kind, model
mode, exp dir and context source, and the layout's source names. An unknown
variant is an error (exit 1, one line naming it).
"""

import argparse
from pathlib import Path
import shlex
import sys
from typing import List, Sequence

from espnet_gcft.bin.common import reported_errors
from espnet_gcft.recipe.variants import VARIANTS, Layout, check_variants, decode_dir


def _assoc(name: str, values: dict) -> str:
    items = " ".join(f"[{shlex.quote(key)}]={shlex.quote(value)}" for key, value in values.items())
    return f"declare -gA {name}=({items})"


def shell_lines(variants: List[str], layout: Layout, prompts: List[str],
                test_sets: Sequence[str] = (), conditions: Sequence[str] = ("gt",)) -> List[str]:
    """Bash assignments of the registry and the layout.

    - ``known_variants``: every registered variant;
    - ``variant_context``, ``variant_mode``: per variant of ``variants``, its
      context kind and ``context_mode``; ``variant_config``: its config's file name;
    - ``variant_dir``: its exp dir; ``variant_source``: the context source it
      reads (``""`` for none); ``variant_base_source``: that source before row
      stacking;
    - ``prev_source``, ``rows_suffix``, ``text_num_prev``, ``gen_source`` (per prompt);
    - ``condition_source["<source> <condition>"]``: the context dir a condition
      reads, for every variant's source (and ``prev_gt``'s) and every condition;
    - ``decode_dir["<variant> <set> <condition>"]``: where a decode goes.
    """
    chosen = check_variants(variants)
    q = shlex.quote
    sources = dict.fromkeys([layout.context_source(v.name) for v in chosen] + [layout.prev_source])
    sources.pop("", None)
    conditions = list(dict.fromkeys(conditions))
    return [
        f"known_variants={q(' '.join(VARIANTS))}",
        _assoc("variant_context", {v.name: v.context for v in chosen}),
        _assoc("variant_mode", {v.name: v.mode for v in chosen}),
        _assoc("variant_config", {v.name: v.config for v in chosen}),
        _assoc("variant_dir", {v.name: layout.variant_dir(v.name) for v in chosen}),
        _assoc("variant_source", {v.name: layout.context_source(v.name) for v in chosen}),
        _assoc("variant_base_source", {v.name: layout.base_source(v.name) for v in chosen}),
        f"prev_source={q(layout.prev_source)}",
        f"rows_suffix={q(layout.rows_suffix)}",
        f"text_num_prev={layout.text_num_prev}",
        _assoc("gen_source", {p: layout.gen_source(p) for p in prompts}),
        _assoc("condition_source", {f"{s} {c}": layout.condition_source(s, c)
                                    for s in sources for c in conditions}),
        _assoc("decode_dir", {f"{v.name} {d} {c}": str(decode_dir(
            layout.expdir, Path(layout.variant_dir(v.name)).name, d, c))
            for v in chosen for d in test_sets for c in conditions}),
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shell", action="store_true", help="print bash assignments")
    parser.add_argument("--names", action="store_true", help="print the variants' names (one line)")
    parser.add_argument("--variants", default="", help="the run's variants (space-separated)")
    parser.add_argument("--expdir", default="exp")
    parser.add_argument("--tag", default="")
    parser.add_argument("--num_prev", type=int, default=1)
    parser.add_argument("--prev_mode", default="join")
    parser.add_argument("--context_prompt", default="")
    parser.add_argument("--context_tag", default="")
    parser.add_argument("--prompts", default="", help="the run's prompts (space-separated)")
    parser.add_argument("--test_sets", default="", help="the run's test sets (space-separated)")
    parser.add_argument("--conditions", default="gt",
                        help="the decode conditions and --train_degrade (space-separated)")
    args = parser.parse_args(argv)
    with reported_errors(parser.prog):
        if args.names:
            print(" ".join(VARIANTS))
            return
        if not args.shell:
            for variant in VARIANTS.values():
                print(f"{variant.name}\tcontext={variant.context}\tmode={variant.mode}"
                      f"\tinference: {variant.needs}")
            return
        layout = Layout(expdir=args.expdir, tag=args.tag, num_prev=args.num_prev,
                        prev_mode=args.prev_mode, context_prompt=args.context_prompt,
                        context_tag=args.context_tag)
        prompts = list(dict.fromkeys(args.prompts.split() + [args.context_prompt]))
        print("\n".join(shell_lines(args.variants.split(), layout, [p for p in prompts if p],
                                     args.test_sets.split(), args.conditions.split())))


if __name__ == "__main__":
    main(sys.argv[1:])
