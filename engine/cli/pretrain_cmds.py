"""``wsv pretrain``: self-supervised pretraining of the segmentation network on a project's or dataset folder's
images (engine.training.pretrain); ``wsv train --init RUN`` starts from the result."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from engine.annotations.store import StoreError
from engine.cli.common import CliError, Progress, emit
from engine.datasets.folder import DatasetError
from engine.datasets.importer import import_dataset
from engine.io.outputs import claim_output
from engine.models.registry import ModelError
from engine.project import Project
from engine.settings import add_options, from_options
from engine.training.common import TrainingError
from engine.training.pretrain import PretrainConfig, Pretrainer


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining of the segmentation network on unlabelled "
                                        "images (inpainting, denoising, colorization)",
                       description="The network learns to undo a corruption of the images, marked or not; "
                                   "wsv train --init RUN then starts from it. A dataset folder is imported into "
                                   "RUN/project first (images referenced in place).")
    p.add_argument("source", type=Path, help="WSV Studio project folder, or dataset folder")
    add_options(p, PretrainConfig)
    p.add_argument("--out", type=Path, required=True, help="run folder to write (model, summary, history)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pretrain)


def _project(args: argparse.Namespace) -> Path:
    if Project.exists(args.source):
        return args.source
    target = args.out / "project"
    if Project.exists(target):
        shutil.rmtree(target)
    try:
        project, _ = import_dataset(args.source, target, split="all", on_progress=Progress("importing"))
        project.close()
    except (DatasetError, StoreError) as exc:
        raise CliError(str(exc)) from None
    return target


def cmd_pretrain(args: argparse.Namespace) -> int:
    config = from_options(PretrainConfig, args)
    claim_output(args.out, "pretrain", ("summary.json",))
    root = _project(args)
    log, history = Progress("pretraining"), []
    try:
        trainer = Pretrainer(root, config)
        try:
            rec = None
            for rec in trainer.run():
                history.append({"step": rec.step, "loss": rec.loss})
                log(rec.step, rec.total_steps, f"loss {rec.loss:.4f} {rec.steps_per_s:.1f} it/s")
                for note in rec.notes:
                    log.note(note)
            trainer.save(args.out)
        finally:
            trainer.close()
    except (TrainingError, ModelError) as exc:
        raise CliError(str(exc)) from None
    (args.out / "history.json").write_text(json.dumps(history) + "\n", encoding="utf-8")
    summary = {"run": str(args.out.resolve()), "task": config.task, "model": config.model, "steps": trainer.step,
               "minutes": round(rec.elapsed_s / 60, 2) if rec else 0.0, "images": len(trainer.image_ids),
               "skipped_images": trainer.errors, "initial_weights": trainer.initial,
               "final_loss": rec.loss if rec else None, "config": config.as_dict()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    emit(summary, args.json, f"pretrained {config.model} by {config.task} on {summary['images']} images for "
                             f"{trainer.step} steps; wsv train --init {args.out} starts from it")
    return 0
