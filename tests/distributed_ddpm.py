"""One DDPM step on two ranks' batches, for tests/test_distributed.py; writes every parameter's gradient to
OUT/ddpm-grads-{NAME}.pt. ``distributed_ddpm.py OUT R`` plays rank R of 2 alone (its shard of the images, its
generator, half the batch); under torchrun with R = rank, rank R writes ddpm-grads-rank{R}.pt."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from engine.generative.config import GenerativeConfig
from engine.generative.data import builtin_digits
from engine.generative.trainer import GenerativeTrainer
from engine.training.distributed import leave

CONFIG = GenerativeConfig(model="ddpm", image_size=16, steps=1, batch_size=4, base_channels=8, timesteps=20,
                          preview_ddim_steps=2, preview_count=4, device="cpu", seed=0)


def main(out: Path, which: str) -> None:
    data = builtin_digits(16, n=32)
    if which == "rank":
        trainer = GenerativeTrainer(CONFIG, data)
        name = f"rank{trainer.world.rank}"
    else:
        rank = int(which)
        trainer = GenerativeTrainer(dataclasses.replace(CONFIG, batch_size=CONFIG.batch_size // 2), data)
        trainer.images = data.images[rank::2]
        trainer.rng = torch.Generator().manual_seed(CONFIG.seed if rank == 0 else CONFIG.seed + 1_000_003 * rank)
        name = which
    next(trainer.run())
    torch.save({n: p.grad.clone() for n, p in trainer.model.net.named_parameters() if p.grad is not None},
               out / f"ddpm-grads-{name}.pt")


if __name__ == "__main__":
    try:  # the trainer and its DistributedDataParallel wrapper are gone before the group is, as in `wsv`
        main(Path(sys.argv[1]), sys.argv[2])
    finally:
        leave()
