"""What each rank of a distributed (DDP) training did, written next to the model.

ESPnet logs on rank 0 only. A distributed training (ESPnet's ``--dist_*``
options; the ranks started by torchrun or srun) also writes, from every rank,
``<output_dir>/ddp/rank<k>.json``: the world size, how many training batches
the rank ran, the utterance ids of its first :data:`MAX_RECORDED_BATCHES`
batches, and a sha256 digest of its parameters when training ended. DDP keeps
the ranks' parameters identical: equal digests say that it did, and disjoint
batches at each step say that the ranks trained on different shards.
"""

import hashlib
import json
from pathlib import Path
from typing import List, Optional

import torch

from espnet_gcft.fileio import write_text_atomic

MAX_RECORDED_BATCHES = 1000


class BatchRecorder:
    """The training batches one rank runs (ids of the first ones, and a count)."""

    def __init__(self, limit: int = MAX_RECORDED_BATCHES):
        self.limit = limit
        self.count = 0
        self.batches: List[List[str]] = []

    def record(self, utt_ids: Optional[List[str]]) -> None:
        self.count += 1
        if len(self.batches) < self.limit:
            self.batches.append([str(u) for u in (utt_ids or [])])


def parameter_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter's name, dtype, shape and bytes, in module order."""
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        tensor = param.detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16
                      else tensor.float().numpy().tobytes())
    return digest.hexdigest()


def write_rank_report(model: torch.nn.Module, recorder: BatchRecorder, output_dir: Path) -> Path:
    """Write ``<output_dir>/ddp/rank<k>.json`` for this process's rank."""
    rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    path = Path(output_dir) / "ddp" / f"rank{rank}.json"
    report = {
        "rank": rank,
        "world_size": world_size,
        "batches_run": recorder.count,
        "parameter_digest": parameter_digest(model),
        "batches": recorder.batches,
    }
    write_text_atomic(path, json.dumps(report) + "\n")
    return path
