"""``wsv detect train|predict|eval|export``: train an object detector on a project's or dataset folder's boxes,
write COCO-format detections for images, score a detector on a dataset's boxes (AP per class, mAP), and export a
network detector as ONNX."""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from engine.annotations.store import StoreError
from engine.annotations.types import background_index
from engine.cli.common import CliError, Progress, emit, relaunch_distributed
from engine.datasets.folder import DatasetError, DatasetFolder
from engine.datasets.importer import import_dataset
from engine.datasets.weak_labels import boxes_from_mask
from engine.detection.config import DetectionConfig
from engine.detection.data import set_images_done
from engine.detection.evaluate import EVAL_NMS_IOU, GroundTruth, evaluate_detections
from engine.detection.hog_svm import METHOD as HOG_SVM, HogSvmConfig, HogSvmTrainer
from engine.detection.inference import detect_file, load_detector
from engine.detection.labels import object_classes
from engine.detection.models import DetectorError, export_onnx
from engine.detection.postprocess import postprocess
from engine.detection.trainer import DetectionTrainer
from engine.io.images import ImageLoadError, list_images, read_image_size
from engine.io.outputs import claim_output
from engine.settings import add_options, from_options
from engine.project import Project
from engine.training import distributed
from engine.training.common import TrainingError, pick_device

METHODS = ("torchvision", HOG_SVM)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("detect", help="train, run and evaluate object detectors on boxes",
                            description="Object detection from the same boxes: torchvision detectors or HOG + SVM.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser("train", help="train a detector on a project's or a dataset folder's boxes",
                           description="A dataset folder is imported into RUN/project first; where it has no "
                                       "boxes/, boxes are derived from its masks. Images whose boxes are known "
                                       "count as complete, so those without objects teach as negatives.")
    p.add_argument("source", type=Path, help="WSV Studio project folder, or dataset folder")
    p.add_argument("--out", type=Path, required=True, help="run folder to write (detector, summary, history)")
    p.add_argument("--method", choices=METHODS, default="torchvision")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="torchvision detectors: train on N processes of this machine (N GPUs, or N CPU processes) "
                        "with torchrun and DistributedDataParallel; --batch-size is the global batch")
    add_options(p, DetectionConfig)
    add_options(p, HogSvmConfig)  # its own options; working size, holdout and seed are shared
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = actions.add_parser("predict", help="detect objects in images; writes COCO-format JSON")
    p.add_argument("run", type=Path, help="run folder written by wsv detect train")
    p.add_argument("images", type=Path, nargs="+", help="image files or folders of images")
    p.add_argument("--out", type=Path, required=True, help="folder for detections.json")
    p.add_argument("--score-threshold", type=float, help="default: the detector's (0.5 for networks, 0 for HOG + SVM)")
    p.add_argument("--nms-iou", type=float, default=EVAL_NMS_IOU)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = actions.add_parser("eval", help="score a detector on a dataset folder's boxes (AP, mAP)",
                           description="Ground truth: boxes/ID.json, or boxes derived from masks where the "
                                       "dataset has no boxes/ folder.")
    p.add_argument("run", type=Path)
    p.add_argument("dataset", type=Path)
    p.add_argument("--split", choices=["train", "test", "all"], default="test")
    p.add_argument("--nms-iou", type=float, default=EVAL_NMS_IOU)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = actions.add_parser("export", help="write a network detector as ONNX (needs the 'onnx' extra)",
                           description="The run folder already holds the detector as safetensors + JSON; this adds "
                                       "an ONNX file, run once with onnxruntime (when installed) and compared with "
                                       "PyTorch.")
    p.add_argument("run", type=Path, help="run folder written by wsv detect train")
    p.add_argument("--onnx", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)


