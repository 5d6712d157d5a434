"""GCFTASRModel: ESPnet's CTC/attention ASR model with context fusion and a student."""

from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
from typeguard import typechecked

from espnet_gcft.asr.compat import quiet_imports
from espnet_gcft.errors import InputError
from espnet_gcft.nn.masks import lengths_to_mask
from espnet_gcft.nn import DISTANCES, AbsContextFusion, AbsContextStudent, utterance_distances

with quiet_imports():  # ESPnet's imports print NLTK download errors, FutureWarnings
    from espnet2.asr.espnet_model import ESPnetASRModel
    from espnet2.torch_utils.device_funcs import force_gatherable

CONTEXT_MODES = ("none", "inject", "distill")
FUSION_INPUTS = ("teacher", "student")
FUSION_POSITIONS = ("after_frontend", "after_encoder")


class ContextError(InputError, ValueError):
    """A context input that does not fit the model (names the utterance)."""


class GCFTASRModel(ESPnetASRModel):
    """ESPnetASRModel whose encoder output is fused with a context embedding.

    ``context_mode``:

    - ``none``: no context modules; parameters and losses are exactly those of
      ``ESPnetASRModel`` (the context-free baseline).
    - ``inject``: the context read from data (``context``, ``(B, L, C)``) is fused
      into the frames, in training and at inference (``inject_gt``,
      ``gen_inject``).
    - ``distill``: a student predicts the context from the frames; its distance
      to the data context, weighted by ``distill_weight`` (alpha), is added to
      the loss as ``loss_ctx``. The fusion reads the teacher (data) or the
      student prediction in training, per ``distill_fusion_input``; in eval mode
      and at inference it always reads the student, so no context is needed
      (``gcaf``). Training in this mode without the data key ``context`` is an
      error.

    The scale of ``loss_ctx``: ESPnet's CTC loss is a sum over an utterance's
    frames, averaged over the batch, so it grows with utterance length. The
    distillation distance of an utterance (scale-free, see
    :mod:`espnet_gcft.nn.distill`) is therefore multiplied by the number of
    frames the student read, and ``loss_ctx`` is the mean of that over the
    utterances that have a teacher context. ``distill_weight = 1`` weighs one
    unit of distance per frame like one nat of CTC loss per frame, at any
    utterance length or embedding size. The mean student-teacher cosine of the
    batch is reported as ``cos_ctx`` (ESPnet logs it for the training and the
    validation set every epoch).

    ``fusion_position`` says which frames the fusion and the student read:

    - ``after_frontend``: the frontend's output (the SSL upstream's features,
      after normalisation and any pre-encoder), before the ESPnet encoder; the
      encoder and the task head then read the fused frames, so every encoder
      layer can combine context and sound (the paper's place: context joins
      the SSL model's output, and the downstream model reads it);
    - ``after_encoder``: the encoder's output, read by the task head alone.

    The fusion and student modules are built by ``GCFTTask`` from its
    ``--context_fusion`` / ``--context_student`` choices and attached with
    :meth:`attach_context_modules`, because their input size is the encoder
    output size, known only once ESPnet has built the encoder.

    Args (beyond ``ESPnetASRModel``'s):
        context_mode: ``none`` | ``inject`` | ``distill``.
        context_dim: ``C``, dimension of the context embeddings (not ``none``).
        distill_weight: alpha, weight of ``loss_ctx``.
        distill_loss: ``mse`` | ``l1`` | ``cosine``.
        distill_fusion_input: ``teacher`` | ``student``, what the fusion reads in
            distill training.
        distill_center: distill centred targets: the student predicts the
            teacher minus the training teachers' mean (a running mean over
            every teacher row seen in training, kept as the buffers
            ``teacher_sum``/``teacher_count`` of the checkpoint), and the
            fusion reads the prediction plus that mean, in the teacher's space.
            A teacher's part that no audio can tell (the mean) is then no
            target; with ``distill_loss: mse`` the squared error is divided by
            the teachers' variance around their mean instead of each
            teacher's own norm, which fixes the scale of the prediction.
        distill_rescale: with ``distill_center``, the fusion reads the mean plus
            the student's prediction scaled to the teachers' spread: the square
            root of the teachers' variance over the student's mean squared
            prediction (running, over the training utterances with a teacher;
            buffers ``student_sqsum``/``student_count``). A student regresses
            towards the mean wherever the audio tells little, so its raw
            prediction is far smaller than any teacher the fusion learnt from
            (``distill_fusion_input: teacher``); scaled, its direction is read
            as a teacher's would be.
        fusion_position: ``after_frontend`` | ``after_encoder``.
    """

    @typechecked
    def __init__(
        self,
        *args,
        context_mode: str = "none",
        context_dim: Optional[int] = None,
        distill_weight: float = 1.0,
        distill_loss: str = "mse",
        distill_fusion_input: str = "student",
        distill_center: bool = False,
        distill_rescale: bool = False,
        fusion_position: str = "after_encoder",
        **kwargs,
    ):
        if context_mode not in CONTEXT_MODES:
            raise ValueError(
                f"`context_mode` must be one of {CONTEXT_MODES}, got {context_mode!r}"
            )
        if context_mode != "none" and (context_dim is None or context_dim <= 0):
            raise ValueError(
                f"`context_dim` must be a positive int with context_mode "
                f"{context_mode!r}, got {context_dim!r}"
            )
        if distill_loss not in DISTANCES:
            raise ValueError(
                f"`distill_loss` must be one of {DISTANCES}, got {distill_loss!r}"
            )
        if distill_fusion_input not in FUSION_INPUTS:
            raise ValueError(
                f"`distill_fusion_input` must be one of {FUSION_INPUTS}, "
                f"got {distill_fusion_input!r}"
            )
        if fusion_position not in FUSION_POSITIONS:
            raise ValueError(
                f"`fusion_position` must be one of {FUSION_POSITIONS}, got {fusion_position!r}"
            )
        if distill_weight < 0:
            raise ValueError(f"`distill_weight` must be >= 0, got {distill_weight}")
        super().__init__(*args, **kwargs)
        self.context_mode = context_mode
        self.context_dim = context_dim
        self.distill_weight = distill_weight
        self.distill_loss = distill_loss
        self.distill_fusion_input = distill_fusion_input
        self.distill_center = distill_center and context_mode == "distill"
        if distill_rescale and not self.distill_center:
            raise ValueError("`distill_rescale` scales the centred prediction: set `distill_center` too")
        self.distill_rescale = distill_rescale
        if self.distill_center:
            # running sums over the training teachers' rows (float64: many rows)
            self.register_buffer("teacher_sum", torch.zeros(context_dim, dtype=torch.float64))
            self.register_buffer("teacher_sqsum", torch.zeros((), dtype=torch.float64))
            self.register_buffer("teacher_count", torch.zeros((), dtype=torch.float64))
        if self.distill_rescale:
            self.register_buffer("student_sqsum", torch.zeros((), dtype=torch.float64))
            self.register_buffer("student_count", torch.zeros((), dtype=torch.float64))
        self.fusion_position = fusion_position
        self.context_fusion: Optional[AbsContextFusion] = None
        self.context_student: Optional[AbsContextStudent] = None
        # Context of the batch being processed, see `batch_context`.
        self._batch_context: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self._batch_utt_ids: Optional[Sequence[str]] = None
        # Context of the `encode` call under way, for the encoder's pre-hook.
        self._encoder_input_context: Optional[tuple] = None
        self._loss_ctx: Optional[torch.Tensor] = None
        self._cos_ctx: Optional[torch.Tensor] = None
        # (B, Lq, C) student prediction of the last `encode` in distill mode.
        self.last_student_prediction: Optional[torch.Tensor] = None
        # Set by the task in a distributed training (see asr.ddp_audit).
        self.ddp_recorder = None
        self._freeze_unused_layer_weights()

    def _freeze_unused_layer_weights(self) -> None:
        """Freeze the S3PRL featurizer's layer weights when the frontend does not use them.

        ESPnet's S3PRL frontend with ``multilayer_feature: false`` (or one
        ``layer``) hands its featurizer a single layer, so the layer weights
        never get a gradient. A parameter that never gets one stops DDP at the
        first step (unless ``--unused_parameters true``, which costs a graph
        traversal every step); frozen, it is left out of the gradient
        reduction and keeps its value, as it would anyway.
        """
        frontend = self.frontend
        weights = getattr(getattr(frontend, "featurizer", None), "weights", None)
        single_layer = (getattr(frontend, "multilayer_feature", True) is False
                        or getattr(frontend, "layer", -1) != -1)
        if isinstance(weights, torch.nn.Parameter) and single_layer:
            weights.requires_grad_(False)

    def attach_context_modules(
        self,
        fusion: Optional[AbsContextFusion],
        student: Optional[AbsContextStudent],
    ) -> None:
        """Attach the modules the mode needs: none, fusion, or fusion + student."""
        needs_fusion = self.context_mode != "none"
        needs_student = self.context_mode == "distill"
        if needs_fusion != (fusion is not None) or needs_student != (student is not None):
            raise ValueError(
                f"context_mode {self.context_mode!r} needs "
                f"fusion={needs_fusion} and student={needs_student}, got "
                f"fusion={fusion is not None} and student={student is not None}"
            )
        self.context_fusion = fusion
        self.context_student = student
        if fusion is not None and self.fusion_position == "after_frontend":
            if self.encoder is None:
                raise ValueError("`fusion_position` after_frontend needs an encoder")
            # ESPnetASRModel.encode runs frontend -> normalize -> preencoder ->
            # encoder in one method; a pre-hook fuses the encoder's input.
            self.encoder.register_forward_pre_hook(self._fuse_encoder_input, with_kwargs=True)

    def _fuse_encoder_input(self, module, args, kwargs):
        """Encoder pre-hook: fuse the context of the `encode` call into its input frames."""
        if self._encoder_input_context is None:
            return None
        feats, feats_lengths = args[0], args[1]
        fused = self._fuse(feats, feats_lengths, *self._encoder_input_context)
        return (fused, feats_lengths, *args[2:]), kwargs

    @contextmanager
    def batch_context(
        self,
        context: Optional[torch.Tensor],
        context_lengths: Optional[torch.Tensor],
        utt_ids: Optional[Sequence[str]] = None,
    ) -> Iterator[None]:
        """Make a batch's context visible to :meth:`encode` for one call.

        ``ESPnetASRModel.forward`` and ESPnet's ``Speech2Text`` call
        ``encode(speech, speech_lengths)`` with no room for more inputs; the
        context of the batch they are processing is held here for that call.
        """
        if context is not None:
            self.check_context(context, context_lengths, utt_ids)
        self._batch_context = None if context is None else (context, context_lengths)
        self._batch_utt_ids = utt_ids
        try:
            yield
        finally:
            self._batch_context = None
            self._batch_utt_ids = None

    def check_context(
        self,
        context: torch.Tensor,
        context_lengths: torch.Tensor,
        utt_ids: Optional[Sequence[str]] = None,
    ) -> None:
        """Raise ``ContextError`` naming the utterance for a bad context batch.

        Args:
            context: (B, L, C).
            context_lengths: (B,).
            utt_ids: B utterance ids, used in messages only.
        """
        names = list(utt_ids) if utt_ids is not None else None

        def name(i: int) -> str:
            return names[i] if names is not None else f"batch index {i}"

        if context.dim() != 3:
            raise ContextError(
                f"context must be (B, L, C), got shape {tuple(context.shape)}"
            )
        if self.context_dim is not None and context.size(-1) != self.context_dim:
            batch = ", ".join(name(i) for i in range(context.size(0)))
            raise ContextError(
                f"utterance(s) {batch}: context dim {context.size(-1)} != "
                f"context_dim {self.context_dim} of the model config"
            )
        finite = torch.isfinite(context).flatten(1).all(dim=1)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0])
            raise ContextError(f"utterance {name(bad)}: context has NaN or inf values")
        if context_lengths is None or context_lengths.shape != context.shape[:1]:
            raise ContextError("context_lengths must be given as (B,) with the context")

    def encode(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        context_lengths: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Frontend + encoder + context fusion (after the frontend or after the encoder).

        Args:
            speech: (B, S) waveforms or (B, S, F) features.
            speech_lengths: (B,).
            context: (B, L, C) context, or None to use the one set by
                :meth:`batch_context`; ``inject`` requires one, ``distill``
                uses it only as the distillation target.
            context_lengths: (B,) valid context rows.

        Returns:
            (B, T, D) fused frames (or ``((B, T, D), intermediate)``) and (B,).
        """
        if context is None and self._batch_context is not None:
            context, context_lengths = self._batch_context
        elif context is not None:
            self.check_context(context, context_lengths)
        self._loss_ctx = None
        self.last_student_prediction = None
        if self.context_mode == "none":
            return super().encode(speech, speech_lengths)
        if self.fusion_position == "after_frontend":
            self._encoder_input_context = (context, context_lengths)
            try:
                return super().encode(speech, speech_lengths)
            finally:
                self._encoder_input_context = None
        encoder_out, encoder_out_lens = super().encode(speech, speech_lengths)
        frames = encoder_out[0] if isinstance(encoder_out, tuple) else encoder_out
        fused = self._fuse(frames, encoder_out_lens, context, context_lengths)
        if isinstance(encoder_out, tuple):
            return (fused, encoder_out[1]), encoder_out_lens
        return fused, encoder_out_lens

    def _fuse(
        self,
        frames: torch.Tensor,
        frame_lengths: torch.Tensor,
        context: Optional[torch.Tensor],
        context_lengths: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """Fuse (B, T, D) frames with the context the mode prescribes."""
        if self.context_fusion is None:
            raise RuntimeError(
                f"context_mode {self.context_mode!r} has no fusion module; build the "
                "model with GCFTTask or call attach_context_modules()"
            )
        if self.context_mode == "inject":
            if context is None:
                raise ContextError(
                    "context_mode 'inject' needs a context for every utterance "
                    "(an empty (0, C) matrix for one without a previous utterance)"
                )
            context = context.to(frames.dtype)
            return self.context_fusion(frames, context, context_lengths)
        predicted, predicted_lengths = self.context_student(frames, frame_lengths)
        if context is not None:
            context = context.to(frames.dtype)
            if self.distill_center and self.training:
                self._count_teachers(context, context_lengths, predicted)
        # the student's prediction in the teacher's space (centred targets: plus the mean)
        student = predicted
        if self.distill_center:
            scale = self.student_scale().to(predicted.dtype) if self.distill_rescale else 1.0
            student = predicted * scale + self.teacher_mean().to(predicted.dtype)
        self.last_student_prediction = student.detach()
        if context is not None:
            self._loss_ctx, self._cos_ctx = self._distillation(
                predicted, student, predicted_lengths, context, context_lengths, frame_lengths)
        if self.training and context is not None and self.distill_fusion_input == "teacher":
            return self.context_fusion(frames, context, context_lengths)
        return self.context_fusion(frames, student, predicted_lengths)

    def teacher_mean(self) -> torch.Tensor:
        """(C,) mean of the training teachers' rows seen so far (centred distillation)."""
        return (self.teacher_sum / self.teacher_count.clamp(min=1)).float()

    def teacher_variance(self) -> torch.Tensor:
        """Mean squared distance of the training teachers' rows to their mean."""
        mean = self.teacher_sum / self.teacher_count.clamp(min=1)
        return (self.teacher_sqsum / self.teacher_count.clamp(min=1) - mean.pow(2).sum()).float()

    def student_scale(self) -> torch.Tensor:
        """The teachers' spread over the student's (``distill_rescale``): 1 before any training."""
        if float(self.student_sqsum) == 0.0:
            return torch.ones(())
        student = self.student_sqsum / self.student_count.clamp(min=1)
        return (self.teacher_variance().double() / student).sqrt().float()

    @torch.no_grad()
    def _count_teachers(self, context: torch.Tensor, context_lengths: torch.Tensor,
                        predicted: torch.Tensor) -> None:
        """Add a training batch's teacher rows (and the student's centred predictions of the
        utterances that have one, with ``distill_rescale``) to the running sums."""
        rows = context[lengths_to_mask(context_lengths, context.size(1))].double()  # (N, C)
        self.teacher_sum += rows.sum(dim=0)
        self.teacher_sqsum += rows.pow(2).sum()
        self.teacher_count += rows.size(0)
        if self.distill_rescale:
            with_teacher = predicted[context_lengths > 0].double()  # (B', Lq, C)
            self.student_sqsum += with_teacher.pow(2).sum(dim=-1).sum()
            self.student_count += with_teacher.shape[0] * with_teacher.shape[1]

    def _distillation(
        self,
        predicted: torch.Tensor,
        student: torch.Tensor,
        predicted_lengths: torch.Tensor,
        context: torch.Tensor,
        context_lengths: torch.Tensor,
        frame_lengths: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``loss_ctx`` (frame-weighted distance, see the class docstring) and ``cos_ctx``.

        Args:
            predicted: (B, Lq, C) student output (centred with ``distill_center``).
            student: (B, Lq, C) the prediction in the teacher's space (``cos_ctx``).
            predicted_lengths: (B,).
            context: (B, L, C) teacher context.
            context_lengths: (B,) (0: no teacher).
            frame_lengths: (B,) frames the student read.
        """
        target, scale = context, None
        if self.distill_center:
            target = context - self.teacher_mean().to(context.dtype)
            if self.distill_loss == "mse":
                scale = self.teacher_variance().to(context.dtype)
        distances, valid = utterance_distances(
            predicted, predicted_lengths, target, context_lengths, self.distill_loss, scale=scale)
        if not bool(valid.any()):
            zero = predicted.sum() * 0.0
            return zero, zero.detach()
        frames = frame_lengths.to(distances.dtype)
        loss = (distances * frames)[valid].mean()
        with torch.no_grad():
            cosine, _ = utterance_distances(
                student, predicted_lengths, context, context_lengths, "cosine")
            cos = (1.0 - cosine)[valid].mean()
        return loss, cos

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        context: Optional[torch.Tensor] = None,
        context_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """ESPnet's loss plus ``distill_weight * loss_ctx`` in distill mode.

        Args:
            speech: (B, S) or (B, S, F).
            speech_lengths: (B,).
            text: (B, U) token ids.
            text_lengths: (B,).
            context: (B, L, C) from the data key ``context``, zero-padded.
            context_lengths: (B,) rows per utterance (0 = no context).
            kwargs: ``utt_id`` (used in error messages) and ESPnet extras.
        """
        if self.training and self.ddp_recorder is not None:
            self.ddp_recorder.record(kwargs.get("utt_id"))
        if self.context_mode == "none":
            return super().forward(speech, speech_lengths, text, text_lengths, **kwargs)
        if self.context_mode == "distill" and self.training and context is None:
            raise ContextError(
                "context_mode 'distill' trains the student towards the data key `context`, "
                "and this batch has none: give --train_data_path_and_name_and_type "
                "<emb scp>,context,kaldi_ark (and the same for the valid set)"
            )
        with self.batch_context(context, context_lengths, kwargs.get("utt_id")):
            loss, stats, weight = super().forward(
                speech, speech_lengths, text, text_lengths, **kwargs
            )
        if self._loss_ctx is not None:
            loss = loss + self.distill_weight * self._loss_ctx
            stats["loss_ctx"] = self._loss_ctx.detach()
            stats["cos_ctx"] = self._cos_ctx
            stats["loss"] = loss.detach()
            self._loss_ctx = None
            loss, stats, weight = force_gatherable((loss, stats, weight), loss.device)
        return loss, stats, weight
