"""Development data sets that look like people's marks on diverse photos: one object per image, each image marked.

A user who marks a folder of everyday photos marks one object of interest in each — a different kind of object
from image to image — with one short stroke and a few background strokes, or with one box. Data sets where one
class recurs in every image (horses, ACDC) let the network learn that class and hide how little a few strokes say
about a single photo. These sets are built from the evaluation data's masks:

* ``msrc-objects``: MSRC photos whose largest region of a "thing" class (cow, sheep, face, car, book, ...) covers
  2–80 % of the image; that region is ``object``, the stuff classes (grass, sky, road, ...) ``background``, and the
  other thing regions and MSRC's void pixels are ignored (255) — they belong to neither. The marked images are
  drawn evenly over the object classes, so a sheep, a book and a bicycle sit side by side;
* ``horses-objects``: the horse photos, the largest horse region as ``object`` (other horses ignored).

Each marked image (``train.txt``) gets people-like scribbles (engine.datasets.people) in ``scribbles/`` and the
object's tight box in ``boxes/``; the test images (``test.txt``) get nothing, for scoring the network on images
nobody marked. Images are linked, not copied. The folder records how it was built (``objects.json``) and is
rebuilt when asked for other settings.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from engine.datasets.folder import DatasetFolder
from engine.datasets.importer import ScribbleSimulation
from engine.datasets.simulate import rasterize_scribbles
from engine.io.images import load_image
from engine.io.palette import save_index_png

THINGS = ("cow", "horse", "sheep", "aeroplane", "face", "car", "bicycle", "flower", "sign", "bird", "book", "chair",
          "cat", "dog", "body", "boat")
"""MSRC's classes that are objects one would mark in a photo; the rest (building, grass, tree, sky, mountain,
water, road) are stuff, the background."""

OBJECT_SETS = {"msrc-objects": ("msrc", THINGS, 100), "horses-objects": ("horses", ("horse",), 50)}
"""name -> (source data set, classes that can be the object, marked images)"""

TEST_IMAGES = 100
"""unmarked images scored at most, from the source's test split"""

MIN_SHARE, MAX_SHARE = 0.02, 0.8
"""the object's share of the image: smaller objects are specks nobody marks alone, larger ones leave no background"""


def is_object_set(name: str) -> bool:
    return name in OBJECT_SETS


def object_mask(mask: np.ndarray, object_classes: list[int], ignore_index: int = 255) -> np.ndarray | None:
    """(H, W) uint8: 1 on the largest 8-connected region of any of ``object_classes``, 255 on the other regions of
    those classes and on void pixels, 0 elsewhere; None where no region's share of the image is in range."""
    best = None
    for k in object_classes:
        n, comp, stats, _ = cv2.connectedComponentsWithStats((mask == k).astype(np.uint8), connectivity=8)
        for j in range(1, n):
            if best is None or stats[j, cv2.CC_STAT_AREA] > best[0]:
                best = (int(stats[j, cv2.CC_STAT_AREA]), comp == j)
    if best is None or not MIN_SHARE <= best[0] / mask.size <= MAX_SHARE:
        return None
    out = np.zeros(mask.shape, np.uint8)
    out[np.isin(mask, object_classes) | (mask == ignore_index)] = ignore_index
    out[best[1]] = 1
    return out


def build_object_set(data_root: Path, name: str, out: Path, simulation: ScribbleSimulation, seed: int = 0,
                     marked: int | None = None) -> DatasetFolder:
    """The data set ``name`` (OBJECT_SETS) built from ``data_root`` into ``out``, or the one already there if it
    was built with the same settings."""
    source_name, things, default_marked = OBJECT_SETS[name]
    marked = default_marked if marked is None else marked
    settings = {"source": source_name, "marked": marked, "seed": seed, "style": simulation.style,
                "ratio": simulation.ratio, "radius": simulation.brush, "scribble_seed": simulation.seed}
    record = out / "objects.json"
    if record.is_file() and json.loads(record.read_text()) == settings:
        return DatasetFolder.open(out)
    if out.exists():
        shutil.rmtree(out)
    src = DatasetFolder.open(data_root / source_name)
    object_classes = [src.classes.index(c) for c in things if c in src.classes]
    for folder in ("images", "masks", "scribbles", "boxes"):
        (out / folder).mkdir(parents=True)
    (out / "classes.txt").write_text("background\nobject\n", encoding="utf-8")
    masks: dict[str, tuple[np.ndarray, str]] = {}  # id -> (object mask, the object's source class)
    for split in ("train", "test"):
        for image_id in src.ids(split):
            truth = src.mask(image_id, _size(src, image_id))
            if truth is None:
                continue
            obj = object_mask(truth, object_classes)
            if obj is not None:
                masks[image_id] = (obj, src.classes[int(np.bincount(truth[obj == 1]).argmax())])
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[str]] = {}
    for image_id in src.ids("train"):
        if image_id in masks:
            by_class.setdefault(masks[image_id][1], []).append(image_id)
    queues = [list(rng.permutation(ids)) for _, ids in sorted(by_class.items())]
    train: list[str] = []
    while len(train) < marked and any(queues):  # round robin over the object classes
        for q in queues:
            if q and len(train) < marked:
                train.append(str(q.pop()))
    test = [i for i in src.ids("test") if i in masks][:TEST_IMAGES]
    for n, image_id in enumerate(train + test):
        image = src.images[image_id]
        _link(image, out / "images" / image.name)
        obj = masks[image_id][0]
        save_index_png(out / "masks" / f"{image_id}.png", obj)
        if n < len(train):
            strokes = simulation.draw(obj, background=0, offset=n)
            save_index_png(out / "scribbles" / f"{image_id}.png", rasterize_scribbles(obj.shape, strokes))
            rows, cols = np.nonzero(obj == 1)
            box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
            (out / "boxes" / f"{image_id}.json").write_text(json.dumps([{"class": 1, "box": box}]) + "\n")
    (out / "train.txt").write_text("".join(f"{i}\n" for i in train), encoding="utf-8")
    (out / "test.txt").write_text("".join(f"{i}\n" for i in test), encoding="utf-8")
    record.write_text(json.dumps(settings) + "\n")
    return DatasetFolder.open(out)


def _size(ds: DatasetFolder, image_id: str) -> tuple[int, int]:
    return load_image(ds.images[image_id], max_side=None).original_size


def _link(src: Path, dst: Path) -> None:
    try:
        os.symlink(src.resolve(), dst)
    except OSError:  # no symbolic links here (some Windows set-ups)
        shutil.copy2(src, dst)
