"""Write RESULTS.md, RESULTS.json and RESULTS.png from the scored decodes (stage 8).

Usage::

    python -m espnet_gcft.bin.make_results --exp_dir exp \\
        --variants baseline inject_gt gen_inject gcaf --test_sets test \\
        --conditions gt shuffled opposite hyp --task asr --context_dir dump/context \\
        --out RESULTS.md --json RESULTS.json --plot RESULTS.png

Reads ``<exp_dir>/<variant>/decode_<set>[_<condition>]/`` (``score.json``,
``ref.trn``, ``hyp.trn``, ``forced_choice``, ``diagnostics.json``) and writes:

- ``--json``: a JSON list of records, one per variant x set x condition x
  metric: ``variant``, ``set``, ``condition``, ``metric``, ``value``,
  ``ci_low``, ``ci_high``, ``n`` (percent, 95% interval), ``p_vs_baseline``
  where a paired test against the baseline's ``gt`` decode applies, and the
  run's ``commit``, ``seed`` and ``command``;
- ``--out``: the same as tables, headed by what the run used (read from its
  outputs: the LLM from ``generation.jsonl``, the text encoder and the context
  source from ``meta.json``, distill_weight from the config of the run's first
  variant with a student, tagged for a sweep point), the chart, the
  parameters each variant runs at inference and the context reports;
- ``--plot``: forced-choice accuracies and CER with their intervals.
"""

import argparse
from datetime import date
import json
import logging
from pathlib import Path
import subprocess
import sys

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.errors import MissingInputError
from espnet_gcft.fileio import write_text_atomic
from espnet_gcft.recipe.results import METRICS, add_holm, collect_records, read_headline, run_facts
from espnet_gcft.recipe.results_report import chart, inference_params, results_markdown, table_family
from espnet_gcft.recipe.variants import Layout


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--conditions", nargs="+", default=["gt"],
                        help="decode conditions (gt, shuffled, opposite, hyp, self, ...)")
    parser.add_argument("--task", choices=sorted(METRICS), default="asr")
    parser.add_argument("--model_file", default="valid.loss.ave.pth")
    parser.add_argument("--context_dir", type=Path, required=True,
                        help="dump/context (reports, generation.jsonl, meta.json)")
    parser.add_argument("--raw_dir", type=Path, default=None,
                        help="formatted data dirs with homophones (default: <context_dir>/../raw)")
    parser.add_argument("--context_prompt", default="title")
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--num_prev", type=int, default=1)
    parser.add_argument("--prev_mode", choices=("join", "rows"), default="join")
    parser.add_argument("--context_tag", default="", help="gcft.sh --context_tag (names the generated source)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--command", default="", help="the command line of the run")
    parser.add_argument("--extra_records", type=Path, nargs="*", default=[],
                        help="RESULTS.json files of other runs (e.g. the NER run) whose records "
                             "are added, with their tables, as they are")
    parser.add_argument("--headline", type=Path, default=None,
                        help="YAML list of the pre-stated headline tests (variant, set, condition, "
                             "metric, target): RESULTS.md puts them first, as one Holm family")
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("--json", type=Path, default=None, help="default: --out with .json")
    parser.add_argument("--plot", type=Path, default=None, help="PNG chart")
    return parser


def commit_of(path: Path) -> str:
    """The checkout's commit (short), with "+changes" when the work tree differs (its
    RESULTS files aside)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    # the RESULTS files a run writes itself do not make its tree another one
    changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if not Path(line[3:].strip()).name.startswith("RESULTS")]
    return commit + ("+changes" if changed else "")


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    json_path = args.json or args.out.with_suffix(".json")
    raw_dir = args.raw_dir or args.context_dir.parent / "raw"
    with reported_errors("make_results"):
        records = collect_records(args.exp_dir, raw_dir, args.variants, args.test_sets,
                                  args.conditions, args.task)
        if not records:
            raise FileNotFoundError(f"no score.json under {args.exp_dir}: run stage 7 first")
        commit = commit_of(Path(__file__).resolve().parent)
        for record in records:
            record.update(commit=commit, seed=args.seed, command=args.command)
        test_sets = list(args.test_sets)
        for path in args.extra_records:
            if not path.is_file():
                raise MissingInputError(f"--extra_records {path}: no such file (run that recipe first)")
            extra = json.loads(path.read_text())
            records += extra
            test_sets += [s for s in dict.fromkeys(r["set"] for r in extra) if s not in test_sets]
        layout = Layout(num_prev=args.num_prev, prev_mode=args.prev_mode,
                        context_prompt=args.context_prompt, context_tag=args.context_tag)
        headline = read_headline(args.headline) if args.headline else []
        add_holm(records, table_family, headline)
        facts = run_facts(args.context_dir, args.exp_dir, args.variants, args.test_sets[0], layout,
                          args.pooling)
        params = inference_params(args.exp_dir, args.variants, args.model_file, facts["llm"],
                                  facts["text_encoder"])
        reports = [args.context_dir / s / "report.md" for s in args.test_sets]
        context = "\n".join(p.read_text() for p in reports if p.is_file())
        header = "\n".join([
            "# RESULTS", "",
            f"{date.today().isoformat()}, task `{args.task}`, commit `{commit}`, seed {args.seed}. "
            f"LLM `{facts['llm'] or 'none'}` with prompt `{args.context_prompt}`, context source "
            f"`{facts['source'] or 'none'}`, num_prev "
            f"{args.num_prev} ({args.prev_mode}); text encoder `{facts['text_encoder'] or 'none'}` ({args.pooling}); "
            f"distill_weight {facts['distill_weight'] or 'n/a'}; "
            + (f"every variant fine-tuned from {facts['init_param']}; " if facts["init_param"]
               else "")
            + f"decoded with `{args.model_file}`.", "",
            f"Command: `{args.command}`" if args.command else "",
            "",
            "Values in percent with their 95% interval [low, high] (Wilson for accuracies, "
            "bootstrap over utterances for WER, CER and F1) over n items or utterances; p: "
            "two-sided paired test against the baseline's decode of the same set (exact "
            "McNemar on items, sclite's matched-pairs test for WER, paired bootstrap for CER "
            "and F1). Conditions: `gt` the ground-truth previous text (the default), "
            "`shuffled` another session's context, `opposite` the other sense's cue on the "
            "context-decided items, `hyp` the previous utterance's ASR hypothesis (the "
            "baseline's), `self` the model's own hypotheses of its session, each session "
            "decoded in order (what a deployment has). p in parentheses: Holm's adjustment within the family (the headline "
            "tests, or the table). A difference whose p is not below 0.05 is noise; overlapping "
            "intervals are not a test."])
        write_text_atomic(json_path, json.dumps(records, indent=1) + "\n")
        chart_name = None
        if args.plot is not None:
            chart(records, args.test_sets[0], args.plot)
            chart_name = str(args.plot.resolve().relative_to(args.out.resolve().parent)) \
                if args.plot.resolve().is_relative_to(args.out.resolve().parent) else str(args.plot)
        write_text_atomic(args.out, results_markdown(records, test_sets, header, params,
                                                     chart_name, context, headline))
    logging.info(f"wrote {args.out}, {json_path}" + (f" and {args.plot}" if args.plot else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
