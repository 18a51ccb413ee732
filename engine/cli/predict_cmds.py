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
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.annotations.store import StoreError
from engine.cli.common import CliError, Progress, emit
from engine.datasets.exporter import image_ids
from engine.datasets.folder import DatasetError, DatasetFolder
from engine.io.images import ImageLoadError, list_images
from engine.io.outputs import claim_output
from engine.io.palette import save_index_png
from engine.models.onnx_model import OnnxSegmenter, export_onnx
from engine.models.registry import ModelError, load_model
from engine.project import Project
from engine.refine.masks import REFINED, MaskMaker, Marks, folder_marks, store_marks
from engine.training.common import TrainingError, pick_device

Item = tuple[str, Path, Callable[[], Marks] | None]
"""(mask file stem, image path, what reads the image's marks, None for a plain image)"""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict masks with a trained run; marked images refined with their marks",
                       description="SOURCE is a folder of images (the network's masks), or a dataset folder "
                                   "(images/ with scribbles/, boxes/, tags/) or a project, where every marked "
                                   "image's mask is refined with its own marks and masks.json says which masks "
                                   "are refined.")
    p.add_argument("run", type=Path, nargs="?",
                   help="run folder written by wsv train (or a saved model folder); left out with --onnx")
    p.add_argument("source", type=Path, help="folder of images, dataset folder or project")
    p.add_argument("--out", type=Path, required=True, help="folder for ID.png masks (class index, VOC colours)")
    p.add_argument("--no-refine", action="store_true", help="the network's masks for marked images too")
    p.add_argument("--onnx", type=Path, metavar="FILE",
                   help="an ONNX file written by wsv export-model, run with onnxruntime in place of a run folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.onnx is None):
        raise CliError("give a run folder or --onnx FILE (one of them)")
    try:
        if args.onnx is not None:
            device, model = torch.device("cpu"), OnnxSegmenter(args.onnx)
            config = model.config
        else:
            device = pick_device(args.device)
            model, config = load_model(args.run, device)
    except (ModelError, TrainingError) as exc:
        raise CliError(str(exc)) from None
    maker = MaskMaker(model, config.classes, config.working_size, device, refine=not args.no_refine)
    with contextlib.ExitStack() as stack:
        items, kind, errors = _items(args.source, config.classes, stack)
        claim_output(args.out, "predict", ("masks.json",))
        log, seconds = Progress("predicting"), {}
        for n, (stem, path, read_marks) in enumerate(items):
            t0 = time.monotonic()
            try:
                labels = maker(stem, path, None if read_marks is None or args.no_refine else read_marks())
                save_index_png(args.out / f"{stem}.png", labels)
            except (ImageLoadError, DatasetError, ValueError) as exc:
                errors.append(str(exc))
                maker.kinds.pop(stem, None)
                continue
            except OSError as exc:
                raise CliError(f"cannot write {args.out / (stem + '.png')}: {exc.strerror}") from None
            seconds.setdefault(maker.kinds[stem], []).append(time.monotonic() - t0)
            log(n + 1, len(items))
    record = {**maker.record(str(args.source)), "kind": kind, "classes": config.classes}
    (args.out / "masks.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    made = maker.kinds
    refined = sum(1 for v in made.values() if v == REFINED)
    result = {"out": str(args.out.resolve()), "masks": len(made), "refined": refined, "network": len(made) - refined,
              "errors": errors, "classes": config.classes,
              **{f"seconds_per_{k}_mask": round(float(np.mean(v)), 3) for k, v in sorted(seconds.items())}}
    human = (f"wrote {len(made)} masks to {args.out} ({refined} refined with their marks, {len(made) - refined} "
             f"from the network)" + "".join(f"\nskipped: {e}" for e in errors))
    emit(result, args.json, human)
    return 0 if made else 1


def _items(source: Path, classes: list[str], stack: contextlib.ExitStack) -> tuple[list[Item], str, list[str]]:
    """What to predict; whether ``source`` is a project (kept open on ``stack`` while its marks are read),
    a dataset folder or a folder of images; and the files skipped, each with the reason."""
    if Project.exists(source):
        try:
            project = stack.enter_context(Project.open(source))
        except StoreError as exc:
            raise CliError(str(exc)) from None
        store = project.store
        _check_classes([c.name for c in store.classes()], classes, source)
        records = store.images()
        stems = image_ids(records)
        return ([(stems[r.id], project.image_path(r), lambda r=r: store_marks(store, r)) for r in records],
                "project", [])
    if (source / "images").is_dir() and (source / "classes.txt").is_file():
        try:
            ds = DatasetFolder.open(source)
        except DatasetError as exc:
            raise CliError(str(exc)) from None
        _check_classes(ds.classes, classes, source)
        if not ds.images:
            raise CliError(f"no images found in {source / 'images'}")
        return [(i, p, lambda i=i: folder_marks(ds, i)) for i, p in ds.images.items()], "dataset", list(ds.unreadable)
    if not source.is_dir():
        raise CliError(f"{source} is not a folder")
    problems: list[ImageLoadError] = []
    try:
        paths = list_images(source, problems)
    except OSError as exc:
        raise CliError(f"cannot list {source}: {exc.strerror or exc}") from None
    if not paths:
        raise CliError(f"no images found in {source}" + (f" ({problems[0]})" if problems else ""))
    items, skipped, taken = [], [str(e) for e in problems], {}
    for p in paths:
        if p.stem in taken:  # a.jpg and a.png would both write a.png
            skipped.append(f"{p}: its mask would overwrite the one of {taken[p.stem].name} ({p.stem}.png); "
                           f"rename one of them")
            continue
        taken[p.stem] = p
        items.append((p.stem, p, None))
    return items, "images", skipped


def _check_classes(theirs: list[str], classes: list[str], where: Path) -> None:
    if theirs != classes:
        raise CliError(f"{where} has the classes {theirs}, the model was trained on {classes}: the marks' class "
                       f"indices would mean other classes")


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-model", help="write a trained segmentation network as ONNX",
                       description="The ONNX file takes (N, 3, H, W) RGB in 0..255 at the working size, any H and W, "
                                   "and gives logits (N, K, H, W); classes and working size are in its metadata. It "
                                   "is run once with onnxruntime and compared with PyTorch. Detectors: wsv detect "
                                   "export.")
    p.add_argument("run", type=Path, help="run folder written by wsv train (or a saved model folder)")
    p.add_argument("--onnx", type=Path, required=True, metavar="FILE", help="ONNX file to write")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export_model)


def cmd_export_model(args: argparse.Namespace) -> int:
    try:
        model, config = load_model(args.run, "cpu")
        result = export_onnx(model, config, args.onnx)
    except ModelError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {args.onnx}: {exc.strerror or exc}") from None
    check = (f"; onnxruntime agrees with PyTorch to {result['max_probability_difference']:.1e} in probability"
             if result["checked"] else "; not run (onnxruntime is not installed)")
    emit(result, args.json, f"wrote {args.onnx} ({config.model}, {len(config.classes)} classes, working size "
                            f"{config.working_size}){check}")
    return 0
