"""The ESPnet plugin: GCFTASRModel, GCFTTask and GCFTSpeech2Text."""

import torch  # noqa: F401  (torch's import walks sys.modules: it goes first)

from espnet_gcft.asr.compat import defer_import

# Before any ESPnet import: see defer_import.
defer_import("g2p_en")
defer_import("tacotron_cleaner.cleaners")
