"""Data-parallel training across processes started by ``torchrun``.

Every rank holds the whole model and draws the same batches (same seed), trains on its own slice of
each batch and averages gradients with the others, so an update equals one on the whole batch. Evaluation
splits the users across ranks and sums the metrics. gloo on CPU, nccl on CUDA, where each rank of a node
takes its own card (``cuda:LOCAL_RANK``). Rank 0 alone writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from gatedrec.errors import GatedRecError


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # where this rank computes; nccl reduces tensors on it alone

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """This rank's contiguous slice of each array."""
        if not self.active:
            return arrays
        bounds = np.linspace(0, len(arrays[0]), self.world_size + 1).astype(int)
        return tuple(array[bounds[self.rank] : bounds[self.rank + 1]] for array in arrays)

    def average_gradients(self, parameters) -> None:
        if not self.active:
            return
        for parameter in parameters:
            if parameter.grad is None:  # every rank must join every reduction
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)
            parameter.grad /= self.world_size

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum of ``values`` over the ranks (float64)."""
        if not self.active:
            return values
        tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(self.device)
        dist.all_reduce(tensor)
        return tensor.cpu().numpy()


def join_group(device: torch.device) -> Group:
    """The process group torchrun set up through the environment, or a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Group(device=device)
    device = rank_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Group(dist.get_rank(), world_size, device)


def rank_device(device: torch.device) -> torch.device:
    """The card a rank started by torchrun with a bare ``cuda`` takes: ``cuda:LOCAL_RANK``, so the
    processes of one node do not all share the first card. An explicit ``cuda:N`` is kept as asked."""
    if device.type != "cuda" or device.index is not None:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if local_rank >= (count := torch.cuda.device_count()):
        raise GatedRecError(f"--device cuda under torchrun gives each process of a node its own card, but local "
                            f"rank {local_rank} finds {count} CUDA device(s); start at most {count} process(es) "
                            f"per node (--nproc_per_node {count})")
    return torch.device("cuda", local_rank)


def leave_group() -> None:
    """Tear the process group down before exit (its threads would otherwise abort the interpreter)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