# ---- train ------------------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    config = from_options(HogSvmConfig, args) if args.method == HOG_SVM else \
        from_options(DetectionConfig, args, eval_interval_s=0)
    if args.devices < 1:
        raise CliError(f"--devices must be at least 1, got {args.devices}")
    if args.devices > 1 and not distributed.world().distributed:
        if args.method == HOG_SVM:
            raise CliError(f"--devices applies to the torchvision detectors; {HOG_SVM} trains in one process")
        return relaunch_distributed(args.argv, args.devices)
    if args.method == HOG_SVM:
        if distributed.world().distributed:
            raise CliError(f"{HOG_SVM} trains in one process; start it without torchrun")
        claim_output(args.out, "detect train", ("summary.json",))
        project_root = _training_project(args)
        try:
            return _finish(args, *_train_hog_svm(project_root, config, args))
        except (TrainingError, DetectorError, StoreError) as exc:
            raise CliError(str(exc)) from None
    try:
        world = distributed.join(pick_device(config.device))
        try:
            failure = None
            if world.main:  # the first process claims the run and imports a dataset folder; the others wait
                try:
                    claim_output(args.out, "detect train", ("summary.json",))
                    _training_project(args)
                except CliError as exc:
                    failure = exc
            if distributed.agree(failure is not None, distributed.rank_device(pick_device(config.device), world)):
                raise failure or CliError("the first training process could not prepare the run; its message "
                                          "says why")
            project_root = args.source if Project.exists(args.source) else args.out / "project"
            summary, history = _train_network(project_root, config, args, world)
            return _finish(args, summary, history) if world.main else 0
        finally:
            distributed.leave()
    except (TrainingError, DetectorError, StoreError) as exc:
        raise CliError(str(exc)) from None


def _finish(args: argparse.Namespace, summary: dict, history: list) -> int:
    """Write the run's summary and history and say what was trained."""
    (args.out / "history.json").write_text(json.dumps(history) + "\n", encoding="utf-8")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    held = summary["heldout"]
    score = f"; held-out mAP@0.5 {_pct(held['map50'])}" if held else ""
    emit(summary, args.json, f"trained {summary['detector']} in {summary['minutes']} min on {summary['train_images']} "
                             f"images{score}; saved to {args.out}")
    return 0


def _train_network(project_root: Path, config: DetectionConfig, args: argparse.Namespace,
                   world: distributed.World) -> tuple[dict, list]:
    log, history = Progress("training"), []
    log.enabled &= world.main
    trainer = DetectionTrainer(project_root, config)
    try:
        for rec in trainer.run():
            history.append({"step": rec.step, "lr": rec.lr, **rec.losses})
            log(rec.step, rec.total_steps, f"loss {rec.losses['total']:.4f} {rec.steps_per_s:.1f} it/s")
            if world.main:
                _print_notes(rec.notes, args, log)
        train_images = sum(distributed.gathered(rec.train_images))
        if not world.main:
            return {}, history
        trainer.save(args.out)
        held = trainer.evaluate() if trainer.data.heldout else None
        summary = {"run": str(args.out.resolve()), "method": "torchvision", "detector": config.model,
                   "steps": trainer.step, "minutes": round(rec.elapsed_s / 60, 2), "device": str(trainer.device),
                   "world_size": world.size, "initial_weights": trainer.pretrained, "train_images": train_images,
                   "negative_images": rec.negative_images, "boxes": rec.boxes, "heldout_images": rec.heldout_images,
                   "final_losses": rec.losses, "heldout": held.as_dict(trainer.classes) if held else None,
                   "config": config.as_dict()}
    finally:
        trainer.close()
    return summary, history


