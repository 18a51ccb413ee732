"""YOLO (ultralytics) in and out: ``images/``, ``labels/ID.txt`` and ``data.yaml``. YOLO's classes are the
project's less the class named background, numbered from 0.

Out: an image with a mask gives one YOLO-seg line per 4-connected region of each object class — ``class x1 y1
x2 y2 …``, the polygon through its boundary pixels' centres, normalised by the image's size and nudged a quarter
pixel so that ultralytics' ``polygon2mask`` (OpenCV's fill after truncating to whole pixels) lands on the same
pixels; an image without a mask gives its boxes as ``class cx cy w h``. YOLO has no holes and no tags: background
inside an object's outline comes back as the object, and tags are not written.

In: a line of five numbers is a box, a longer one a polygon; polygons are filled as ultralytics fills them,
larger ones first (smaller objects on top, as its overlapping masks are).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from engine.annotations.types import background_index
from engine.datasets.exporter import ExportReport, MaskSource, export_image, image_ids
from engine.datasets.folder import DatasetError
from engine.io.atomic import write_atomic
from engine.io.images import list_images
from engine.project import Project

NUDGE = 0.25
"""pixels added to each written polygon coordinate: truncation after normalising and back stays on the pixel"""


# ---- out ----------------------------------------------------------------------------------------------------------
def yolo_steps(project: Project, out: str | Path, report: ExportReport, *, masks: MaskSource | None = None,
               copy_images: bool = True) -> Iterator[tuple[int, int]]:
    out = Path(out)
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    store = project.store
    classes = store.classes()
    names = [c.name for c in classes]
    index = {c.id: c.index for c in classes}
    background = background_index(names)
    yolo = {k: i for i, k in enumerate(k for k in range(len(names)) if k != background)}
    masks = masks or (lambda rec: store.ground_truth(rec.id))
    records = store.images()
    stems = image_ids(records)
    for n, rec in enumerate(records):
        src = project.image_path(rec)
        if copy_images:
            export_image(src, out / "images" / f"{stems[rec.id]}{src.suffix.lower()}", rec, report)
        w, h = rec.width, rec.height
        lines = []
        mask = masks(rec)
        if mask is not None:
            report.masks += 1
            for k in (int(v) for v in np.unique(mask)):
                if k in yolo:
                    lines += [f"{yolo[k]} " + " ".join(f"{(x + NUDGE) / w:.6f} {(y + NUDGE) / h:.6f}" for x, y in poly)
                              for poly in _polygons(mask == k)]
        else:
            boxes = [b for b in store.boxes(rec.id) if index[b.class_id] in yolo]
            lines += [f"{yolo[index[b.class_id]]} {(b.x0 + b.x1) / 2 / w:.6f} {(b.y0 + b.y1) / 2 / h:.6f} "
                      f"{(b.x1 - b.x0) / w:.6f} {(b.y1 - b.y0) / h:.6f}" for b in boxes]
            report.boxes += bool(boxes)
        write_atomic(out / "labels" / f"{stems[rec.id]}.txt",
                     lambda p, text="".join(line + "\n" for line in lines): p.write_text(text, encoding="utf-8"))
        yield n + 1, len(records)
    yaml = "path: .\ntrain: images\nval: images\nnames:\n" + "".join(
        f"  {i}: {_yaml_string(names[k])}\n" for k, i in yolo.items())
    (out / "data.yaml").write_text(yaml, encoding="utf-8")


def _polygons(region: np.ndarray) -> list[list[tuple[int, int]]]:
    count, components = cv2.connectedComponents(region.astype(np.uint8), connectivity=4)
    out = []
    for j in range(1, count):
        contours, _ = cv2.findContours((components == j).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            points = [tuple(p) for p in c[:, 0, :].tolist()]
            out.append(points + points[-1:] * (3 - len(points)))
    return out


def _yaml_string(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- in -----------------------------------------------------------------------------------------------------------
@dataclass
class YoloSource:
    """A YOLO folder read as a dataset (the interface engine.datasets.importer reads)."""

    root: Path
    classes: list[str]
    images: dict[str, Path]
    splits: dict[str, list[str]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()
    offset: int = 1
    """YOLO class i is our class i + offset (1: a background class leads)"""

    @classmethod
    def open(cls, root: str | Path, images: str | Path | None = None) -> "YoloSource":
        root = Path(root)
        names = _read_names(root / "data.yaml")
        folder = Path(images) if images is not None else root / "images"
        if not folder.is_dir():
            raise DatasetError(f"{root} has no images/ folder (give the images' folder with --images)")
        if not (root / "labels").is_dir():
            raise DatasetError(f"{root} has no labels/ folder")
        problems: list = []
        found = {p.stem: p for p in list_images(folder, problems)}
        top = max((int(line.split()[0]) for f in (root / "labels").glob("*.txt")
                   for line in _lines(f) if line.split()[0].isdigit()), default=-1)
        names += [f"class {i}" for i in range(len(names), top + 1)]
        if "background" in names:
            raise DatasetError(f"{root / 'data.yaml'}: YOLO names only objects, not 'background'")
        return cls(root, ["background"] + names, found, unreadable=tuple(str(e) for e in problems))

    def ids(self, split: str = "all") -> list[str]:
        if split != "all":
            raise DatasetError("import a YOLO folder with --split all")
        return list(self.images)

    def split_of(self, image_id: str) -> str | None:
        return None

    def has(self, kind: str) -> bool:
        rows = [len(line.split()) for f in (self.root / "labels").glob("*.txt") for line in _lines(f)]
        return {"masks": any(n > 5 for n in rows), "boxes": any(n == 5 for n in rows)}.get(kind, False)

    def _rows(self, image_id: str) -> list[tuple[int, list[float]]]:
        path = self.root / "labels" / f"{image_id}.txt"
        if not path.is_file():
            return []
        rows = []
        for number, line in enumerate(_lines(path), 1):
            parts = line.split()
            try:
                k, values = int(parts[0]), [float(v) for v in parts[1:]]
            except ValueError:
                raise DatasetError(f"{path}, line {number}: not 'class x y …' numbers") from None
            if not 0 <= k < len(self.classes) - self.offset or len(values) < 4 or len(values) % 2 \
                    or not all(np.isfinite(values)):
                raise DatasetError(f"{path}, line {number}: class {k} of {len(self.classes) - 1}, or "
                                   f"{len(values)} coordinates")
            rows.append((k + self.offset, values))
        return rows

    def mask(self, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        w, h = size
        polygons = [(k, np.asarray(v, np.float64).reshape(-1, 2) * (w, h)) for k, v in self._rows(image_id)
                    if len(v) > 4]
        if not polygons:
            return None
        filled = []
        for k, pts in polygons:
            region = np.zeros((h, w), np.uint8)
            cv2.fillPoly(region, [pts.astype(np.int32)], 1)  # as ultralytics' polygon2mask
            filled.append((int(region.sum()), k, region.astype(bool)))
        out = np.zeros((h, w), np.uint8)
        for _, k, region in sorted(filled, key=lambda item: -item[0]):
            out[region] = k
        return out

    def scribbles(self, image_id: str, size: tuple[int, int], folder: str = "scribbles") -> None:
        return None

    def boxes(self, image_id: str, size: tuple[int, int]) -> list[tuple[int, tuple[float, float, float, float]]] | None:
        w, h = size
        out = []
        for k, (cx, cy, bw, bh) in ((k, v) for k, v in self._rows(image_id) if len(v) == 4):
            x0, y0 = max(0.0, (cx - bw / 2) * w), max(0.0, (cy - bh / 2) * h)
            x1, y1 = min(float(w), (cx + bw / 2) * w), min(float(h), (cy + bh / 2) * h)
            if x1 > x0 and y1 > y0:
                out.append((k, (round(x0, 3), round(y0, 3), round(x1, 3), round(y1, 3))))
        return out or None

    def tags(self, image_id: str) -> None:
        return None


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def _read_names(path: Path) -> list[str]:
    """The class names of a data.yaml: a ``names:`` list (``- a``, or ``[a, b]``) or mapping (``0: a``)."""
    if not path.is_file():
        return []
    names: dict[int, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("names:"):
            continue
        rest = line[len("names:"):].strip()
        if rest.startswith("["):
            return [_unquote(v) for v in rest.strip("[]").split(",") if v.strip()]
        for item in lines[i + 1:]:
            if not item.startswith((" ", "\t", "-")):
                break
            item = item.strip()
            if item.startswith("-"):
                names[len(names)] = _unquote(item[1:])
            elif ":" in item:
                key, value = item.split(":", 1)
                names[int(key)] = _unquote(value)
    return [names[i] for i in sorted(names)]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value
