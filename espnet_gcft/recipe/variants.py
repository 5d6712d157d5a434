"""The variants a recipe compares, and where a run puts their contexts and models.

Every fact about a variant has its home here: what context it reads
(:data:`CONTEXTS`), how its model uses it (``context_mode`` of
:class:`~espnet_gcft.asr.model.GCFTASRModel`), what it needs at inference.
The recipe scripts read the registry through ``python -m
espnet_gcft.bin.variants --shell`` (``gcft.sh``, ``sweep.sh``, ``setup.sh``),
the Python side imports it (RESULTS, the report, the bench, the tests); a
new variant is one :data:`VARIANTS` entry and its ``train_<name>.yaml``.

:class:`Layout` is the one place that names a run's directories: the context
source a variant reads (``dump/context/<set>/<source>``), a variant's exp dir
(tagged for a sweep point) and a decode dir per set and condition.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from espnet_gcft.errors import InputError

# What a variant's context is made of.
CONTEXTS = {
    "none": "no context",
    "prev_text": "the previous utterances' transcript, embedded by the text encoder",
    "generated": "an LLM's output on the previous transcript, embedded by the text encoder",
    "prev_audio": "the previous utterances' audio, through the frozen upstream",
}
# How the model uses it (GCFTASRModel's context_mode).
MODES = ("none", "inject", "distill")


class VariantError(InputError, ValueError):
    """An unknown variant name, or a registry entry that does not hold together."""


@dataclass(frozen=True)
class Variant:
    """One variant: its context, how the model reads it, and what it needs at inference.

    Args:
        name: the variant (``--variants``); its config is ``train_<name>.yaml``.
        context: a key of :data:`CONTEXTS`.
        mode: the model's ``context_mode``: ``inject`` reads the context in
            training and at inference, ``distill`` trains a student on it and
            reads the student's prediction at inference.
        needs: what a decode needs besides the model (RESULTS' cost table).
    """

    name: str
    context: str
    mode: str
    needs: str

    def __post_init__(self):
        if self.context not in CONTEXTS or self.mode not in MODES or \
                (self.context == "none") != (self.mode == "none"):
            raise VariantError(f"variant {self.name}: context {self.context!r} with mode "
                               f"{self.mode!r} (contexts {sorted(CONTEXTS)}, modes {MODES}; "
                               "only a context-free variant has mode none)")

    @property
    def config(self) -> str:
        return f"train_{self.name}.yaml"

    @property
    def has_student(self) -> bool:
        """Trains a student that replaces the context at inference."""
        return self.mode == "distill"

    @property
    def context_at_inference(self) -> bool:
        """Reads its context at inference (and so is decoded under the conditions)."""
        return self.mode == "inject"

    @property
    def text_at_inference(self) -> bool:
        """Reads the previous utterance's *text* at inference (a blind set has none)."""
        return self.context_at_inference and self.context in ("prev_text", "generated")

    @property
    def uses_llm(self) -> bool:
        """Its context is generated (in training; at inference too with ``inject``)."""
        return self.context == "generated"

    @property
    def audio_context(self) -> bool:
        return self.context == "prev_audio"

    @property
    def runs_beside(self) -> Tuple[str, ...]:
        """What a decode runs besides the model: ``llm``, ``text_encoder``, ``upstream``
        (a frozen copy of the model's own SSL upstream, on the previous audio)."""
        if not self.context_at_inference:
            return ()
        return {"prev_text": ("text_encoder",), "generated": ("llm", "text_encoder"),
                "prev_audio": ("upstream",)}[self.context]


# The context-free variant every other one is compared with (RESULTS' paired tests).
BASELINE = "baseline"
VARIANTS: Dict[str, Variant] = {v.name: v for v in (
    Variant("baseline", "none", "none", "audio"),
    Variant("inject_gt", "prev_text", "inject", "audio + previous transcript + text encoder"),
    Variant("gen_inject", "generated", "inject",
            "audio + previous transcript + LLM + text encoder"),
    Variant("gcaf", "generated", "distill", "audio (student predicts the context)"),
    Variant("audio_inject", "prev_audio", "inject", "audio + previous audio + frozen upstream"),
    Variant("audio_gcaf", "prev_audio", "distill", "audio (student predicts the audio context)"),
)}


def get_variant(name: str) -> Variant:
    """The registry entry of a variant name; an unknown name is a :class:`VariantError`."""
    if name not in VARIANTS:
        raise VariantError(f"unknown variant {name!r}: the variants are {' '.join(VARIANTS)}")
    return VARIANTS[name]


def base_variant(name: str) -> str:
    """The variant a (possibly tagged) exp dir name trains: ``inject_gt_rows3`` -> ``inject_gt``;
    a name of no variant is returned as it is."""
    known = sorted(VARIANTS, key=len, reverse=True)
    return next((v for v in known if name == v or name.startswith(v + "_")), name)


def variant_of(name: str) -> Optional[Variant]:
    """The registry entry of a (possibly tagged) exp dir name, or None."""
    return VARIANTS.get(base_variant(name))


@dataclass(frozen=True)
class Layout:
    """Where a run's options put its contexts, models and decodes.

    The default run keeps ``dump/context/<set>/prev_gt`` and ``gen_<prompt>``;
    N joined previous texts add ``_n<N>``; ``prev_mode rows`` stacks the N=1
    sources into ``<source>_rows<N>``; ``context_tag`` names generated sources
    apart (``gen_<prompt>[_n<N>]_<context_tag>``); ``tag`` puts the variants
    of a sweep point into ``<expdir>/<variant>_<tag>``.
    """

    expdir: str = "exp"
    tag: str = ""
    num_prev: int = 1
    prev_mode: str = "join"
    context_prompt: str = ""
    context_tag: str = ""

    @property
    def text_num_prev(self) -> int:
        """Previous texts joined into one LLM/encoder input."""
        return self.num_prev if self.prev_mode == "join" else 1

    @property
    def text_suffix(self) -> str:
        return f"_n{self.text_num_prev}" if self.text_num_prev > 1 else ""

    @property
    def rows_suffix(self) -> str:
        return f"_rows{self.num_prev}" if self.prev_mode == "rows" and self.num_prev > 1 else ""

    @property
    def prev_source(self) -> str:
        return f"prev_gt{self.text_suffix}"

    def gen_source(self, prompt: str) -> str:
        return f"gen_{prompt}{self.text_suffix}" + (f"_{self.context_tag}" if self.context_tag else "")

    def base_source(self, variant: str) -> str:
        """The one-context-per-utterance source a variant's context comes from ("" for none)."""
        context = get_variant(variant).context
        return {"none": "", "prev_text": self.prev_source, "prev_audio": "prev_audio",
                "generated": self.gen_source(self.context_prompt)}[context]

    def context_source(self, variant: str) -> str:
        """The source a variant reads: its base source, row-stacked with ``prev_mode rows``."""
        base = self.base_source(variant)
        return base + self.rows_suffix if base else ""

    def variant_dir(self, variant: str) -> str:
        return f"{self.expdir}/{variant}" + (f"_{self.tag}" if self.tag else "")

    @staticmethod
    def condition_source(source: str, condition: str) -> str:
        """The context dir a decode-time condition reads (``gt``: the source itself)."""
        if condition == "gt":
            return source
        if condition == "hyp":
            return "prev_hyp" if source == "prev_gt" else f"{source}_hyp"
        return f"{source}_{condition}"


def decode_dir(exp_dir: Path, variant_dir_name: str, dset: str, condition: str) -> Path:
    """``<exp dir>/<variant dir>/decode_<set>`` for ``gt``, ``..._<condition>`` otherwise."""
    suffix = "" if condition == "gt" else f"_{condition}"
    return Path(exp_dir) / variant_dir_name / f"decode_{dset}{suffix}"


def check_variants(names: Iterable[str]) -> List[Variant]:
    return [get_variant(name) for name in names]
