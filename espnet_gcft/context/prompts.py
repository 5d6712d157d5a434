"""Prompts that turn previous text into context, and their registry.

A prompt has an id, a system text and a user template containing
``{previous}``. Built-in prompts are in ``BUILTIN_PROMPTS``; users add their own
in a YAML file::

    - id: summary
      system: You summarise speech transcripts.
      user: "Summarise in a few words: {previous}"

and pass it with ``--prompt_file``. Every generated record stores the rendered
prompt and :attr:`Prompt.hash`, so outputs of a changed prompt never mix with
old ones.
"""

from dataclasses import dataclass
import hashlib
import json
from pathlib import Path
from typing import Dict, List, Optional, Union

import yaml

from espnet_gcft.errors import InputError


class PromptError(InputError, ValueError):
    """A malformed prompt or prompt file."""


@dataclass(frozen=True)
class Prompt:
    """One prompt.

    Args:
        id: name used on the command line and in ``gen_<id>`` source dirs.
        system: system message (empty for none).
        user: user message template; must contain ``{previous}``.
    """

    id: str
    system: str
    user: str

    def __post_init__(self):
        if not self.id or not self.id.replace("_", "").isalnum():
            raise PromptError(f"prompt `id` must be letters, digits and _, got {self.id!r}")
        if "{previous}" not in self.user:
            raise PromptError(f"prompt {self.id}: `user` must contain {{previous}}, got {self.user!r}")
        try:
            self.user.format(previous="")
        except (KeyError, IndexError, ValueError) as error:
            raise PromptError(f"prompt {self.id}: `user` has a bad placeholder: {error}") from None

    @property
    def hash(self) -> str:
        """Stable hash of the prompt's id and texts (16 hex characters)."""
        blob = json.dumps([self.id, self.system, self.user], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def messages(self, previous: str) -> List[Dict[str, str]]:
        """Chat messages for one previous text."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": self.user.format(previous=previous)})
        return messages


BUILTIN_PROMPTS: Dict[str, Prompt] = {
    p.id: p
    for p in (
        Prompt(
            "next_sentence",
            "You continue transcripts of spoken language. Answer with one sentence only.",
            "Here is a sentence from a speech:\n{previous}\n"
            "Write the sentence the speaker most likely says next.",
        ),
        Prompt(
            "title",
            "You write short titles. Answer with the title only.",
            "Here is a sentence from a speech:\n{previous}\n"
            "Write a short title for the talk it comes from.",
        ),
        Prompt(
            "topic",
            "You name topics. Answer with a few words only.",
            "Here is a sentence from a speech:\n{previous}\n"
            "What topic is being discussed? Answer in a few words.",
        ),
        Prompt(
            "keywords",
            "You extract keywords. Answer with a comma-separated list only.",
            "Here is a sentence from a speech:\n{previous}\n"
            "List up to five keywords that are likely to be said next.",
        ),
    )
}


def load_prompt_file(path: Union[str, Path]) -> Dict[str, Prompt]:
    """Read a YAML list of ``{id, system, user}`` prompts."""
    with open(path, encoding="utf-8") as f:
        entries = yaml.safe_load(f)
    if not isinstance(entries, list):
        raise PromptError(f"{path}: expected a list of prompts, got {type(entries).__name__}")
    prompts: Dict[str, Prompt] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - {"id", "system", "user"} or "id" not in entry \
                or "user" not in entry:
            raise PromptError(
                f"{path}: prompt #{index + 1} must be a mapping with id, user and optional "
                f"system, got {entry!r}"
            )
        prompt = Prompt(str(entry["id"]), str(entry.get("system") or ""), str(entry["user"]))
        if prompt.id in prompts:
            raise PromptError(f"{path}: prompt id {prompt.id} is defined twice")
        prompts[prompt.id] = prompt
    return prompts


def get_prompt(prompt_id: str, prompt_file: Optional[Union[str, Path]] = None) -> Prompt:
    """A prompt by id; ids in ``prompt_file`` override the built-in ones."""
    prompts = dict(BUILTIN_PROMPTS)
    if prompt_file is not None:
        prompts.update(load_prompt_file(prompt_file))
    if prompt_id not in prompts:
        raise PromptError(f"unknown prompt {prompt_id!r}; known: {', '.join(sorted(prompts))}")
    return prompts[prompt_id]
