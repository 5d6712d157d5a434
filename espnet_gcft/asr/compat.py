"""The one place where espnet_gcft reaches into ESPnet module globals."""

from contextlib import contextmanager
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any, Iterator


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


def defer_import(name: str) -> None:
    """Put a stand-in for ``name`` in ``sys.modules`` that imports it at first use.

    ESPnet's ASR task imports ``g2p_en`` at the top of its phoneme tokenizer
    module; ``g2p_en`` imports ``inflect`` and NLTK and tries to download NLTK
    data, although GCFT recipes tokenize into characters or BPE;
    ``tacotron_cleaner.cleaners`` imports ``inflect`` too, for a text cleaner
    they do not use. Together 2-3 s of every CLI start (bench/cli_startup.py). ``g2p_en.G2p`` (or any public name) still works: reading
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
