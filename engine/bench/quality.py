"""``wsv bench quality``: how close weak supervision gets to full supervision on real data.

For each data set, the train split is imported with its scribbles (real ones for ACDC; simulated, sparse ones
for data sets without), and with object boxes and image tags derived from its masks where it has none. Networks
are trained with full masks, pCE alone, pCE + grid CRF and pCE + dense CRF on the scribbles; on the boxes with
the naive GrabCut proposals as fake masks, with the box losses (background outside boxes where the data set has
a background class, the confident part of GrabCut's answer as seeds inside them, tightness prior, consistency)
and with the box losses + dense CRF; and on the tags alone and tags + dense CRF — all under the same budget.
Each is scored on the held-out test split, and on the marked training images themselves, where OpenCV GrabCut
seeded with the same scribbles (or boxes) is the classic baseline.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from engine.bench.figures import prediction_figure
from engine.annotations.types import UNLABELED, background_index
from engine.baselines.grabcut import grabcut_from_boxes, grabcut_from_scribbles
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
    "boxes-grabcut": dict(supervision="boxes-grabcut", regularizer="none"),
    "boxes": dict(supervision="boxes", regularizer="none"),
    "boxes+dense": dict(supervision="boxes", regularizer="dense"),
    "tags": dict(supervision="tags", regularizer="none"),
    "tags+dense": dict(supervision="tags", regularizer="dense"),
}


class ImportMismatch(ValueError):
    """The work folder holds a project imported with other simulation settings than asked for."""


def run_quality(data_root: Path, datasets: Iterable[str], methods: Iterable[str], base: TrainConfig, work: Path,
                log: Callable[[str], None] = print, simulation: ScribbleSimulation = ScribbleSimulation(),
                figures: Path | None = None, figure_images: int = 4, dense_weight: float | None = None) -> list[dict]:
    """One record per (data set, method), plus the GrabCut baselines. With ``figures``, each method also writes
    ``DATASET-METHOD.png``: its predictions on ``figure_images`` test images spread over the split, next to the
    truth. ``dense_weight`` replaces the dense CRF loss's default weight in the methods that use it. ``simulation``
    draws the scribbles of data sets that have none."""
    records: list[dict] = []
    for name in datasets:
        ds = DatasetFolder.open(data_root / name)
        project_root = work / name / "project"
        settings_file = work / name / "import.json"
        background = background_index(ds.classes)
        simulate = None if ds.has("scribbles") else simulation
        settings = {"scribble_ratio": simulate and simulate.ratio, "scribble_radius": simulate and simulate.brush,
                    "scribble_style": simulate and simulate.style, "box_background": background}
        if not Project.exists(project_root):
            project, report = import_dataset(ds.root, project_root, split="train", simulate=simulate,
                                             simulate_boxes=True, simulate_tags=True)
            project.close()
            settings_file.write_text(json.dumps(settings))
        elif settings_file.is_file() and {"box_background": 0, "scribble_radius": simulate and 2.0,
                                          "scribble_style": simulate and "centre-lines",
                                          **json.loads(settings_file.read_text())} != settings:
            # (folders imported before these settings were recorded boxed every class but class 0, and drew
            # simulated centre-line strokes with a brush of radius 2)
            raise ImportMismatch(f"{project_root} was imported with {settings_file.read_text()}, not {settings}: "
                                 f"pass another --work folder")
        origin = {"scribbles": "real" if ds.has("scribbles")
                  else f"simulated ({simulation.describe()})",
                  "boxes": "real" if ds.has("boxes") else "from masks", "tags": "real" if ds.has("tags") else "from masks"}
        with Project.open(project_root) as project:
            marks = {r.id: project.store.marks(r.id) for r in project.store.images()}
            marked = [r for r in project.store.images() if marks[r.id].strokes]
            marked_seeds = {r.id: project.store.seed_map(r.id) for r in marked}
            marked_paths = {r.id: project.image_path(r) for r in marked}
            boxed = {r.id: (project.image_path(r), r.width, marks[r.id].boxes) for r in project.store.images()
                     if marks[r.id].boxes}
            class_index = {c.id: c.index for c in project.store.classes()}
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
            if config.regularizer == "dense" and dense_weight is not None:
                config = replace(config, reg_weight=dense_weight)
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
                if figures is not None:
                    # spread over the split: data sets such as MSRC list their images grouped by class
                    spread = np.unique(np.linspace(0, len(test_ids) - 1, figure_images).round().astype(int))
                    shown = [test_ids[j] for j in spread]
                    prediction_figure([(load_image(ds.images[i], max_side=None).pixels, _predict(trainer, ds.images[i]),
                                        gt(i)) for i in shown], figures / f"{name}-{method}.png")
            finally:
                trainer.close()
            if method == "full":
                full_miou = test
            kind = config.supervision.split("-")[0]
            records.append({"bench": "quality", "dataset": name, "method": method, "marks": kind,
                            "marks_origin": origin.get(kind, "ground truth"),
                            "model": config.model, "regularizer": config.regularizer,
                            "reg_weight": config.effective_reg_weight,
                            "boxed_reg_factor": config.boxed_reg_factor if background is None else None,
                            "sigma_xy": config.sigma_xy,
                            "sigma_rgb": config.sigma_rgb, "lr": config.lr,
                            "new_layer_lr_mult": config.new_layer_lr_mult,
                            "balanced_pce": config.balanced_pce, "seed": config.seed, "steps": trainer.step,
                            "minutes": round(minutes, 2), "test_images": len(test_ids), "test_miou": round(test, 4),
                            "pct_of_full": round(100 * test / full_miou, 1) if full_miou else None,
                            "marked_images": len(marked), "marked_miou": round(on_marked, 4),
                            "device": str(trainer.device)})
            log(f"{name}: {method}: test mIoU {test * 100:.1f}, marked images {on_marked * 100:.1f} "
                f"({trainer.step} steps, {minutes:.1f} min)")
        cache = BaselineCache(work / name / "baselines.json")

        def scribble_baseline() -> float:
            conf = np.zeros((k, k), np.int64)
            for image_id, path in marked_paths.items():
                img = load_image(path, max_side=None)
                conf += confusion_matrix(grabcut_from_scribbles(img.pixels, marked_seeds[image_id], k),
                                         gt(path_to_id[path.resolve()]), k)
            return scores(conf).miou

        miou = cache.get("grabcut-scribbles", [(str(p), marked_seeds[i]) for i, p in marked_paths.items()],
                         scribble_baseline)
        records.append({"bench": "quality", "dataset": name, "method": "grabcut", "marks": "scribbles",
                        "marks_origin": origin["scribbles"], "marked_images": len(marked),
                        "marked_miou": round(miou, 4)})
        log(f"{name}: grabcut on marked images: {miou * 100:.1f}")
        if any(m.startswith("boxes") for m in methods) and boxed:
            # each boxed image's (class index, x0, y0, x1, y1) in stored-image pixels
            arrays = {i: np.array([[class_index[b.class_id], *b.xyxy] for b in boxes], np.float32)
                      for i, (_, _, boxes) in boxed.items()}

            def box_baseline() -> float:
                conf = np.zeros((k, k), np.int64)
                for image_id, (path, width, _) in boxed.items():
                    img = load_image(path, max_side=None)
                    arr = arrays[image_id].copy()
                    arr[:, 1:] *= img.pixels.shape[1] / width
                    proposal = grabcut_from_boxes(img.pixels, arr, k, background)
                    truth = gt(path_to_id[path.resolve()]).copy()
                    truth[proposal == UNLABELED] = UNLABELED  # outside every box with no background: no claim made
                    conf += confusion_matrix(proposal, truth, k)
                return scores(conf).miou

            miou = cache.get("grabcut-boxes", [(str(boxed[i][0]), a) for i, a in arrays.items()], box_baseline)
            records.append({"bench": "quality", "dataset": name, "method": "grabcut-boxes", "marks": "boxes",
                            "marks_origin": origin["boxes"], "boxed_images": len(boxed),
                            "boxed_miou": round(miou, 4)})
            log(f"{name}: grabcut proposals on boxed images: {miou * 100:.1f}")
    return records


class BaselineCache:
    """GrabCut baselines by a fingerprint of the marks they were computed from. They take minutes on full-size
    training images and do not depend on the network, so repeated benchmark runs on the same project (one
    method at a time, say) compute them once; changed marks change the fingerprint and recompute them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def get(self, name: str, inputs: list[tuple[str, np.ndarray]], compute: Callable[[], float]) -> float:
        digest = hashlib.sha256()
        for label, array in inputs:
            digest.update(label.encode())
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        key = f"{name}:{digest.hexdigest()}"
        if key not in self.entries:
            self.entries = {k: v for k, v in self.entries.items() if not k.startswith(f"{name}:")}
            self.entries[key] = compute()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(self.entries, indent=1))
            partial.replace(self.path)  # atomic: a bench running beside this one never reads half a file
        return self.entries[key]


def _predict(trainer: Trainer, path: Path) -> np.ndarray:
    img = load_image(path, max_side=trainer.config.working_size)
    return predict_full_size(trainer.model.eval(), img.pixels, img.original_size, trainer.device)


def _score(trainer: Trainer, paths: list[Path], gts: list[np.ndarray], k: int) -> float:
    conf = np.zeros((k, k), np.int64)
    for path, truth in zip(paths, gts):
        conf += confusion_matrix(_predict(trainer, path), truth, k)
    return scores(conf).miou
