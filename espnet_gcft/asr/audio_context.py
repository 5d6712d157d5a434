"""Audio context: the previous utterance's audio through the frozen SSL upstream.

The predecessor of GCFT (context-aware fine-tuning, arXiv 2212.08542) takes its
context from the neighbouring *audio*. Here that context is computed offline,
like the text contexts: for every utterance, the S3PRL upstream the variants
fine-tune (as it is before fine-tuning: the config's upstream, or the shared
pretrained checkpoint's copy of it) runs on the previous utterance's audio;
its hidden states are averaged over layers and pooled over frames:

- ``mean``: the mean over frames, ``L = 1``;
- ``sequence``: every frame, ``L`` = the upstream's frame count.

(``cls`` does not exist for audio: wav2vec2, HuBERT and WavLM have no
summary frame.) The output has the text contexts' format, ``(L, C)`` float32
in ``emb_<pooling>.{ark,scp}`` with ``L = 0`` for the first utterance of a
session, written by :func:`espnet_gcft.context.embed.embed_texts` (so a long
run resumes the same way); ``C`` is the upstream's hidden size.
"""

import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import yaml

from espnet_gcft.errors import InputError, MissingInputError

logger = logging.getLogger(__name__)
AUDIO_POOLINGS = ("mean", "sequence")


class AudioContextError(InputError, ValueError):
    """Bad audio-context input: names the file or utterance."""


def _frontend_from_config(config: Path):
    """ESPnet's S3prlFrontend built from a training config's ``frontend_conf``."""
    from espnet_gcft.asr.compat import quiet_imports

    with quiet_imports():
        from espnet2.asr.frontend.s3prl import S3prlFrontend
    if not config.is_file():
        raise MissingInputError(f"{config}: no such config")
    with open(config, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if conf.get("frontend") != "s3prl":
        raise AudioContextError(f"{config}: frontend is {conf.get('frontend')!r}; the audio "
                                "context needs an S3PRL upstream (frontend: s3prl)")
    frontend_conf = dict(conf.get("frontend_conf") or {})
    # the layer choice of the variant does not matter: every layer is averaged
    frontend_conf.pop("multilayer_feature", None)
    frontend_conf.pop("layer", None)
    with quiet_imports():  # S3PRL's own imports print the same noise as ESPnet's
        return S3prlFrontend(**frontend_conf)


class UpstreamEncoder:
    """Previous-utterance audio -> layer-averaged, pooled upstream states.

    Called like :class:`espnet_gcft.context.embed.TextEncoder` with a list of
    "texts" that are utterance ids of ``wav_scp``; returns one ``(L, C)``
    matrix per id.

    Args:
        config: a training config with ``frontend: s3prl`` (its
            ``frontend_conf`` names the upstream and ``path_or_url``).
        wav_scp: the set's wav.scp (the previous utterances' audio).
        checkpoint: an ESPnet checkpoint whose ``frontend.upstream.*``
            parameters replace the config's (the shared pretrained model);
            ``None`` keeps the upstream as the config loads it.
        pooling: ``mean`` | ``sequence``.
        device: torch device.
    """

    def __init__(self, config: Path, wav_scp: Path, checkpoint: Optional[Path] = None,
                 pooling: str = "mean", device: str = "cpu"):
        from espnet_gcft.asr.compat import quiet_imports

        if pooling not in AUDIO_POOLINGS:
            raise AudioContextError(
                f"--pooling {pooling}: the audio context has no [CLS] frame; use one of {AUDIO_POOLINGS}")
        with quiet_imports():
            from espnet2.fileio.sound_scp import SoundScpReader
        self.pooling = pooling
        self.device = device
        self.max_length = 0  # embed_texts records it; audio has no token limit
        frontend = _frontend_from_config(config)
        self.upstream = frontend.upstream
        self.name = f"{config}" + (f"@{checkpoint}" if checkpoint else "")
        if checkpoint is not None:
            self._load(checkpoint)
        self.upstream.to(device).eval()
        for parameter in self.upstream.parameters():
            parameter.requires_grad_(False)
        self.dim = int(frontend.featurizer.output_size)
        self.audio = SoundScpReader(str(wav_scp), dtype="float32")
        self.wav_scp = wav_scp

    def _load(self, checkpoint: Path) -> None:
        if not checkpoint.is_file():
            raise MissingInputError(f"{checkpoint}: no such checkpoint")
        state = torch.load(checkpoint, map_location="cpu")
        prefix = "frontend.upstream."
        upstream_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not upstream_state:
            raise AudioContextError(f"{checkpoint}: no {prefix}* parameters (not a model with an "
                                    "S3PRL frontend)")
        missing, unexpected = self.upstream.load_state_dict(upstream_state, strict=False)
        if missing or unexpected:
            raise AudioContextError(
                f"{checkpoint}: its upstream does not match the config's "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})")

    def waveform(self, utt: str) -> np.ndarray:
        try:
            rate, wave = self.audio[utt]
        except KeyError:
            raise AudioContextError(f"{self.wav_scp}: no audio for utterance {utt}") from None
        if wave.ndim != 1:
            raise AudioContextError(f"{self.wav_scp}: utterance {utt} is not mono ({wave.shape})")
        if rate != 16000:
            raise AudioContextError(f"{self.wav_scp}: utterance {utt} is {rate} Hz; "
                                    "S3PRL upstreams take 16 kHz (format the data with --fs 16000)")
        return wave

    @torch.no_grad()
    def embed_one(self, wave: np.ndarray) -> np.ndarray:
        """One waveform -> ``(L, C)``: layers averaged, frames pooled."""
        speech = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None].to(self.device)
        lengths = torch.tensor([speech.shape[1]], device=self.device)
        hidden, hidden_lengths = self.upstream(speech, lengths)
        frames = int(hidden_lengths[-1][0])
        states = torch.stack([h[0, :frames] for h in hidden]).mean(dim=0)  # (T, C)
        if self.pooling == "mean":
            states = states.mean(dim=0, keepdim=True)
        return states.float().cpu().numpy()

    def __call__(self, previous: List[str]) -> List[np.ndarray]:
        return [self.embed_one(self.waveform(utt)) for utt in previous]


def previous_utterances(utt2prev: Dict[str, str], utts: List[str]) -> Dict[str, str]:
    """utt -> its previous utterance ("" for the first of a session), in the order of ``utts``."""
    from espnet_gcft.context.history import NO_PREVIOUS

    out = {}
    for utt in utts:
        if utt not in utt2prev:
            raise AudioContextError(f"utt2prev: no entry for utterance {utt}")
        prev = utt2prev[utt]
        out[utt] = "" if prev == NO_PREVIOUS else prev
    return out
