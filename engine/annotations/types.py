"""Plain domain objects of the annotation store.

They carry no behaviour beyond validation so that every layer (store, trainer, CLI, GUI) can pass them around
and across threads without sharing state; drawing them is the GUI's job.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNLABELED = 255
"""Seed-map and mask value for "no label here" (also the ignore index of the losses)."""


def background_index(class_names: list[str]) -> int | None:
    """Index of the class named "background" (any case): what lies outside every box. A project without one
    (MSRC: building, grass, sky, ...) has every class boxed, and outside all boxes nothing is known — treating
    its first class as background there taught a box-trained network to call unboxed objects "building"."""
    names = [n.strip().lower() for n in class_names]
    return names.index("background") if "background" in names else None


@dataclass(frozen=True)
class ClassDef:
    """One segmentation class. ``index`` is its position in the class list and the value it has in masks;
    ``id`` is the store's stable key, which marks refer to, so renaming or reordering never rewrites marks."""

    name: str
    color: tuple[int, int, int]
    index: int = -1
    id: int | None = None


@dataclass(frozen=True)
class ImageRecord:
    """An image of a project: where it is (relative to the project folder), its size as stored on disk after
    EXIF orientation, and a content hash that lets a moved folder be re-linked."""

    path: str
    width: int
    height: int
    sha256: str
    split: str | None = None
    id: int | None = None


@dataclass(eq=False)
class Stroke:
    """A brush or eraser stroke in image pixel coordinates of the original image.

    ``points`` is an (n, 2) float32 array of x, y; rows of NaN split it into separate pieces drawn with the same
    pen (used for exact import of pixel scribbles). Pixel (col, row) has its centre at (col + 0.5, row + 0.5) and
    is covered when that centre lies within ``radius`` of the polyline. ``class_id`` is None for the eraser.
    """

    image_id: int
    class_id: int | None
    radius: float
    points: np.ndarray
    id: int | None = None

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
        if len(pts) == 0:
            raise ValueError("a stroke needs at least one point")
        if not self.radius > 0:
            raise ValueError(f"stroke radius must be positive, got {self.radius}")
        self.points = pts

    @property
    def is_eraser(self) -> bool:
        return self.class_id is None


@dataclass(frozen=True)
class Box:
    """An axis-aligned object box, xyxy in original image pixel coordinates (x0 < x1, y0 < y1)."""

    image_id: int
    class_id: int
    x0: float
    y0: float
    x1: float
    y1: float
    id: int | None = None

    def __post_init__(self) -> None:
        if not (self.x1 > self.x0 and self.y1 > self.y0):
            raise ValueError(f"box must have x0 < x1 and y0 < y1, got {(self.x0, self.y0, self.x1, self.y1)}")

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class Tags:
    """Image-level tags: the class ids present in an image; every other class is implicitly absent.
    An image without a Tags record is simply untagged."""

    image_id: int
    class_ids: frozenset[int] = field(default_factory=frozenset)