def _train_hog_svm(project_root: Path, config: HogSvmConfig, args: argparse.Namespace) -> tuple[dict, list]:
    log, history = Progress("training"), []
    t0 = time.monotonic()
    trainer = HogSvmTrainer(project_root, config)
    try:
        for rec in trainer.run():
            history.append({"stage": rec.stage, "description": rec.description, "positives": rec.positives,
                            "negatives": rec.negatives, "elapsed_s": rec.elapsed_s})
            log(rec.stage, rec.total_stages, rec.description)
            _print_notes(rec.notes, args, log)
        trainer.save(args.out)
        held = trainer.evaluate()
        data = trainer.data
        summary = {"run": str(args.out.resolve()), "method": HOG_SVM, "detector": HOG_SVM,
                   "minutes": round((time.monotonic() - t0) / 60, 2), "device": "cpu",
                   "train_images": len(data.samples), "negative_images": data.negative_count, "boxes": data.box_count,
                   "heldout_images": len(data.heldout), "heldout": held.as_dict(trainer.classes) if held else None,
                   "windows": {trainer.classes[m.label]: list(m.window) for m in trainer.detector.models},
                   "config": asdict(config)}
    finally:
        trainer.close()
    return summary, history


def _print_notes(notes: list[str], args: argparse.Namespace, log: Progress) -> None:
    for note in notes:
        log.note(note)


def _training_project(args: argparse.Namespace) -> Path:
    """A project to train from: the given project, or the dataset folder imported into RUN/project with every
    image whose boxes are known (a boxes file, or a mask to derive them from) marked complete."""
    if Project.exists(args.source):
        return args.source
    target = args.out / "project"
    if Project.exists(target):  # the dataset as an earlier run into this (claimed) folder imported it
        shutil.rmtree(target)
    elif target.exists():
        raise CliError(f"{target} exists and is not a project this command wrote; move it away or choose another "
                       f"--out")
    try:
        ds = DatasetFolder.open(args.source)
        derive = not ds.has("boxes")
        if derive:
            if not ds.has("masks"):
                raise DatasetError(f"{ds.root} has neither boxes/ nor masks/ to derive boxes from")
            print(f"wsv detect: {ds.root} has no boxes; deriving them from its masks", file=sys.stderr)
        project, report = import_dataset(ds.root, target, split="all", simulate_boxes=derive,
                                         on_progress=Progress("importing"))
        try:
            ids = {project.relative(path): image_id for image_id, path in ds.images.items()}
            known = [rec.id for rec in project.store.images()
                     if (ds.root / ("masks" if derive else "boxes") / f"{ids[rec.path]}.{'png' if derive else 'json'}").is_file()]
            set_images_done(project.store, known)
        finally:
            project.close()
    except (DatasetError, StoreError) as exc:
        raise CliError(str(exc)) from None
    if report.errors:
        print(f"wsv detect: {len(report.errors)} images skipped, first: {report.errors[0]}", file=sys.stderr)
    if not report.boxes:
        raise CliError(f"{ds.root} has no boxes around objects (nor masks with objects to derive them from)")
    return target


# ---- predict ----------------------------------------------------------------------------------------------------
def _load(run: Path, device: str):
    try:
        return load_detector(run, pick_device(device))
    except (DetectorError, TrainingError) as exc:
        raise CliError(str(exc)) from None


