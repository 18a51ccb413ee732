"""``wsv train`` and ``wsv eval``: learn from a dataset folder's marks, and score masks against ground truth."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from engine.annotations.store import StoreError
from engine.annotations.types import background_index
from engine.cli.common import CliError, Progress, emit, relaunch_distributed
from engine.datasets.folder import DatasetError, DatasetFolder
from engine.datasets.importer import SIMULATION_STYLES, ScribbleSimulation, import_dataset
from engine.datasets.people import PEOPLE_RADIUS
from engine.datasets.simulate import DEFAULT_RADIUS, DEFAULT_RATIO
from engine.io.outputs import claim_output
from engine.io.palette import load_index_png
from engine.metrics import confusion_matrix, image_object_iou, scores
from engine.models.registry import ModelError
from engine.project import Project
from engine.settings import add_options, from_options
from engine.training.config import TrainConfig
from engine.training import distributed
from engine.training.common import TrainingError, pick_device
from engine.training.trainer import Trainer


TRAIN_MINUTES = 4.5
"""``wsv train`` stops after this many minutes unless told otherwise: a first run on a laptop ends with a
usable network, and --max-minutes raises it"""

RUN_FILES = ("summary.json", "model.json")
"""Files only a training run writes: a run folder from before the output marker is still recognised as one."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a segmentation network on a dataset folder or project",
                       description="Train from full masks or from scribbles (the folder's scribbles/, or "
                                   "simulated from masks where it has none), with an optional CRF regularizer.")
    p.add_argument("dataset", type=Path, help="dataset folder, or a WSV Studio project folder")
    add_options(p, TrainConfig, defaults={"max_minutes": TRAIN_MINUTES})
    p.add_argument("--split", choices=["train", "test", "all"], default="train")
    p.add_argument("--scribbles-dir", default="scribbles", help="sub-folder with scribble PNGs")
    p.add_argument("--sim-ratio", type=float, default=DEFAULT_RATIO,
                   help="where scribbles are simulated: how much of each region's centre line they draw")
    p.add_argument("--sim-radius", type=float,
                   help=f"where scribbles are simulated: their brush radius in pixels (default {DEFAULT_RADIUS}; "
                        f"people: {PEOPLE_RADIUS})")
    p.add_argument("--sim-style", choices=SIMULATION_STYLES, default="centre-lines",
                   help="where scribbles are simulated: each region's whole centre line, or people's quick marks "
                        "(one short stroke per object, three on the background)")
    p.add_argument("--continue-from", "--init", type=Path, metavar="RUN", dest="continue_from",
                   help="start from the network a run saved instead of ImageNet weights: a training run (same model "
                        "and classes) to continue it, or a wsv pretrain run (same model)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write (model, config, history)")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="train one network on N processes on this machine (one per GPU where there are GPUs, "
                        "else CPU processes): starts itself again under torchrun; --batch-size is the global "
                        "batch, split over them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="score predicted masks against a dataset's ground truth")
    p.add_argument("masks", type=Path, help="folder of predicted ID.png masks")
    p.add_argument("dataset", type=Path)
    p.add_argument("--split", choices=["train", "test", "all"], default="test")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)


def cmd_train(args: argparse.Namespace) -> int:
    config = from_options(TrainConfig, args, eval_interval_s=0,
                          init_from=None if args.continue_from is None else str(args.continue_from))
    try:
        simulation = ScribbleSimulation(ratio=args.sim_ratio, radius=args.sim_radius, seed=args.seed,
                                        style=args.sim_style)
    except ValueError as exc:
        raise CliError(f"--sim-ratio / --sim-radius / --sim-style: {exc}") from None
    if args.devices < 1:
        raise CliError(f"--devices must be at least 1, got {args.devices}")
    if args.devices > 1 and not distributed.world().distributed:
        return relaunch_distributed(args.argv, args.devices)
    try:
        world = distributed.join(pick_device(config.device))
        try:
            return _train(args, config, simulation, world)
        finally:
            distributed.leave()
    except TrainingError as exc:
        raise CliError(str(exc)) from None


