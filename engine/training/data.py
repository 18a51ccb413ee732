"""What the trainer learns from: the project's labelled images at working resolution, kept in step with the
store, and augmented batches drawn from them.

``TrainingSet.refresh`` compares per-image mark revisions with the store and re-reads only the images whose
marks changed, so a stroke the user just drew reaches the next training step without a restart.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.annotations.types import UNLABELED
from engine.io.images import ImageLoadError
from engine.project import Project


@dataclass
class Sample:
    image_id: int
    image: np.ndarray
    """(H, W, 3) uint8 at working size"""
    gray: bool
    target: np.ndarray
    """(H, W) uint8 class index per pixel, UNLABELED where there is no supervision"""


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (rows, cols): labels are never interpolated."""
    if labels.shape == shape:
        return labels
    return cv2.resize(labels, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


class TrainingSet:
    """Labelled images of a project. ``supervision`` 'scribbles' learns from the marks, 'full' from the
    ground-truth masks (the upper bound that benchmarks compare against)."""

    def __init__(self, project: Project, supervision: str, working_size: int) -> None:
        self.project = project
        self.supervision = supervision
        self.working_size = working_size
        self.samples: dict[int, Sample] = {}
        self._images: dict[int, tuple[np.ndarray, bool]] = {}
        self._revisions: dict[int, int] = {}
        self.errors: list[str] = []

    def load_image(self, image_id: int) -> tuple[np.ndarray, bool]:
        """The image at working size (cached); raises ImageLoadError."""
        if image_id not in self._images:
            rec = self.project.store.image(image_id)
            img = self.project.load_image(rec, max_side=self.working_size)
            self._images[image_id] = (img.pixels, img.is_gray)
        return self._images[image_id]

    def refresh(self) -> int:
        """Re-read images whose marks changed since the last call; returns how many changed."""
        store = self.project.store
        if self.supervision == "full":
            ids = sorted(store.ground_truth_ids())
            current = {i: 0 for i in ids}
        else:
            current = store.marks_revisions()
        changed = [i for i, rev in current.items() if self._revisions.get(i) != rev]
        for image_id in set(self._revisions) - set(current):
            self.samples.pop(image_id, None)
        for image_id in changed:
            self._revisions[image_id] = current[image_id]
            try:
                image, gray = self.load_image(image_id)
            except ImageLoadError as exc:
                self.errors.append(str(exc))
                self.samples.pop(image_id, None)
                continue
            shape = image.shape[:2]
            if self.supervision == "full":
                target = resize_labels(store.ground_truth(image_id), shape)
            else:
                target = store.seed_map(image_id, shape)
            if (target != UNLABELED).any():
                self.samples[image_id] = Sample(image_id, image, gray, target)
            else:
                self.samples.pop(image_id, None)
        return len(changed)


class BatchSampler:
    """Random labelled images, each randomly cropped, rescaled and flipped (image and target together); colour
    jitter goes to the network input only, since the CRF losses must see the true colours."""

    def __init__(self, crop_size: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.geometric = v2.Compose([
            v2.RandomResizedCrop(crop_size, scale=(0.35, 1.0), ratio=(0.75, 1.333), antialias=True),
            v2.RandomHorizontalFlip(),
        ])
        self.photometric = v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)

    def batch(self, samples: list[Sample], batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(network input, true-colour image, target): (B,3,h,w) float 0..255 ×2 and (B,h,w) int64."""
        picks = self.rng.integers(0, len(samples), batch_size)
        inputs, images, targets = [], [], []
        state = torch.random.get_rng_state()
        torch.random.set_rng_state(self.generator.get_state())  # transforms v2 draws from torch's global RNG
        try:
            for i in picks:
                s = samples[int(i)]
                img = tv_tensors.Image(torch.from_numpy(s.image).permute(2, 0, 1))
                tgt = tv_tensors.Mask(torch.from_numpy(s.target))
                img, tgt = self.geometric(img, tgt)
                images.append(img.float())
                inputs.append(self.photometric(img).float())
                targets.append(tgt.long())
            self.generator.set_state(torch.random.get_rng_state())
        finally:
            torch.random.set_rng_state(state)
        return torch.stack(inputs), torch.stack(images), torch.stack(targets)
