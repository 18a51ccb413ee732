"""labelme JSON in and out: one ``ID.json`` beside each image, as labelme saves them.

labelme fills a polygon as Pillow does (``labelme.utils.shape_to_mask``): the pixels whose centres — at whole
coordinates — lie inside or on it. Out: each 4-connected region of each class (and each hole of background) as
the polygon through its boundary pixels' centres, the shapes ordered so that what encloses comes before what it
encloses: filling them in file order, as labelme and its ``labelme2voc`` do, gives the mask back pixel for pixel.
Boxes are ``rectangle`` shapes from the first to the last pixel they cover; tags are ``flags`` (every class,
true where tagged); no embedded image data. ``labels.txt`` lists the classes as labelme's own scripts expect
(``__ignore__``, ``_background_``, then the classes).

In: a folder of labelme JSON files; ``polygon`` and ``circle`` shapes make the image's mask, filled in file order
on background as labelme fills them, ``rectangle`` shapes are boxes, true ``flags`` are tags. Other shape types
(points, lines) carry no region and are left out. Images are found from ``imagePath`` beside the JSON, or in
``images``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageDraw

from engine.annotations.types import UNLABELED, background_index
from engine.datasets.exporter import ExportReport, MaskSource, export_image, image_ids
from engine.datasets.folder import DatasetError
from engine.io.atomic import write_atomic
from engine.io.images import IMAGE_EXTENSIONS
from engine.project import Project

LABELME_VERSION = "5.4.1"
"""the labelme file version written (the fields are those of labelme 4 and 5)"""
BACKGROUND_LABELS = ("_background_", "background")
IGNORE = "__ignore__"
LABELS = "labels.txt"


# ---- out ----------------------------------------------------------------------------------------------------------
def labelme_steps(project: Project, out: str | Path, report: ExportReport, *, masks: MaskSource | None = None,
                  copy_images: bool = True) -> Iterator[tuple[int, int]]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = project.store
    classes = store.classes()
    names = [c.name for c in classes]
    index = {c.id: c.index for c in classes}
    background = background_index(names)
    hole = names[background] if background is not None else BACKGROUND_LABELS[0]
    masks = masks or (lambda rec: store.ground_truth(rec.id))
    records = store.images()
    stems = image_ids(records)
    for n, rec in enumerate(records):
        src = project.image_path(rec)
        image_name = f"{stems[rec.id]}{src.suffix.lower()}"
        if copy_images:
            export_image(src, out / image_name, rec, report)
        shapes = []
        mask = masks(rec)
        if mask is not None:
            report.masks += 1
            shapes += _region_shapes(mask, names, background, hole)
        marks = store.marks(rec.id)
        shapes += [_shape(names[index[b.class_id]], [[b.x0, b.y0], [max(b.x0, b.x1 - 1), max(b.y0, b.y1 - 1)]],
                          "rectangle") for b in marks.boxes]
        report.boxes += bool(marks.boxes)
        flags = {}
        if marks.tags is not None:
            tagged = {index[c] for c in marks.tags.class_ids}
            flags = {name: k in tagged for k, name in enumerate(names)}
            report.tags += 1
        data = {"version": LABELME_VERSION, "flags": flags, "shapes": shapes, "imagePath": image_name,
                "imageData": None, "imageHeight": rec.height, "imageWidth": rec.width}
        write_atomic(out / f"{stems[rec.id]}.json", lambda p, d=data: p.write_text(json.dumps(d, indent=1) + "\n",
                                                                                   encoding="utf-8"))
        yield n + 1, len(records)
    labels = [IGNORE, BACKGROUND_LABELS[0]] + [name for k, name in enumerate(names) if k != background]
    (out / LABELS).write_text("".join(label + "\n" for label in labels), encoding="utf-8")


def _region_shapes(mask: np.ndarray, names: list[str], background: int | None, hole: str) -> list[dict]:
    """Polygons that, filled in order as labelme fills them, paint ``mask`` back: each 4-connected region's outer
    contour (through its boundary pixels' centres), a region before those it encloses (larger filled area
    first). Background regions that touch the border need no shape: the canvas starts as background."""
    h, w = mask.shape
    shapes = []
    for k in (int(v) for v in np.unique(mask)):
        if k >= len(names) and k != UNLABELED:
            continue
        label = hole if k in (background, UNLABELED) else names[k]
        count, components = cv2.connectedComponents((mask == k).astype(np.uint8), connectivity=4)
        for j in range(1, count):
            region = (components == j).astype(np.uint8)
            if label == hole and (region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any()):
                continue
            contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                filled = np.zeros((h, w), np.uint8)
                cv2.drawContours(filled, [contour], -1, 1, thickness=-1)
                points = contour[:, 0, :].astype(float).tolist()
                shapes.append((-int(filled.sum()), _shape(label, points + points[-1:] * (3 - len(points)), "polygon")))
    shapes.sort(key=lambda item: item[0])
    return [shape for _, shape in shapes]


def _shape(label: str, points: list[list[float]], kind: str) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind, "flags": {}}


# ---- in -----------------------------------------------------------------------------------------------------------
@dataclass
class LabelmeSource:
    """A folder of labelme files read as a dataset (the interface engine.datasets.importer reads)."""

    root: Path
    classes: list[str]
    images: dict[str, Path]
    files: dict[str, dict]
    splits: dict[str, list[str]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()

    @classmethod
    def open(cls, folder: str | Path, images: str | Path | None = None) -> "LabelmeSource":
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetError(f"{folder} is not a folder of labelme JSON files")
        classes = ["background"]
        labels_file = folder / LABELS
        if labels_file.is_file():
            for line in labels_file.read_text(encoding="utf-8").splitlines():
                label = _class_name(line.strip())
                if line.strip() and line.strip() != IGNORE and label not in classes:
                    classes.append(label)
        found, files, problems = {}, {}, []
        for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or not isinstance(data.get("shapes"), list) or "imagePath" not in data:
                    raise ValueError("it has no 'shapes' list and 'imagePath'")
                for shape in data["shapes"]:
                    label = _class_name(str(shape["label"]))
                    if label not in classes:
                        classes.append(label)
                for name, on in (data.get("flags") or {}).items():
                    if on and _class_name(name) not in classes:
                        classes.append(_class_name(name))
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path}: not a labelme file ({exc})")
                continue
            image = _find(str(data["imagePath"]), path.parent, None if images is None else Path(images))
            if image is None:
                problems.append(f"{path}: its image {data['imagePath']} is not beside it"
                                + (f" or in {images}" if images else " (give the images' folder with --images)"))
                continue
            found[path.stem], files[path.stem] = image, data
        if len(classes) > 255:
            raise DatasetError(f"{folder}: at most 255 classes fit in 8-bit masks, got {len(classes)}")
        return cls(folder, classes, found, files, unreadable=tuple(problems))

    def ids(self, split: str = "all") -> list[str]:
        if split != "all":
            raise DatasetError("labelme files have no train/test split: import them with --split all")
        return list(self.images)

    def split_of(self, image_id: str) -> str | None:
        return None

    def has(self, kind: str) -> bool:
        kinds = {_kind(s) for d in self.files.values() for s in d["shapes"]}
        return {"masks": "region" in kinds, "boxes": "rectangle" in kinds,
                "tags": any(d.get("flags") for d in self.files.values())}.get(kind, False)

    def _data(self, image_id: str, size: tuple[int, int]) -> dict:
        data = self.files[image_id]
        w, h = size
        if (data.get("imageWidth"), data.get("imageHeight")) not in ((w, h), (None, None)):
            raise DatasetError(f"{self.root / image_id}.json: it says {data.get('imageWidth')}×"
                               f"{data.get('imageHeight')}, the image is {w}×{h}")
        return data

    def mask(self, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        shapes = [s for s in self._data(image_id, size)["shapes"] if _kind(s) == "region"]
        if not shapes:
            return None
        w, h = size
        out = np.zeros((h, w), np.uint8)
        for s in shapes:
            out[_pixels(s, h, w)] = self.classes.index(_class_name(str(s["label"])))
        return out

    def scribbles(self, image_id: str, size: tuple[int, int], folder: str = "scribbles") -> None:
        return None

    def boxes(self, image_id: str, size: tuple[int, int]) -> list[tuple[int, tuple[float, float, float, float]]] | None:
        out = []
        for s in self._data(image_id, size)["shapes"]:
            if _kind(s) != "rectangle":
                continue
            (ax, ay), (bx, by) = (_point(p) for p in s["points"][:2])
            x0, x1 = sorted((ax, bx))
            y0, y1 = sorted((ay, by))  # from the first to the last pixel covered, both whole
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(size[0]), x1 + 1), min(float(size[1]), y1 + 1)
            if x1 > x0 and y1 > y0:
                out.append((self.classes.index(_class_name(str(s["label"]))), (x0, y0, x1, y1)))
        return out or None

    def tags(self, image_id: str) -> list[int] | None:
        flags = self.files[image_id].get("flags") or {}
        if not flags:
            return None
        return sorted({self.classes.index(_class_name(k)) for k, on in flags.items() if on})


def _class_name(label: str) -> str:
    return "background" if label in BACKGROUND_LABELS else label


def _kind(shape: dict) -> str:
    kind = shape.get("shape_type") or "polygon"
    return "region" if kind in ("polygon", "circle") else kind


def _point(p) -> tuple[float, float]:
    x, y = float(p[0]), float(p[1])
    if not (np.isfinite(x) and np.isfinite(y)):
        raise DatasetError(f"a shape has the point {p}")
    return x, y


def _pixels(shape: dict, h: int, w: int) -> np.ndarray:
    """The pixels labelme gives a shape (Pillow's fill, pixel centres at whole coordinates, the outline in)."""
    points = [_point(p) for p in shape["points"]]
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if (shape.get("shape_type") or "polygon") == "circle":
        (cx, cy), (px, py) = points[:2]
        r = float(np.hypot(px - cx, py - cy))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif points:
        draw.polygon(points + points[-1:] * (3 - len(points)), outline=1, fill=1)
    return np.array(canvas, bool)


def _find(image_path: str, beside: Path, images: Path | None) -> Path | None:
    name = Path(image_path.replace("\\", "/"))
    if name.suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    candidates = [beside / name, beside / name.name]
    if images is not None:
        candidates = [images / name.name] + candidates
    return next((c for c in candidates if c.is_file()), None)
