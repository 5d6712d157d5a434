"""The ESPnet plugin: GCFTASRModel, GCFTTask and GCFTSpeech2Text.

Importing it changes nothing process-wide: ESPnet's imports run inside
:func:`~espnet_gcft.asr.compat.quiet_imports`; the deferred imports that speed
up a CLI's start are made by the CLIs themselves (``espnet_gcft.bin``).
"""

import torch  # noqa: F401  (torch's import walks sys.modules: it goes first)
