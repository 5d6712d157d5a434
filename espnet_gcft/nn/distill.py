"""Distillation: the student's distance to the teacher context, on a fixed scale.

The distances are scale-free, so ``distill_weight`` means the same for any
embedding size and norm:

- ``mse``: ``||p - t||^2 / ||t||^2`` (squared error relative to the target);
- ``l1``: ``||p - t||_1 / ||t||_1``;
- ``cosine``: ``1 - cos(p, t)``.

A teacher with ``L`` rows is compared with a student that predicts ``Lq``
rows after :func:`pool_rows` averages the teacher's rows into ``Lq``
contiguous groups: for a cls/mean context (``L = 1``) and one student row
that is the context itself, for a token sequence (``--pooling sequence``)
and one student row it is the mean of the sequence's rows, and for ``Lq =
L`` row ``i`` is compared with row ``i``.

:func:`utterance_distances` gives one distance per utterance (the mean over
its rows); the model weighs each by the utterance's frame count (see
``GCFTASRModel``).
"""

from typing import Optional, Tuple

import torch

from espnet_gcft.nn.masks import lengths_to_mask

DISTANCES = ("mse", "l1", "cosine")
EPS = 1e-8


def pool_rows(target: torch.Tensor, target_lengths: torch.Tensor,
              rows: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Average each utterance's valid rows into ``rows`` contiguous groups.

    Row ``j`` of an utterance with ``L_b`` valid rows joins group
    ``floor(j * rows / L_b)``; a group that receives no row (``L_b < rows``)
    is invalid.

    Args:
        target: (B, L, C) teacher context, zero-padded along L.
        target_lengths: (B,) valid rows.
        rows: ``Lq``, the number of groups.

    Returns:
        (B, Lq, C) pooled target and (B, Lq) validity of each group.
    """
    batch, length, _ = target.shape
    positions = torch.arange(length, device=target.device)[None, :]  # (1, L)
    valid = positions < target_lengths[:, None]  # (B, L)
    group = (positions * rows) // target_lengths.clamp(min=1)[:, None]  # (B, L)
    assign = torch.nn.functional.one_hot(group.clamp(max=rows - 1), rows).to(target.dtype)
    assign = assign * valid[..., None].to(target.dtype)  # (B, L, Lq)
    counts = assign.sum(dim=1)  # (B, Lq)
    pooled = torch.einsum("blq,blc->bqc", assign, target) / counts.clamp(min=1)[..., None]
    return pooled, counts > 0


def utterance_distances(
    prediction: torch.Tensor,
    prediction_lengths: torch.Tensor,
    target: torch.Tensor,
    target_lengths: torch.Tensor,
    kind: str = "mse",
    scale: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per utterance, the mean distance over the rows valid in prediction and pooled target.

    Args:
        prediction: (B, Lq, C) student output.
        prediction_lengths: (B,) valid prediction rows.
        target: (B, L, C) teacher context.
        target_lengths: (B,) valid target rows (0: no teacher).
        kind: one of ``DISTANCES``.
        scale: for ``mse``, divide the squared error by this scalar instead of
            each target row's squared norm (centred targets: their variance).

    Returns:
        (B,) distances and (B,) mask of the utterances that have a valid row
        (the others' distances are 0).
    """
    if kind not in DISTANCES:
        raise ValueError(f"`distill_loss` must be one of {DISTANCES}, got {kind!r}")
    if prediction.size(-1) != target.size(-1):
        raise ValueError(
            f"prediction dim {prediction.size(-1)} != target dim {target.size(-1)}"
        )
    rows = prediction.size(1)
    pooled, group_valid = pool_rows(target, target_lengths, rows)  # (B, Lq, C), (B, Lq)
    valid = group_valid & lengths_to_mask(prediction_lengths, rows)  # (B, Lq)
    if kind == "mse":
        norm = pooled.pow(2).sum(-1) if scale is None else scale
        per_row = (prediction - pooled).pow(2).sum(-1) / norm.clamp(min=EPS)
    elif kind == "l1":
        per_row = (prediction - pooled).abs().sum(-1) / pooled.abs().sum(-1).clamp(min=EPS)
    else:
        per_row = 1.0 - torch.nn.functional.cosine_similarity(prediction, pooled, dim=-1, eps=EPS)
    # per_row: (B, Lq)
    count = valid.sum(dim=1)  # (B,)
    distances = per_row.masked_fill(~valid, 0.0).sum(dim=1) / count.clamp(min=1)
    return distances, count > 0


def masked_distance(
    prediction: torch.Tensor,
    prediction_lengths: torch.Tensor,
    target: torch.Tensor,
    target_lengths: torch.Tensor,
    kind: str = "mse",
) -> torch.Tensor:
    """Mean of :func:`utterance_distances` over the utterances that have a teacher.

    Returns:
        Scalar tensor; 0 (still attached to ``prediction``) when no utterance
        has a teacher.
    """
    distances, valid = utterance_distances(
        prediction, prediction_lengths, target, target_lengths, kind)
    if not bool(valid.any()):
        return prediction.sum() * 0.0
    return distances[valid].mean()
