"""Masks for export and prediction: refined with its own marks for an image someone marked, the network's
answer for the others. One code path for ``wsv predict`` on a dataset folder or a project, the GUI's Export
Masks and the live overlay, so that what the user sees is what they export.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.annotations.store import AnnotationStore
from engine.annotations.types import UNLABELED, ImageRecord, background_index
from engine.datasets.exporter import image_ids
from engine.datasets.folder import DatasetFolder
from engine.io.images import ImageLoadError, load_image
from engine.project import Project
from engine.refine.segment import RefineSettings, refine_labels

REFINED, NETWORK = "refined", "network"
"""how a mask was made, as ``masks.json`` records it"""


@dataclass
class Marks:
    """One image's marks at its full (width, height): what the refinement honours."""

    size: tuple[int, int]
    seeds: np.ndarray | None = None
    """(H, W) class index on stroke pixels, UNLABELED elsewhere"""
    boxes: np.ndarray | None = None
    """(M, 5) float32 (class, x0, y0, x1, y1) in pixels"""
    present: np.ndarray | None = None
    """(K,) bool tags"""

    @property
    def any(self) -> bool:
        return bool((self.seeds is not None and (self.seeds != UNLABELED).any())
                    or (self.boxes is not None and len(self.boxes)) or self.present is not None)

    def scaled(self, size: tuple[int, int]) -> "Marks":
        """The marks at another (width, height) of the same image: strokes resized by nearest neighbour."""
        if size == self.size:
            return self
        sx, sy = size[0] / self.size[0], size[1] / self.size[1]
        seeds = None if self.seeds is None else cv2.resize(self.seeds, size, interpolation=cv2.INTER_NEAREST)
        boxes = None if self.boxes is None else self.boxes * np.float32([1, sx, sy, sx, sy])
        return Marks(size, seeds, boxes, self.present)


BAND_VALUES = 1 << 24
"""Logits upsampled at once when a mask is made at full size: a 30000 x 30000 scan goes through in bands of
rows, in bounded memory, instead of as one K x H x W array."""


def predict_full_size(model: torch.nn.Module, pixels: np.ndarray, original_size: tuple[int, int],
                      device: torch.device) -> np.ndarray:
    """Class index per pixel at the image's original (width, height), from a working-size image: logits are
    upsampled bilinearly before the argmax (so boundaries stay smooth at full resolution), a band of rows at a
    time; sampling at each output pixel's centre is what ``F.interpolate(..., align_corners=False)`` does."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float().to(device)
    with torch.no_grad():
        logits = model(x).float()
        w, h = original_size
        if (h, w) == tuple(logits.shape[-2:]):
            return logits[0].argmax(0).to(torch.uint8).cpu().numpy()
        out = np.empty((h, w), np.uint8)
        gx = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * (2 / w) - 1
        band = max(1, BAND_VALUES // (w * logits.shape[1]))
        for r0 in range(0, h, band):
            r1 = min(h, r0 + band)
            gy = (torch.arange(r0, r1, device=device, dtype=torch.float32) + 0.5) * (2 / h) - 1
            grid = torch.stack((gx.expand(r1 - r0, w), gy[:, None].expand(r1 - r0, w)), -1)[None]
            part = F.grid_sample(logits, grid, mode="bilinear", padding_mode="border", align_corners=False)
            out[r0:r1] = part[0].argmax(0).to(torch.uint8).cpu().numpy()
        return out


def refine_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """(width, height) at most ``max_pixels`` in area, the image's aspect kept, never larger than ``size``."""
    w, h = size
    scale = min(1.0, (max_pixels / (w * h)) ** 0.5)
    return max(1, round(w * scale)), max(1, round(h * scale))


