"""``wsv bench quality``: how close weak supervision gets to full supervision on real data.

For each data set, the train split is imported with its scribbles (real ones for ACDC; simulated, sparse ones
for data sets without) and networks are trained with full masks, pCE alone, pCE + grid CRF and pCE + dense
CRF, under the same budget. Each is scored on the held-out test split, and on the marked training images
themselves, where OpenCV GrabCut seeded with the same scribbles is the classic baseline.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from engine.baselines.grabcut import grabcut_from_scribbles
from engine.datasets.folder import DatasetFolder
from engine.datasets.importer import ScribbleSimulation, import_dataset
from engine.io.images import load_image
from engine.metrics import confusion_matrix, scores
from engine.project import Project
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer, predict_full_size

METHODS = {
    "full": dict(supervision="full", regularizer="none"),
    "pce": dict(supervision="scribbles", regularizer="none"),
    "pce+grid": dict(supervision="scribbles", regularizer="grid"),
    "pce+dense": dict(supervision="scribbles", regularizer="dense"),
}


def run_quality(data_root: Path, datasets: Iterable[str], methods: Iterable[str], base: TrainConfig, work: Path,
                log: Callable[[str], None] = print, sim_ratio: float = 0.3) -> list[dict]:
    records: list[dict] = []
    for name in datasets:
        ds = DatasetFolder.open(data_root / name)
        project_root = work / name / "project"
        if not Project.exists(project_root):
            simulate = None if ds.has("scribbles") else ScribbleSimulation(ratio=sim_ratio)
            project, report = import_dataset(ds.root, project_root, split="train", simulate=simulate)
            project.close()
        scribbles = "real" if ds.has("scribbles") else f"simulated (ratio {sim_ratio})"
        with Project.open(project_root) as project:
            marked = [r for r in project.store.images() if project.store.marks(r.id).strokes]
            marked_seeds = {r.id: project.store.seed_map(r.id) for r in marked}
            marked_paths = {r.id: project.image_path(r) for r in marked}
        test_ids = ds.ids("test")
        k = len(ds.classes)
        gt_cache: dict[str, np.ndarray] = {}

        def gt(image_id: str) -> np.ndarray:
            if image_id not in gt_cache:
                img_size = load_image(ds.images[image_id], max_side=None).original_size
                gt_cache[image_id] = ds.mask(image_id, img_size)
            return gt_cache[image_id]

        path_to_id = {p.resolve(): i for i, p in ds.images.items()}
        full_miou = None
        for method in methods:
            config = replace(base, **METHODS[method])
            log(f"{name}: training {method} ({config.model}, up to {config.steps} steps"
                f"{f' / {config.max_minutes} min' if config.max_minutes else ''})")
            t0 = time.monotonic()
            trainer = Trainer(project_root, config)
            try:
                for rec in trainer.run():
                    pass
                minutes = (time.monotonic() - t0) / 60
                test = _score(trainer, [ds.images[i] for i in test_ids], [gt(i) for i in test_ids], k)
                on_marked = _score(trainer, list(marked_paths.values()),
                                   [gt(path_to_id[p.resolve()]) for p in marked_paths.values()], k)
            finally:
                trainer.close()
            if method == "full":
                full_miou = test
            records.append({"bench": "quality", "dataset": name, "method": method, "scribbles": scribbles,
                            "model": config.model, "regularizer": config.regularizer,
                            "reg_weight": config.effective_reg_weight, "steps": trainer.step,
                            "minutes": round(minutes, 2), "test_images": len(test_ids), "test_miou": round(test, 4),
                            "pct_of_full": round(100 * test / full_miou, 1) if full_miou else None,
                            "marked_images": len(marked), "marked_miou": round(on_marked, 4),
                            "device": str(trainer.device)})
            log(f"{name}: {method}: test mIoU {test * 100:.1f}, marked images {on_marked * 100:.1f}")
        conf = np.zeros((k, k), np.int64)
        for image_id, path in marked_paths.items():
            img = load_image(path, max_side=None)
            conf += confusion_matrix(grabcut_from_scribbles(img.pixels, marked_seeds[image_id], k),
                                     gt(path_to_id[path.resolve()]), k)
        records.append({"bench": "quality", "dataset": name, "method": "grabcut", "scribbles": scribbles,
                        "marked_images": len(marked), "marked_miou": round(scores(conf).miou, 4)})
        log(f"{name}: grabcut on marked images: {scores(conf).miou * 100:.1f}")
    return records


def _score(trainer: Trainer, paths: list[Path], gts: list[np.ndarray], k: int) -> float:
    conf = np.zeros((k, k), np.int64)
    model = trainer.model.eval()
    for path, truth in zip(paths, gts):
        img = load_image(path, max_side=trainer.config.working_size)
        conf += confusion_matrix(predict_full_size(model, img.pixels, img.original_size, trainer.device), truth, k)
    return scores(conf).miou
