"""``wsv bench pretrain``: what self-supervised pretraining (engine.training.pretrain) buys where ImageNet features
fit least: grayscale MRI (ACDC) with the scribbles of only a few training patients, and the from-scratch U-Net.

For each seed the network is pretrained once on every training image (no labels: the task undoes a corruption),
then for each number of marked patients — a seed-shuffled choice of patients whose images keep their scribbles,
the others staying unmarked — one network trains from scratch and one from the pretrained weights, with the same
settings, and both are scored on the test split. A network trained on the full masks of every training image,
from scratch and without the regularizer (as ``wsv bench quality``'s full row), gives each seed's upper bound, so
the table reads as % of full supervision.

A patient is the part of an image ID before the first underscore (ACDC: patient001_frame01_slice_0); a data set
whose IDs have none counts each image as its own patient.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from engine.bench.active import test_miou
from engine.bench.quality import METHODS
from engine.datasets.folder import DatasetFolder
from engine.datasets.importer import import_dataset
from engine.training.config import TrainConfig
from engine.training.pretrain import PretrainConfig, Pretrainer
from engine.training.trainer import Trainer


def patient(image_id: str) -> str:
    return image_id.split("_")[0]


def _subset(ds: DatasetFolder, marked: set[str], folder: Path) -> Path:
    """A dataset folder (links to ``ds``'s files) whose scribbles are those of the ``marked`` patients' images."""
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("images", "masks", "scribbles"):
        (folder / sub).mkdir(parents=True)
    for image_id, path in ds.images.items():
        os.symlink(path.resolve(), folder / "images" / path.name)
        for sub in ("masks", "scribbles"):
            src = ds.root / sub / f"{image_id}.png"
            if src.is_file() and (sub == "masks" or patient(image_id) in marked):
                os.symlink(src.resolve(), folder / sub / src.name)
    for name in ("classes.txt", "train.txt", "test.txt"):
        shutil.copyfile(ds.root / name, folder / name)
    return folder


def _train(project: Path, config: TrainConfig) -> Trainer:
    trainer = Trainer(project, config)
    for _ in trainer.run():
        pass
    return trainer


def run_pretrain_bench(data_root: Path, dataset: str, patients: list[int], seeds: list[int], task: str,
                       pretrain_steps: int, base: TrainConfig, work: Path,
                       log: Callable[[str], None] = print) -> list[dict]:
    ds = DatasetFolder.open(data_root / dataset)
    train_ids, test_ids = ds.ids("train"), ds.ids("test")
    people = sorted({patient(i) for i in train_ids})
    if max(patients) > len(people):
        raise ValueError(f"{dataset} has {len(people)} training patients; asked for {max(patients)}")
    work.mkdir(parents=True, exist_ok=True)
    background = 0 if ds.classes[0].lower() == "background" else None
    everyone = work / "project-all"
    if not everyone.exists():  # every training image, for pretraining and the full-mask bound
        import_dataset(ds, everyone, split="train")[0].close()
    records = []
    for seed in seeds:
        t0 = time.monotonic()
        pre_config = PretrainConfig(task=task, model=base.model, steps=pretrain_steps, working_size=base.working_size,
                                    crop_size=base.crop_size, seed=seed, device=base.device, threads=base.threads)
        pretrainer = Pretrainer(everyone, pre_config)
        try:
            for _ in pretrainer.run():
                pass
            pretrained = work / f"pretrained-seed{seed}"
            pretrainer.save(pretrained)
        finally:
            pretrainer.close()
        log(f"{dataset} seed {seed}: pretrained ({task}, {pretrain_steps} steps) in "
            f"{(time.monotonic() - t0) / 60:.1f} min")
        full = _train(everyone, dataclasses.replace(base, **METHODS["full"], seed=seed))
        full_miou = test_miou(full, ds, test_ids, len(ds.classes), background)
        full.close()
        log(f"{dataset} seed {seed}: full masks, test mIoU {full_miou:.3f}")
        order = [people[int(i)] for i in np.random.default_rng(seed).permutation(len(people))]
        for count in patients:
            marked = set(order[:count])
            folder = _subset(ds, marked, work / f"subset-seed{seed}-{count}")
            project = work / f"project-seed{seed}-{count}"
            shutil.rmtree(project, ignore_errors=True)
            import_dataset(DatasetFolder.open(folder), project, split="train")[0].close()
            for init in (None, pretrained):
                t0 = time.monotonic()
                trainer = _train(project, dataclasses.replace(base, supervision="scribbles", seed=seed,
                                                              init_from=None if init is None else str(init)))
                miou = test_miou(trainer, ds, test_ids, len(ds.classes), background)
                records.append({"bench": "pretrain", "dataset": dataset, "task": task, "seed": seed,
                                "marked_patients": count, "pretrained": init is not None,
                                "initial_weights": trainer.pretrained, "model": base.model, "steps": trainer.step,
                                "minutes": round((time.monotonic() - t0) / 60, 2), "test_miou": round(miou, 4),
                                "full_miou": round(full_miou, 4),
                                "pct_of_full": round(100 * miou / full_miou, 1) if full_miou else None})
                trainer.close()
                log(f"{dataset} seed {seed}: {count} marked patients, "
                    f"{'pretrained' if init else 'from scratch'}: test mIoU {miou:.3f}")
    return records
