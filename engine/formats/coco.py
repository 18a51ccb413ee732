"""COCO JSON (the object-detection and instance-segmentation format of detectron2, mmdetection, CVAT and Roboflow)
in and out.

Out: ``annotations.json`` beside an ``images/`` folder. ``categories`` are the project's classes less the class
named background, numbered from 1; each image with a mask gives one annotation per connected region of each
object class (8-connected), its ``segmentation`` a compressed RLE as pycocotools writes it, with ``bbox`` (x, y,
width, height) and ``area``; an image without a mask gives its boxes as box-only annotations (no
``segmentation``); tags go in each image's ``image_tags`` (class names). Brush strokes have no place in COCO
(export a dataset folder to keep them).

In: any COCO file — compressed or uncompressed RLE or polygons, crowd regions (kept out of training as ignore
pixels, 255) — where each image's pixels not covered by an annotation are background. Annotations with a
segmentation make the image's mask; those with only a ``bbox`` are boxes; ``image_tags`` (names) are tags.
Classes: background, then the categories by id, then tag names no category has.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from engine.annotations.types import background_index
from engine.datasets.exporter import ExportReport, MaskSource, export_image, image_ids
from engine.datasets.folder import DatasetError
from engine.formats import rle
from engine.io.atomic import write_atomic
from engine.io.images import IMAGE_EXTENSIONS
from engine.project import Project

ANNOTATIONS = "annotations.json"
BACKGROUND = "background"


# ---- out ----------------------------------------------------------------------------------------------------------
def coco_steps(project: Project, out: str | Path, report: ExportReport, *, masks: MaskSource | None = None,
               copy_images: bool = True) -> Iterator[tuple[int, int]]:
    """Write ``project`` as COCO into ``out`` (``masks`` gives each image's mask, default its ground truth)."""
    out = Path(out)
    store = project.store
    classes = store.classes()
    names = [c.name for c in classes]
    index = {c.id: c.index for c in classes}
    background = background_index(names)
    category = {k: i + 1 for i, k in enumerate(k for k in range(len(names)) if k != background)}
    masks = masks or (lambda rec: store.ground_truth(rec.id))
    records = store.images()
    stems = image_ids(records)
    images, annotations = [], []
    (out / "images").mkdir(parents=True, exist_ok=True)
    for n, rec in enumerate(records):
        src = project.image_path(rec)
        file_name = f"images/{stems[rec.id]}{src.suffix.lower()}"
        if copy_images:
            export_image(src, out / file_name, rec, report)
        entry = {"id": n + 1, "file_name": file_name, "width": rec.width, "height": rec.height}
        marks = store.marks(rec.id)
        if marks.tags is not None:
            entry["image_tags"] = [names[k] for k in sorted(index[c] for c in marks.tags.class_ids)]
            report.tags += 1
        images.append(entry)
        mask = masks(rec)
        if mask is not None:
            report.masks += 1
            for k in (int(v) for v in np.unique(mask)):
                if k in category:
                    annotations += [{"image_id": n + 1, "category_id": category[k], **_region(region)}
                                    for region in _regions(mask == k)]
        else:
            boxes = [b for b in marks.boxes if index[b.class_id] in category]
            annotations += [{"image_id": n + 1, "category_id": category[index[b.class_id]],
                             "bbox": [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0], "area": (b.x1 - b.x0) * (b.y1 - b.y0),
                             "iscrowd": 0} for b in boxes]
            report.boxes += bool(boxes)
        yield n + 1, len(records)
    for i, a in enumerate(annotations):
        a["id"] = i + 1
    data = {"info": {"description": f"exported by WSV Studio from {project.root.name}"},
            "images": images,
            "categories": [{"id": i, "name": names[k], "supercategory": ""} for k, i in category.items()],
            "annotations": annotations}
    write_atomic(out / ANNOTATIONS, lambda p: p.write_text(json.dumps(data) + "\n", encoding="utf-8"))


def _regions(mask: np.ndarray) -> Iterator[np.ndarray]:
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    for j in range(1, count):
        yield labels == j


def _region(region: np.ndarray) -> dict:
    ys, xs = np.nonzero(region)
    x0, y0 = int(xs.min()), int(ys.min())
    return {"segmentation": rle.encode(region), "area": int(region.sum()),
            "bbox": [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0], "iscrowd": 0}


# ---- in -----------------------------------------------------------------------------------------------------------
@dataclass
class CocoSource:
    """A COCO file read as a dataset (the interface of engine.datasets.folder.DatasetFolder that
    engine.datasets.importer reads)."""

    root: Path
    classes: list[str]
    images: dict[str, Path]
    entries: dict[str, dict]
    annotations: dict[int, list[dict]]
    category_index: dict[int, int]
    splits: dict[str, list[str]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()

    @classmethod
    def open(cls, path: str | Path, images: str | Path | None = None) -> "CocoSource":
        """``path``: the JSON file, or a folder holding annotations.json; ``images``: where to look for the
        images when their ``file_name`` is not found beside the JSON."""
        path = Path(path)
        if path.is_dir():
            path = path / ANNOTATIONS
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{path} is not a COCO JSON file: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DatasetError(f"{path} is not a COCO file: it has no 'images' list")
        try:
            categories = sorted(((int(c["id"]), str(c["name"])) for c in data.get("categories", [])))
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{path}: each category needs an integer 'id' and a 'name'") from None
        classes = [BACKGROUND] + [name for _, name in categories if name != BACKGROUND]
        category_index = {cid: classes.index(name) for cid, name in categories}
        by_image: dict[int, list[dict]] = {}
        for a in data.get("annotations", []):
            if not isinstance(a, dict) or "image_id" not in a or a.get("category_id") not in category_index:
                raise DatasetError(f"{path}: annotation {a.get('id') if isinstance(a, dict) else a!r} has no image "
                                   "or an unknown category")
            by_image.setdefault(a["image_id"], []).append(a)
        found, entries, problems = {}, {}, []
        for entry in data["images"]:
            if not isinstance(entry, dict) or "file_name" not in entry or "id" not in entry:
                raise DatasetError(f"{path}: each image needs an 'id' and a 'file_name'")
            for tag in entry.get("image_tags", []) or []:
                if str(tag) not in classes:
                    classes.append(str(tag))
            file = _find(str(entry["file_name"]), path.parent, None if images is None else Path(images))
            if file is None:
                problems.append(f"{entry['file_name']}: not found beside {path.name}"
                                + (f" or in {images}" if images else " (give the images' folder with --images)"))
                continue
            stem, k = file.stem, 2
            while stem in found:
                stem, k = f"{file.stem}_{k}", k + 1
            found[stem], entries[stem] = file, entry
        if len(classes) > 255:
            raise DatasetError(f"{path}: at most 255 classes fit in 8-bit masks, got {len(classes)}")
        return cls(path.parent, classes, found, entries, by_image, category_index, unreadable=tuple(problems))

    def ids(self, split: str = "all") -> list[str]:
        if split != "all":
            raise DatasetError("a COCO file has no train/test split: import it with --split all")
        return list(self.images)

    def split_of(self, image_id: str) -> str | None:
        return None

    def has(self, kind: str) -> bool:
        anns = [a for v in self.annotations.values() for a in v]
        return {"masks": any(a.get("segmentation") for a in anns),
                "boxes": any(not a.get("segmentation") for a in anns),
                "tags": any("image_tags" in e for e in self.entries.values())}.get(kind, False)

    def _checked(self, image_id: str, size: tuple[int, int]) -> tuple[dict, list[dict]]:
        entry = self.entries[image_id]
        w, h = size
        if (entry.get("width"), entry.get("height")) not in ((w, h), (None, None)):
            raise DatasetError(f"{self.images[image_id].name}: COCO says {entry.get('width')}×{entry.get('height')}, "
                               f"the image is {w}×{h}")
        return entry, self.annotations.get(entry["id"], [])

    def mask(self, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        """Background where no annotation lies, each annotation's class on its pixels (later ones on top),
        255 on crowd regions; None where the image has no segmented annotation."""
        _, anns = self._checked(image_id, size)
        segmented = [a for a in anns if a.get("segmentation")]
        if not segmented:
            return None
        w, h = size
        out = np.zeros((h, w), np.uint8)
        for a in segmented:
            out[self._pixels(a, h, w)] = 255 if a.get("iscrowd") else self.category_index[a["category_id"]]
        return out

    def _pixels(self, a: dict, h: int, w: int) -> np.ndarray:
        seg = a["segmentation"]
        try:
            if isinstance(seg, list):
                return rle.polygons_mask(seg, h, w)
            m = rle.decode(seg)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"annotation {a.get('id')}: unreadable segmentation ({exc})") from None
        if m.shape != (h, w):
            raise DatasetError(f"annotation {a.get('id')}: its RLE is {m.shape[1]}×{m.shape[0]}, the image {w}×{h}")
        return m

    def scribbles(self, image_id: str, size: tuple[int, int], folder: str = "scribbles") -> None:
        return None

    def boxes(self, image_id: str, size: tuple[int, int]) -> list[tuple[int, tuple[float, float, float, float]]] | None:
        """The box-only annotations, clipped to the image; None where there are none."""
        _, anns = self._checked(image_id, size)
        out = []
        for a in anns:
            if a.get("segmentation"):
                continue
            try:
                x, y, bw, bh = (float(v) for v in a["bbox"])
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"annotation {a.get('id')}: 'bbox' must be [x, y, width, height]") from None
            if not all(np.isfinite([x, y, bw, bh])) or bw <= 0 or bh <= 0:
                raise DatasetError(f"annotation {a.get('id')}: bbox {a['bbox']} is empty or not finite")
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(size[0]), x + bw), min(float(size[1]), y + bh)
            out.append((self.category_index[a["category_id"]], (x0, y0, x1, y1)))
        return out or None

    def tags(self, image_id: str) -> list[int] | None:
        tags = self.entries[image_id].get("image_tags")
        return None if tags is None else sorted({self.classes.index(str(t)) for t in tags})


def _find(file_name: str, beside: Path, images: Path | None) -> Path | None:
    name = Path(file_name)
    if name.suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    candidates = [beside / name, beside / "images" / name.name]
    if images is not None:
        candidates = [images / name, images / name.name] + candidates
    return next((c for c in candidates if c.is_file()), None)
