"""Context student: predicts the context embedding from encoder frames alone.

Pure torch, no ESPnet import; the ESPnet task registers the classes as
``--context_student`` choices.
"""

from abc import ABC, abstractmethod
import math
from typing import Tuple

import torch

from espnet_gcft.nn.masks import lengths_to_mask


class AbsContextStudent(torch.nn.Module, ABC):
    """Maps encoder frames to a context prediction ``(B, Lq, C)``."""

    @abstractmethod
    def forward(
        self, frames: torch.Tensor, frame_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Predict the context.

        Args:
            frames: (B, T, D) encoder output.
            frame_lengths: (B,) valid frames per utterance.

        Returns:
            (B, Lq, C) predicted context and (B,) its lengths (all ``Lq``).
        """


class PoolingFCStudent(AbsContextStudent):
    """Masked pooling over frames followed by a linear map to ``C``.

    ``pooling: mean`` averages the valid frames (``Lq = 1``). ``pooling:
    attention`` learns ``num_queries`` query vectors that attend over the valid
    frames (scaled dot product): with one query this is attentive pooling for
    cls/mean targets, with ``Lq`` queries it predicts a sequence target, row by
    row.

    Args:
        input_size: ``D``, encoder output dimension (set by the task).
        context_dim: ``C``, context embedding dimension.
        pooling: ``mean`` or ``attention``.
        num_queries: ``Lq``, number of learned queries (``attention`` only).
        dropout: dropout on the pooled vectors during training.
    """

    def __init__(
        self,
        input_size: int,
        context_dim: int,
        pooling: str = "mean",
        num_queries: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if pooling not in ("mean", "attention"):
            raise ValueError(f"`pooling` must be 'mean' or 'attention', got {pooling!r}")
        if num_queries < 1:
            raise ValueError(f"`num_queries` must be >= 1, got {num_queries}")
        if pooling == "mean" and num_queries != 1:
            raise ValueError(
                f"`num_queries` must be 1 with mean pooling, got {num_queries}"
            )
        if input_size <= 0 or context_dim <= 0:
            raise ValueError(
                f"`input_size` and `context_dim` must be positive, got "
                f"{input_size} and {context_dim}"
            )
        self.pooling = pooling
        self.num_queries = num_queries
        if pooling == "attention":
            self.queries = torch.nn.Parameter(
                torch.randn(num_queries, input_size) / math.sqrt(input_size)
            )
        self.dropout = torch.nn.Dropout(dropout)
        self.projection = torch.nn.Linear(input_size, context_dim)

    def forward(
        self, frames: torch.Tensor, frame_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        valid = lengths_to_mask(frame_lengths, frames.size(1))  # (B, T)
        if self.pooling == "mean":
            weights = valid.to(frames.dtype) / frame_lengths.clamp(min=1)[:, None]
            weights = weights[:, None, :]  # (B, 1, T)
        else:
            scores = torch.einsum("qd,btd->bqt", self.queries, frames)
            scores = scores / math.sqrt(frames.size(-1))  # (B, Lq, T)
            scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
            weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        pooled = torch.bmm(weights, frames)  # (B, Lq, D)
        prediction = self.projection(self.dropout(pooled))  # (B, Lq, C)
        lengths = torch.full_like(frame_lengths, self.num_queries)
        return prediction, lengths
