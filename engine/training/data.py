"""What the trainer learns from: the project's labelled images at working resolution, kept in step with the
store, and augmented batches drawn from them.

``TrainingSet.refresh`` compares per-image mark revisions with the store and re-reads only the images whose
marks changed, so a stroke the user just drew reaches the next training step without a restart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.io.images import ImageLoadError
from engine.project import Project
from engine.training.targets import MARKS_READ, Sample, build_sample


class TrainingSet:
    """The project's images that teach something under ``supervision`` (see engine.training.targets)."""

    def __init__(self, project: Project, supervision: str, working_size: int,
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.project = project
        self.shard = shard
        """(index, count): this training process reads every count-th labelled image from the index-th on, in
        the order of image ids (engine.training.distributed)"""
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
            current = {i: 0 for i in sorted(store.ground_truth_ids())}
        else:
            current = store.marks_revisions()
        index, count = self.shard
        if count > 1:  # shard the images that can teach, so that every process gets its share of them
            if self.supervision != "full":
                marks = store.mark_counts()
                current = {i: rev for i, rev in current.items()
                           if any(getattr(marks[i], kind) for kind in MARKS_READ[self.supervision])}
            current = {i: current[i] for i in sorted(current)[index::count]}
        changed = [i for i, rev in current.items() if self._revisions.get(i) != rev]
        for image_id in set(self._revisions) - set(current):
            self.samples.pop(image_id, None)
            self._revisions.pop(image_id)
        for image_id in changed:
            self._revisions[image_id] = current[image_id]
            try:
                image, gray = self.load_image(image_id)
            except ImageLoadError as exc:
                self.errors.append(str(exc))
                self.samples.pop(image_id, None)
                continue
            sample = build_sample(store, image_id, image, gray, self.supervision)
            if sample.teaches:
                self.samples[image_id] = sample
            else:
                self.samples.pop(image_id, None)
        return len(changed)


@dataclass
class Batch:
    inputs: torch.Tensor
    """(B, 3, h, w) float 0..255, colour-jittered: what the network sees"""
    images: torch.Tensor
    """(B, 3, h, w) float 0..255, true colours: what the CRF losses see"""
    seeds: torch.Tensor
    """(B, h, w) int64, 255 = no seed"""
    drawn: torch.Tensor
    """(B, h, w) bool: seeds the user drew, as opposed to seeds derived from masks or boxes"""
    boxes: list[torch.Tensor]
    """per image (M, 5) float (class, x0, y0, x1, y1) in crop pixels"""
    present: torch.Tensor
    """(B, K) bool tags"""
    tagged: torch.Tensor
    """(B,) bool: which images carry tags"""
    boxed: torch.Tensor
    """(B,) bool: which images carry boxes (their crop may have lost them)"""
    gray: bool

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.inputs.to(device), self.images.to(device), self.seeds.to(device), self.drawn.to(device),
                     [b.to(device) for b in self.boxes], self.present.to(device), self.tagged.to(device),
                     self.boxed.to(device), self.gray)


class BatchSampler:
    """Random labelled images, each randomly cropped, rescaled and flipped (image, seeds and boxes together);
    colour jitter goes to the network input only, since the CRF losses must see the true colours. Images that
    teach through tags alone are resized whole, since a crop may cut out a tagged object."""

    def __init__(self, crop_size: int, seed: int, stream: int = 0) -> None:
        """``stream``: the training process's rank; each rank draws its own picks and augmentations (rank 0 the
        same as a single process with this seed)."""
        self.rng = np.random.default_rng(seed if stream == 0 else [seed, stream])
        self.generator = torch.Generator().manual_seed(seed if stream == 0 else seed + 1_000_003 * stream)
        self.crop = v2.Compose([
            v2.RandomResizedCrop(crop_size, scale=(0.35, 1.0), ratio=(0.75, 1.333), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.SanitizeBoundingBoxes(min_size=2, labels_getter=lambda inputs: inputs[3]),
        ])
        self.whole = v2.Compose([v2.Resize((crop_size, crop_size), antialias=True), v2.RandomHorizontalFlip()])
        self.photometric = v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)

    def batch(self, samples: list[Sample], batch_size: int, num_classes: int) -> Batch:
        picks = [samples[int(i)] for i in self.rng.integers(0, len(samples), batch_size)]
        inputs, images, seeds, drawn, boxes, present, tagged = [], [], [], [], [], [], []
        state = torch.random.get_rng_state()
        torch.random.set_rng_state(self.generator.get_state())  # transforms v2 draws from torch's global RNG
        try:
            for s in picks:
                h, w = s.seeds.shape
                img = tv_tensors.Image(torch.from_numpy(s.image).permute(2, 0, 1))
                mask = tv_tensors.Mask(torch.from_numpy(s.seeds))
                strokes = tv_tensors.Mask(torch.zeros((h, w), dtype=torch.uint8) if s.drawn is None
                                          else torch.from_numpy(s.drawn.view(np.uint8)))
                bx = tv_tensors.BoundingBoxes(torch.from_numpy(s.boxes[:, 1:]), format="XYXY", canvas_size=(h, w))
                labels = torch.from_numpy(s.boxes[:, 0])
                tags_only = s.kinds == {"tags"}
                if tags_only:
                    img, mask, bx, strokes = self.whole(img, mask, bx, strokes)
                else:
                    img, mask, bx, labels, strokes = self.crop(img, mask, bx, labels, strokes)
                images.append(img.float())
                inputs.append(self.photometric(img).float())
                seeds.append(mask.long())
                drawn.append(strokes.bool())
                boxes.append(torch.cat([labels[:, None].float(), bx.float()], 1))
                p = np.zeros(num_classes, bool) if s.present is None else s.present
                present.append(torch.from_numpy(p))
                tagged.append(s.present is not None)
            self.generator.set_state(torch.random.get_rng_state())
        finally:
            torch.random.set_rng_state(state)
        return Batch(torch.stack(inputs), torch.stack(images), torch.stack(seeds), torch.stack(drawn), boxes,
                     torch.stack(present), torch.tensor(tagged), torch.tensor([len(s.boxes) > 0 for s in picks]),
                     all(s.gray for s in picks))
