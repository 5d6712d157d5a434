"""Context fusion: speech frames attend to a context embedding.

Pure torch, no ESPnet import; the ESPnet task registers the classes as
``--context_fusion`` choices.
"""

from abc import ABC, abstractmethod
import math

import torch

from espnet_gcft.nn.masks import lengths_to_mask


class AbsContextFusion(torch.nn.Module, ABC):
    """Adds context ``e`` to encoder frames ``Z``; returns frames of the same shape."""

    @abstractmethod
    def forward(
        self,
        frames: torch.Tensor,
        context: torch.Tensor,
        context_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Fuse context into frames.

        Args:
            frames: (B, T, D) encoder output.
            context: (B, L, C) context embeddings, zero-padded along L.
            context_lengths: (B,) number of valid context rows (0 = no context).

        Returns:
            (B, T, D) fused frames.
        """


class CrossAttentionFusion(AbsContextFusion):
    """Multi-head cross-attention with a learned null key: ``Z + CA(Z, e)``.

    Queries are the frames, keys and values the context rows projected from
    ``C`` to ``attention_dim``. One extra key per head is learned and carries a
    zero value. With a single context vector (cls/mean, ``L = 1``) a softmax over
    one key would always be 1 and add the same vector to every frame; the null
    key lets each frame choose how much context it takes. An utterance without
    context (``L = 0``) attends to the null key alone, its update is exactly zero
    (the output projection has no bias) and its frames come back unchanged.

    Args:
        input_size: ``D``, encoder output dimension (set by the task).
        context_dim: ``C``, context embedding dimension.
        attention_dim: ``A``, inner dimension of queries, keys and values.
        num_heads: number of heads; must divide ``attention_dim``.
        dropout: dropout on the attention weights during training.
    """

    def __init__(
        self,
        input_size: int,
        context_dim: int,
        attention_dim: int = 256,
        num_heads: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("context_dim", context_dim),
            ("attention_dim", attention_dim),
            ("num_heads", num_heads),
        ):
            if value <= 0:
                raise ValueError(f"`{name}` must be positive, got {value}")
        if attention_dim % num_heads != 0:
            raise ValueError(
                f"`attention_dim` ({attention_dim}) must be divisible by "
                f"`num_heads` ({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        self.num_heads = num_heads
        self.head_dim = attention_dim // num_heads
        self.dropout = dropout
        self.query = torch.nn.Linear(input_size, attention_dim)
        self.key = torch.nn.Linear(context_dim, attention_dim)
        self.value = torch.nn.Linear(context_dim, attention_dim)
        # No bias: a zero attention result must map to a zero update.
        self.output = torch.nn.Linear(attention_dim, input_size, bias=False)
        self.null_key = torch.nn.Parameter(
            torch.randn(num_heads, self.head_dim) / math.sqrt(self.head_dim)
        )

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, A) -> (B, H, N, A/H)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        frames: torch.Tensor,
        context: torch.Tensor,
        context_lengths: torch.Tensor,
    ) -> torch.Tensor:
        batch = frames.size(0)
        query = self._split_heads(self.query(frames))  # (B, H, T, A/H)
        key = self._split_heads(self.key(context))  # (B, H, L, A/H)
        value = self._split_heads(self.value(context))  # (B, H, L, A/H)
        null_key = self.null_key.view(1, self.num_heads, 1, self.head_dim)
        key = torch.cat([null_key.expand(batch, -1, -1, -1), key], dim=2)
        null_value = value.new_zeros(batch, self.num_heads, 1, self.head_dim)
        value = torch.cat([null_value, value], dim=2)
        # key, value: (B, H, 1 + L, A/H); slot 0 is the null key, always visible.
        visible = lengths_to_mask(context_lengths + 1, context.size(1) + 1)
        attended = torch.nn.functional.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=visible[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, A/H)
        attended = attended.transpose(1, 2).reshape(batch, frames.size(1), -1)
        return frames + self.output(attended)

