"""The one place where espnet_gcft reaches into ESPnet module globals."""

from contextlib import contextmanager, redirect_stderr, redirect_stdout
import importlib.machinery
import importlib.util
import io
import re
import sys
import types
from typing import Any, Iterator
import warnings

# What ESPnet's imports print that says nothing to a GCFT user: g2p_en's NLTK
# data downloads (refused offline), the optional flash-attn notice.
IMPORT_NOISE = re.compile(r"^(\[nltk_data\]|Failed to import Flash Attention)")


@contextmanager
def swapped_attribute(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Set ``owner.name = value`` for the duration of a ``with`` block.

    ESPnet looks some classes up in module globals (``ASRTask.build_model``
    reads ``espnet2.tasks.asr.model_choices``; ``Speech2Text`` builds its model
    with ``espnet2.bin.asr_inference.ASRTask``). Swapping the global for one call
    reuses ESPnet's code as it is, without copying it, and restores the
    original afterwards, even on error, so nothing else in the process changes.
    """
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


class _DeferredModule(types.ModuleType):
    """Stands in for a module until a public attribute of it is read."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


@contextmanager
def quiet_imports() -> Iterator[None]:
    """Import ESPnet without its import-time noise, and change nothing else.

    Inside the block, FutureWarnings (ESPnet decorates functions with the
    deprecated ``torch.cuda.amp.autocast``) are ignored, and what the imports
    print is captured; afterwards every printed line is passed on except the
    known noise (:data:`IMPORT_NOISE`). The warning filters, ``sys.stdout``
    and ``sys.stderr`` are restored, so the caller's process is as before.
    """
    out, err = io.StringIO(), io.StringIO()
    try:
        with warnings.catch_warnings(), redirect_stdout(out), redirect_stderr(err):
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for captured, stream in ((out, sys.stdout), (err, sys.stderr)):
            kept = [line for line in captured.getvalue().splitlines(keepends=True)
                    if not IMPORT_NOISE.match(line)]
            stream.write("".join(kept))


def defer_unused_imports() -> None:
    """Defer the ESPnet dependencies no GCFT recipe uses (see :func:`defer_import`).

    A process-wide change (stand-ins in ``sys.modules``): only the command-line
    entry points call it, before they import ESPnet; importing the package
    does not.
    """
    defer_import("g2p_en")
    defer_import("tacotron_cleaner.cleaners")


def defer_import(name: str) -> None:
    """Put a stand-in for ``name`` in ``sys.modules`` that imports it at first use.

    ESPnet's ASR task imports ``g2p_en`` at the top of its phoneme tokenizer
    module; ``g2p_en`` imports ``inflect`` and NLTK and tries to download NLTK
    data, although GCFT recipes tokenize into characters or BPE;
    ``tacotron_cleaner.cleaners`` imports ``inflect`` too, for a text cleaner
    they do not use. Together 2-3 s of every CLI start (bench/cli_startup.py).
    ``g2p_en.G2p`` (or any public name) still works: reading
    it imports the real module. Dunder lookups (which torch and transformers
    make on every loaded module) do not. A package that is not installed is
    left to the real import.
    """
    if name in sys.modules:
        return
    parent, _, child = name.rpartition(".")
    if parent:
        # find_spec("a.b") would import "a", which may import "a.b": look "b" up in a's path
        parent_spec = importlib.util.find_spec(parent)
        locations = parent_spec.submodule_search_locations if parent_spec else None
        spec = importlib.machinery.PathFinder.find_spec(name, locations) if locations else None
    else:
        spec = importlib.util.find_spec(name)
    if spec is None:
        return
    module = _DeferredModule(name)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations or [])
    sys.modules[name] = module
    if parent:
        setattr(importlib.import_module(parent), child, module)



@contextmanager
def atomic_torch_saves() -> Iterator[None]:
    """Within the block, ``torch.save`` to a path is atomic (ESPnet's trainer calls it).

    ESPnet writes ``checkpoint.pth``, ``<N>epoch.pth`` and the averaged models in
    place, so a training killed or out of disk space while saving leaves a torn
    ``checkpoint.pth`` that ``--resume true`` then fails to load. Through
    :func:`espnet_gcft.fileio.atomic_file` a checkpoint is the previous one or the
    new one, never a torn one. Saving to a file object is unchanged; the original
    ``torch.save`` is back after the block.
    """
    import os

    import torch

    from espnet_gcft.fileio import atomic_file

    original = torch.save

    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return original(obj, f, *args, **kwargs)
        with atomic_file(f) as handle:
            original(obj, handle, *args, **kwargs)

    save.__doc__ = original.__doc__
    with swapped_attribute(torch, "save", save):
        yield


class _ConfigOnlyModel:
    """Stands in for a ``transformers`` model class whose ``from_pretrained`` S3PRL calls."""

    def __init__(self, model_class):
        self.model_class = model_class

    def from_pretrained(self, path, *args, **kwargs):
        config = self.model_class.config_class.from_pretrained(path)
        return self.model_class(config)


def _without_weights(model_class):
    """``model_class`` whose ``load_state_dict`` of an empty state keeps the built weights:
    a packed checkpoint of the wav2vec2, HuBERT or WavLM family carries its configs and
    no weights (:func:`espnet_gcft.asr.pack.weightless_checkpoint`)."""

    class WithoutWeights(model_class):
        def load_state_dict(self, state_dict, *args, **kwargs):
            if not state_dict:
                return None
            return super().load_state_dict(state_dict, *args, **kwargs)

    WithoutWeights.__name__ = WithoutWeights.__qualname__ = model_class.__name__
    return WithoutWeights


class _NoCopy:
    """``copy`` for ESPnet's S3PRL frontend module: its deep copy of the upstream's
    weights (kept for ``reload_pretrained_parameters``, a training-time call) is
    not made when the weights are the random ones of a weightless build."""

    @staticmethod
    def deepcopy(value, memo=None):
        return {}


@contextmanager
def weightless_frontend() -> Iterator[None]:
    """Within the block, S3PRL's ``hf_wav2vec2_custom`` upstream is built from its
    ``config.json`` alone, without reading any weight file; a wav2vec2, HuBERT or WavLM
    checkpoint without weights (a pack's) builds its model from its configs; and ESPnet's
    ``S3prlFrontend`` keeps no copy of the upstream's initial weights.

    For a model whose state dict is loaded right after it is built (a trained
    checkpoint holds the upstream's weights): a packed model then needs only
    the upstream's config and feature-extractor files, and loading skips a
    full read and a full copy of the upstream's weights. Other S3PRL upstreams
    are built as usual.
    """
    import espnet2.asr.frontend.s3prl as espnet_s3prl
    import s3prl.upstream.hf_wav2vec2.expert as hf_expert
    import s3prl.upstream.hubert.convert as hubert_convert
    import s3prl.upstream.wav2vec2.convert as wav2vec2_convert
    import s3prl.upstream.wavlm.expert as wavlm_expert

    model_class = hf_expert.Wav2Vec2Model
    with swapped_attribute(hf_expert, "Wav2Vec2Model", _ConfigOnlyModel(model_class)), \
            swapped_attribute(wav2vec2_convert, "Wav2Vec2Model", _without_weights(wav2vec2_convert.Wav2Vec2Model)), \
            swapped_attribute(hubert_convert, "HubertModel", _without_weights(hubert_convert.HubertModel)), \
            swapped_attribute(wavlm_expert, "WavLM", _without_weights(wavlm_expert.WavLM)), \
            swapped_attribute(espnet_s3prl, "copy", _NoCopy):
        yield
