"""The torch DataLoader that feeds the trainer: worker processes read, build targets and augment while the
trainer computes, each with its own bounded cache (engine.training.data).

Workers are not forked from the trainer: the GUI trains in a thread, and forking a process that runs threads
(Qt's, torch's) can copy a lock in its held state. They come from a fork server, a clean process started for the
purpose, where the platform has one, and are spawned elsewhere; either imports the engine afresh, which costs a
few seconds once per run. (Spawned workers here now and then abort in C++ as they exit, which the DataLoader
reports as an error; the fork server's do not.)
"""
from __future__ import annotations

import copy
import multiprocessing
import os

import cv2
import torch
from torch.utils.data import DataLoader

from engine.training.data import BatchKeys, SampleSource, TrainingIndex, TrainingItems, collate


_START = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def worker_count(setting: int | None, device: torch.device) -> int:
    """The reading processes to start: the setting where given; by default none on the CPU, whose cores are
    busy training (the trainer reads between steps), and up to 4 beside a GPU, which would otherwise wait."""
    if setting is not None:
        return setting
    return 0 if device.type == "cpu" else max(1, min(4, (os.cpu_count() or 2) // 2))


def _quiet_worker(_: int) -> None:
    """One thread per worker: the workers run beside the trainer, whose threads need the cores."""
    cv2.setNumThreads(1)


def batches(index: TrainingIndex, source: SampleSource, crop_size: int, batch_size: int, seed: int, stream: int,
            workers: int) -> DataLoader:
    """A DataLoader yielding ``engine.training.data.Loaded`` without end; start iterating it only once the index
    holds keys. Each worker keeps ``source.cache_bytes / workers`` of samples."""
    if workers:
        source = copy.copy(source)  # with an empty cache, as each worker gets it
        source.cache_bytes //= workers
    return DataLoader(TrainingItems(source, crop_size), batch_sampler=BatchKeys(index, batch_size, seed, stream),
                      collate_fn=collate, num_workers=workers, worker_init_fn=_quiet_worker if workers else None,
                      multiprocessing_context=_START if workers else None, prefetch_factor=2 if workers else None)
