"""Write RESULTS.md and a bar chart from the scored decodes (stage 8).

Usage::

    python -m espnet_gcft.bin.make_results --exp_dir exp --variants baseline inject_gt gen_inject gcaf \\
        --test_sets test --task asr --out RESULTS.md --plot exp/results.png

Reads ``<exp_dir>/<variant>/decode_<set>/score.json`` and writes one table of
every variant x test set x metric of the task, with the parameters each
variant runs at inference (its model, plus the text encoder and LLM it needs)
and what it needs at inference; then a PNG bar chart of the same. When
``--context_dir`` holds context reports (``<set>/report.md``), their tables are
added after the scores.
"""

import argparse
from datetime import date
import logging
from pathlib import Path
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.models import EMBEDDED_ENCODER, EMBEDDED_LLM
from espnet_gcft.context.kaldi import write_text_atomic
from espnet_gcft.recipe.results import METRICS, bar_chart, collect, inference_params, results_markdown


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--task", choices=sorted(METRICS), default="asr")
    parser.add_argument("--model_file", default="valid.loss.ave.pth")
    parser.add_argument("--llm", default=EMBEDDED_LLM)
    parser.add_argument("--text_encoder", default=EMBEDDED_ENCODER)
    parser.add_argument("--context_dir", type=Path, default=None, help="dump/context with reports")
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("--plot", type=Path, default=None, help="PNG bar chart")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    with reported_errors("make_results", (FileNotFoundError, ValueError)):
        scores = collect(args.exp_dir, args.variants, args.test_sets)
        if not scores:
            raise FileNotFoundError(f"no score.json under {args.exp_dir}: run stage 7 first")
        params = inference_params(args.exp_dir, args.variants, args.model_file, args.llm,
                                  args.text_encoder)
        context = ""
        if args.context_dir is not None:
            reports = [args.context_dir / s / "report.md" for s in args.test_sets]
            context = "\n".join(p.read_text() for p in reports if p.is_file())
        header = (f"# RESULTS\n\n{date.today().isoformat()}, task `{args.task}`, "
                  f"LLM `{args.llm}`, text encoder `{args.text_encoder}`, decoded with "
                  f"`{args.model_file}`. Metrics in percent (WER/CER lower is better).")
        write_text_atomic(args.out, results_markdown(args.task, scores, params, args.test_sets,
                                                     header, context))
        if args.plot is not None:
            bar_chart(args.task, scores, args.test_sets, args.plot)
    logging.info(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
