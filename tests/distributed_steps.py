"""One training step on a fixed batch, for tests/test_distributed.py; writes the gradient of every parameter to
OUT/grads-{NAME}.pt. ``distributed_steps.py PROJECT OUT BATCH`` trains one process on batch 0 or 1; under
torchrun with BATCH = rank, rank R trains on batch R and writes its gradient as grads-rank{R}.pt."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from engine.training.config import TrainConfig
from engine.training.data import BatchKeys, TrainingIndex, TrainingItems, collate
from engine.training.distributed import leave
from engine.training.trainer import Trainer


def main(project: Path, out: Path, which: str) -> None:
    config = TrainConfig(model="unet", working_size=48, crop_size=32, batch_size=2, steps=1, max_minutes=None,
                         eval_interval_s=0, seed=0)
    trainer = Trainer(project, config)
    every = TrainingIndex(trainer.project, config.supervision)  # all images, not a shard
    every.refresh()
    index = trainer.world.rank if which == "rank" else int(which)
    items = TrainingItems(trainer.source, config.crop_size)
    loaded = collate([items[key] for key in next(iter(BatchKeys(every, 2, 1 + index)))])
    trainer.next_loaded = lambda: loaded
    next(trainer.run())
    grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}
    torch.save(grads, out / f"grads-{'rank' + str(trainer.world.rank) if which == 'rank' else which}.pt")
    trainer.close()


if __name__ == "__main__":
    try:  # the trainer and its DistributedDataParallel wrapper are gone before the group is, as in `wsv`
        main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
    finally:
        leave()
