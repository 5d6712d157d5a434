"""Write a variant's ``context.yaml``: how the context it was trained on was made (stage 6).

Usage::

    python -m espnet_gcft.bin.context_spec --variant gen_inject --source gen_title \\
        --meta dump/context/train/gen_title/meta.json --pooling mean \\
        --text_encoder all-minilm-l6-v2 --llm smollm2-135m-instruct --prompt title \\
        --max_new_tokens 12 --out exp/gen_inject/context.yaml

See :mod:`espnet_gcft.context.spec`. The same options write the same bytes;
the embeddings' ``meta.json`` must agree with ``--text_encoder`` and ``--pooling``.
"""

import argparse
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors
from espnet_gcft.context.spec import context_spec, write_context_spec
from espnet_gcft.recipe.variants import get_variant


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--variant", required=True, help="the variant (registry name, untagged)")
    add("--source", default="", help="the context source dir it read (empty: none)")
    add("--meta", type=Path, default=None, help="the training embeddings' meta.json")
    add("--pooling", default="mean")
    add("--num_prev", type=int, default=1)
    add("--prev_mode", default="join")
    add("--text_encoder", default="")
    add("--llm", default="")
    add("--llm_gguf_file", default="")
    add("--llm_backend", default="transformers")
    add("--prompt", default="", help="the prompt id of generated context")
    add("--prompt_file", type=Path, default=None)
    add("--max_new_tokens", type=int, default=32)
    add("--gen_args", default="")
    add("--train_degrade", default="")
    add("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with reported_errors(parser.prog):
        spec = context_spec(
            args.variant, get_variant(args.variant).context, args.source, args.meta, args.pooling, num_prev=args.num_prev,
            prev_mode=args.prev_mode, text_encoder=args.text_encoder, llm=args.llm,
            llm_gguf_file=args.llm_gguf_file, llm_backend=args.llm_backend, prompt=args.prompt,
            prompt_file=args.prompt_file, max_new_tokens=args.max_new_tokens,
            gen_args=args.gen_args, train_degrade=args.train_degrade)
        write_context_spec(spec, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
