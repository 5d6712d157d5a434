"""The one place where espnet_gcft reaches into ESPnet module globals."""

from contextlib import contextmanager
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
