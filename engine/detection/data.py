"""What detectors learn from: the project's boxed images at working resolution, kept in step with the store,
split deterministically into training and held-out images, and augmented batches drawn from them.

An image without boxes teaches nothing by default, since it may simply not have been annotated yet; once the
user marks it "done" it becomes a negative (nothing to find here). Labels are the project's class indices; boxes
of the class named background are left out (engine.detection.labels.object_classes).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.annotations.store import AnnotationStore
from engine.annotations.types import ImageRecord
from engine.detection.labels import object_classes
from engine.io.images import ImageLoadError
from engine.project import Project

DONE_KEY = "detection_done"
"""project setting: JSON list of the ids of images whose boxes are complete (no box = no object)"""


def done_image_ids(store: AnnotationStore) -> set[int]:
    raw = store.get_setting(DONE_KEY)
    if not raw:
        return set()
    try:
        return {int(i) for i in json.loads(raw)}
    except (json.JSONDecodeError, TypeError, ValueError):
        return set()  # a hand-edited, broken setting must not stop training; the user can mark images again


def set_images_done(store: AnnotationStore, image_ids: Iterable[int], done: bool = True) -> None:
    """Mark (or unmark) images' boxes as complete, so that those without boxes count as negatives."""
    ids = done_image_ids(store)
    changed = set(image_ids)
    ids = ids | changed if done else ids - changed
    store.set_setting(DONE_KEY, json.dumps(sorted(ids)))


EXACT_SPLIT_BELOW = 50
"""Below this many images the held-out share is exact (a random 20 % of 8 images could be 4 of them); from here on
each image's side is fixed by its own hash, so adding images moves nobody."""


