"""A small randomly initialised wav2vec2 saved for S3PRL's ``hf_wav2vec2_custom`` upstream.

Real runs point the frontend at a pretrained ``wav2vec2``/``hubert``/``wavlm``
upstream; the mini recipe and the tests build this one from a config instead,
so nothing is downloaded. It goes through the same S3PRL code path.
"""

import json
from pathlib import Path
from typing import Optional, Union

# wav2vec2's conv stack keeps its total stride of 320 samples (20 ms at 16 kHz),
# which S3PRL's hf_wav2vec2 upstream assumes.
DEFAULTS = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


def _stamp(config: Optional[dict], seed: int) -> dict:
    return {"config": {**DEFAULTS, **(config or {})}, "seed": seed}


def is_built(out_dir: Union[str, Path], config: Optional[dict] = None, seed: int = 0) -> bool:
    """True when ``out_dir`` holds a model built from this config and seed."""
    stamp = Path(out_dir) / "gcft_config.json"
    return stamp.is_file() and json.loads(stamp.read_text()) == _stamp(config, seed)


def build_wav2vec2(out_dir: Union[str, Path], config: Optional[dict] = None, seed: int = 0) -> Path:
    """Save a wav2vec2 built from ``config`` (Wav2Vec2Config fields) with its preprocessor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    fields = _stamp(config, seed)["config"]
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    Wav2Vec2Model(Wav2Vec2Config(**fields)).save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(out_dir)
    (out_dir / "gcft_config.json").write_text(json.dumps(_stamp(config, seed)))
    return out_dir
