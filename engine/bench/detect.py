"""``wsv bench detect``: the CNN detector against the classic HOG + linear SVM pipeline on real images.

Each data set is imported whole, with object boxes derived from its masks (one box per connected region of a
class; the background gets none) and every image marked done, so images without objects serve as negatives;
the test split is held out. Both methods train on the train split and are scored on the held-out images with
the same evaluation (class-wise NMS at IoU 0.5, COCO-style matching), and timed: training wall time and
inference per image at the working size.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from engine.datasets.folder import DatasetFolder
from engine.datasets.importer import import_dataset
from engine.detection.config import DetectionConfig
from engine.detection.data import set_images_done
from engine.detection.hog_svm import METHOD as HOG_SVM, HogSvmConfig, HogSvmTrainer
from engine.detection.trainer import DetectionTrainer
from engine.project import Project


def _project(ds: DatasetFolder, root: Path) -> Path:
    if not Project.exists(root):
        project, _ = import_dataset(ds.root, root, split="all", simulate_boxes=True)
        try:
            set_images_done(project.store, [rec.id for rec in project.store.images()])
        finally:
            project.close()
    return root


def run_detect(data_root: Path, datasets: Iterable[str], methods: Iterable[str], steps: int, work: Path,
               device: str = "auto", log: Callable[[str], None] = print) -> list[dict]:
    records = []
    for name in datasets:
        ds = DatasetFolder.open(data_root / name)
        root = _project(ds, work / name / "project")
        for method in methods:
            hog = method == HOG_SVM
            log(f"{name}: training {method}" + ("" if hog else f" for {steps} steps"))
            t0 = time.monotonic()
            trainer = HogSvmTrainer(root, HogSvmConfig()) if hog else \
                DetectionTrainer(root, DetectionConfig(model=method, steps=steps, eval_interval_s=0, device=device))
            try:
                for _ in trainer.run():
                    pass
                train_s = time.monotonic() - t0
                heldout = len(trainer.data.heldout)
                t1 = time.monotonic()
                if not heldout:
                    raise ValueError(f"{name} has no test-split image with boxes to score on")
                scores = trainer.evaluate() if hog else trainer.evaluate(limit=heldout)
                infer_ms = (time.monotonic() - t1) * 1000 / max(heldout, 1)
                device_used = "cpu" if hog else str(trainer.device)
                weights = "n/a" if hog else trainer.pretrained
            finally:
                trainer.close()
            records.append({"bench": "detect", "dataset": name, "method": method, "device": device_used,
                            "backbone_weights": weights, "steps": None if hog else steps,
                            "train_images": len(trainer.data.samples), "test_images": heldout,
                            "train_minutes": round(train_s / 60, 2), "infer_ms_per_image": round(infer_ms, 1),
                            "map50": round(scores.map50, 4), "map50_voc": round(scores.map50_voc, 4),
                            "map": round(scores.map, 4), "boxes": "derived from masks"})
            log(f"{name}: {method}: mAP@0.5 {scores.map50 * 100:.1f}, mAP@[.5:.95] {scores.map * 100:.1f}, "
                f"training {train_s / 60:.1f} min, {infer_ms:.0f} ms per image")
    return records
