"""Length masks shared by the context modules."""

import torch


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean validity mask from lengths.

    Args:
        lengths: (B,) integer lengths.
        max_length: size of the padded axis.

    Returns:
        (B, max_length) mask, True where the position is valid.
    """
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]
