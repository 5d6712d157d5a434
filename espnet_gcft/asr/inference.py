"""Speech-to-text with a GCFT model: the Python API behind ``gcft_inference``.

Example::

    import soundfile
    from espnet_gcft.asr.inference import GCFTSpeech2Text

    s2t = GCFTSpeech2Text.from_pretrained("exp/gcaf")      # exp dir, or packed.zip anywhere
    wav, rate = soundfile.read("utt.wav")
    text = s2t.transcribe(wav)                              # gcaf/baseline: audio only
    s2t_inject = GCFTSpeech2Text.from_pretrained("exp/inject_gt")
    text = s2t_inject.transcribe(wav, context=embedding)    # (L, C) float32

``inject`` models take a context per utterance (an empty ``(0, C)`` matrix for
the first of a session); ``distill`` (gcaf) and ``none`` (baseline) models run
from audio alone and refuse a context.
"""

from contextlib import nullcontext
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from espnet_gcft.asr.compat import quiet_imports, swapped_attribute, weightless_frontend
from espnet_gcft.asr.context_data import check_context_matrix
from espnet_gcft.asr.model import ContextError, GCFTASRModel
from espnet_gcft.asr.pack import unpack_model
from espnet_gcft.context.pipeline import ContextPipeline, missing_spec_error
from espnet_gcft.context.spec import FILE_NAME as CONTEXT_FILE, read_context_spec
from espnet_gcft.asr.task import GCFTTask
from espnet_gcft.errors import MissingInputError

with quiet_imports():  # ESPnet's imports print NLTK download errors, FutureWarnings
    import espnet2.bin.asr_inference as espnet_asr_inference
    from espnet2.bin.asr_inference import Speech2Text

# Checkpoints tried, in order, when a model is loaded from an exp dir.
MODEL_FILES = ("valid.loss.ave.pth", "valid.acc.ave.pth", "valid.loss.best.pth", "latest.pth")
DECODE_MODES = ("greedy", "beam")

Hypothesis = Tuple[Optional[str], List[str], List[int], float]


