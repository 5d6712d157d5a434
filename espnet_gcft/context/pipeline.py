"""A model's context made from previous texts at the point of use, as in its training.

:class:`ContextPipeline` reads a model's ``context.yaml``
(:mod:`espnet_gcft.context.spec`) and turns the previous utterances'
texts of an utterance, oldest first, into the ``(L, C)`` context the model was
trained on, through the same code as the recipe's stages 3-4:

- ``prev_text``: the last ``num_prev`` texts joined into one (``join``), or each
  its own row (``rows``), embedded by the text encoder with the pooling;
- ``generated``: the same inputs through the LLM with the prompt and generation
  options first (:func:`espnet_gcft.context.generate.generate_texts`), then embedded.

Fewer previous texts than it reads is a session's start (``L = 0`` for none, as
in training); more are cut to the last ones it reads. The text encoder and the
LLM are loaded once, at first use. A batch of utterances is generated and
embedded as one batch.
"""

from typing import List, Sequence

import numpy as np

from espnet_gcft.errors import InputError


class ContextPipelineError(InputError, ValueError):
    """A context that cannot be made from previous texts; the message says what to pass."""


class ContextPipeline:
    """Previous texts -> the context a model was trained on.

    Args:
        spec: the model's ``context.yaml`` content.
        device: where the text encoder and the LLM run.
        batch_size: texts per LLM and encoder call.
        where: names the model in error messages.
    """

    def __init__(self, spec: dict, device: str = "cpu", batch_size: int = 16, where: str = "model"):
        kind = spec.get("context")
        if kind not in ("prev_text", "generated"):
            raise ContextPipelineError(
                f"{where}: its context is {kind!r}, which previous texts cannot make "
                "(prev_text or generated context can)")
        self.spec = spec
        self.device = device
        self.batch_size = batch_size
        self.where = where
        self._encoder = None
        self._llm = None

    @property
    def num_prev(self) -> int:
        return int(self.spec.get("num_prev", 1))

    @property
    def rows(self) -> bool:
        return self.spec.get("prev_mode", "join") == "rows"

    def inputs(self, previous: Sequence[str]) -> List[str]:
        """The texts one utterance's context is made of: one joined text, or one per row."""
        if isinstance(previous, str):
            raise ContextPipelineError(f"{self.where}: previous must be a list of texts, oldest "
                                       "first, not one string")
        last = [str(text) for text in list(previous)[-self.num_prev:]]
        if self.rows:
            return last
        return [" ".join(text for text in last if text)]

    def encoder(self):
        if self._encoder is None:
            from espnet_gcft.context.embed import TextEncoder

            encoder = self.spec["text_encoder"]
            self._encoder = TextEncoder(encoder["name"], pooling=self.spec.get("pooling", "mean"),
                                        device=self.device,
                                        max_length=int(encoder.get("max_length") or 256))
        return self._encoder

    def llm(self):
        """(backend, prompt, params), built once."""
        if self._llm is None:
            import argparse
            import shlex

            from espnet_gcft.context.backends import GenerationParams, build_backend
            from espnet_gcft.context.generate import add_generation_options
            from espnet_gcft.context.prompts import Prompt

            generation = self.spec["generation"]
            prompt = Prompt(**generation["prompt"])
            parser = argparse.ArgumentParser(prog=f"{self.where}: context.yaml generation options")
            add_generation_options(parser)
            # as stage 3: --max_new_tokens first, the options after it (they may override it)
            words = ["--max_new_tokens", str(generation["max_new_tokens"]),
                     *shlex.split(generation.get("options") or "")]
            try:
                options, _ = parser.parse_known_args(words)
            except SystemExit:
                raise ContextPipelineError(f"{self.where}: context.yaml's generation options "
                                           f"{generation.get('options')!r} do not parse") from None
            params = GenerationParams(options.max_new_tokens, options.do_sample,
                                      options.temperature, options.top_p, options.seed)
            backend = build_backend(generation.get("backend") or "transformers",
                                    model=generation["llm"], gguf_file=generation.get("gguf_file"),
                                    device=self.device, dtype=options.dtype,
                                    trust_remote_code=options.trust_remote_code)
            self._llm = (backend, prompt, params, options.max_input_tokens)
        return self._llm

    def __call__(self, batch: Sequence[Sequence[str]]) -> List[np.ndarray]:
        """The ``(L, C)`` float32 context of each utterance, given its previous texts."""
        per_item = [self.inputs(previous) for previous in batch]
        texts = [text for inputs in per_item for text in inputs]
        if self.spec["context"] == "generated" and any(texts):
            from espnet_gcft.context.generate import generate_texts

            backend, prompt, params, max_input_tokens = self.llm()
            texts = generate_texts(texts, prompt, backend, params, self.batch_size, max_input_tokens)
        encoder = self.encoder()
        distinct = sorted({text for text in texts if text}, key=lambda t: (-len(t), t))
        matrices = {}
        for first in range(0, len(distinct), self.batch_size):
            chunk = distinct[first:first + self.batch_size]
            matrices.update(zip(chunk, encoder(chunk)))
        out, position = [], 0
        for inputs in per_item:
            rows = [matrices[text] for text in texts[position:position + len(inputs)] if text]
            position += len(inputs)
            out.append(np.ascontiguousarray(np.concatenate(rows, axis=0), dtype=np.float32) if rows
                       else np.zeros((0, encoder.dim), np.float32))
        return out

    def one(self, previous: Sequence[str]) -> np.ndarray:
        return self([previous])[0]


def missing_spec_error(where: str) -> ContextPipelineError:
    """The error for a context model without a context.yaml, naming what to pass instead."""
    return ContextPipelineError(
        f"{where}: no context.yaml (a model from a run before it was written), so it cannot "
        "make its context from previous texts: pass context= (an (L, C) embedding made as in "
        "its training) instead of previous=, or retrain it (stage 6 writes context.yaml)")
