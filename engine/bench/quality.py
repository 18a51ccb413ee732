"""``wsv bench quality``: how close weak supervision gets to full supervision on real data, and how good the
masks of the images people marked are.

For each data set, the train split is imported with its scribbles (real ones for ACDC; simulated for data sets
without), and with object boxes and image tags derived from its masks where it has none. Networks are trained
with full masks, pCE alone or with a regularizer on the scribbles; on the boxes with the naive GrabCut
proposals as fake masks, with the box losses (background outside boxes where the data set has a background
class, the confident part of GrabCut's answer as seeds inside them, tightness prior, consistency) and with the box
losses + a regularizer; and on the tags — all under the same budget. Each is scored on the held-out test split
(images nobody marked), and on the images its marks are on: the network's masks, and the masks refined with each
image's own marks (engine.refine), against OpenCV GrabCut from the same marks, the classic per-image tool.

Every score is given both as the data set's mIoU and as the mean over images of each image's object IoU
(engine.metrics.image_object_iou): the second weighs every marked image the same, as the user who marked them
does. The object sets (engine.bench.objects: one different object per photo, people-like strokes) are built
from their source data sets into the work folder.
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

from engine.annotations.types import UNLABELED, background_index
from engine.baselines.grabcut import grabcut_from_boxes, grabcut_from_scribbles
from engine.bench.figures import prediction_figure
from engine.bench.objects import build_object_set, is_object_set
from engine.bench.scoring import Tally
from engine.datasets.folder import DatasetFolder
from engine.datasets.importer import ScribbleSimulation, import_dataset
from engine.io.images import load_image
from engine.project import Project
from engine.refine.masks import MaskMaker, Marks
from engine.refine.segment import RefineSettings
from engine.training.config import REGULARIZERS, TrainConfig
from engine.training.regularizers import REGULARIZERS as REGULARIZERS_TABLE
from engine.training.trainer import Trainer

METHODS = {"full": dict(supervision="full", regularizer="none"),
           "boxes-grabcut": dict(supervision="boxes-grabcut", regularizer="none")}
for _marks, _supervision in (("pce", "scribbles"), ("boxes", "boxes"), ("tags", "tags")):
    METHODS[_marks] = dict(supervision=_supervision, regularizer="none")
    METHODS.update({f"{_marks}+{reg}": dict(supervision=_supervision, regularizer=reg)
                    for reg in REGULARIZERS if reg != "none"})
"""method name -> TrainConfig fields: full masks, the GrabCut-proposal baseline, and each kind of mark alone
(pce, boxes, tags) or with each regularizer (pce+dense, boxes+colour, ...)"""


class ImportMismatch(ValueError):
    """The work folder holds a project imported with other simulation settings than asked for."""


def run_quality(data_root: Path, datasets: Iterable[str], methods: Iterable[str], base: TrainConfig, work: Path,
                log: Callable[[str], None] = print, simulation: ScribbleSimulation = ScribbleSimulation(),
                figures: Path | None = None, figure_images: int = 4, dense_weight: float | None = None,
                refine: RefineSettings = RefineSettings()) -> list[dict]:
    """One record per (data set, method), plus the GrabCut baselines. With ``figures``, each method also writes
    ``DATASET-METHOD.png``: its predictions on ``figure_images`` test images spread over the split, next to the
    truth (and ``DATASET-METHOD-refined.png``: refined masks of marked images). ``dense_weight`` replaces the
    dense CRF loss's default weight in the methods that use it. ``simulation`` draws the scribbles of data sets
    that have none. Data sets named in engine.bench.objects.OBJECT_SETS are built from their source first."""
    records: list[dict] = []
    for name in datasets:
        ds = build_object_set(data_root, name, work / name / "dataset", ScribbleSimulation(style="people")) \
            if is_object_set(name) else DatasetFolder.open(data_root / name)
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
        origin = {"scribbles": "real" if ds.has("scribbles") and not is_object_set(name)
                  else "simulated (people-like strokes)" if is_object_set(name)
                  else f"simulated ({simulation.describe()})",
                  "boxes": "real" if ds.has("boxes") and not is_object_set(name) else "from masks",
                  "tags": "real" if ds.has("tags") else "from masks"}
        k = len(ds.classes)
        marked = marked_images(project_root, k)
        test_ids = ds.ids("test")
        gt_cache: dict[str, np.ndarray] = {}

        def gt(image_id: str) -> np.ndarray:
            if image_id not in gt_cache:
                img_size = load_image(ds.images[image_id], max_side=None).original_size
                gt_cache[image_id] = ds.mask(image_id, img_size)
            return gt_cache[image_id]

        path_to_id = {p.resolve(): i for i, p in ds.images.items()}

        def truth(path: Path) -> np.ndarray:
            return gt(path_to_id[path.resolve()])

        full_miou = None
        for method in methods:
            config = replace(base, **METHODS[method])
            if config.regularizer == "dense" and dense_weight is not None:
                config = replace(config, reg_weight=dense_weight)
            kind = config.supervision.split("-")[0]
            # the images this method's marks are on, each with those marks alone
            own = {i: m for i, m in marked[_KIND_MARKS.get(kind, "scribbles")].items()}
            log(f"{name}: training {method} ({config.model}, up to {config.steps} steps"
                f"{f' / {config.max_minutes} min' if config.max_minutes else ''})")
            t0 = time.monotonic()
            trainer = Trainer(project_root, config)
            try:
                for rec in trainer.run():
                    pass
                minutes = (time.monotonic() - t0) / 60
                model_dir = work / name / "models" / f"{method}-seed{config.seed}"
                trainer.save(model_dir)  # for wsv bench refine
                test, raw, refined = Tally(k, background), Tally(k, background), Tally(k, background)
                maker = MaskMaker(trainer.model, ds.classes, config.working_size, trainer.device, settings=refine)
                for i in test_ids:
                    test.add(maker(i, ds.images[i], None), gt(i))
                refine_s, shown = [], []
                for path, marks in own.values():
                    raw.add(maker(path.name, path, None), truth(path))
                    if kind != "full":
                        t1 = time.monotonic()
                        mask = maker(path.name, path, marks)
                        refine_s.append(time.monotonic() - t1)
                        refined.add(mask, truth(path))
                        if figures is not None and len(shown) < figure_images:
                            shown.append((load_image(path, max_side=None).pixels, mask, truth(path)))
                if figures is not None:
                    _figures(maker, ds, test_ids, figure_images, gt, figures / f"{name}-{method}.png")
                    if shown:
                        prediction_figure(shown, figures / f"{name}-{method}-refined.png")
            finally:
                trainer.close()
            if method == "full":
                full_miou = test.miou
            records.append({"bench": "quality", "dataset": name, "method": method, "marks": kind,
                            "marks_origin": origin.get(kind, "ground truth"),
                            "model": config.model, "regularizer": config.regularizer,
                            "reg_weight": config.effective_reg_weight,
                            "colour_weight": config.colour_weight if REGULARIZERS_TABLE[config.regularizer].pairwise
                            and any(not trainer.source.image(i)[1] for i, _ in trainer.index.keys) else None,
                            "boxed_reg_factor": config.boxed_reg_factor if background is None else None,
                            "sigma_xy": config.sigma_xy,
                            "sigma_rgb": config.sigma_rgb, "lr": config.lr,
                            "new_layer_lr_mult": config.new_layer_lr_mult,
                            "balanced_pce": config.balanced_pce, "seed": config.seed, "steps": trainer.step,
                            "minutes": round(minutes, 2), "test_images": len(test_ids),
                            "test_miou": round(test.miou, 4) if test_ids else None,
                            "test_image_iou": _round(test.image_iou),
                            "pct_of_full": round(100 * test.miou / full_miou, 1) if full_miou and test_ids else None,
                            "marked_images": len(own), "marked_miou": round(raw.miou, 4) if own else None,
                            "marked_image_iou": _round(raw.image_iou),
                            "refined_miou": round(refined.miou, 4) if refine_s else None,
                            "refined_image_iou": _round(refined.image_iou),
                            "refine_seconds": round(float(np.mean(refine_s)), 3) if refine_s else None,
                            "device": str(trainer.device), "model_dir": str(model_dir)})
            log(f"{name}: {method}: test mIoU {test.miou * 100:.1f}; on its {len(own)} marked images: network "
                f"{raw.miou * 100:.1f} mIoU / {_pct(raw.image_iou)} per image, refined {refined.miou * 100:.1f} / "
                f"{_pct(refined.image_iou)} ({trainer.step} steps, {minutes:.1f} min)")
        cache = BaselineCache(work / name / "baselines.json")
        scribbled = marked["scribbles"]

        def scribble_baseline() -> dict:
            tally = Tally(k, background)
            for path, marks in scribbled.values():
                img = load_image(path, max_side=None)
                tally.add(grabcut_from_scribbles(img.pixels, marks.seeds, k), truth(path))
            return tally.as_dict()

        if scribbled:
            result = cache.get("grabcut-scribbles-2", [(str(p), m.seeds) for p, m in scribbled.values()],
                               scribble_baseline)
            records.append({"bench": "quality", "dataset": name, "method": "grabcut", "marks": "scribbles",
                            "marks_origin": origin["scribbles"], "marked_images": len(scribbled),
                            "marked_miou": result["miou"], "marked_image_iou": result["image_iou"]})
            log(f"{name}: grabcut on scribbled images: {result['miou'] * 100:.1f} mIoU / "
                f"{_pct(result['image_iou'])} per image")
        boxed = marked["boxes"]
        if any(m.startswith("boxes") for m in methods) and boxed:
            def box_baseline() -> dict:
                tally = Tally(k, background)
                for path, marks in boxed.values():
                    img = load_image(path, max_side=None)
                    boxes = marks.scaled((img.pixels.shape[1], img.pixels.shape[0])).boxes
                    proposal = grabcut_from_boxes(img.pixels, boxes, k, background)
                    answer = truth(path).copy()
                    answer[proposal == UNLABELED] = UNLABELED  # outside every box with no background: no claim made
                    tally.add(proposal, answer)
                return tally.as_dict()

            result = cache.get("grabcut-boxes-2", [(str(p), m.boxes) for p, m in boxed.values()], box_baseline)
            records.append({"bench": "quality", "dataset": name, "method": "grabcut-boxes", "marks": "boxes",
                            "marks_origin": origin["boxes"], "boxed_images": len(boxed),
                            "boxed_miou": result["miou"], "boxed_image_iou": result["image_iou"]})
            log(f"{name}: grabcut proposals on boxed images: {result['miou'] * 100:.1f} mIoU / "
                f"{_pct(result['image_iou'])} per image")
    return records


_KIND_MARKS = {"full": "scribbles", "scribbles": "scribbles", "boxes": "boxes", "tags": "tags"}
"""which marks a method's refined masks use: its own kind (full masks are scored on the scribbled images)"""


