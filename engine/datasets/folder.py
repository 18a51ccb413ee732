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
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.io.images import ImageLoadError, list_images
from engine.io.palette import load_index_png


class DatasetError(UserError):
    """A dataset folder or one of its files does not follow the layout; the message names the file."""


@dataclass(frozen=True)
class DatasetFolder:
    root: Path
    classes: list[str]
    images: dict[str, Path]
    """image ID -> image file"""
    splits: dict[str, list[str]]
    """'train' / 'test' -> IDs, for the split files present"""
    unreadable: tuple[str, ...] = ()
    """what images/ holds that looks like an image but cannot be one (a link to nothing), each with the reason"""

    @classmethod
    def open(cls, root: str | Path) -> "DatasetFolder":
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root} is not a folder")
        classes_file = root / "classes.txt"
        if not classes_file.is_file():
            raise DatasetError(f"{root} has no classes.txt (one class name per line, class 0 first)")
        classes = [line.strip() for line in _read_lines(classes_file)]
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
        try:
            problems: list[ImageLoadError] = []
            found = list_images(root / "images", problems)
        except OSError as exc:
            raise DatasetError(f"cannot list {root / 'images'}: {exc.strerror or exc}") from None
        for path in found:
            if path.stem in images:
                raise DatasetError(f"two images share the ID {path.stem!r}: {images[path.stem].name} and {path.name}")
            images[path.stem] = path
        broken = {Path(e.path).stem for e in problems}
        splits = {}
        for split in ("train", "test"):
            f = root / f"{split}.txt"
            if f.is_file():
                ids = [line.strip() for line in _read_lines(f) if line.strip()]
                missing = [i for i in ids if i not in images and i not in broken]
                if missing:
                    raise DatasetError(f"{f}: {len(missing)} IDs have no image, e.g. {missing[0]!r}")
                splits[split] = [i for i in ids if i in images]  # the broken ones are reported as unreadable
        return cls(root, classes, images, splits, tuple(str(e) for e in problems))

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

    def boxes(self, image_id: str, size: tuple[int, int] | None = None
              ) -> list[tuple[int, tuple[float, float, float, float]]] | None:
        """The image's boxes; with the image's ``size`` (width, height) each box must lie inside it (a box
        reaching less than a pixel beyond the border is clipped to it)."""
        path = self.root / "boxes" / f"{image_id}.json"
        data = self._json("boxes", image_id)
        if data is None:
            return None
        if not isinstance(data, list):
            raise DatasetError(f'{path}: expected a list [{{"class": k, "box": [x0, y0, x1, y1]}}, ...], '
                               f"got {type(data).__name__}")
        out = []
        for n, item in enumerate(data):
            where = f"{path}: entry {n + 1}"
            if not isinstance(item, dict) or "class" not in item or "box" not in item:
                raise DatasetError(f'{where}: expected {{"class": k, "box": [x0, y0, x1, y1]}}, got {item!r}')
            k = self._class_index(item["class"], where)
            box = item["box"]
            if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
                raise DatasetError(f"{where}: the box must be four finite numbers [x0, y0, x1, y1], got {box!r}")
            x0, y0, x1, y1 = (float(v) for v in box)
            if not (x1 > x0 and y1 > y0):
                raise DatasetError(f"{where}: the box {box} is empty or reversed (x0 < x1 and y0 < y1 needed)")
            if size is not None:
                w, h = size
                if x0 < -1 or y0 < -1 or x1 > w + 1 or y1 > h + 1:
                    raise DatasetError(f"{where}: the box {box} reaches outside the {w}x{h} image")
                x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
                if not (x1 > x0 and y1 > y0):
                    raise DatasetError(f"{where}: the box {box} lies on the image's border")
            out.append((k, (x0, y0, x1, y1)))
        return out

    def tags(self, image_id: str) -> list[int] | None:
        path = self.root / "tags" / f"{image_id}.json"
        data = self._json("tags", image_id)
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("present"), list):
            raise DatasetError(f'{path}: expected {{"present": [k, ...]}} (a list of class indices), got {data!r}')
        return sorted({self._class_index(k, path) for k in data["present"]})

    def _class_index(self, value, where) -> int:
        """A class index as JSON gives it: an integer (2 or 2.0), never a bool, a fraction or a string."""
        if not _is_number(value) or float(value) != int(value):
            raise DatasetError(f"{where}: class {value!r} is not a class index (an integer)")
        k = int(value)
        if not 0 <= k < len(self.classes):
            raise DatasetError(f"{where}: class {k} is out of range (0..{len(self.classes) - 1})")
        return k

    def _json(self, folder: str, image_id: str):
        path = self.root / folder / f"{image_id}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc})") from None
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _refuse_constant(name: str):
    """JSON has no NaN or Infinity; Python's reader would accept them and let them into a box."""
    raise ValueError(f"{name} is not a number JSON allows")


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror or exc})") from None
