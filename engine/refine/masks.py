"""Masks for export and prediction: refined with its own marks for an image someone marked, the network's
answer for the others. One code path for ``wsv predict`` on a dataset folder or a project, the GUI's Export
Masks and the live overlay, so that what the user sees is what they export.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.annotations.types import UNLABELED
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
