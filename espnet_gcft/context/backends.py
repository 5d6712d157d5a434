"""LLM backends for context generation: transformers (incl. GGUF) and vLLM.

Both render prompts with the model's chat template, count and truncate with
its tokenizer, and generate for a batch of rendered prompts. vLLM is optional
(GPU only); asking for it without the package installed is a clear error.
"""

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
import fcntl
import hashlib
import logging
import os
from pathlib import Path
import shutil
import tempfile
from typing import List, Optional, Tuple

from espnet_gcft.context.models import resolve_model
from espnet_gcft.context.prompts import Prompt
from espnet_gcft.errors import InputError

logger = logging.getLogger(__name__)
BACKENDS = ("transformers", "vllm")


class BackendError(InputError, RuntimeError):
    """A backend that cannot be used (missing package, bad option)."""


def log_load(backend: str, model: str, gguf_file: Optional[str], device: str, dtype: str) -> None:
    """The one log line of every LLM load (``loading LLM <model> (...)``): loads are counted from logs."""
    logger.info(f"loading LLM {model}{f' ({gguf_file})' if gguf_file else ''} "
                f"(backend {backend}, device {device}, dtype {dtype})")


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters; recorded with every output.

    Args:
        max_new_tokens: longest output, in tokens.
        do_sample: sample instead of greedy decoding (the default is greedy).
        temperature: sampling temperature (``do_sample`` only).
        top_p: nucleus sampling mass (``do_sample`` only).
        seed: random seed for sampling.
    """

    max_new_tokens: int = 48
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"`max_new_tokens` must be >= 1, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"`temperature` must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"`top_p` must be in (0, 1], got {self.top_p}")

    def as_dict(self) -> dict:
        params = asdict(self)
        if not self.do_sample:  # sampling knobs do not change greedy outputs
            for key in ("temperature", "top_p", "seed"):
                params.pop(key)
        return params


class LLMBackend(ABC):
    """Common prompt handling over a Hugging Face tokenizer (``self.tokenizer``)."""

    model_id: str
    window: int

    def render(self, prompt: Prompt, previous: str) -> str:
        """The full prompt text for one previous text (chat template when the model has one)."""
        messages = prompt.messages(previous)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return "\n\n".join(m["content"] for m in messages) + "\n\n"

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def keep_last_tokens(self, text: str, budget: int) -> str:
        """``text`` cut from the left to at most ``budget`` tokens."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= budget:
            return text
        return self.tokenizer.decode(ids[len(ids) - max(budget, 0):]).strip()

    @abstractmethod
    def generate(self, prompts: List[str], params: GenerationParams) -> List[str]:
        """Raw continuations (special tokens removed) of rendered prompts, in order."""


def _converted_gguf_dir(path: str, gguf_file: str, cache_root: Path) -> Path:
    """Dequantise a GGUF model once into a transformers dir under ``cache_root``.

    Loading from GGUF converts every tensor and the tokenizer on each start
    (tens of seconds even for 135M parameters); the converted copy loads in
    well under a second. The cache key covers the file's path, size and mtime.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = Path(path) / gguf_file
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    target = cache_root / f"{source.stem}-{key.hexdigest()[:12]}"
    if (target / "config.json").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    # Jobs starting together (array tasks, recipes run side by side) convert once:
    # the first takes the lock, the others wait for it and find the result.
    with open(cache_root / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():
            return target
        logger.info(f"converting {source} to {target} (once)")
        staging = Path(tempfile.mkdtemp(dir=cache_root, prefix=".convert-"))
        try:
            AutoTokenizer.from_pretrained(path, gguf_file=gguf_file).save_pretrained(staging)
            AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file).save_pretrained(staging)
            if target.exists():  # a dir without config.json: not ours to keep
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def default_cache_dir() -> Path:
    """``$GCFT_CACHE`` or ``~/.cache/espnet_gcft``."""
    return Path(os.environ.get("GCFT_CACHE", Path.home() / ".cache" / "espnet_gcft"))


def loadable_model(model: str, gguf_file: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """``(path or hub name that transformers loads, GGUF file or None)`` for a model name.

    Embedded names resolve to their package dirs; a GGUF model resolves to its
    dequantised copy in the cache (converted on first use).
    """
    path, gguf_file = resolve_model(model, gguf_file)
    if gguf_file:
        path = str(_converted_gguf_dir(path, gguf_file, default_cache_dir() / "gguf"))
    return path, gguf_file


class TransformersBackend(LLMBackend):
    """Any causal LM that transformers loads: a hub name, a local dir or a GGUF file.

    Args:
        model: model name (``smollm2-135m-instruct`` = the embedded default),
            local dir or hub name.
        gguf_file: GGUF file inside ``model`` (dequantised once and cached).
        device: torch device.
        dtype: torch dtype name for the weights (``auto`` keeps the stored one).
        trust_remote_code: allow code from the model repo (off by default).
    """

    def __init__(
        self,
        model: str,
        gguf_file: Optional[str] = None,
        device: str = "cpu",
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log_load("transformers", model, gguf_file, device, dtype)
        path, gguf_file = loadable_model(model, gguf_file)
        self.model_id = model + (f"#{gguf_file}" if gguf_file else "")
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, trust_remote_code=trust_remote_code
        ).to(device)
        self.model.eval()
        self.device = device
        self.window = int(getattr(self.model.config, "max_position_embeddings", 2048))

    def generate(self, prompts: List[str], params: GenerationParams) -> List[str]:
        import torch

        batch = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        options = dict(max_new_tokens=params.max_new_tokens, do_sample=params.do_sample)
        if params.do_sample:
            torch.manual_seed(params.seed)
            options.update(temperature=params.temperature, top_p=params.top_p)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            output = self.model.generate(
                **batch, pad_token_id=self.tokenizer.pad_token_id, **options
            )
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


class VllmBackend(LLMBackend):
    """vLLM on GPUs, for 7B-class models over large corpora (optional)."""

    def __init__(
        self,
        model: str,
        gguf_file: Optional[str] = None,
        device: str = "cuda",
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ):
        try:
            import vllm
        except ImportError:
            raise BackendError(
                "--backend vllm needs the vllm package, which is not installed "
                "(GPU only): pip install 'espnet_gcft[vllm]', or use --backend transformers"
            ) from None
        log_load("vllm", model, gguf_file, device, dtype)
        path, gguf_file = resolve_model(model, gguf_file)
        self.model_id = model + (f"#{gguf_file}" if gguf_file else "")
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=str(Path(path) / gguf_file) if gguf_file else path,
            tokenizer=path,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.window = int(self.llm.llm_engine.model_config.max_model_len)

    def generate(self, prompts: List[str], params: GenerationParams) -> List[str]:
        sampling = self._vllm.SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature if params.do_sample else 0.0,
            top_p=params.top_p if params.do_sample else 1.0,
            seed=params.seed,
        )
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        return [out.outputs[0].text for out in outputs]


def build_backend(name: str, **kwargs) -> LLMBackend:
    """Build ``transformers`` or ``vllm`` with the model options."""
    if name == "transformers":
        return TransformersBackend(**kwargs)
    if name == "vllm":
        return VllmBackend(**kwargs)
    raise BackendError(f"unknown --backend {name!r}; choose from {', '.join(BACKENDS)}")
