"""Running past one process: torchrun's environment to DistributedDataParallel, NCCL on GPUs, gloo on CPUs.

`torchrun --nproc_per_node=N -m trainer run ...` sets RANK, WORLD_SIZE and LOCAL_RANK; without them the
trainer is one process and nothing here does anything. Only rank 0 writes files and reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def wrap(self, network: nn.Module, device: torch.device) -> nn.Module:
        if not self.active or not any(parameter.requires_grad for parameter in network.parameters()):
            return network
        device_ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(network, device_ids=device_ids, broadcast_buffers=True)

    def broadcast_object(self, value):
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def from_environment(device_kind: str) -> Distributed:
    """Join the process group torchrun describes (gloo unless the device is CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(rank=rank, world=world, local_rank=local_rank)


def shutdown(context: Distributed) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()