class GCFTSpeech2Text(Speech2Text):
    """ESPnet's ``Speech2Text`` for GCFT models, with CTC greedy or beam search.

    Args:
        asr_train_config: the ``config.yaml`` of the training run.
        asr_model_file: a state dict (``*.pth``); loaded with
            ``weights_only=True`` and strictly.
        decode_mode: ``greedy`` (CTC argmax) or ``beam`` (ESPnet beam search,
            configured by the remaining ``Speech2Text`` keyword arguments).
        **kwargs: ``Speech2Text`` arguments (``beam_size``, ``ctc_weight``,
            ``device``, ``token_type``, ``bpemodel`` ...).
    """

    def __init__(
        self,
        asr_train_config: Union[str, Path],
        asr_model_file: Union[str, Path, None] = None,
        decode_mode: str = "beam",
        **kwargs,
    ):
        if decode_mode not in DECODE_MODES:
            raise ValueError(f"`decode_mode` must be one of {DECODE_MODES}, got {decode_mode!r}")
        # Speech2Text builds its model through `ASRTask`; GCFT models need GCFTTask. With a
        # checkpoint, which holds the upstream's weights, the S3PRL upstream is built from its
        # config alone (a packed model carries no upstream weight file).
        with swapped_attribute(espnet_asr_inference, "ASRTask", GCFTTask), \
                (weightless_frontend() if asr_model_file is not None else nullcontext()):
            super().__init__(asr_train_config=asr_train_config, asr_model_file=None, **kwargs)
        if asr_model_file is not None:
            state = torch.load(asr_model_file, map_location=self.device, weights_only=True)
            self.asr_model.load_state_dict(state, strict=True)
        self.asr_model.eval()
        self.decode_mode = decode_mode

    @classmethod
    def from_pretrained(
        cls,
        model: Union[str, Path],
        model_file: Optional[str] = None,
        **kwargs,
    ) -> "GCFTSpeech2Text":
        """Load from an exp dir (``config.yaml`` + a checkpoint) or a packed zip.

        Args:
            model: exp dir of a training run, or a packed zip
                (:func:`espnet_gcft.asr.pack.pack_model`, recipe stage 8; it
                loads anywhere, offline: it is unpacked once per archive
                content into the cache, see :func:`~espnet_gcft.asr.pack.unpack_model`).
            model_file: checkpoint name inside the exp dir (default: the first
                of ``MODEL_FILES`` that exists).
        """
        model = Path(model)
        if model.is_file():
            files = unpack_model(model)
            s2t = cls(files["asr_train_config"], files["asr_model_file"], **kwargs)
            return s2t._with_context_spec(files["context"], model)
        if not (model / "config.yaml").is_file():
            raise MissingInputError(f"{model}: neither a packed model nor an exp dir with config.yaml")
        names = [model_file] if model_file else MODEL_FILES
        for name in names:
            if (model / name).is_file():
                s2t = cls(model / "config.yaml", model / name, **kwargs)
                spec = model / CONTEXT_FILE
                return s2t._with_context_spec(spec if spec.is_file() else None, model)
        raise MissingInputError(f"{model}: none of {', '.join(names)} found")

    def _with_context_spec(self, path, where) -> "GCFTSpeech2Text":
        self.context_spec = read_context_spec(path) if path else None
        self.model_name = str(where)
        return self

    # set by from_pretrained: the model's context.yaml (None when its run wrote none)
    context_spec: Optional[dict] = None
    model_name: str = "model"
    _pipeline: Optional[ContextPipeline] = None

    def context_pipeline(self) -> ContextPipeline:
        """What makes this model's context from previous texts (built once, at first use)."""
        if self.context_mode != "inject":
            raise ContextError(f"{self.model_name}: a {self.context_mode!r} model runs from audio "
                               "alone; it takes no previous texts")
        if self.context_spec is None:
            raise missing_spec_error(self.model_name)
        if self._pipeline is None:
            self._pipeline = ContextPipeline(self.context_spec, device=str(self.device),
                                             where=self.model_name)
        return self._pipeline

    @property
    def context_mode(self) -> str:
        return getattr(self.asr_model, "context_mode", "none")

    def _context_batch(
        self, context: Optional[np.ndarray], utt_id: str
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Check one utterance's context against the mode; return it as a batch of 1."""
        if self.context_mode != "inject":
            if context is not None:
                raise ContextError(
                    f"utterance {utt_id}: a {self.context_mode!r} model runs from audio "
                    "alone and takes no context"
                )
            return None, None
        if context is None:
            raise ContextError(
                f"utterance {utt_id}: an 'inject' model needs a context "
                "(an empty (0, C) matrix when there is no previous utterance)"
            )
        matrix = check_context_matrix(context, utt_id, self.asr_model.context_dim, "context")
        tensor = torch.from_numpy(matrix).to(self.device)[None]  # (1, L, C)
        lengths = torch.tensor([matrix.shape[0]], device=self.device)
        return tensor, lengths

    def encode(
        self,
        speech: Union[np.ndarray, torch.Tensor],
        context: Optional[np.ndarray] = None,
        utt_id: str = "utterance",
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One utterance through frontend, encoder and fusion: ``(1, T, D)`` frames and ``(1,)``.

        Args:
            speech: (S,) waveform at the model's sampling rate.
            context: (L, C) context for ``inject`` models; None otherwise.
            utt_id: name used in error messages.
        """
        context, context_lengths = self._context_batch(context, utt_id)
        model: GCFTASRModel = self.asr_model
        speech = torch.as_tensor(speech, dtype=getattr(torch, self.dtype))[None]
        speech = speech.to(self.device)  # (1, S)
        lengths = torch.tensor([speech.size(1)], device=self.device)
        with torch.no_grad(), model.batch_context(context, context_lengths, [utt_id]):
            encoder_out, encoder_lengths = model.encode(speech, lengths)
        if isinstance(encoder_out, tuple):
            encoder_out = encoder_out[0]
        return encoder_out, encoder_lengths

    def recognize(
        self,
        speech: Union[np.ndarray, torch.Tensor],
        context: Optional[np.ndarray] = None,
        utt_id: str = "utterance",
    ) -> Hypothesis:
        """Best hypothesis ``(text, tokens, token_ids, score)`` for one waveform.

        Args:
            speech: (S,) waveform at the model's sampling rate.
            context: (L, C) context for ``inject`` models; None otherwise.
            utt_id: name used in error messages.
        """
        return self.decode(self.encode(speech, context, utt_id)[0])

    def decode(self, encoder_out: torch.Tensor) -> Hypothesis:
        """Best hypothesis of encoded frames ``(1, T, D)``: CTC greedy or ESPnet's beam search."""
        with torch.no_grad():
            if self.decode_mode == "beam":
                text, tokens, ids, hyp = self._decode_single_sample(encoder_out[0])[0]
                return text, tokens, list(ids), float(hyp.score)
            return self._greedy(encoder_out)

    def ctc_log_likelihood(self, encoder_out: torch.Tensor, texts: List[str]) -> List[float]:
        """log p(text | audio) under the CTC branch, for each text, from one encoder pass.

        Args:
            encoder_out: (1, T, D) frames from :meth:`encode`.
            texts: target texts, tokenised like the training targets.
        """
        if self.asr_model.ctc is None:
            raise ValueError("scoring a text needs a CTC branch (ctc_weight > 0 in training)")
        with torch.no_grad():
            log_probs = self.asr_model.ctc.log_softmax(encoder_out)[0]  # (T, V)
            scores = []
            for text in texts:
                ids = self.converter.tokens2ids(self.tokenizer.text2tokens(text))
                target = torch.tensor(ids, dtype=torch.long, device=log_probs.device)
                loss = torch.nn.functional.ctc_loss(
                    log_probs[:, None, :], target[None], torch.tensor([log_probs.size(0)]),
                    torch.tensor([len(ids)]), blank=self.asr_model.blank_id, reduction="sum",
                    zero_infinity=False)
                scores.append(-float(loss))
        return scores

    def student_prediction(self) -> np.ndarray:
        """The student's ``(Lq, C)`` context prediction of the last :meth:`encode` (distill)."""
        predicted = self.asr_model.last_student_prediction
        if predicted is None:
            raise ValueError(f"a {self.context_mode!r} model has no student prediction")
        return predicted[0].cpu().numpy()

    def transcribe(
        self,
        speech: Union[np.ndarray, torch.Tensor],
        context: Optional[np.ndarray] = None,
        previous: Optional[Sequence[str]] = None,
    ) -> str:
        """Text of the best hypothesis for one waveform (see :meth:`recognize`).

        Args:
            speech: (S,) waveform at the model's sampling rate.
            context: (L, C) context of an ``inject`` model, made by the caller.
            previous: instead of ``context``, the previous utterances' texts,
                oldest first ([] for a session's first utterance): the model
                makes its context from them as in its training
                (:meth:`context_pipeline`, from its ``context.yaml``).
        """
        if previous is not None:
            if context is not None:
                raise ContextError("give context= or previous=, not both")
            context = self.context_pipeline().one(previous)
        return self.recognize(speech, context)[0]

    @property
    def sample_rate(self) -> int:
        """The sampling rate the model was trained on (its frontend's ``fs``)."""
        conf = getattr(self.asr_train_args, "frontend_conf", None) or {}
        return int(conf.get("fs", 16000))

    def read_audio(self, audio: Union[str, Path, np.ndarray], name: str = "utterance") -> np.ndarray:
        """A waveform at the model's rate: an array as it is, a file read and checked."""
        if isinstance(audio, (str, Path)):
            import soundfile

            try:
                wav, rate = soundfile.read(str(audio), dtype="float32")
            except (RuntimeError, OSError) as error:
                raise MissingInputError(f"{name}: cannot read audio {audio}: {error}") from None
            if rate != self.sample_rate:
                raise ContextError(f"{name}: {audio} is sampled at {rate} Hz, the model at "
                                   f"{self.sample_rate} Hz: resample it first")
            return wav if wav.ndim == 1 else wav.mean(axis=1)
        return np.asarray(audio, dtype=np.float32)

    def transcribe_session(
        self,
        wavs: Sequence[Union[str, Path, np.ndarray]],
        context: Union[str, Sequence[str]] = "self",
        names: Optional[Sequence[str]] = None,
    ) -> List[str]:
        """One text per utterance of a session, in order.

        Args:
            wavs: the session's utterances in order: waveforms at the model's
                rate, or audio files (their rate is checked).
            context: ``"self"``: each utterance's context is made from this
                model's own earlier hypotheses of the session (what a deployment
                has); ``"none"``: no previous text (a session's start for every
                utterance); or a list of the session's transcripts, one per
                utterance, of which utterance *i* reads those before *i*. Audio-only
                models (baseline, gcaf, audio_gcaf) take ``self`` and ``none``,
                which change nothing for them, and refuse a list.
            names: utterance ids for error messages.
        """
        given = context if isinstance(context, str) else [list(context)]
        return self.transcribe_sessions([wavs], given, [names] if names is not None else None)[0]

    def transcribe_sessions(
        self,
        sessions: Sequence[Sequence[Union[str, Path, np.ndarray]]],
        context: Union[str, Sequence[Sequence[str]]] = "self",
        names: Optional[Sequence[Sequence[str]]] = None,
    ) -> List[List[str]]:
        """Several sessions side by side: utterance *i* of every session in one batch, its
        contexts generated and embedded as one batch too (see :meth:`transcribe_session`;
        ``context`` is ``self``, ``none`` or one transcript list per session)."""
        if not len(sessions) or any(not len(session) for session in sessions):
            raise ContextError(f"{self.model_name}: an empty session (no utterance)")
        if names is None:
            names = [[f"session {k + 1} utterance {i + 1}" for i in range(len(session))]
                     for k, session in enumerate(sessions)]
        given = None
        if isinstance(context, str):
            if context not in ("self", "none"):
                raise ContextError(f"context must be 'self', 'none' or a list of transcripts, "
                                   f"got {context!r}")
        else:
            given = [list(texts) for texts in context]
            if self.context_mode != "inject":
                raise ContextError(f"{self.model_name}: a {self.context_mode!r} model runs from "
                                   "audio alone; it takes no previous texts")
            for texts, session in zip(given, sessions):
                if len(texts) != len(session):
                    raise ContextError(f"{len(texts)} transcripts for a session of {len(session)} "
                                       "utterances: give one per utterance")
        if self.context_mode == "inject" and (self.context_spec or {}).get("context") == "prev_audio":
            raise ContextError(
                f"{self.model_name}: its context is the previous utterance's audio through the "
                "frozen upstream, which a session decode does not make: decode it with "
                "gcft_inference and the recipe's prev_audio contexts")
        pipeline = self.context_pipeline() if self.context_mode == "inject" else None
        hyps: List[List[str]] = [[] for _ in sessions]
        for i in range(max(len(session) for session in sessions)):
            active = [k for k, session in enumerate(sessions) if len(session) > i]
            speech = [self.read_audio(sessions[k][i], names[k][i]) for k in active]
            contexts = None
            if pipeline is not None:
                previous = [hyps[k] if context == "self" else given[k][:i] if given is not None
                            else [] for k in active]
                contexts = pipeline(previous)
            texts = self._recognize_batch(speech, contexts, [names[k][i] for k in active])
            for k, text in zip(active, texts):
                hyps[k].append(text)
        return hyps

    def _recognize_batch(self, speech: List[np.ndarray], contexts: Optional[List[np.ndarray]],
                         names: List[str]) -> List[str]:
        """Texts of a step's utterances. Their contexts were made in one batch; the speech
        model runs on each waveform alone: in a padded batch a shorter waveform's last
        frames change (the SSL upstream's group norm and convolutions see the padding),
        and a session decoded beside others must give the text it gives alone."""
        return [self.recognize(wav, None if contexts is None else contexts[b], names[b])[0] or ""
                for b, wav in enumerate(speech)]

    def _greedy(self, encoder_out: torch.Tensor) -> Hypothesis:
        """CTC greedy decoding of ``(1, T, D)`` frames: argmax, repeats merged, blanks dropped."""
        if self.asr_model.ctc is None:
            raise ValueError("greedy decoding needs a CTC branch (ctc_weight > 0 in training)")
        log_probs = self.asr_model.ctc.log_softmax(encoder_out)[0]  # (T, V)
        best, best_ids = log_probs.max(dim=-1)
        ids = torch.unique_consecutive(best_ids)
        ids = [int(i) for i in ids if int(i) != self.asr_model.blank_id]
        tokens = self.converter.ids2tokens(ids)
        text = self.tokenizer.tokens2text(tokens) if self.tokenizer is not None else None
        return text, tokens, ids, float(best.sum())
