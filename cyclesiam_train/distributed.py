"""Process-group setup in one place: torchrun (env://) or a single process, CPU (gloo) or CUDA (nccl)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cyclesiam.device import resolve_device


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA), else a single process.

    On CUDA every rank uses cuda:LOCAL_RANK (an explicit cuda:N is only valid for a single process).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if world > 1:
        if dev.type == "cuda":
            dev = torch.device("cuda", local_rank)
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a tensor over ranks (identity in a single process)."""
    if not info.enabled:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / info.world


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when `flag` is true on any rank (so all ranks stop at the same step)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def average_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) over ranks, in one all-reduce.

    Each rank updates running statistics from its own samples (and in the middle hops, which DDP does
    not see); averaging after every step keeps all ranks' models identical and uses every rank's data.
    """
    if not info.enabled:
        return
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if not bufs:
        return
    flat = torch.cat([b.detach().reshape(-1).float() for b in bufs])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world
    offset = 0
    for b in bufs:
        n = b.numel()
        b.copy_(flat[offset:offset + n].view_as(b).to(b.dtype))
        offset += n


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
