"""Speech-to-text with a GCFT model: the Python API behind ``gcft_inference`` and ``transcribe``.

Example::

    from espnet_gcft.asr.inference import GCFTSpeech2Text

    s2t = GCFTSpeech2Text.from_pretrained("gcaf.zip", decode_mode="greedy")  # packed zip or exp dir
    text = s2t.transcribe("utt.wav")                        # gcaf/baseline: audio only
    s2t_inject = GCFTSpeech2Text.from_pretrained("inject_gt.zip", decode_mode="greedy")
    text = s2t_inject.transcribe("utt.wav", previous=["the sentence before"])
    texts = s2t_inject.transcribe_session(["a.wav", "b.wav"], context="self")
    text = s2t_inject.transcribe(wav, context=embedding)    # or a (L, C) float32 made by hand

``inject`` models take a context per utterance (made from previous texts as in
their training, from their ``context.yaml``; or given: an empty ``(0, C)``
matrix for the first of a session); ``distill`` (gcaf) and ``none`` (baseline)
models run from audio alone and refuse a context.
"""

from contextlib import nullcontext
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

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
        self._refuse_if_audio_only(self.model_name, "previous texts")
        if self.context_spec is None:
            raise missing_spec_error(self.model_name)
        if self._pipeline is None:
            self._pipeline = ContextPipeline(self.context_spec, device=str(self.device),
                                             where=self.model_name)
        return self._pipeline

    @property
    def context_mode(self) -> str:
        return getattr(self.asr_model, "context_mode", "none")

    def _refuse_if_audio_only(self, name: str, what: str) -> None:
        """An audio-only model (every mode but ``inject``) is given no context of any kind."""
        if self.context_mode != "inject":
            raise ContextError(f"{name}: a {self.context_mode!r} model runs from audio alone; "
                               f"it takes no {what}")

    def _contexts_batch(
        self, contexts: Optional[Sequence[Optional[np.ndarray]]], names: Sequence[str]
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Check a batch's contexts against the mode: ``(B, Lmax, C)`` padded and ``(B,)``
        lengths for an ``inject`` model (which needs one per utterance), None otherwise."""
        if self.context_mode != "inject":
            for context, name in zip(contexts or [], names):
                if context is not None:
                    self._refuse_if_audio_only(f"utterance {name}", "context")
            return None, None
        matrices = []
        for b, name in enumerate(names):
            context = None if contexts is None else contexts[b]
            if context is None:
                raise ContextError(
                    f"utterance {name}: an 'inject' model needs a context per utterance "
                    "(an empty (0, C) matrix when there is no previous one)")
            matrices.append(torch.from_numpy(
                check_context_matrix(context, name, self.asr_model.context_dim, "context")))
        lengths = torch.tensor([m.shape[0] for m in matrices], device=self.device)
        return pad_sequence(matrices, batch_first=True).to(self.device), lengths

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
        context, context_lengths = self._contexts_batch(
            None if context is None else [context], [utt_id])
        model: GCFTASRModel = self.asr_model
        speech = torch.as_tensor(speech, dtype=getattr(torch, self.dtype))[None]
        speech = speech.to(self.device)  # (1, S)
        lengths = torch.tensor([speech.size(1)], device=self.device)
        with torch.no_grad(), model.batch_context(context, context_lengths, [utt_id]):
            encoder_out, encoder_lengths = model.encode(speech, lengths)
        if isinstance(encoder_out, tuple):
            encoder_out = encoder_out[0]
        return encoder_out, encoder_lengths

    def encode_batch(
        self,
        speech: Sequence[Union[np.ndarray, torch.Tensor]],
        contexts: Optional[Sequence[np.ndarray]] = None,
        utt_ids: Optional[Sequence[str]] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Several utterances through the model at once: ``(B, T, D)`` frames and ``(B,)``.

        The SSL upstream runs on each waveform alone (:class:`PerUtteranceFrontend`): in a
        padded batch its group norm and convolutions see the padding, and S3PRL's frame
        count can exceed the real output, so a shorter utterance's frames would change.
        Everything after it (encoder, fusion, student, CTC) runs on the padded batch with
        its masks, which keep each utterance's frames its own (up to float rounding) when
        the encoder's input layer works frame by frame (``input_layer: linear``, as in
        every recipe here). A convolutional subsampling input layer (``conv2d`` ...) masks
        by striding the padded mask, which counts a shorter utterance's last frames
        wrong (ESPnet's batched decoding has the same), so for those encoders the
        utterances are encoded one by one and only their outputs padded
        (:attr:`pads_exactly`). A batch of one is :meth:`encode` itself.

        Args:
            speech: B waveforms at the model's sampling rate.
            contexts: B ``(L_b, C)`` contexts of an ``inject`` model (``L_b`` may be 0).
            utt_ids: B names used in error messages.
        """
        names = list(utt_ids) if utt_ids is not None else [f"batch index {b}" for b in range(len(speech))]
        if len(speech) == 1 or not self.pads_exactly:  # each alone, the frames padded into one batch
            encoded = [self.encode(wav, None if contexts is None else contexts[b], names[b])
                       for b, wav in enumerate(speech)]
            if len(encoded) == 1:
                return encoded[0]
            return (pad_sequence([frames[0] for frames, _ in encoded], batch_first=True),
                    torch.cat([lengths for _, lengths in encoded]))
        context, context_lengths = self._contexts_batch(contexts, names)
        dtype = getattr(torch, self.dtype)
        waves = [torch.as_tensor(w, dtype=dtype) for w in speech]
        lengths = torch.tensor([w.numel() for w in waves], device=self.device)
        batch = pad_sequence(waves, batch_first=True).to(self.device)  # (B, Smax)
        model: GCFTASRModel = self.asr_model
        with torch.no_grad(), model.batch_context(context, context_lengths, names), \
                swapped_attribute(model, "frontend", PerUtteranceFrontend(model.frontend)):
            encoder_out, encoder_lengths = model.encode(batch, lengths)
        if isinstance(encoder_out, tuple):
            encoder_out = encoder_out[0]
        return encoder_out, encoder_lengths

    @property
    def pads_exactly(self) -> bool:
        """Whether a padded batch gives each utterance its own frames (see :meth:`encode_batch`):
        the encoder's input layer is not a convolutional subsampling."""
        embed = getattr(self.asr_model.encoder, "embed", None)
        return "Subsampling" not in type(embed).__name__

    def recognize_batch(
        self,
        speech: Sequence[Union[np.ndarray, torch.Tensor]],
        contexts: Optional[Sequence[np.ndarray]] = None,
        utt_ids: Optional[Sequence[str]] = None,
    ) -> List[Hypothesis]:
        """The best hypothesis of each waveform, encoded as one batch (:meth:`encode_batch`)."""
        encoder_out, lengths = self.encode_batch(speech, contexts, utt_ids)
        return [self.decode(encoder_out[b:b + 1, :int(lengths[b])]) for b in range(len(speech))]

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
        return self.student_predictions()[0]

    def student_predictions(self) -> np.ndarray:
        """The student's ``(B, Lq, C)`` predictions of the last :meth:`encode_batch` (distill)."""
        predicted = self.asr_model.last_student_prediction
        if predicted is None:
            raise ValueError(f"a {self.context_mode!r} model has no student prediction")
        return predicted.cpu().numpy()

    def transcribe(
        self,
        speech: Union[str, Path, np.ndarray, torch.Tensor],
        context: Optional[np.ndarray] = None,
        previous: Optional[Sequence[str]] = None,
    ) -> str:
        """Text of the best hypothesis for one waveform (see :meth:`recognize`).

        Args:
            speech: (S,) waveform at the model's sampling rate, or an audio file
                (its rate is checked, see :meth:`read_audio`).
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
        if isinstance(speech, (str, Path)):
            speech = self.read_audio(speech, str(speech))
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
        contexts_out: Optional[Dict[str, np.ndarray]] = None,
        batch_size: int = 16,
    ) -> List[List[str]]:
        """Several sessions side by side: utterance *i* of every session in one batch, its
        contexts generated and embedded as one batch too (see :meth:`transcribe_session`;
        ``context`` is ``self``, ``none`` or one transcript list per session).

        ``contexts_out``: filled with the ``(L, C)`` context each utterance was decoded
        with, by its name (an inject model's; the recipe's ``self`` condition scores them).
        ``batch_size``: a step's utterances encoded at once (:meth:`encode_batch`)."""
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
            self._refuse_if_audio_only(self.model_name, "previous texts")
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
                if contexts_out is not None:
                    contexts_out.update((names[k][i], matrix) for k, matrix in zip(active, contexts))
            texts = self._recognize_batch(speech, contexts, [names[k][i] for k in active],
                                          batch_size)
            for k, text in zip(active, texts):
                hyps[k].append(text)
        return hyps

    def _recognize_batch(self, speech: List[np.ndarray], contexts: Optional[List[np.ndarray]],
                         names: List[str], batch_size: int) -> List[str]:
        """Texts of a step's utterances, ``batch_size`` encoded at once (the upstream on each
        waveform alone, see :meth:`encode_batch`)."""
        texts = []
        for first in range(0, len(speech), batch_size):
            part = slice(first, first + batch_size)
            texts += [hyp[0] or "" for hyp in self.recognize_batch(
                speech[part], None if contexts is None else contexts[part], names[part])]
        return texts

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


class PerUtteranceFrontend(torch.nn.Module):
    """A frontend that runs the wrapped one on each utterance of a batch alone.

    ESPnet's model calls ``frontend(speech, speech_lengths)`` on the padded batch; this
    cuts each waveform to its length, runs the frontend on it, and pads the features
    again with their true lengths. (An SSL upstream's group norm over time and its
    convolutions would otherwise see the padding of the shorter utterances.)
    """

    def __init__(self, frontend: torch.nn.Module):
        super().__init__()
        self.inner = frontend

    def output_size(self) -> int:
        return self.inner.output_size()

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        feats, lengths = [], []
        for b in range(speech.size(0)):
            n = int(speech_lengths[b])
            out, out_lengths = self.inner(speech[b:b + 1, :n], speech_lengths[b:b + 1])
            feats.append(out[0, :int(out_lengths[0])])
            lengths.append(out_lengths[0])
        return pad_sequence(feats, batch_first=True), torch.stack(lengths)
