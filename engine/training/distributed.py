"""Training one network on several processes with PyTorch's own engine: ``torchrun`` starts the processes and
sets RANK, WORLD_SIZE and LOCAL_RANK; DistributedDataParallel averages the gradients (NCCL between GPUs, gloo
between CPU processes). Each process — a rank — reads its own shard of the images and runs the regularizers on
them; only rank 0 writes files and prints.

Every decision that ends or skips a step (time is up, a loss is not finite, a shard has nothing to learn from)
is taken by all ranks together (``agree``): a rank that left alone would leave the others waiting forever in
their next gradient exchange.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from engine.training.common import TrainingError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The world torchrun described in the environment (a plain process: rank 0 of 1)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise TrainingError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)") from None


def join(device: torch.device) -> World:
    """Join the process group of a torchrun launch (once; a plain process joins nothing). CUDA ranks talk
    over NCCL, each on the GPU numbered by its LOCAL_RANK; CPU ranks over gloo."""
    w = world()
    if w.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(w.local_rank)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return w


def rank_device(device: torch.device, w: World) -> torch.device:
    """Each CUDA rank trains on its own GPU (LOCAL_RANK); CPU ranks share the CPU."""
    if w.distributed and device.type == "cuda":
        if w.local_rank >= torch.cuda.device_count():
            raise TrainingError(f"rank {w.rank} needs GPU {w.local_rank} but this machine has "
                                f"{torch.cuda.device_count()}: start at most that many processes per node")
        return torch.device("cuda", w.local_rank)
    return device


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def gathered(value: object) -> list[object]:
    """``value`` from every rank, in rank order (a plain process: [value])."""
    if not dist.is_initialized():
        return [value]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def agree(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(values: dict[str, float], names: list[str], device: torch.device) -> dict[str, float]:
    """Each of ``names`` averaged over the ranks, a rank without it counting 0 (a term that did not apply to its
    batch added nothing to its loss); names no rank has are left out. The losses a run reports are then those
    of the global batch."""
    if not dist.is_initialized():
        return values
    t = torch.tensor([[values.get(n, 0.0), float(n in values)] for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {n: v / dist.get_world_size() for n, (v, present) in zip(names, t.tolist()) if present}