def _hash_position(rec: ImageRecord, seed: int) -> float:
    """Where an image falls in [0, 1) for a random split: from its content hash alone, so an image keeps its side
    as images are added or removed, and duplicates of one picture never end up on both sides."""
    digest = hashlib.sha256(f"{seed}:{rec.sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def is_held_out(rec: ImageRecord, fraction: float, seed: int) -> bool:
    """Whether an image belongs to the held-out set under a random split of ``fraction`` (of a large set)."""
    return _hash_position(rec, seed) < fraction


def held_out_ids(records: list[ImageRecord], fraction: float, seed: int) -> set[int]:
    """The images set aside for evaluation: those whose split is 'test' where the project has any, else a
    deterministic ``fraction`` of them — exactly round(fraction · n) of a small set (the images lowest in hash
    order, at least one image left to train on), each image by its own hash in a large one (see is_held_out)."""
    if any(r.split == "test" for r in records):
        return {r.id for r in records if r.split == "test"}
    if len(records) < EXACT_SPLIT_BELOW:
        ranked = sorted(records, key=lambda r: (_hash_position(r, seed), r.id))
        count = min(round(fraction * len(records)), len(records) - 1)
        return {r.id for r in ranked[:max(count, 0)]}
    return {r.id for r in records if is_held_out(r, fraction, seed)}


@dataclass(frozen=True, eq=False)
class DetectionSample:
    image_id: int
    image: np.ndarray
    """(H, W, 3) uint8 RGB at working resolution"""
    boxes: np.ndarray
    """(M, 4) float32 xyxy in working-resolution pixels"""
    labels: np.ndarray
    """(M,) int64 class index, never the background's"""
    scale: float
    """working width / original width"""


class DetectionSet:
    """The project's images that teach a detector, re-read only where their boxes or "done" state changed."""

    def __init__(self, project: Project, working_size: int, holdout_fraction: float = 0.2, holdout_seed: int = 0) -> None:
        self.project = project
        self.working_size = working_size
        self.holdout_fraction = holdout_fraction
        self.holdout_seed = holdout_seed
        self.samples: dict[int, DetectionSample] = {}
        """training images"""
        self.heldout: dict[int, DetectionSample] = {}
        """annotated images set aside for evaluation"""
        self.errors: list[str] = []
        self._background_boxes: dict[int, int] = {}
        self._images: dict[int, tuple[np.ndarray, float]] = {}
        self._state: dict[int, tuple] = {}

    def load_image(self, image_id: int) -> tuple[np.ndarray, float]:
        """The image at working size and its scale (cached); raises ImageLoadError."""
        if image_id not in self._images:
            img = self.project.load_image(self.project.store.image(image_id), max_side=self.working_size)
            self._images[image_id] = (img.pixels, img.scale)
        return self._images[image_id]

    def refresh(self) -> int:
        """Re-read images whose boxes, done state or class order changed; returns how many changed."""
        store = self.project.store
        with store.read():
            records = store.images()
            counts = store.mark_counts()
            revisions = store.marks_revisions()
            done = done_image_ids(store)
            classes = store.classes()
        index = {c.id: c.index for c in classes}
        objects = set(object_classes([c.name for c in classes]))
        wanted = {r.id for r in records if counts[r.id].boxes or r.id in done}
        held = held_out_ids([r for r in records if r.id in wanted], self.holdout_fraction, self.holdout_seed)
        order = tuple((c.id, c.index, c.index in objects) for c in classes)
        current = {i: (revisions[i], i in done, order) for i in wanted}
        for image_id in set(self._state) - set(current):
            self._forget(image_id)
        changed = [i for i in sorted(current) if self._state.get(i) != current[i]]
        for image_id in changed:
            self._state[image_id] = current[image_id]
            self._forget_sample(image_id)
            try:
                image, scale = self.load_image(image_id)
            except ImageLoadError as exc:
                self.errors.append(str(exc))
                continue
            sample = self._sample(image_id, image, scale, index, objects)
            if len(sample.labels) or image_id in done:
                self.samples[image_id] = sample
        for image_id in list(self.samples) + list(self.heldout):  # the split may move when 'test' splits appear
            sample = self.samples.pop(image_id, None) or self.heldout.pop(image_id)
            (self.heldout if image_id in held else self.samples)[image_id] = sample
        return len(changed)

    def _sample(self, image_id: int, image: np.ndarray, scale: float, index: dict[int, int], objects: set[int]
                ) -> DetectionSample:
        self._background_boxes.pop(image_id, None)
        boxes, labels = [], []
        for b in self.project.store.boxes(image_id):
            k = index[b.class_id]
            if k not in objects:
                self._background_boxes[image_id] = self._background_boxes.get(image_id, 0) + 1
                continue
            boxes.append(b.xyxy)
            labels.append(k)
        h, w = image.shape[:2]
        xyxy = np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32(scale)
        xyxy = np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32)
        return DetectionSample(image_id, image, xyxy, np.asarray(labels, np.int64), scale)

    def _forget_sample(self, image_id: int) -> None:
        self.samples.pop(image_id, None)
        self.heldout.pop(image_id, None)

    def _forget(self, image_id: int) -> None:
        self._forget_sample(image_id)
        self._state.pop(image_id, None)
        self._background_boxes.pop(image_id, None)

    @property
    def background_boxes(self) -> int:
        """Boxes drawn with the background class: left out, since the background is what no box covers."""
        return sum(self._background_boxes.values())

    @property
    def box_count(self) -> int:
        return sum(len(s.labels) for s in self.samples.values())

    @property
    def negative_count(self) -> int:
        return sum(not len(s.labels) for s in self.samples.values())


class DetectionSampler:
    """Random training images, flipped and scale-jittered at a fixed canvas size (zooming in crops the edges,
    zooming out pads), so objects appear at sizes the detector's own resize to ``min_size`` does not undo.
    Draws from torch's global RNG: the trainer swaps in its own RNG state around each step."""

    def __init__(self, seed: int, scale_range: tuple[float, float] = (0.75, 1.33)) -> None:
        self.rng = np.random.default_rng(seed)
        self.geometric = v2.Compose([
            v2.RandomHorizontalFlip(),
            v2.RandomAffine(degrees=0.0, scale=scale_range, fill=114),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(min_size=2),
        ])
        self.photometric = v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)

    def batch(self, samples: list[DetectionSample], batch_size: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        """Images as (3, H, W) float in 0..1, and targets {'boxes': (M, 4) float, 'labels': (M,) int64}."""
        images, targets = [], []
        for i in self.rng.integers(0, len(samples), batch_size):
            s = samples[int(i)]
            h, w = s.image.shape[:2]
            out = self.geometric({
                "image": tv_tensors.Image(torch.from_numpy(s.image).permute(2, 0, 1)),
                "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(s.boxes), format="XYXY", canvas_size=(h, w)),
                "labels": torch.from_numpy(s.labels),
            })
            images.append(self.photometric(out["image"]).float() / 255.0)
            targets.append({"boxes": out["boxes"].as_subclass(torch.Tensor).float().reshape(-1, 4),
                            "labels": out["labels"].long()})
        return images, targets
