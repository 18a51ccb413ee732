"""Import a dataset folder into a project: images, classes, ground-truth masks, scribbles, boxes and tags.

Scribble PNGs become strokes that rasterize back to exactly the same pixels (no human mark is altered), and
masks are kept as ground truth for evaluation only. Where a folder has masks but no scribbles, scribbles can be
simulated from the masks so that weak supervision can be studied on any segmentation data set.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.annotations.raster import seed_map_to_pens
from engine.annotations.store import StoreError
from engine.annotations.types import UNLABELED, Box, Stroke, background_index
from engine.datasets.folder import DatasetError, DatasetFolder
from engine.datasets.people import PEOPLE_RADIUS, simulate_people_scribbles
from engine.datasets.simulate import (DEFAULT_RADIUS, DEFAULT_RATIO, Scribble, check_stroke_settings,
                                      simulate_scribbles)
from engine.datasets.weak_labels import boxes_from_mask, tags_from_mask
from engine.io.atomic import write_atomic
from engine.io.images import ImageLoadError, load_image, read_image_size
from engine.project import Project


@dataclass
class ImportReport:
    images: int = 0
    masks: int = 0
    scribbled_images: int = 0
    strokes: int = 0
    boxes: int = 0
    tagged_images: int = 0
    simulated_images: int = 0
    already_imported: int = 0
    """images the project held before (found by path), left as they are"""
    errors: list[str] = field(default_factory=list)


MASKS_AS = ("truth", "marks")
"""what an imported mask becomes: the image's ground truth (scored, or trained on with --supervision full), or
marks (strokes over exactly its labelled pixels, which the GUI and wsv train learn from)"""

CHECK_SIDE = 256
"""Side an image is decoded at to check it on import: enough to meet a truncated or corrupt file, cheap for JPEG
(the decoder scales down)."""

SIMULATION_STYLES = ("centre-lines", "people")
"""How simulated scribbles look: each region's centre line, as ACDC's annotators drew (engine.datasets.simulate),
or the quick marks people make on photos (engine.datasets.people)."""


@dataclass(frozen=True)
class ScribbleSimulation:
    """Settings of the scribble simulator: its style, the centre lines' length ``ratio`` (centre-lines style
    only), the brush ``radius`` (None: the style's own) and the seed."""

    ratio: float = DEFAULT_RATIO
    radius: float | None = None
    seed: int = 0
    style: str = "centre-lines"

    def __post_init__(self):
        if self.style not in SIMULATION_STYLES:
            raise ValueError(f"the scribble style must be one of {', '.join(SIMULATION_STYLES)}, got {self.style!r}")
        check_stroke_settings(self.ratio, self.brush)

    @property
    def brush(self) -> float:
        """The brush radius the strokes are drawn with."""
        if self.radius is not None:
            return self.radius
        return PEOPLE_RADIUS if self.style == "people" else DEFAULT_RADIUS

    def describe(self) -> str:
        if self.style == "people":
            return f"people-like strokes, radius {self.brush}"
        return f"ratio {self.ratio}, radius {self.brush}"

    def draw(self, mask, background: int | None, offset: int = 0) -> list[Scribble]:
        """Strokes for one mask; ``offset`` varies the seed from image to image."""
        if self.style == "people":
            return simulate_people_scribbles(mask, background=background, radius=self.brush, seed=self.seed + offset)
        return simulate_scribbles(mask, ratio=self.ratio, radius=self.brush, seed=self.seed + offset)


IMAGES_PER_COMMIT = 64
COMMIT_SECONDS = 0.1
"""An import commits every IMAGES_PER_COMMIT images or COMMIT_SECONDS, whichever comes first: a commit waits for
the disk, and one per image made it a good part of an import's time, while imported images still appear in an
open window within a moment. Each image is stored whole or not at all (a savepoint), so an interrupted import
loses at most the images of its last commit, which a rerun adds."""


def import_dataset(dataset: str | Path | DatasetFolder, project_root: str | Path, *, split: str = "all",
                   copy_images: bool = False, scribbles_dir: str = "scribbles",
                   simulate: ScribbleSimulation | None = None, simulate_boxes: bool = False,
                   simulate_tags: bool = False, masks_as: str = "truth",
                   on_progress: Callable[[int, int], None] | None = None) -> tuple[Project, ImportReport]:
    """Import ``dataset`` — a dataset folder, or another format read into its interface (engine.formats) — into
    the project at ``project_root`` (created if needed; an existing project must have the same classes). Masks
    become ground truth, or with ``masks_as="marks"`` strokes covering exactly their labelled pixels. An image that cannot be read, or whose label files are malformed, is reported in
    ``errors`` and the rest still imported. ``simulate`` fills in scribbles from masks for images that have
    no scribble file."""
    ds = DatasetFolder.open(dataset) if isinstance(dataset, (str, Path)) else dataset
    if masks_as not in MASKS_AS:
        raise DatasetError(f"masks are imported as one of {', '.join(MASKS_AS)}, not {masks_as!r}")
    ids = ds.ids(split)
    if scribbles_dir != "scribbles" and not (ds.root / scribbles_dir).is_dir():
        raise DatasetError(f"{ds.root} has no {scribbles_dir}/ folder")
    if Project.exists(project_root):
        project = Project.open(project_root)
        names = [c.name for c in project.store.classes()]
        if names != ds.classes:
            project.close()
            raise DatasetError(f"the project's classes {names} differ from the dataset's {ds.classes}")
    else:
        project = Project.create(project_root, ds.classes)
    classes = project.store.classes()
    background = background_index([c.name for c in classes])
    report = ImportReport(errors=list(ds.unreadable))
    known = {rec.path for rec in project.store.images()}
    n = 0
    while n < len(ids):
        with project.store.transaction():  # each image a savepoint inside: whole or absent
            start, opened = n, time.monotonic()
            while n < len(ids) and n - start < IMAGES_PER_COMMIT and time.monotonic() - opened < COMMIT_SECONDS:
                image_id = ids[n]
                src = ds.images[image_id]
                try:
                    if copy_images:
                        src = _copy_into(project, src)
                    if project.relative(src) in known:
                        report.already_imported += 1
                    else:
                        _import_one(project, ds, image_id, src, n, classes, background, report,
                                    scribbles_dir=scribbles_dir, simulate=simulate, simulate_boxes=simulate_boxes,
                                    simulate_tags=simulate_tags, masks_as=masks_as)
                        known.add(project.relative(src))
                except (ImageLoadError, DatasetError, StoreError, OSError) as exc:
                    report.errors.append(str(exc))
                if on_progress:
                    on_progress(n + 1, len(ids))
                n += 1
    return project, report


def _copy_into(project: Project, src: Path) -> Path:
    """Copy an image into the project's images/ folder, checked and under a temporary name first, so that an
    interrupted or refused copy never leaves a file that looks imported. A symbolic link is copied as the file it
    points to (the project must hold the pixels), after the same checks."""
    dst = project.root / "images" / src.name
    if dst.exists():
        return dst
    load_image(src, max_side=CHECK_SIDE)
    dst.parent.mkdir(exist_ok=True)
    write_atomic(dst, lambda partial: shutil.copyfile(src, partial))
    return dst


def _import_one(project: Project, ds: DatasetFolder, image_id: str, src: Path, n: int, classes, background,
                report: ImportReport, *, scribbles_dir: str, simulate: ScribbleSimulation | None,
                simulate_boxes: bool, simulate_tags: bool, masks_as: str) -> None:
    """Read and check everything about one image first, then store the image with all its marks in one
    transaction: an import killed half-way leaves each image either complete or absent, and a rerun picks up the
    absent ones. The image is decoded once, so a truncated file is refused here rather than dropped later."""
    load_image(src, max_side=CHECK_SIDE)
    size = read_image_size(src)
    mask = ds.mask(image_id, size)
    seeds = ds.scribbles(image_id, size, scribbles_dir)
    if masks_as == "marks" and mask is not None:
        seeds = mask if seeds is None else np.where(seeds == UNLABELED, mask, seeds)  # drawn strokes win
        mask = None
    boxes = ds.boxes(image_id, size)
    if boxes is None and simulate_boxes and mask is not None:
        boxes = boxes_from_mask(mask, background=background)
    tags = ds.tags(image_id)
    if tags is None and simulate_tags and mask is not None:
        tags = tags_from_mask(mask)
    store = project.store
    with store.transaction():
        rec = project.add_image(src, split=ds.split_of(image_id))
        if mask is not None:
            store.set_ground_truth(rec.id, mask)
        strokes: list[Stroke] = []
        simulated = False
        if seeds is not None:
            strokes = [Stroke(rec.id, classes[k].id, r, pts) for k, r, pts in seed_map_to_pens(seeds)]
        elif simulate is not None and mask is not None:
            strokes = [Stroke(rec.id, classes[s.label].id, s.radius, s.points)
                       for s in simulate.draw(mask, background, n)]
            simulated = True
        if strokes:
            store.add_strokes(strokes)
        for k, (x0, y0, x1, y1) in boxes or []:
            store.add_box(Box(rec.id, classes[k].id, x0, y0, x1, y1))
        if tags is not None:
            store.set_tags(rec.id, [classes[k].id for k in tags])
    report.images += 1
    report.masks += mask is not None
    report.simulated_images += simulated
    report.scribbled_images += bool(strokes)
    report.strokes += len(strokes)
    report.boxes += len(boxes or [])
    report.tagged_images += tags is not None
