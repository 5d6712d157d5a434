"""GCFTTask: ESPnet's ASRTask with context fusion, a context student and a `context` input.

The task adds:

- ``--model gcft`` (default) next to ESPnet's ``espnet`` model choice;
- ``--context_fusion`` / ``--context_fusion_conf`` and ``--context_student`` /
  ``--context_student_conf`` class choices;
- the optional data key ``context``, read as ``kaldi_ark``: one 2-D float32
  matrix ``(L, C)`` per utterance (``L = 1`` for cls/mean, ``L = 0`` for no
  context). ESPnet's collate pads it and adds ``context_lengths``.

Before ESPnet writes anything to the output directory, every ``context`` file
given as training or validation data is checked against the model config and
the text of the same set (see :func:`espnet_gcft.asr.context_data.validate_context_scp`).
"""

import argparse
import logging
from typing import Tuple

import torch

from espnet_gcft.asr.compat import atomic_torch_saves, quiet_imports, swapped_attribute
from espnet_gcft.asr.context_data import validate_context_scp
from espnet_gcft.asr.ddp_audit import BatchRecorder, write_rank_report
from espnet_gcft.asr.model import GCFTASRModel
from espnet_gcft.nn import (
    AbsContextFusion,
    AbsContextStudent,
    CrossAttentionFusion,
    PoolingFCStudent,
)

with quiet_imports():  # ESPnet's imports print NLTK download errors, FutureWarnings
    import espnet2.tasks.asr as espnet_asr_task
    from espnet2.asr.espnet_model import ESPnetASRModel
    from espnet2.tasks.asr import ASRTask
    from espnet2.train.class_choices import ClassChoices
    from espnet2.utils.types import str2bool

model_choices = ClassChoices(
    "model",
    classes=dict(espnet=ESPnetASRModel, gcft=GCFTASRModel),
    type_check=ESPnetASRModel,
    default="gcft",
)
context_fusion_choices = ClassChoices(
    "context_fusion",
    classes=dict(cross_attention=CrossAttentionFusion),
    type_check=AbsContextFusion,
    default="cross_attention",
)
context_student_choices = ClassChoices(
    "context_student",
    classes=dict(pooling_fc=PoolingFCStudent),
    type_check=AbsContextStudent,
    default="pooling_fc",
)


class GCFTTask(ASRTask):
    """ASR task whose model fuses a context embedding into the encoder output."""

    class_choices_list = [
        model_choices if c.name == "model" else c for c in ASRTask.class_choices_list
    ] + [context_fusion_choices, context_student_choices]

    # The model this process trains, when it is a DDP rank (see build_model).
    _rank_model = None

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        group = parser.add_argument_group(description="Context related")
        group.add_argument(
            "--skip_context_check",
            type=str2bool,
            default=False,
            help="Skip the check of the `context` data files before training "
            "(dimension, finite values, one entry per utterance).",
        )

    @classmethod
    def optional_data_names(
        cls, train: bool = True, inference: bool = False
    ) -> Tuple[str, ...]:
        return super().optional_data_names(train, inference) + ("context",)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetASRModel:
        """ESPnet's ASR model assembly, then the context modules the mode needs."""
        with swapped_attribute(espnet_asr_task, "model_choices", model_choices):
            model = super().build_model(args)
        if isinstance(model, GCFTASRModel) and torch.distributed.is_initialized():
            # a DDP rank: record what it trains on (main_worker writes it out)
            model.ddp_recorder = BatchRecorder()
            cls._rank_model = model
        if not isinstance(model, GCFTASRModel) or model.context_mode == "none":
            return model
        if model.fusion_position == "after_frontend":
            if model.preencoder is not None:
                frame_size = model.preencoder.output_size()
            else:
                frame_size = args.input_size or model.frontend.output_size()
        elif model.postencoder is not None:
            frame_size = model.postencoder.output_size()
        elif model.encoder is not None:
            frame_size = model.encoder.output_size()
        else:
            frame_size = args.input_size or model.frontend.output_size()
        dims = dict(input_size=frame_size, context_dim=model.context_dim)
        fusion = context_fusion_choices.get_class(
            getattr(args, "context_fusion", None) or "cross_attention"
        )(**dims, **(getattr(args, "context_fusion_conf", None) or {}))
        student = None
        if model.context_mode == "distill":
            student = context_student_choices.get_class(
                getattr(args, "context_student", None) or "pooling_fc"
            )(**dims, **(getattr(args, "context_student_conf", None) or {}))
        model.attach_context_modules(fusion, student)
        return model

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        if not args.collect_stats and not getattr(args, "skip_context_check", False):
            _check_context_data(args)
        cls._rank_model = None
        # in every rank's process (ESPnet spawns one per GPU): a kill or a full disk
        # while saving never leaves a torn checkpoint for --resume
        with atomic_torch_saves():
            super().main_worker(args)
        model = cls._rank_model
        if model is not None and not args.collect_stats and torch.distributed.is_initialized():
            path = write_rank_report(model, model.ddp_recorder, args.output_dir)
            logging.getLogger(__name__).warning(
                f"rank {torch.distributed.get_rank()}: {model.ddp_recorder.count} training "
                f"batches; parameters and batches in {path}"
            )


def _check_context_data(args: argparse.Namespace) -> None:
    """Validate every `context` data file before any output is written."""
    model_conf = args.model_conf or {}
    mode = model_conf.get("context_mode", "none") if args.model == "gcft" else "none"
    for key in ("train_data_path_and_name_and_type", "valid_data_path_and_name_and_type"):
        triples = getattr(args, key) or []
        if mode == "distill" and not any(name == "context" for _, name, _ in triples):
            raise ValueError(
                f"context_mode 'distill' needs the data key `context` in --{key} "
                "(<emb scp>,context,kaldi_ark): without it the student learns nothing"
            )
        text_files = [path for path, name, _ in triples if name == "text"]
        for path, name, kind in triples:
            if name != "context":
                continue
            if kind != "kaldi_ark":
                raise ValueError(f"{path}: the `context` data must be kaldi_ark, got {kind}")
            validate_context_scp(
                path,
                context_dim=model_conf.get("context_dim"),
                required_keys_file=text_files[0] if text_files else None,
                require_all=mode != "none",
            )

