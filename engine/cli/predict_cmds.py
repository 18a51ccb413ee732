"""``wsv predict``: masks from a trained run for a folder of images, a dataset folder or a project.

A plain folder of images gets the network's masks. A dataset folder (``images/`` beside ``scribbles/``,
``boxes/``, ``tags/``) or a project gets, for every image someone marked, the mask refined with its own marks
(engine.refine), and the network's mask for the rest; ``masks.json`` says which is which. ``--no-refine`` gives
the network's masks everywhere.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from engine.annotations.store import StoreError
from engine.annotations.types import background_index
from engine.cli.common import CliError, Progress, emit
from engine.datasets.exporter import image_ids
from engine.datasets.folder import DatasetError, DatasetFolder
from engine.io.images import ImageLoadError, list_images, load_image
from engine.io.palette import save_index_png
from engine.models.registry import ModelError, load_model
from engine.project import Project
from engine.refine.masks import NETWORK, REFINED, Marks, marked_mask, refine_size
from engine.refine.segment import RefineSettings
from engine.training.trainer import TrainingError, pick_device, predict_full_size

Item = tuple[str, Path, "Callable[[], Marks] | None"]
"""(mask file stem, image path, what reads the image's marks, None for a plain image); reading the marks raises
DatasetError or ImageLoadError where they cannot be read"""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict masks with a trained run; marked images refined with their marks",
                       description="SOURCE is a folder of images (the network's masks), or a dataset folder "
                                   "(images/ with scribbles/, boxes/, tags/) or a project, where every marked "
                                   "image's mask is refined with its own marks and masks.json says which masks "
                                   "are refined.")
    p.add_argument("run", type=Path, help="run folder written by wsv train (or a saved model folder)")
    p.add_argument("source", type=Path, help="folder of images, dataset folder or project")
    p.add_argument("--out", type=Path, required=True, help="folder for ID.png masks (class index, VOC colours)")
    p.add_argument("--no-refine", action="store_true", help="the network's masks for marked images too")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    try:
        device = pick_device(args.device)
        model, config = load_model(args.run, device)
    except (ModelError, TrainingError) as exc:
        raise CliError(str(exc)) from None
    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {args.out} is a file, not a folder")
    with contextlib.ExitStack() as stack:
        items, kind = _items(args.source, config.classes, stack)
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create {args.out}: {exc.strerror}") from None
        settings = RefineSettings()
        background = background_index(config.classes)
        log, errors, made = Progress("predicting"), [], {}
        seconds = {REFINED: [], NETWORK: []}
        for n, (stem, path, read_marks) in enumerate(items):
            t0 = time.monotonic()
            try:
                working = load_image(path, max_side=config.working_size)
                marks = None if read_marks is None or args.no_refine else read_marks()
                if marks is not None and marks.any:
                    if marks.size != working.original_size:
                        raise DatasetError(f"{path}: its marks are for a {marks.size[0]}x{marks.size[1]} image, "
                                           f"the image is {working.original_size[0]}x{working.original_size[1]}")
                    image = load_image(path, max_side=max(refine_size(marks.size, settings.max_pixels)))
                    pixels = image.pixels[..., :1] if image.is_gray else image.pixels
                    labels = marked_mask(model, device, working.pixels, pixels, marks, background, settings)
                    how = REFINED
                else:
                    labels = predict_full_size(model, working.pixels, working.original_size, device)
                    how = NETWORK
                save_index_png(args.out / f"{stem}.png", labels)
            except (ImageLoadError, DatasetError) as exc:
                errors.append(str(exc))
                continue
            except OSError as exc:
                raise CliError(f"cannot write {args.out / (stem + '.png')}: {exc.strerror}") from None
            made[stem] = how
            seconds[how].append(time.monotonic() - t0)
            log(n + 1, len(items))
    record = {"source": str(args.source), "kind": kind, "classes": config.classes,
              "refinement": None if args.no_refine else asdict(settings), "masks": made}
    (args.out / "masks.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    refined = sum(1 for v in made.values() if v == REFINED)
    result = {"out": str(args.out.resolve()), "masks": len(made), "refined": refined, "network": len(made) - refined,
              "errors": errors, "classes": config.classes,
              "seconds_per_refined_mask": round(float(np.mean(seconds[REFINED])), 3) if seconds[REFINED] else None,
              "seconds_per_network_mask": round(float(np.mean(seconds[NETWORK])), 3) if seconds[NETWORK] else None}
    human = (f"wrote {len(made)} masks to {args.out} ({refined} refined with their marks, {len(made) - refined} "
             f"from the network)" + "".join(f"\nskipped: {e}" for e in errors))
    emit(result, args.json, human)
    return 0 if made else 1


def _items(source: Path, classes: list[str], stack: contextlib.ExitStack) -> tuple[list[Item], str]:
    """What to predict, and whether ``source`` is a project (kept open on ``stack`` while its marks are read),
    a dataset folder or a folder of images."""
    if Project.exists(source):
        try:
            project = stack.enter_context(Project.open(source))
        except StoreError as exc:
            raise CliError(str(exc)) from None
        return _project_items(project, classes), "project"
    if (source / "images").is_dir() and (source / "classes.txt").is_file():
        return _dataset_items(source, classes), "dataset"
    try:
        paths = list_images(source)
    except OSError as exc:
        raise CliError(f"cannot list {source}: {exc.strerror or exc}") from None
    if not paths:
        raise CliError(f"no images found in {source}")
    return [(p.stem, p, None) for p in paths], "images"


def _check_classes(theirs: list[str], classes: list[str], where: Path) -> None:
    if theirs != classes:
        raise CliError(f"{where} has the classes {theirs}, the model was trained on {classes}: the marks' class "
                       f"indices would mean other classes")


def _dataset_items(root: Path, classes: list[str]) -> list[Item]:
    try:
        ds = DatasetFolder.open(root)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    _check_classes(ds.classes, classes, root)
    if not ds.images:
        raise CliError(f"no images found in {root / 'images'}")

    def reader(image_id: str, path: Path) -> Callable[[], Marks]:
        def read() -> Marks:
            size = load_image(path, max_side=64).original_size
            seeds, boxes, tags = ds.scribbles(image_id, size), ds.boxes(image_id), ds.tags(image_id)
            present = None
            if tags is not None:
                present = np.zeros(len(ds.classes), bool)
                present[tags] = True
            box_array = np.array([[c, *b] for c, b in boxes], np.float32) if boxes else None
            return Marks(size, seeds, box_array, present)
        return read

    return [(image_id, path, reader(image_id, path)) for image_id, path in ds.images.items()]


def _project_items(project: Project, classes: list[str]) -> list[Item]:
    store = project.store
    defs = store.classes()
    _check_classes([c.name for c in defs], classes, project.root)
    index = {c.id: c.index for c in defs}
    records = store.images()
    stems = image_ids(records)

    def reader(rec) -> Callable[[], Marks]:
        def read() -> Marks:
            marks = store.marks(rec.id)
            seeds = store.seed_map(rec.id) if marks.strokes else None
            boxes = np.array([[index[b.class_id], *b.xyxy] for b in marks.boxes], np.float32) if marks.boxes else None
            present = None
            if marks.tags is not None:
                present = np.zeros(len(defs), bool)
                present[[index[c] for c in marks.tags.class_ids]] = True
            return Marks((rec.width, rec.height), seeds, boxes, present)
        return read

    return [(stems[rec.id], project.image_path(rec), reader(rec)) for rec in records]
