"""Context modules in pure torch: fusion, student and distillation distances."""

from espnet_gcft.nn.distill import DISTANCES, masked_distance, pool_rows, utterance_distances
from espnet_gcft.nn.fusion import AbsContextFusion, CrossAttentionFusion
from espnet_gcft.nn.student import AbsContextStudent, PoolingFCStudent

__all__ = [
    "DISTANCES",
    "masked_distance",
    "pool_rows",
    "utterance_distances",
    "AbsContextFusion",
    "CrossAttentionFusion",
    "AbsContextStudent",
    "PoolingFCStudent",
]