def _train(args: argparse.Namespace, config: TrainConfig, simulation: ScribbleSimulation,
           world: distributed.World) -> int:
    """Rank 0 claims the run folder and imports the data set while the others wait; every rank trains; rank 0
    prints and writes the run."""
    failure = None
    if world.main:
        try:
            claim_output(args.out, "train", RUN_FILES)
            project_root = _training_project(args, simulation)
        except CliError as exc:
            failure = exc
    if distributed.agree(failure is not None, distributed.rank_device(pick_device(config.device), world)):
        raise failure or CliError("the first training process could not prepare the run; its message says why")
    if not world.main:
        project_root = args.dataset if Project.exists(args.dataset) else args.out / "project"
    log = Progress("training")
    log.enabled &= world.main
    history = []
    try:
        trainer = Trainer(project_root, config)
        try:
            for rec in trainer.run():
                history.append({"step": rec.step, **rec.losses})
                log(rec.step, rec.total_steps, f"loss {rec.losses['total']:.4f} {rec.steps_per_s:.1f} it/s")
                for note in rec.notes if world.main else ():
                    log.note(note)
            elapsed = rec.elapsed_s
            summary = {"run": str(args.out.resolve()), "steps": trainer.step, "minutes": round(elapsed / 60, 2),
                       "device": str(trainer.device), "world_size": world.size, "model": config.model,
                       "initial_weights": trainer.pretrained,
                       "labelled_images": sum(distributed.gathered(rec.labelled_images)),
                       "skipped_images": [e for errors in distributed.gathered(trainer.index.errors) for e in errors],
                       "final_losses": rec.losses,
                       "config": config.as_dict()}
            if world.main:
                trainer.save(args.out)
        finally:
            trainer.close()
    except (TrainingError, ModelError) as exc:
        raise CliError(str(exc)) from None
    if not world.main:
        return 0
    (args.out / "history.json").write_text(json.dumps(history) + "\n", encoding="utf-8")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    emit(summary, args.json, f"trained {config.model} for {trainer.step} steps in {summary['minutes']} min on "
                             f"{summary['device']}; saved to {args.out}")
    return 0


def _training_project(args: argparse.Namespace, simulation: ScribbleSimulation) -> Path:
    """A project to train from: the given project, or the dataset folder imported into RUN/project (its scribbles
    drawn by ``simulation`` where it has none)."""
    if Project.exists(args.dataset):
        return args.dataset
    target = args.out / "project"
    if Project.exists(target):  # the dataset as an earlier run into this (claimed) folder imported it
        shutil.rmtree(target)
    elif target.exists():
        raise CliError(f"{target} exists and is not a project this command wrote; move it away or choose another "
                       f"--out")
    try:
        ds = DatasetFolder.open(args.dataset)
        if args.scribbles_dir != "scribbles" and not (ds.root / args.scribbles_dir).is_dir():
            raise DatasetError(f"{ds.root} has no {args.scribbles_dir}/ folder")
        # Simulate only for a data set without any scribbles: where some exist, unscribbled images stay unmarked.
        simulate = None
        if args.supervision == "scribbles" and not ds.has(args.scribbles_dir):
            simulate = simulation
            print(f"wsv train: {ds.root} has no scribbles; simulating them from its masks "
                  f"({simulation.describe()})", file=sys.stderr)
        boxes = args.supervision.startswith("boxes") and not ds.has("boxes")
        tags = args.supervision == "tags" and not ds.has("tags")
        if boxes or tags:
            print(f"wsv train: {ds.root} has no {'boxes' if boxes else 'tags'}; deriving them from its masks",
                  file=sys.stderr)
        project, report = import_dataset(ds.root, target, split=args.split, scribbles_dir=args.scribbles_dir,
                                         simulate=simulate, simulate_boxes=boxes, simulate_tags=tags,
                                         on_progress=Progress("importing"))
        project.close()
    except (DatasetError, StoreError) as exc:
        raise CliError(str(exc)) from None
    if report.errors:
        print(f"wsv train: {len(report.errors)} images skipped, first: {report.errors[0]}", file=sys.stderr)
    return target


def cmd_eval(args: argparse.Namespace) -> int:
    try:
        ds = DatasetFolder.open(args.dataset)
        ids = ds.ids(args.split)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    if not args.masks.is_dir():
        raise CliError(f"{args.masks} is not a folder of predicted masks")
    k = len(ds.classes)
    background = background_index(ds.classes)
    conf = np.zeros((k, k), np.int64)
    missing, evaluated, per_image = [], 0, []
    for image_id in ids:
        pred_path = args.masks / f"{image_id}.png"
        gt_path = ds.root / "masks" / f"{image_id}.png"
        if not gt_path.is_file():
            continue
        if not pred_path.is_file():
            missing.append(image_id)
            continue
        try:
            pred, gt = load_index_png(pred_path), load_index_png(gt_path)
            conf += confusion_matrix(pred, gt, k)
            per_image.append(image_object_iou(pred, gt, k, background))
        except (ValueError, OSError) as exc:
            raise CliError(f"{pred_path}: {exc}") from None
        evaluated += 1
    if missing:
        raise CliError(f"{len(missing)} of {len(ids)} {args.split} images have no predicted mask in {args.masks}, "
                       f"e.g. {missing[0]}.png")
    if not evaluated:
        raise CliError(f"no ground-truth masks for the {args.split} split of {ds.root}")
    s = scores(conf)
    defined = [v for v in per_image if v is not None]
    image_iou = float(np.mean(defined)) if defined else None
    result = {"images": evaluated, "split": args.split, **s.as_dict(ds.classes), "image_object_iou": image_iou}
    human = (f"{evaluated} images: mIoU {s.miou * 100:.2f}, pixel accuracy {s.pixel_accuracy * 100:.2f}"
             + ("" if image_iou is None else f", object IoU per image (mean) {image_iou * 100:.2f}") + "\n") + "\n".join(
        f"  {name:<20} {'-' if v is None else f'{v * 100:.2f}'}" for name, v in zip(ds.classes, s.iou))
    emit(result, args.json, human)
    return 0
