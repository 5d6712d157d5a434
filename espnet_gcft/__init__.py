"""espnet_gcft: generative context-aware fine-tuning of SSL speech models in ESPnet.

``espnet_gcft.context`` and ``espnet_gcft.nn`` import no ESPnet code;
``espnet_gcft.asr`` is the ESPnet plugin (model, task, inference).
"""

__version__ = "0.1.0"
