"""What the trainer learns from, streamed from disk so that its memory does not grow with the project.

* ``TrainingIndex`` (the trainer's process): which images can teach under the chosen supervision, with the
  revision of their marks. It is all the trainer keeps of the data set, and it is refreshed before every step,
  so a stroke the user just drew reaches the next batches without a restart.
* ``SampleSource``: reads an image at working size and builds its targets (engine.training.targets), keeping a
  bounded cache of the most recently used ones.
* ``TrainingItems``: a map-style dataset whose keys are (image id, marks revision, augmentation seed); it returns
  one augmented crop. ``BatchKeys`` draws the keys from the index as it is now; a torch DataLoader
  (engine.training.loader) runs the two in worker processes or in the trainer's own.

Each crop's augmentation is drawn from its own seed, so a batch is the same whichever process made it.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.io.images import ImageLoadError
from engine.project import Project
from engine.training.targets import MARKS_READ, Sample, build_sample

CACHE_FOLDER = ".wsv-cache"
"""folder of the project that keeps what is slow to recompute and safe to delete (GrabCut maps of boxed images)"""


class TrainingIndex:
    """The images that teach something under ``supervision``, as (image id, marks revision) keys in id order."""

    def __init__(self, project: Project, supervision: str, shard: tuple[int, int] = (0, 1)) -> None:
        self.project = project
        self.supervision = supervision
        self.shard = shard
        """(index, count): this training process learns from every count-th teaching image from the index-th
        on, in the order of image ids (engine.training.distributed)"""
        self.keys: list[tuple[int, int]] = []
        self.errors: list[str] = []
        """why images were left out, in the order they were met"""
        self._rejected: dict[int, int] = {}
        """image id -> the marks revision at which it could not be read or taught nothing; tried again once its
        marks change"""
        self._revision: int | None = None

    def refresh(self) -> int:
        """Bring the keys in line with the store; returns how many images are new or have new marks."""
        store = self.project.store
        revision = store.revision()
        if revision == self._revision:
            return 0
        self._revision = revision
        if self.supervision == "full":
            current = dict.fromkeys(sorted(store.ground_truth_ids()), 0)
        else:
            current = store.teaching_revisions(MARKS_READ[self.supervision])
        index, count = self.shard
        if count > 1:
            current = {i: current[i] for i in list(current)[index::count]}
        before = dict(self.keys)
        self.keys = [(i, rev) for i, rev in current.items() if self._rejected.get(i) != rev]
        return sum(before.get(i) != rev for i, rev in self.keys)

    def reject(self, image_id: int, revision: int, reason: str | None) -> bool:
        """Leave an image out until its marks change; ``reason`` (None: it taught nothing) goes to ``errors``.
        Returns False where it was already left out (batches drawn before the first rejection bring it again)."""
        if self._rejected.get(image_id) == revision:
            return False
        self._rejected[image_id] = revision
        self.keys = [k for k in self.keys if k[0] != image_id]
        if reason is not None:
            self.errors.append(reason)
        return True


class SampleSource:
    """Images at working size and their targets, read through a least-recently-used cache of at most
    ``cache_bytes``. Picklable: a DataLoader worker gets a copy with an empty cache and opens its own connection
    to the store on first use."""

    def __init__(self, root: Path, supervision: str, working_size: int, cache_bytes: int) -> None:
        self.root, self.supervision, self.working_size = Path(root), supervision, working_size
        self.cache_bytes = cache_bytes
        self._project: Project | None = None
        self._cache: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._held = 0

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_project": None, "_cache": OrderedDict(), "_held": 0}

    @property
    def project(self) -> Project:
        if self._project is None:
            self._project = Project.open(self.root)
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()
            self._project = None
        self._cache.clear()
        self._held = 0

    def _cached(self, key: tuple, make, arrays) -> object:
        """``make()``, kept under ``key``; ``arrays(value)`` lists the arrays it holds, to count its bytes."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key][0]
        value = make()
        size = sum(a.nbytes for a in arrays(value))
        self._cache[key] = (value, size)
        self._held += size
        while self._held > self.cache_bytes and self._cache:
            self._held -= self._cache.popitem(last=False)[1][1]
        return value

    def image(self, image_id: int) -> tuple[np.ndarray, bool]:
        """(H, W, 3) uint8 pixels at working size and whether the image is grayscale; raises ImageLoadError."""
        def read() -> tuple[np.ndarray, bool]:
            img = self.project.load_image(self.project.store.image(image_id), max_side=self.working_size)
            return img.pixels, img.is_gray
        return self._cached(("image", image_id), read, lambda value: value[:1])

    def sample(self, image_id: int, revision: int) -> Sample:
        """The image's targets as of its marks' ``revision`` (or later); raises ImageLoadError."""
        def build() -> Sample:
            pixels, gray = self.image(image_id)
            return build_sample(self.project.store, image_id, pixels, gray, self.supervision,
                                grabcut_cache=self.root / CACHE_FOLDER / "grabcut")
        return self._cached(("sample", image_id, revision), build, Sample.arrays)


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