@torch.no_grad()
def network_probabilities(model: torch.nn.Module, pixels: np.ndarray, size: tuple[int, int],
                          device: torch.device) -> np.ndarray:
    """(K, H, W) float32 softmax probabilities at (width, height) ``size`` for a working-size (h, w, 3) uint8
    image, logits upsampled bilinearly before the softmax."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float().to(device)
    logits = model(x).float()
    if (size[1], size[0]) != tuple(logits.shape[-2:]):
        logits = F.interpolate(logits, size=(size[1], size[0]), mode="bilinear", align_corners=False)
    return torch.softmax(logits, 1)[0].cpu().numpy()


def marked_mask(model: torch.nn.Module, device: torch.device, working: np.ndarray, image: np.ndarray,
                marks: Marks, background: int | None, settings: RefineSettings = RefineSettings()) -> np.ndarray:
    """The refined (H, W) uint8 mask at the marks' full size for a marked image: ``working`` is the image at
    the network's working size, ``image`` the same image at any size up to full (refinement runs at most at
    ``settings.max_pixels``); strokes hold at full size whatever the refinement size."""
    size = refine_size(marks.size, settings.max_pixels)
    if (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
    probs = network_probabilities(model, working, size, device)
    small = marks.scaled(size)
    labels = refine_labels(image, probs, seeds=small.seeds, boxes=small.boxes, present=small.present,
                           background=background, settings=settings)
    if size != marks.size:
        labels = cv2.resize(labels, marks.size, interpolation=cv2.INTER_NEAREST)
    if marks.seeds is not None:
        marked = marks.seeds != UNLABELED
        labels[marked] = marks.seeds[marked]
    return labels


class MaskMaker:
    """Masks at each image's full size from a trained model: refined with the image's marks where it has any
    (and ``refine``), the network's answer otherwise. ``kinds`` records which each mask was, by the name it
    was asked for, for ``masks.json``. Raises ImageLoadError for an unreadable image and ValueError for marks
    that do not fit it."""

    def __init__(self, model: torch.nn.Module, classes: list[str], working_size: int, device: torch.device,
                 refine: bool = True, settings: RefineSettings = RefineSettings()) -> None:
        self.model, self.working_size, self.device = model.eval(), working_size, device
        self.background = background_index(classes)
        self.refine, self.settings = refine, settings
        self.kinds: dict[str, str] = {}

    def __call__(self, name: str, path: Path, marks: Marks | None) -> np.ndarray:
        working = load_image(path, max_side=self.working_size)
        if self.refine and marks is not None and marks.any:
            if marks.size != working.original_size:
                raise ValueError(f"{path}: its marks are for a {marks.size[0]}x{marks.size[1]} image, the image is "
                                 f"{working.original_size[0]}x{working.original_size[1]}")
            image = load_image(path, max_side=max(refine_size(marks.size, self.settings.max_pixels)))
            pixels = image.pixels[..., :1] if image.is_gray else image.pixels
            labels = marked_mask(self.model, self.device, working.pixels, pixels, marks, self.background,
                                 self.settings)
            self.kinds[name] = REFINED
        else:
            labels = predict_full_size(self.model, working.pixels, working.original_size, self.device)
            self.kinds[name] = NETWORK
        return labels

    def record(self, source: str) -> dict:
        """What ``masks.json`` holds: how each mask was made, and with which settings."""
        return {"source": source, "refinement": dataclasses.asdict(self.settings) if self.refine else None,
                "masks": dict(self.kinds)}


def project_masks(maker: MaskMaker, project: Project) -> Callable[[ImageRecord], np.ndarray | None]:
    """Each of a project's images' mask from ``maker`` (refined with its marks where it has any), None for an
    image that cannot be read: the mask source of an export (engine.datasets.exporter, engine.formats)."""
    store = project.store
    stems = image_ids(store.images())

    def mask(rec: ImageRecord) -> np.ndarray | None:
        try:
            return maker(stems[rec.id], project.image_path(rec), store_marks(store, rec))
        except (ImageLoadError, ValueError):
            return None

    return mask


def store_marks(store: AnnotationStore, rec: ImageRecord, size: tuple[int, int] | None = None) -> Marks:
    """An image's marks in a project, at its full size or at (width, height) ``size`` (strokes rasterized
    there, boxes scaled)."""
    size = (rec.width, rec.height) if size is None else size
    classes = store.classes()
    index = {c.id: c.index for c in classes}
    marks = store.marks(rec.id)
    seeds = store.seed_map(rec.id, (size[1], size[0])) if marks.strokes else None
    boxes = None
    if marks.boxes:
        sx, sy = size[0] / rec.width, size[1] / rec.height
        boxes = np.array([[index[b.class_id], *b.xyxy] for b in marks.boxes], np.float32) * np.float32([1, sx, sy, sx, sy])
    present = None
    if marks.tags is not None:
        present = np.zeros(len(classes), bool)
        present[[index[c] for c in marks.tags.class_ids]] = True
    return Marks(size, seeds, boxes, present)


def folder_marks(ds: DatasetFolder, image_id: str) -> Marks:
    """An image's marks in a dataset folder (``scribbles/``, ``boxes/``, ``tags/``), at its full size; raises
    DatasetError for a malformed file, ImageLoadError for an unreadable image."""
    size = load_image(ds.images[image_id], max_side=64).original_size
    seeds, boxes, tags = ds.scribbles(image_id, size), ds.boxes(image_id, size), ds.tags(image_id)
    present = None
    if tags is not None:
        present = np.zeros(len(ds.classes), bool)
        present[tags] = True
    box_array = np.array([[c, *b] for c, b in boxes], np.float32) if boxes else None
    return Marks(size, seeds, box_array, present)
