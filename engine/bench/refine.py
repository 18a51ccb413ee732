"""``wsv bench refine``: which way of refining a marked image's mask works, measured on the networks that
``wsv bench quality`` trained (it saves them in its work folder) and the marks they were trained from.

Each variant changes one thing in engine.refine.segment.RefineSettings (or replaces the refinement with
OpenCV GrabCut from the same marks); every one is scored on the same marked images, as the data set's mIoU and
the mean object IoU per image, with its time per image.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.annotations.types import UNLABELED, background_index
from engine.baselines.grabcut import grabcut_from_boxes, grabcut_from_scribbles
from engine.bench.objects import is_object_set
from engine.bench.quality import METHODS, marked_images
from engine.bench.scoring import Tally
from engine.datasets.folder import DatasetFolder
from engine.io.images import load_image
from engine.models.registry import load_model
from engine.refine.masks import MaskMaker
from engine.refine.segment import RefineSettings

VARIANTS: dict[str, dict | None] = {
    "default": {},
    "network trusted fully (ε = 0)": {"network_error": 0.0},
    "network ignored (ε = 1): colour models started from it": {"network_error": 1.0},
    "no colour models": {"colour_weight": 0.0},
    "not kept connected to the marks": {"connected": False},
    "GrabCut's smoothing (γ = 50)": {"smoothness": 50.0},
    "one round": {"iterations": 1},
    "OpenCV GrabCut": None,
}
"""variant -> RefineSettings fields changed from the defaults (None: GrabCut from the same marks)"""


def run_refine(data_root: Path, datasets: list[str], methods: list[str], work: Path, seed: int = 0,
               log: Callable[[str], None] = print) -> list[dict]:
    """One record per (data set, method, variant), for the models ``wsv bench quality --work WORK --seed SEED``
    saved."""
    records = []
    for name in datasets:
        ds = DatasetFolder.open(work / name / "dataset" if is_object_set(name) else data_root / name)
        k, background = len(ds.classes), background_index(ds.classes)
        path_to_id = {p.resolve(): i for i, p in ds.images.items()}
        marked = marked_images(work / name / "project", k)
        for method in methods:
            model_dir = work / name / "models" / f"{method}-seed{seed}"
            if not (model_dir / "model.safetensors").is_file():
                raise ValueError(f"no model in {model_dir}: run wsv bench quality --datasets {name} --methods "
                                 f"{method} --seed {seed} --work {work} first")
            kind = "boxes" if METHODS[method]["supervision"].startswith("boxes") else "scribbles"
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            model, config = load_model(model_dir, device)
            for variant, change in VARIANTS.items():
                tally, seconds = Tally(k, background), []
                maker = None if change is None else MaskMaker(model, ds.classes, config.working_size, device,
                                                              settings=replace(RefineSettings(), **change))
                for path, marks in marked[kind].values():
                    truth_size = load_image(path, max_side=None)
                    truth = ds.mask(path_to_id[path.resolve()], truth_size.original_size)
                    t0 = time.monotonic()
                    if maker is not None:
                        mask = maker(path.name, path, marks)
                    elif kind == "boxes":
                        mask = grabcut_from_boxes(truth_size.pixels, marks.boxes, k, background)
                    else:
                        mask = grabcut_from_scribbles(truth_size.pixels, marks.seeds, k)
                    seconds.append(time.monotonic() - t0)
                    if (mask == UNLABELED).any():  # GrabCut's boxes with no background: no claim outside them
                        truth = np.where(mask == UNLABELED, UNLABELED, truth).astype(np.uint8)
                    tally.add(mask, truth)
                records.append({"bench": "refine", "dataset": name, "method": method, "seed": seed, "marks": kind,
                                "variant": variant, "images": len(seconds), **{f"marked_{key}": value for key, value
                                                                               in tally.as_dict().items()},
                                "seconds_per_image": round(float(np.mean(seconds)), 3)})
                log(f"{name}: {method}: {variant}: {tally.miou * 100:.1f} mIoU, "
                    f"{(tally.image_iou or 0) * 100:.1f} per image")
    return records
