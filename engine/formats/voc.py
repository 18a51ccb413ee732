"""Pascal VOC in and out, laid out as in VOCdevkit: ``JPEGImages/``, ``SegmentationClass/`` (palette PNGs,
class index per pixel, 255 void), ``Annotations/ID.xml`` (boxes, 1-based inclusive pixel corners as VOC writes
them) and ``ImageSets/Segmentation/{train,val,trainval}.txt``, plus ``class_names.txt`` (as labelme2voc writes
it: class 0 first) since a project's classes are not VOC's twenty. VOC has no image tags: they are not written.
On import the ``val`` split becomes our ``test``; without ``class_names.txt`` the classes are VOC's own where the
masks fit them, then the box names."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.datasets.exporter import ExportReport, MaskSource, export_image, image_ids
from engine.datasets.folder import DatasetError
from engine.io.atomic import write_atomic
from engine.io.images import list_images
from engine.io.palette import load_index_png, save_index_png
from engine.project import Project

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
CLASS_NAMES = "class_names.txt"
SPLITS = {"train": "train", "test": "val"}
"""our split -> VOC's image set"""


# ---- out ----------------------------------------------------------------------------------------------------------
def voc_steps(project: Project, out: str | Path, report: ExportReport, *, masks: MaskSource | None = None,
              copy_images: bool = True) -> Iterator[tuple[int, int]]:
    out = Path(out)
    for sub in ("JPEGImages", "SegmentationClass", "Annotations", "ImageSets/Segmentation"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    store = project.store
    classes = store.classes()
    names = [c.name for c in classes]
    index = {c.id: c.index for c in classes}
    masks = masks or (lambda rec: store.ground_truth(rec.id))
    records = store.images()
    stems = image_ids(records)
    sets: dict[str, list[str]] = {"train": [], "val": [], "trainval": []}
    for n, rec in enumerate(records):
        stem = stems[rec.id]
        src = project.image_path(rec)
        if copy_images:
            export_image(src, out / "JPEGImages" / f"{stem}{src.suffix.lower()}", rec, report)
        mask = masks(rec)
        if mask is not None:
            save_index_png(out / "SegmentationClass" / f"{stem}.png", mask)
            report.masks += 1
            sets["trainval"].append(stem)
            if rec.split in SPLITS:
                sets[SPLITS[rec.split]].append(stem)
        boxes = store.boxes(rec.id)
        if boxes:
            xml = _annotation_xml(f"{stem}{src.suffix.lower()}", rec.width, rec.height,
                                  [(names[index[b.class_id]], b.x0, b.y0, b.x1, b.y1) for b in boxes])
            write_atomic(out / "Annotations" / f"{stem}.xml", lambda p, x=xml: p.write_bytes(x))
            report.boxes += 1
        yield n + 1, len(records)
    for name, ids in sets.items():
        if ids:
            (out / "ImageSets" / "Segmentation" / f"{name}.txt").write_text("".join(i + "\n" for i in ids),
                                                                          encoding="utf-8")
    (out / CLASS_NAMES).write_text("".join(name + "\n" for name in names), encoding="utf-8")


def _annotation_xml(filename: str, width: int, height: int, boxes: list[tuple]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for name, x0, y0, x1, y1 in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        # VOC: 1-based, inclusive: pixels x0 .. x1 - 1 of ours are xmin .. xmax
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, tag).text = f"{value:g}"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


# ---- in -----------------------------------------------------------------------------------------------------------
@dataclass
class VocSource:
    """A VOC folder read as a dataset (the interface engine.datasets.importer reads)."""

    root: Path
    classes: list[str]
    images: dict[str, Path]
    splits: dict[str, list[str]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()

    @classmethod
    def open(cls, root: str | Path, images: str | Path | None = None) -> "VocSource":
        root = Path(root)
        if (root / "VOC2012").is_dir() and not (root / "JPEGImages").is_dir():
            root = root / "VOC2012"
        folder = Path(images) if images is not None else root / "JPEGImages"
        if not folder.is_dir():
            raise DatasetError(f"{root} has no JPEGImages/ folder (give the images' folder with --images)")
        problems: list = []
        found = {p.stem: p for p in list_images(folder, problems)}
        names_file = root / CLASS_NAMES
        if names_file.is_file():
            classes = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            classes = list(VOC_CLASSES)
        source = cls(root, classes, found, unreadable=tuple(str(e) for e in problems))
        for stem in found:  # box names no class list knows become classes
            for name, *_ in source._objects(stem):
                if name not in source.classes:
                    source.classes.append(name)
        sets = root / "ImageSets" / "Segmentation"
        for ours, theirs in SPLITS.items():
            f = sets / f"{theirs}.txt"
            if f.is_file():
                source.splits[ours] = [i for i in f.read_text(encoding="utf-8").split() if i in found]
        return source

    def ids(self, split: str = "all") -> list[str]:
        if split == "all":
            return list(self.images)
        if split not in self.splits:
            raise DatasetError(f"{self.root} has no ImageSets/Segmentation/{SPLITS.get(split, split)}.txt")
        return list(self.splits[split])

    def split_of(self, image_id: str) -> str | None:
        return next((s for s, ids in self.splits.items() if image_id in ids), None)

    def has(self, kind: str) -> bool:
        sub = {"masks": "SegmentationClass", "boxes": "Annotations"}.get(kind)
        return sub is not None and (self.root / sub).is_dir() and any((self.root / sub).iterdir())

    def mask(self, image_id: str, size: tuple[int, int]) -> np.ndarray | None:
        path = self.root / "SegmentationClass" / f"{image_id}.png"
        if not path.is_file():
            return None
        try:
            mask = load_index_png(path)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: {exc}") from None
        if mask.shape != (size[1], size[0]):
            raise DatasetError(f"{path} is {mask.shape[1]}×{mask.shape[0]}, its image {size[0]}×{size[1]}")
        bad = np.setdiff1d(np.unique(mask), [*range(len(self.classes)), 255])
        if bad.size:
            raise DatasetError(f"{path} holds class {int(bad[0])}, beyond the {len(self.classes)} classes "
                               f"({CLASS_NAMES} names them)")
        return mask

    def scribbles(self, image_id: str, size: tuple[int, int], folder: str = "scribbles") -> None:
        return None

    def _objects(self, image_id: str) -> list[tuple[str, float, float, float, float]]:
        path = self.root / "Annotations" / f"{image_id}.xml"
        if not path.is_file():
            return []
        try:
            root = ET.parse(path).getroot()
            return [(obj.findtext("name", "").strip(),
                     *(float(obj.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")))
                    for obj in root.iter("object")]
        except (ET.ParseError, AttributeError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: not a VOC annotation ({exc})") from None

    def boxes(self, image_id: str, size: tuple[int, int]) -> list[tuple[int, tuple[float, float, float, float]]] | None:
        out = []
        for name, xmin, ymin, xmax, ymax in self._objects(image_id):
            x0, y0 = max(0.0, xmin - 1), max(0.0, ymin - 1)
            x1, y1 = min(float(size[0]), xmax), min(float(size[1]), ymax)
            if x1 > x0 and y1 > y0:
                out.append((self.classes.index(name), (x0, y0, x1, y1)))
        return out or None

    def tags(self, image_id: str) -> None:
        return None
