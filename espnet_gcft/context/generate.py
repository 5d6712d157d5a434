"""LLM context generation: previous text -> generated context, resumable and shardable.

For each utterance the previous text (``--num_prev`` utterances joined) goes
through a prompt into the LLM. Outputs land in ``out_dir``:

- ``generation.jsonl``: one record per utterance (prompt id, hash and rendered
  text, model, parameters, raw and cleaned output), appended and flushed after
  every batch;
- ``text``: ``<utt> <cleaned context>`` for every utterance, written at the end
  by atomic rename.

A rerun reads the records, reuses those made with the same prompt hash, model
and parameters, and generates only what is missing; equal inputs are generated
once. Utterances without a previous text get an empty context without a call.
:func:`generate_jobs` runs several outputs (sets, prompts) with one backend, so
the LLM is loaded once; an input generated for an earlier job is reused.
"""

from dataclasses import dataclass
import hashlib
import json
import logging
import os
from pathlib import Path
import re
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
import zlib

from tqdm import tqdm

from espnet_gcft.context.backends import GenerationParams, LLMBackend
from espnet_gcft.context.prompts import Prompt
from espnet_gcft.errors import InputError
from espnet_gcft.fileio import read_text, write_table_atomic, write_text_atomic

logger = logging.getLogger(__name__)
RECORDS = "generation.jsonl"

_ROLE = re.compile(
    r"^\s*(?:<\|?im_(?:start|end)\|?>\s*)*(?:assistant|system|user|ai|bot)\s*(?::|\n|$)\s*",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^\s*(?:title|topic|keywords?|next sentence|answer|sentence)\s*:\s*", re.IGNORECASE
)
_QUOTES = ('"', "'", "“", "”", "*", "`")


class GenerationError(InputError, RuntimeError):
    """Bad generation input or state (names the file, line or utterance)."""


def clean_output(raw: str, user_text: str = "") -> str:
    """One clean line from a raw LLM continuation.

    Drops an echo of the user message, chat-role prefixes (``assistant:``,
    ``<|im_start|>assistant``), answer labels (``Title:``), surrounding quotes,
    and everything after the first non-empty line; whitespace is normalised.
    """
    text = raw.strip()
    if user_text and text.startswith(user_text.strip()):
        text = text[len(user_text.strip()):]
    previous = None
    while previous != text:  # role prefixes can be stacked or repeated
        previous = text
        text = _ROLE.sub("", text, count=1).lstrip()
    for line in text.splitlines():
        line = _LABEL.sub("", line).strip()
        line = line.strip("".join(_QUOTES)).strip()
        if line:
            return " ".join(line.split())
    return ""


def shard_of(name: str, num_shards: int) -> int:
    """Deterministic shard (0-based) of a name: crc32 of it mod n.

    :func:`generate_context` shards an utterance by its input key (so equal
    inputs, in one set or in several jobs, fall in one shard and are generated
    once), and an utterance without a previous text by its id.
    """
    return zlib.crc32(name.encode("utf-8")) % num_shards


