"""Reading the dataset-folder layout shared by import, export, the CLI and the benchmarks.

```
NAME/
  classes.txt          line i (0-based) = name of class i
  train.txt, test.txt  image IDs of each split (optional)
  images/ID.ext        the photos or scans
  masks/ID.png         optional ground truth: class index, 255 = ignore
  scribbles/ID.png     optional scribbles: class index on stroke pixels, 255 = unlabeled
  boxes/ID.json        optional: [{"class": k, "box": [x0, y0, x1, y1]}]  (pixels, xyxy)
  tags/ID.json         optional: {"present": [k, ...]}
```
Every reader validates what it reads and raises DatasetError naming the file, since a silently misread label
would poison training and evaluation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.io.images import list_images
from engine.io.palette import load_index_png


class DatasetError(Exception):
    """A dataset folder or one of its files does not follow the layout; the message names the file."""


@dataclass(frozen=True)
class DatasetFolder:
    root: Path
    classes: list[str]
    images: dict[str, Path]
    """image ID -> image file"""
    splits: dict[str, list[str]]
    """'train' / 'test' -> IDs, for the split files present"""

    @classmethod
    def open(cls, root: str | Path) -> "DatasetFolder":
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root} is not a folder")
        classes_file = root / "classes.txt"
        if not classes_file.is_file():
            raise DatasetError(f"{root} has no classes.txt (one class name per line, class 0 first)")
        classes = [line.strip() for line in classes_file.read_text(encoding="utf-8").splitlines()]
        while classes and not classes[-1]:
            classes.pop()
        if not classes or any(not c for c in classes):
            raise DatasetError(f"{classes_file}: class names must be non-empty, one per line")
        if len(set(classes)) != len(classes):
            raise DatasetError(f"{classes_file}: class names must be unique")
        if len(classes) > 255:
            raise DatasetError(f"{classes_file}: at most 255 classes fit in 8-bit masks, got {len(classes)}")
        if not (root / "images").is_dir():
            raise DatasetError(f"{root} has no images/ folder")
        images: dict[str, Path] = {}
        for path in list_images(root / "images"):
            if path.stem in images:
                raise DatasetError(f"two images share the ID {path.stem!r}: {images[path.stem].name} and {path.name}")
            images[path.stem] = path
        splits = {}
        for split in ("train", "test"):
            f = root / f"{split}.txt"
            if f.is_file():
                ids = [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
                missing = [i for i in ids if i not in images]
                if missing:
                    raise DatasetError(f"{f}: {len(missing)} IDs have no image, e.g. {missing[0]!r}")
                splits[split] = ids
        return cls(root, classes, images, splits)

    def ids(self, split: str = "all") -> list[str]:
        if split == "all":
            return list(self.images)
        if split not in ("train", "test"):
            raise DatasetError(f"split must be train, test or all, got {split!r}")
        if split not in self.splits:
            raise DatasetError(f"{self.root} has no {split}.txt")
        return list(self.splits[split])

    def split_of(self, image_id: str) -> str | None:
        for split, ids in self.splits.items():
            if image_id in ids:
                return split
        return None

    def has(self, kind: str) -> bool:
        """Whether the folder has a sub-folder ``kind`` (masks, scribbles, boxes, tags) with any file in it."""
        d = self.root / kind
        return d.is_dir() and any(d.iterdir())

    def _label_png(self, folder: str, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        path = self.root / folder / f"{image_id}.png"
        if not path.is_file():
            return None
        try:
            labels = load_index_png(path)
        except (ValueError, OSError) as exc:
            raise DatasetError(f"{path}: {exc}") from None
        if labels.shape != (size[1], size[0]):
            raise DatasetError(f"{path}: size {labels.shape[1]}x{labels.shape[0]} differs from its image's "
                               f"{size[0]}x{size[1]}")
        bad = np.unique(labels[(labels != 255) & (labels >= len(self.classes))])
        if bad.size:
            raise DatasetError(f"{path}: values {bad.tolist()} are not class indices (0..{len(self.classes) - 1} or 255)")
        return labels

    def mask(self, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        """Ground truth for an image of ``size`` (width, height), or None where there is none."""
        return self._label_png("masks", image_id, size)

    def scribbles(self, image_id: str, size: tuple[int, int], folder: str = "scribbles") -> np.ndarray | None:
        return self._label_png(folder, image_id, size)

    def boxes(self, image_id: str) -> list[tuple[int, tuple[float, float, float, float]]] | None:
        data = self._json("boxes", image_id)
        if data is None:
            return None
        out = []
        try:
            for item in data:
                k = int(item["class"])
                x0, y0, x1, y1 = (float(v) for v in item["box"])
                if not 0 <= k < len(self.classes) or not (x1 > x0 and y1 > y0):
                    raise ValueError(f"bad entry {item}")
                out.append((k, (x0, y0, x1, y1)))
        except (TypeError, KeyError, ValueError) as exc:
            raise DatasetError(f"{self.root / 'boxes' / (image_id + '.json')}: expected "
                               f'[{{"class": k, "box": [x0, y0, x1, y1]}}, ...] with x0 < x1, y0 < y1: {exc}') from None
        return out

    def tags(self, image_id: str) -> list[int] | None:
        data = self._json("tags", image_id)
        if data is None:
            return None
        try:
            present = sorted({int(k) for k in data["present"]})
            if any(not 0 <= k < len(self.classes) for k in present):
                raise ValueError("class index out of range")
        except (TypeError, KeyError, ValueError) as exc:
            raise DatasetError(f"{self.root / 'tags' / (image_id + '.json')}: expected "
                               f'{{"present": [k, ...]}}: {exc}') from None
        return present

    def _json(self, folder: str, image_id: str):
        path = self.root / folder / f"{image_id}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc})") from None
