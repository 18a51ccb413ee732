"""Export a project to the dataset-folder layout that other tools and our own CLI read.

Masks and scribbles are written as 8-bit palette PNGs with the VOC colour map, so the files carry exact class
indices and still show colours in any viewer. Output is deterministic: exporting the same project twice gives
byte-identical files.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from engine.annotations.types import ImageRecord
from engine.io.atomic import write_atomic
from engine.io.images import IMAGE_EXTENSIONS
from engine.io.palette import save_index_png
from engine.project import Project

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
"""Characters that cannot stand in an ID: line breaks would split train.txt, slashes make paths."""

MaskSource = Callable[[ImageRecord], "np.ndarray | None"]


@dataclass
class ExportReport:
    images: int = 0
    masks: int = 0
    scribbles: int = 0
    boxes: int = 0
    tags: int = 0
    errors: list[str] = field(default_factory=list)


def image_ids(records: list[ImageRecord]) -> dict[int, str]:
    """A unique dataset ID per image: its file name without extension, suffixed where two names collide."""
    out, used = {}, set()
    for rec in records:
        stem = _UNSAFE.sub("_", Path(rec.path).stem) or "image"
        candidate, k = stem, 2
        while candidate in used:
            candidate, k = f"{stem}_{k}", k + 1
        used.add(candidate)
        out[rec.id] = candidate
    return out


def export_dataset(project: Project, out: str | Path, *, copy_images: bool = True, masks: MaskSource | None = None,
                   on_progress: Callable[[int, int], None] | None = None) -> ExportReport:
    """Write ``project`` to ``out``. ``masks`` gives the mask of each image (default: its ground truth);
    images without one get no mask file. A missing image file is reported and its labels still written."""
    report = ExportReport()
    for done, total in export_steps(project, out, report, copy_images=copy_images, masks=masks):
        if on_progress:
            on_progress(done, total)
    return report


def export_steps(project: Project, out: str | Path, report: ExportReport, *, copy_images: bool = True,
                 masks: MaskSource | None = None) -> Iterator[tuple[int, int]]:
    """``export_dataset`` one image at a time, yielding (images done, total) after each, filling ``report``:
    whoever drives it may stop between images (the GUI's Cancel), leaving whole files only."""
    out = Path(out)
    store = project.store
    masks = masks or (lambda rec: store.ground_truth(rec.id))
    classes = store.classes()
    index = {c.id: c.index for c in classes}
    records = store.images()
    ids = image_ids(records)
    for sub in ("images", "masks", "scribbles", "boxes", "tags"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("".join(c.name + "\n" for c in classes), encoding="utf-8")
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for n, rec in enumerate(records):
        rid = ids[rec.id]
        if rec.split:
            splits[rec.split].append(rid)
        if copy_images:
            src = project.image_path(rec)
            export_image(src, out / "images" / (rid + src.suffix.lower()), rec, report)
        mask = masks(rec)
        if mask is not None:
            save_index_png(out / "masks" / f"{rid}.png", mask)
            report.masks += 1
        marks = store.marks(rec.id)
        if marks.strokes:
            save_index_png(out / "scribbles" / f"{rid}.png", store.seed_map(rec.id))
            report.scribbles += 1
        if marks.boxes:
            boxes = [{"class": index[b.class_id], "box": [b.x0, b.y0, b.x1, b.y1]} for b in marks.boxes]
            _write_json(out / "boxes" / f"{rid}.json", boxes)
            report.boxes += 1
        if marks.tags is not None:
            _write_json(out / "tags" / f"{rid}.json", {"present": sorted(index[k] for k in marks.tags.class_ids)})
            report.tags += 1
        yield n + 1, len(records)
    for split, members in splits.items():
        if members:
            (out / f"{split}.txt").write_text("".join(i + "\n" for i in members), encoding="utf-8")
    for sub in ("images", "masks", "scribbles", "boxes", "tags"):
        if not any((out / sub).iterdir()):
            (out / sub).rmdir()


def export_image(src: Path, dst: Path, rec: ImageRecord, report: ExportReport) -> None:
    """Copy one of the project's images into an export, counted in ``report``, or the reason it could not be."""
    try:
        copy_image(src, dst, rec.sha256)
        report.images += 1
    except OSError as exc:
        report.errors.append(f"cannot copy image {src}: {exc.strerror or exc}")


def copy_image(src: Path, dst: Path, sha256: str) -> None:
    """Copy an image file only if it is the picture the project recorded (same content hash), so a damaged or
    edited project file can never make export copy some other file; written under a temporary name first."""
    if src.suffix.lower() not in IMAGE_EXTENSIONS:
        raise OSError(f"{src.name} is not an image file name")
    digest = hashlib.sha256()

    def copy(partial: Path) -> None:
        with open(src, "rb") as fin, open(partial, "wb") as fout:
            while block := fin.read(1 << 20):
                digest.update(block)
                fout.write(block)
        if digest.hexdigest() != sha256:
            raise OSError("its content is not the image the project recorded (changed or replaced since)")
    write_atomic(dst, copy)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