def cmd_predict(args: argparse.Namespace) -> int:
    detector = _load(args.run, args.device)
    threshold = detector.default_score_threshold if args.score_threshold is None else args.score_threshold
    paths: list[Path] = []
    problems: list[ImageLoadError] = []
    for item in args.images:
        if item.is_dir():
            try:
                paths += list_images(item, problems)
            except OSError as exc:
                raise CliError(f"cannot list {item}: {exc.strerror or exc}") from None
        elif item.is_file():
            paths.append(item)
        else:
            raise CliError(f"{item} does not exist")
    if not paths:
        raise CliError(f"no images found in {', '.join(map(str, args.images))}")
    out = claim_output(args.out, "detect predict", ("detections.json",)) / "detections.json"
    images, annotations, errors = [], [], [str(e) for e in problems]
    log = Progress("detecting")
    for i, path in enumerate(paths):
        try:
            raw, (w, h) = detect_file(detector, path)
        except ImageLoadError as exc:
            errors.append(str(exc))
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": str(path), "width": w, "height": h})
        found = postprocess(raw, threshold, args.nms_iou)
        for box, score, label in zip(found.boxes.tolist(), found.scores.tolist(), found.labels.tolist()):
            x0, y0, x1, y1 = box
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label,
                                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                                "area": round((x1 - x0) * (y1 - y0), 2), "score": round(score, 5), "iscrowd": 0})
        log(i + 1, len(paths))
    if not images:
        raise CliError(f"no image could be read; first error: {errors[0]}")
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": k, "name": detector.classes[k]} for k in object_classes(detector.classes)],
            "info": {"description": f"detections by {args.run}", "score_threshold": threshold, "nms_iou": args.nms_iou}}
    try:
        out.write_text(json.dumps(coco) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    result = {"out": str(out.resolve()), "images": len(images), "detections": len(annotations), "errors": errors,
              "score_threshold": threshold, "classes": detector.classes}
    emit(result, args.json, f"wrote {len(annotations)} detections in {len(images)} images to {out}"
                            + "".join(f"\nskipped: {e}" for e in errors))
    return 0


# ---- export -----------------------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    detector = _load(args.run, "cpu")
    if detector.method != "torchvision":
        raise CliError(f"{args.run} holds a {detector.method} detector; only network detectors export to ONNX")
    args.onnx.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = export_onnx(detector.model, detector.config, args.onnx)
    except DetectorError as exc:
        raise CliError(f"{exc}; install it with: uv sync --extra onnx") from None
    check = (f"onnxruntime agrees with PyTorch (largest box difference {result['max_box_difference_px']:.2g} px)"
             if result["checked"] else "not checked: onnxruntime is not installed")
    emit(result, args.json, f"wrote {args.onnx}; {check}")
    return 0


# ---- eval -------------------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    detector = _load(args.run, args.device)
    try:
        ds = DatasetFolder.open(args.dataset)
        ids = ds.ids(args.split)
        if ds.classes != detector.classes:
            raise CliError(f"the dataset's classes {ds.classes} differ from the detector's {detector.classes}")
        derive = not ds.has("boxes")
        preds, gts, skipped = [], [], []
        log = Progress("evaluating")
        for n, image_id in enumerate(ids):
            gt = _ground_truth(ds, image_id, derive)
            if gt is None:
                skipped.append(image_id)
                continue
            try:
                raw, _ = detect_file(detector, ds.images[image_id])
            except ImageLoadError as exc:
                raise CliError(str(exc)) from None
            preds.append(postprocess(raw, -np.inf, args.nms_iou))
            gts.append(gt)
            log(n + 1, len(ids))
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    if not gts:
        raise CliError(f"no {args.split} image of {ds.root} has boxes (or a mask to derive them from)")
    scores = evaluate_detections(preds, gts, len(ds.classes))
    result = {"images": len(gts), "split": args.split, "ground_truth": "derived from masks" if derive else "boxes",
              "skipped": skipped, **scores.as_dict(ds.classes)}
    human = (f"{len(gts)} images: mAP@0.5 {_pct(scores.map50)} (VOC all-point {_pct(scores.map50_voc)}), "
             f"mAP@[.5:.95] {_pct(scores.map)}\n"
             + "\n".join(f"  {ds.classes[k]:<20} AP50 {_pct(scores.ap50[k]):>5}  AP {_pct(scores.ap[k]):>5}  "
                         f"({scores.gt_boxes[k]} boxes)" for k in object_classes(ds.classes)))
    emit(result, args.json, human)
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f}"


def _ground_truth(ds: DatasetFolder, image_id: str, derive: bool) -> GroundTruth | None:
    """The image's boxes in original pixels: its boxes file, or boxes derived from its mask where the dataset has
    no boxes/ at all (as training does); None where neither exists."""
    try:
        size = read_image_size(ds.images[image_id])
    except ImageLoadError as exc:
        raise CliError(str(exc)) from None
    if derive:
        mask = ds.mask(image_id, size)
        items = None if mask is None else boxes_from_mask(mask, background=background_index(ds.classes))
    else:
        items = ds.boxes(image_id, size)
    if items is None:
        return None
    return GroundTruth([box for _, box in items], [k for k, _ in items])