@dataclass
class Loaded:
    """What the DataLoader hands the trainer for one step."""
    batch: Batch | None
    """None where no image of the step could be used"""
    rejected: list[tuple[int, int, str | None]]
    """(image id, revision, reason or None where the image taught nothing) for the images left out"""
    prepare_s: float
    """seconds spent building targets (GrabCut for boxes), which do not count as training time"""


def _box_labels(inputs: tuple) -> torch.Tensor:
    """Where the crop's inputs (image, seeds, boxes, labels, strokes) keep the boxes' labels."""
    return inputs[3]


class TrainingItems(torch.utils.data.Dataset):
    """One augmented crop per key (image id, marks revision, seed): random crop, rescale and flip of image, seeds
    and boxes together; colour jitter goes to the network input only, since the CRF losses must see the true
    colours. Images that teach through tags alone are resized whole, since a crop may cut out a tagged object."""

    def __init__(self, source: SampleSource, crop_size: int) -> None:
        self.source = source
        self.crop = v2.Compose([
            v2.RandomResizedCrop(crop_size, scale=(0.35, 1.0), ratio=(0.75, 1.333), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.SanitizeBoundingBoxes(min_size=2, labels_getter=_box_labels),
        ])
        self.whole = v2.Compose([v2.Resize((crop_size, crop_size), antialias=True), v2.RandomHorizontalFlip()])
        self.photometric = v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)

    def __getitem__(self, key: tuple[int, int, int]) -> dict:
        image_id, revision, seed = key
        t0 = time.perf_counter()
        try:
            s = self.source.sample(image_id, revision)
        except ImageLoadError as exc:
            return {"key": key, "error": str(exc), "prepare_s": time.perf_counter() - t0}
        prepare_s = time.perf_counter() - t0
        if not s.teaches:
            return {"key": key, "error": None, "prepare_s": prepare_s}
        with torch.random.fork_rng(devices=[]):  # transforms v2 draw from torch's global generator
            torch.manual_seed(seed)
            return {"key": key, "prepare_s": prepare_s, **self._augmented(s)}

    def _augmented(self, s: Sample) -> dict:
        h, w = s.seeds.shape
        img = tv_tensors.Image(torch.from_numpy(s.image).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(s.seeds))
        strokes = tv_tensors.Mask(torch.zeros((h, w), dtype=torch.uint8) if s.drawn is None
                                  else torch.from_numpy(s.drawn.view(np.uint8)))
        bx = tv_tensors.BoundingBoxes(torch.from_numpy(s.boxes[:, 1:]), format="XYXY", canvas_size=(h, w))
        labels = torch.from_numpy(s.boxes[:, 0])
        if s.kinds == {"tags"}:
            img, mask, bx, strokes = self.whole(img, mask, bx, strokes)
        else:
            img, mask, bx, labels, strokes = self.crop(img, mask, bx, labels, strokes)
        return {"image": img.float(), "input": self.photometric(img).float(), "seeds": mask.long(),
                "drawn": strokes.bool(), "boxes": torch.cat([labels[:, None].float(), bx.float()], 1),
                "present": None if s.present is None else torch.from_numpy(s.present), "boxed": len(s.boxes) > 0,
                "gray": s.gray}


def collate(items: list[dict]) -> Loaded:
    """The usable crops of one step as a Batch; the others as rejections."""
    rejected = [(*it["key"][:2], it["error"]) for it in items if "image" not in it]
    good = [it for it in items if "image" in it]
    prepare_s = sum(it["prepare_s"] for it in items)
    if not good:
        return Loaded(None, rejected, prepare_s)
    k = max((len(it["present"]) for it in good if it["present"] is not None), default=0)
    present = torch.zeros(len(good), k, dtype=torch.bool)
    for row, it in zip(present, good):
        if it["present"] is not None:
            row[:len(it["present"])] = it["present"]
    batch = Batch(torch.stack([it["input"] for it in good]), torch.stack([it["image"] for it in good]),
                  torch.stack([it["seeds"] for it in good]), torch.stack([it["drawn"] for it in good]),
                  [it["boxes"] for it in good], present, torch.tensor([it["present"] is not None for it in good]),
                  torch.tensor([it["boxed"] for it in good]),
                  all(it["gray"] for it in good))
    return Loaded(batch, rejected, prepare_s)


class BatchKeys:
    """An endless sequence of batches of keys, drawn at random from the index as it stands when each batch is
    drawn. ``stream``: the training process's rank; each rank draws its own picks and augmentations (rank 0 the
    same as a single process with this seed)."""

    def __init__(self, index: TrainingIndex, batch_size: int, seed: int, stream: int = 0) -> None:
        self.index, self.batch_size = index, batch_size
        self.rng = np.random.default_rng(seed if stream == 0 else [seed, stream])
        self._last: list[tuple[int, int]] = []

    def __iter__(self):
        while True:
            keys = self.index.keys or self._last  # the trainer stops on an empty index; prefetching may not
            self._last = keys
            picks = self.rng.integers(0, len(keys), self.batch_size)
            yield [(*keys[int(i)], int(s)) for i, s in zip(picks, self.rng.integers(0, 2 ** 63, self.batch_size))]
