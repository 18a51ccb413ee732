"""What each image teaches, given the supervision chosen: seeds for the partial cross-entropy, boxes for the
box losses, tags for the tag losses — all at working resolution.

* full: the ground-truth mask (the upper bound benchmarks compare against);
* scribbles: the strokes;
* boxes: pixels outside every box are background seeds; inside each box, the confident part of GrabCut's answer
  (engine.baselines.grabcut.grabcut_box_seeds: its background away from its foreground, its foreground in the
  box's centre) seeds background and the box's class, the rest of the box is left to the box losses and the CRF
  loss. In a project with no class named background (engine.annotations.types.background_index) every class
  is boxed: nothing outside the boxes and no GrabCut background is seeded, only the boxes' confident centres;
* boxes-grabcut: the naive baseline — GrabCut inside each box makes a fake full mask, trained as if true;
* tags: the classes present;
* marks: whatever marks each image has (strokes, boxes, tags together): what the app trains on.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.annotations.store import AnnotationStore
from engine.annotations.types import UNLABELED, background_index
from engine.baselines.grabcut import grabcut_box_seeds, grabcut_from_boxes

SUPERVISION = ("full", "scribbles", "boxes", "boxes-grabcut", "tags", "marks")


@dataclass
class Sample:
    image_id: int
    image: np.ndarray
    """(H, W, 3) uint8 at working size"""
    gray: bool
    seeds: np.ndarray
    """(H, W) uint8 class index per pixel, UNLABELED where the pCE has nothing to say"""
    boxes: np.ndarray
    """(M, 5) float32 (class index, x0, y0, x1, y1) in working-size pixels"""
    present: np.ndarray | None
    """(K,) bool tags, None where the image is untagged"""
    drawn: np.ndarray | None = None
    """(H, W) bool: which seeds the user drew (strokes) rather than ones derived from masks or boxes; None: none"""

    @property
    def teaches(self) -> bool:
        return bool((self.seeds != UNLABELED).any() or len(self.boxes) or self.present is not None)

    def arrays(self) -> list[np.ndarray]:
        """Every array the sample holds (to count its memory)."""
        return [a for a in (self.image, self.seeds, self.boxes, self.present, self.drawn) if a is not None]

    @property
    def kinds(self) -> set[str]:
        """Which kinds of supervision this image contributes (shown in the GUI's image list)."""
        out = set()
        if (self.seeds != UNLABELED).any():
            out.add("seeds")
        if len(self.boxes):
            out.add("boxes")
        if self.present is not None:
            out.add("tags")
        return out


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (rows, cols): labels are never interpolated."""
    if labels.shape == shape:
        return labels
    return cv2.resize(labels, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


MARKS_READ = {"scribbles": ("strokes",), "boxes": ("boxes",), "boxes-grabcut": ("boxes",), "tags": ("tagged",),
              "marks": ("strokes", "boxes", "tagged")}
"""Which of an image's marks (AnnotationStore.mark_counts) each supervision but "full" learns from: what
``build_sample`` reads, so an image without any of them teaches nothing."""


def _grabcut_cached(folder: Path | None, name: str, image_id: int, key: bytes, compute) -> np.ndarray:
    """``compute()``, a GrabCut label map, kept in ``folder`` as ``{name}-{image id}-{digest of key}.png``: GrabCut
    takes about a second per image, and a streamed training set meets each image again and again. The digest
    covers everything the answer depends on, so a changed box, image or class list never reads a stale map;
    an image's older maps are removed when a new one is written. Where the folder cannot be written, the map is
    recomputed each time."""
    if folder is None:
        return compute()
    path = folder / f"{name}-{image_id}-{hashlib.sha1(key).hexdigest()[:20]}.png"
    cached = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if cached is not None:
        return cached
    labels = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{name}-{image_id}-*.png"):
            old.unlink(missing_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.png")
        if cv2.imwrite(str(partial), labels):
            os.replace(partial, path)
    except OSError:
        pass
    return labels


def build_sample(store: AnnotationStore, image_id: int, image: np.ndarray, gray: bool, supervision: str,
                 grabcut_cache: Path | None = None) -> Sample:
    """The targets of one image at the working size of ``image``; ``grabcut_cache``: a folder that keeps the
    GrabCut maps of boxed images between calls and runs."""
    h, w = image.shape[:2]
    rec = store.image(image_id)
    scale = w / rec.width
    classes = store.classes()
    index = {c.id: c.index for c in classes}
    background = background_index([c.name for c in classes])
    seeds = np.full((h, w), UNLABELED, np.uint8)
    boxes = np.zeros((0, 5), np.float32)
    present = None
    if supervision == "full":
        gt = store.ground_truth(image_id)
        if gt is not None:
            seeds = resize_labels(gt, (h, w))
        return Sample(image_id, image, gray, seeds, boxes, present)
    marks = store.marks(image_id)
    drawn = None
    if "strokes" in MARKS_READ[supervision] and marks.strokes:
        seeds = store.seed_map(image_id, (h, w))
        drawn = seeds != UNLABELED
    if "boxes" in MARKS_READ[supervision] and marks.boxes:
        boxes = np.array([[index[b.class_id], b.x0 * scale, b.y0 * scale, b.x1 * scale, b.y1 * scale]
                          for b in marks.boxes], np.float32)
        key = repr((rec.sha256, image.shape, background, len(classes))).encode() + boxes.tobytes()
        if supervision == "boxes-grabcut":
            seeds = _grabcut_cached(grabcut_cache, "proposal", image_id, key,
                                    lambda: grabcut_from_boxes(image, boxes, len(classes), background))
            boxes = np.zeros((0, 5), np.float32)
        else:
            core = _grabcut_cached(grabcut_cache, "seeds", image_id, key,
                                   lambda: grabcut_box_seeds(image, boxes, background))
            free = (core != UNLABELED) & (seeds == UNLABELED)  # the user's strokes win over GrabCut
            seeds[free] = core[free]
            if background is not None:
                outside = np.ones((h, w), bool)
                for _, x0, y0, x1, y1 in boxes:
                    outside[max(0, round(y0)):round(y1), max(0, round(x0)):round(x1)] = False
                seeds[outside & (seeds == UNLABELED)] = background
    if "tagged" in MARKS_READ[supervision] and marks.tags is not None:
        present = np.zeros(len(classes), bool)
        present[[index[k] for k in marks.tags.class_ids]] = True
    return Sample(image_id, image, gray, seeds, boxes, present, drawn)
