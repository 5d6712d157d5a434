"""Generate context for every utterance of a data dir with an LLM.

Usage::

    python -m espnet_gcft.bin.generate_context --data_dir data/dev --prompt title \\
        --out_dir dump/context/dev/gen_title
    # several outputs (sets x prompts) in one process: the LLM is loaded once
    python -m espnet_gcft.bin.generate_context \\
        --job data/train transcript title dump/context/train/gen_title \\
        --job data/dev transcript title dump/context/dev/gen_title \\
        --job data/dev transcript topic dump/context/dev/gen_topic
    # a 7B model on a GPU with vLLM, the 4th of 8 Slurm array tasks (numbered 1-8)
    python -m espnet_gcft.bin.generate_context --data_dir data/train --prompt next_sentence \\
        --model mistralai/Mistral-7B-Instruct-v0.2 --backend vllm --device cuda \\
        --shard 4/8 --out_dir dump/context/train/gen_next_sentence/shard.4
    python -m espnet_gcft.bin.merge_context --data_dir data/train \\
        --out_dir dump/context/train/gen_next_sentence dump/context/train/gen_next_sentence/shard.*

A job is a data dir, its file of plain transcripts, a prompt and an out dir:
either the options ``--data_dir``, ``--text``, ``--prompt`` and ``--out_dir``
(one job), or ``--job DATA_DIR TEXT PROMPT OUT_DIR`` once per job (TEXT is a
file of DATA_DIR, or ``-`` for the default). Every other option applies to
every job, ``--shard i/n`` included (each job writes shard i of its
utterances into its own OUT_DIR). All inputs are read and checked before the
LLM is loaded, once per process (logged as ``loading LLM <model> (...)``); the
jobs run in the order given.

Each job reads ``<data_dir>/transcript`` (``text`` when there is none; or
``--text``) and ``<data_dir>/utt2prev``; writes into its out dir:
``generation.jsonl`` (one record per utterance: prompt id, hash and text, model,
parameters, raw and cleaned output; appended after every batch) and ``text``
(``<utt> <context>``, written at the end). Rerunning resumes: only utterances
without a matching record (same prompt hash, model and parameters) are
generated; ``--reuse_dir`` adds the records of other sets (the same previous
text is generated once per corpus, not once per set), and a job reuses what
an earlier job of the same run generated. The default model is the embedded
SmolLM2-135M-Instruct GGUF.
"""

import argparse
from pathlib import Path
import sys
from typing import List, Optional, Tuple

from espnet_gcft.bin.common import reported_errors, setup_logging
from espnet_gcft.context.backends import BACKENDS, GenerationParams, build_backend
from espnet_gcft.context.generate import add_generation_options
from espnet_gcft.context.generate import Job, check_jobs, generate_jobs, parse_shard
from espnet_gcft.context.history import previous_texts, read_utt2prev
from espnet_gcft.context.models import EMBEDDED_LLM
from espnet_gcft.context.prompts import get_prompt
from espnet_gcft.fileio import read_text, transcript_file


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--data_dir", type=Path, default=None, help="Kaldi data dir with text and utt2prev (one job)")
    add("--text", default=None,
        help="file of --data_dir with the plain transcripts "
             "(default: transcript if present, else text)")
    add("--prompt", default=None, help="prompt id (next_sentence, title, topic, keywords, ...)")
    add("--out_dir", type=Path, default=None, help="where generation.jsonl and text go")
    add("--job", nargs=4, action="append", default=[],
        metavar=("DATA_DIR", "TEXT", "PROMPT", "OUT_DIR"),
        help="one job of several in this process, instead of --data_dir/--text/--prompt/--out_dir "
             "(TEXT: file of DATA_DIR with the plain transcripts, - for the default); repeatable, "
             "run in order, the LLM loaded once")
    add("--prompt_file", type=Path, default=None, help="YAML file with more prompts")
    add("--model", default=EMBEDDED_LLM, help="causal LM: embedded name, local dir or hub name")
    add("--gguf_file", default=None, help="GGUF file inside --model")
    add("--backend", choices=BACKENDS, default="transformers")
    add("--device", default="cpu")
    add_generation_options(parser)
    add("--num_prev", type=int, default=1, help="previous utterances joined, oldest first")
    add("--shard", default=None,
        help="i/n: process shard i of n of every job only (1 <= i <= n, as job numbers)")
    add("--reuse_dir", type=Path, action="append", default=[],
        help="output dir of another run (e.g. the training set's) whose outputs for the "
             "same prompt, model, parameters and input are reused, by every job; repeatable")
    add("--no_progress", action="store_true", help="no progress bar")
    return parser


def job_specs(parser: argparse.ArgumentParser, args) -> List[Tuple[Path, Optional[str], str, Path]]:
    """(data dir, text file or None, prompt id, out dir) of every job the options ask for."""
    single = [f"--{name}" for name in ("data_dir", "text", "prompt", "out_dir")
              if getattr(args, name) is not None]
    if args.job:
        if single:
            parser.error(f"--job and {', '.join(single)}: give the jobs either way, not both")
        return [(Path(data), None if text == "-" else text, prompt, Path(out))
                for data, text, prompt, out in args.job]
    missing = [f"--{name}" for name in ("data_dir", "prompt", "out_dir") if getattr(args, name) is None]
    if missing:
        parser.error(f"{', '.join(missing)} required (or one --job per output)")
    return [(args.data_dir, args.text, args.prompt, args.out_dir)]


def main(argv=None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    specs = job_specs(parser, args)
    setup_logging()
    with reported_errors("generate_context"):
        shard = parse_shard(args.shard)
        params = GenerationParams(args.max_new_tokens, args.do_sample, args.temperature,
                                  args.top_p, args.seed)
        jobs = []
        for data_dir, text, prompt_id, out_dir in specs:
            texts = read_text(transcript_file(data_dir, text))
            previous = previous_texts(texts, read_utt2prev(data_dir / "utt2prev"), args.num_prev)
            jobs.append(Job(previous, get_prompt(prompt_id, args.prompt_file), out_dir))
        check_jobs(jobs)
        backend = build_backend(args.backend, model=args.model, gguf_file=args.gguf_file,
                                device=args.device, dtype=args.dtype,
                                trust_remote_code=args.trust_remote_code)
        generate_jobs(  # logs each job's summary
            jobs, backend, params, reuse_dirs=args.reuse_dir, batch_size=args.batch_size,
            max_input_tokens=args.max_input_tokens, shard=shard, progress=not args.no_progress,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
