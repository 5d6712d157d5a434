"""Distillation distances between a predicted and a target context, masked."""

import torch

from espnet_gcft.nn.masks import lengths_to_mask

DISTANCES = ("mse", "l1", "cosine")


def masked_distance(
    prediction: torch.Tensor,
    prediction_lengths: torch.Tensor,
    target: torch.Tensor,
    target_lengths: torch.Tensor,
    kind: str = "mse",
) -> torch.Tensor:
    """Mean distance over the rows valid in both prediction and target.

    Row ``i`` of the prediction is compared with row ``i`` of the target, for
    ``i < min(prediction_lengths, target_lengths)``; padded rows and utterances
    without a target (length 0) are left out. ``mse`` and ``l1`` average over
    ``C``; ``cosine`` is ``1 - cos``.

    Args:
        prediction: (B, Lq, C) student output.
        prediction_lengths: (B,) valid prediction rows.
        target: (B, L, C) teacher context.
        target_lengths: (B,) valid target rows.
        kind: one of ``DISTANCES``.

    Returns:
        Scalar tensor; 0 (still attached to ``prediction``) when no row is valid.
    """
    if kind not in DISTANCES:
        raise ValueError(f"`distill_loss` must be one of {DISTANCES}, got {kind!r}")
    if prediction.size(-1) != target.size(-1):
        raise ValueError(
            f"prediction dim {prediction.size(-1)} != target dim {target.size(-1)}"
        )
    rows = min(prediction.size(1), target.size(1))
    prediction, target = prediction[:, :rows], target[:, :rows]  # (B, R, C)
    valid = lengths_to_mask(torch.minimum(prediction_lengths, target_lengths), rows)
    if kind == "mse":
        per_row = (prediction - target).pow(2).mean(dim=-1)
    elif kind == "l1":
        per_row = (prediction - target).abs().mean(dim=-1)
    else:
        per_row = 1.0 - torch.nn.functional.cosine_similarity(
            prediction, target, dim=-1, eps=1e-8
        )
    # per_row: (B, R)
    count = valid.sum()
    if count == 0:
        return prediction.sum() * 0.0
    return per_row.masked_fill(~valid, 0.0).sum() / count