def parse_shard(spec: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"i/n"`` with 1 <= i <= n (job numbers as ESPnet's runners count them,
    from 1) -> the 0-based ``(i - 1, n)`` that :func:`shard_of` returns."""
    if spec is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", spec)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise GenerationError(f"--shard must be i/n with 1 <= i <= n, got {spec!r}")
    return int(match[1]) - 1, int(match[2])


@dataclass
class Summary:
    """What one run did."""

    utterances: int = 0
    generated: int = 0  # LLM outputs produced in this run (distinct inputs)
    reused: int = 0  # utterances served by earlier records or a duplicate input
    empty: int = 0  # utterances without a previous text (no LLM call)
    truncated: int = 0  # inputs cut from the left to fit the model's window
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.utterances} utterances: {self.generated} generated, {self.reused} reused, "
            f"{self.empty} empty, {self.truncated} truncated, {self.seconds:.1f} s"
        )


def _input_key(prompt: Prompt, model_id: str, params: dict, previous: str) -> str:
    blob = json.dumps([prompt.hash, model_id, params, previous], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def read_records(path: Path) -> List[dict]:
    """Records of ``generation.jsonl``; a torn last line (killed mid-write) is cut off."""
    if not path.is_file():
        return []
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        logger.warning(f"{path}: dropping an incomplete last record (interrupted write)")
        with open(path, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    records = []
    for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise GenerationError(f"{path}:{lineno}: not a JSON record: {error}") from None
    return records


def _current_records(
    records: List[dict], prompt: Prompt, model_id: str, params: dict, key_of: Dict[str, str]
) -> Dict[str, str]:
    """utt -> text of the records that match this run exactly (same input key too)."""
    texts = {}
    for rec in records:
        if (rec.get("prompt_hash"), rec.get("model"), rec.get("params")) == (
                prompt.hash, model_id, params) and rec.get("key") == key_of.get(rec.get("utt")):
            texts[rec["utt"]] = rec["text"]
    return texts


def _append(handle, records: Iterable[dict]) -> None:
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def add_generation_options(parser) -> None:
    """The LLM options of ``generate_context`` that shape its outputs (also how a model's
    ``context.yaml`` records ``--gen_args``, which :mod:`espnet_gcft.context.pipeline` parses)."""
    add = parser.add_argument
    add("--dtype", default="auto", help="weight dtype (auto, float32, bfloat16, ...)")
    add("--trust_remote_code", action="store_true", help="allow code shipped with the model")
    add("--batch_size", type=int, default=16, help="prompts per LLM call")
    add("--max_new_tokens", type=int, default=48)
    add("--max_input_tokens", type=int, default=None,
        help="longest prompt; longer previous texts are cut from the left "
             "(default: model window - max_new_tokens)")
    add("--do_sample", action="store_true", help="sample instead of greedy decoding")
    add("--temperature", type=float, default=0.7)
    add("--top_p", type=float, default=0.9)
    add("--seed", type=int, default=0)


def fit_previous(
    texts: Iterable[str], prompt: Prompt, backend: LLMBackend, params: GenerationParams,
    max_input_tokens: Optional[int] = None,
) -> Tuple[Dict[str, str], set, int]:
    """Each non-empty previous text as the LLM gets it: cut from the left when the rendered
    prompt would exceed ``max_input_tokens`` (default: the model window minus
    ``max_new_tokens``). Returns (text -> kept text, the texts that were cut, the budget)."""
    budget = max_input_tokens or backend.window - params.max_new_tokens
    overhead = backend.count_tokens(backend.render(prompt, ""))
    fitted: Dict[str, str] = {}
    cut = set()
    for text in {text for text in texts if text}:
        kept = text
        if overhead + backend.count_tokens(text) > budget:
            kept = backend.keep_last_tokens(text, budget - overhead)
            cut.add(text)
        fitted[text] = kept
    return fitted, cut, budget


def generate_texts(
    texts: Sequence[str], prompt: Prompt, backend: LLMBackend, params: GenerationParams,
    batch_size: int = 16, max_input_tokens: Optional[int] = None,
) -> List[str]:
    """The cleaned context of each previous text, in memory, as :func:`generate_context`
    makes it for a set ("" for an empty text; equal texts generated once)."""
    fitted, _, _ = fit_previous(texts, prompt, backend, params, max_input_tokens)
    distinct = sorted(fitted, key=lambda t: (-len(backend.render(prompt, fitted[t])), t))
    outputs: Dict[str, str] = {}
    for first in range(0, len(distinct), batch_size):
        chunk = distinct[first:first + batch_size]
        raws = backend.generate([backend.render(prompt, fitted[t]) for t in chunk], params)
        if len(raws) != len(chunk):
            raise GenerationError(f"backend returned {len(raws)} outputs for {len(chunk)} prompts")
        for text, raw in zip(chunk, raws):
            outputs[text] = clean_output(raw, prompt.user.format(previous=fitted[text]))
    return [outputs.get(text, "") for text in texts]


def generate_context(
    previous: Dict[str, str],
    prompt: Prompt,
    backend: LLMBackend,
    params: GenerationParams,
    out_dir: Path,
    batch_size: int = 16,
    max_input_tokens: Optional[int] = None,
    shard: Optional[Tuple[int, int]] = None,
    progress: bool = True,
    reuse_dirs: Sequence[Path] = (),
    cache: Optional[Dict[str, Tuple[Optional[str], str]]] = None,
) -> Summary:
    """Generate context for every utterance of ``previous`` (in the given order).

    Args:
        previous: utterance -> previous text ("" for the first of a session).
        prompt: the prompt turning a previous text into a request.
        backend: the LLM.
        params: decoding parameters.
        out_dir: where ``generation.jsonl`` and ``text`` go.
        batch_size: prompts per LLM call.
        max_input_tokens: longest rendered prompt; longer previous texts are
            cut from the left (default: the model window minus
            ``max_new_tokens``).
        shard: ``(i, n)`` to process only the utterances of shard ``i``
            (:func:`shard_of` their input key, or their id when they have no
            previous text).
        progress: show a tqdm bar.
        reuse_dirs: output dirs of other runs (e.g. the training set's) whose
            records of the same prompt, model, parameters and input are reused
            instead of calling the LLM again.
        cache: input key -> (raw, text) shared by the runs of one process
            (:func:`generate_jobs`): consulted after ``out_dir``'s records and
            ``reuse_dirs``, and given every output this run knows, as if the
            earlier runs' dirs were ``reuse_dirs``.
    """
    start = time.time()
    if batch_size < 1:
        raise GenerationError(f"--batch_size must be >= 1, got {batch_size}")
    param_dict = params.as_dict()
    # Inputs after truncation, and their dedup keys (of every utterance: the shard
    # of an utterance with a previous text is the shard of its key).
    fitted, cut, budget = fit_previous(previous.values(), prompt, backend, params, max_input_tokens)
    key_of = {u: _input_key(prompt, backend.model_id, param_dict, fitted[previous[u]])
              for u in previous if previous[u]}
    if shard is not None:
        key_of = {u: key for u, key in key_of.items() if shard_of(key, shard[1]) == shard[0]}
    utts = [u for u in previous if shard is None or u in key_of
            or (not previous[u] and shard_of(u, shard[1]) == shard[0])]
    summary = Summary(utterances=len(utts))
    summary.truncated = len({previous[u] for u in utts} & cut)
    if summary.truncated:
        logger.warning(
            f"{summary.truncated} previous text(s) longer than {budget} prompt tokens "
            "were cut from the left"
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    records_path = out_dir / RECORDS
    done: Dict[str, Tuple[Optional[str], str]] = {}  # key -> (raw, text)
    existing = read_records(records_path)
    current = _current_records(existing, prompt, backend.model_id, param_dict, key_of)
    stale = 0
    for record in existing:
        if (record.get("prompt_hash"), record.get("model"), record.get("params")) != (
                prompt.hash, backend.model_id, param_dict):
            stale += 1
        elif record.get("key"):
            done[record["key"]] = (record.get("raw"), record["text"])
    if stale:
        logger.warning(f"{records_path}: ignoring {stale} record(s) of another prompt, model or parameters")
    wanted = set(key_of.values())
    for reuse_dir in reuse_dirs:
        for record in read_records(Path(reuse_dir) / RECORDS):
            if record.get("key") in wanted and record.get("raw") is not None and (
                    record.get("prompt_hash"), record.get("model"), record.get("params")) == (
                    prompt.hash, backend.model_id, param_dict):
                done.setdefault(record["key"], (record["raw"], record["text"]))
    if cache is not None:
        for key in wanted & cache.keys():
            done.setdefault(key, cache[key])

    def record(utt: str, raw: Optional[str], text: str, reused: bool) -> dict:
        kept = fitted.get(previous[utt], "")
        return dict(
            utt=utt, key=key_of.get(utt), prompt_id=prompt.id, prompt_hash=prompt.hash,
            prompt=backend.render(prompt, kept) if kept else None, model=backend.model_id,
            params=param_dict, previous=kept, raw=raw, text=text, reused=reused,
        )

    pending_keys: Dict[str, List[str]] = {}
    with open(records_path, "a", encoding="utf-8") as handle:
        instant = []
        for utt in utts:
            if utt in current:
                summary.reused += 1
            elif not previous[utt]:
                summary.empty += 1
                instant.append(record(utt, None, "", reused=False))
            elif key_of[utt] in done:
                summary.reused += 1
                instant.append(record(utt, *done[key_of[utt]], reused=True))
            else:
                pending_keys.setdefault(key_of[utt], []).append(utt)
        _append(handle, instant)

        # One LLM input per distinct key, longest first, in batches.
        inputs = sorted(
            ((backend.render(prompt, fitted[previous[us[0]]]), key, us) for key, us in pending_keys.items()),
            key=lambda item: -len(item[0]),
        )
        bar = tqdm(total=sum(len(us) for _, _, us in inputs), unit="utt", desc=f"generate {prompt.id}",
                   disable=not progress)
        for first in range(0, len(inputs), batch_size):
            chunk = inputs[first:first + batch_size]
            raws = backend.generate([rendered for rendered, _, _ in chunk], params)
            if len(raws) != len(chunk):
                raise GenerationError(f"backend returned {len(raws)} outputs for {len(chunk)} prompts")
            batch_records = []
            for (rendered, key, us), raw in zip(chunk, raws):
                text = clean_output(raw, prompt.user.format(previous=fitted[previous[us[0]]]))
                done[key] = (raw, text)
                summary.generated += 1
                summary.reused += len(us) - 1
                batch_records += [record(u, raw, text, reused=i > 0) for i, u in enumerate(us)]
            _append(handle, batch_records)
            bar.update(sum(len(us) for _, _, us in chunk))
        bar.close()

    texts = _current_records(read_records(records_path), prompt, backend.model_id, param_dict,
                             key_of)
    missing = [u for u in utts if u not in texts]
    if missing:
        raise GenerationError(f"{records_path}: no record for {len(missing)} utterance(s), e.g. {missing[0]}")
    write_table_atomic(out_dir / "text", ((u, texts[u]) for u in utts))
    if cache is not None:
        for key, output in done.items():
            if output[0] is not None:
                cache.setdefault(key, output)
    summary.seconds = time.time() - start
    return summary


@dataclass(frozen=True)
class Job:
    """One output of a multi-job run: a set's previous texts through one prompt."""

    previous: Dict[str, str]  # utterance -> previous text, in data order
    prompt: Prompt
    out_dir: Path


def check_jobs(jobs: Sequence[Job]) -> None:
    """Fail, naming them, when two jobs (numbered from 1) would write the same out_dir."""
    seen: Dict[Path, int] = {}
    for number, job in enumerate(jobs, 1):
        out_dir = Path(os.path.abspath(job.out_dir))
        if out_dir in seen:
            raise GenerationError(
                f"jobs {seen[out_dir]} and {number} both write {job.out_dir}: one out_dir per job"
            )
        seen[out_dir] = number


def generate_jobs(
    jobs: Sequence[Job],
    backend: LLMBackend,
    params: GenerationParams,
    reuse_dirs: Sequence[Path] = (),
    **options,
) -> List[Summary]:
    """:func:`generate_context` for every job, in order, with one backend.

    An input (same prompt, model, parameters and previous text) generated or
    reused by an earlier job is not generated again: each job sees the earlier
    jobs' outputs as if their dirs were ``reuse_dirs``, so the result equals
    separate runs, each with the earlier jobs' out dirs added to
    ``reuse_dirs``. ``options`` (batch size, shard, ...) apply to every job.
    Each job logs ``<out_dir>: <summary>`` when it is done.
    """
    check_jobs(jobs)
    cache: Dict[str, Tuple[Optional[str], str]] = {}
    summaries = []
    for job in jobs:
        summaries.append(generate_context(job.previous, job.prompt, backend, params, job.out_dir,
                                          reuse_dirs=reuse_dirs, cache=cache, **options))
        logger.info(f"{job.out_dir}: {summaries[-1].line()}")
    return summaries


def merge_shards(utts: List[str], shard_dirs: List[Path], out_dir: Path) -> int:
    """Join shard outputs into ``out_dir``; every utterance exactly once.

    Args:
        utts: the set's utterances, in data order.
        shard_dirs: output dirs of ``generate_context --shard i/n`` runs.
        out_dir: receives ``text`` and ``generation.jsonl``.

    Raises:
        GenerationError: naming the shards of a doubled utterance, or the
            utterances no shard has.
    """
    owner: Dict[str, Path] = {}
    texts: Dict[str, str] = {}
    for shard_dir in shard_dirs:
        text_file = shard_dir / "text"
        if not text_file.is_file():
            raise GenerationError(f"shard {shard_dir} has no text: did its job finish?")
        for utt, text in read_text(text_file).items():
            if utt in owner:
                raise GenerationError(f"utterance {utt} is in shard {owner[utt]} and shard {shard_dir}")
            owner[utt] = shard_dir
            texts[utt] = text
    missing = [u for u in utts if u not in owner]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise GenerationError(f"{len(missing)} utterance(s) in no shard of {len(shard_dirs)}: {shown}")
    extra = [u for u in owner if u not in set(utts)]
    if extra:
        raise GenerationError(f"shard {owner[extra[0]]} has utterance {extra[0]}, which is not in the set")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for shard_dir in shard_dirs:
        lines += [json.dumps(r, ensure_ascii=False) + "\n" for r in read_records(shard_dir / RECORDS)
                  if owner.get(r.get("utt")) == shard_dir]
    write_text_atomic(out_dir / RECORDS, "".join(lines))
    write_table_atomic(out_dir / "text", ((u, texts[u]) for u in utts))
    return len(utts)