def marked_images(project_root: Path, k: int) -> dict[str, dict[int, tuple[Path, Marks]]]:
    """Per kind of mark (scribbles, boxes, tags), the images that carry it: (path, those marks alone at full
    size)."""
    out: dict[str, dict[int, tuple[Path, Marks]]] = {"scribbles": {}, "boxes": {}, "tags": {}}
    with Project.open(project_root) as project:
        store = project.store
        index = {c.id: c.index for c in store.classes()}
        for rec in store.images():
            marks, size, path = store.marks(rec.id), (rec.width, rec.height), project.image_path(rec)
            if marks.strokes:
                out["scribbles"][rec.id] = (path, Marks(size, seeds=store.seed_map(rec.id)))
            if marks.boxes:
                boxes = np.array([[index[b.class_id], *b.xyxy] for b in marks.boxes], np.float32)
                out["boxes"][rec.id] = (path, Marks(size, boxes=boxes))
            if marks.tags is not None:
                present = np.zeros(k, bool)
                present[[index[c] for c in marks.tags.class_ids]] = True
                out["tags"][rec.id] = (path, Marks(size, present=present))
    return out


def _figures(maker: MaskMaker, ds: DatasetFolder, test_ids: list[str], count: int, gt, path: Path) -> None:
    # spread over the split: data sets such as MSRC list their images grouped by class
    spread = np.unique(np.linspace(0, len(test_ids) - 1, count).round().astype(int)) if test_ids else []
    shown = [test_ids[j] for j in spread]
    prediction_figure([(load_image(ds.images[i], max_side=None).pixels, maker(i, ds.images[i], None), gt(i))
                       for i in shown], path)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


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

    def get(self, name: str, inputs: list[tuple[str, np.ndarray]], compute: Callable[[], dict]) -> dict:
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
