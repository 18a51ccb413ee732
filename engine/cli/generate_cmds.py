"""``wsv generate train|sample|eval``: train a VAE, DCGAN or DDPM on a project's images or the built-in digits,
draw sample grids (and a GIF of the reverse process), and score samples with KID/FID and a memorisation check."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

import torch

from engine.annotations.store import StoreError
from engine.cli.common import CliError, Progress, emit, relaunch_distributed
from engine.generative.config import MODELS, GenerativeConfig
from engine.generative.data import BUILTIN, image_tensor, load_training_images
from engine.generative.diffusion import ddim_timesteps
from engine.generative.evaluate import class_accuracy, quality
from engine.generative.grids import image_grid, save_gif, save_png
from engine.generative.models import GenerativeModelError, load_generative
from engine.generative.restore import bicubic, inpaint, super_resolve, with_hole
from engine.io.images import ImageLoadError, load_image
from engine.generative.trainer import GenerativeTrainer
from engine.io.outputs import claim_output
from engine.settings import add_options, from_options
from engine.training import distributed
from engine.training.common import TrainingError, pick_device

GIF_FRAMES = 40
"""reverse-process frames kept for a GIF (evenly spaced, last included): enough to see noise become images"""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("generate", help="train and sample generative models (VAE, GAN, DDPM)",
                            description="Generative models on small images: train, sample, evaluate.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser("train", help="train a VAE, DCGAN or DDPM")
    p.add_argument("model", choices=MODELS)
    p.add_argument("project", type=Path, nargs="?", help="WSV Studio project folder (or use --builtin)")
    p.add_argument("--builtin", choices=BUILTIN, help="train on a built-in offline set instead of a project")
    p.add_argument("--out", type=Path, required=True, help="run folder to write (model, history, previews)")
    p.add_argument("--color", action="store_true", help="colour images (default: grayscale)")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="ddpm: train on N processes of this machine (N GPUs, or N CPU processes) with torchrun and "
                        "DistributedDataParallel; --batch-size is the global batch")
    add_options(p, GenerativeConfig)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = actions.add_parser("sample", help="draw samples into a PNG grid (DDPM: optionally a GIF of the reverse process)")
    p.add_argument("run", type=Path, help="run folder written by wsv generate train")
    p.add_argument("--n", type=int, help="samples (default 64); a conditional DDPM: per class (default 8)")
    p.add_argument("--out", type=Path, required=True, help="PNG file for the grid")
    p.add_argument("--ddim-steps", type=int, help="DDPM: sample with DDIM over this many steps (default: full DDPM)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM η (0 deterministic, 1 ancestral-like)")
    _class_options(p)
    p.add_argument("--gif", type=Path, help="DDPM: GIF of the reverse process")
    p.add_argument("--scale", type=int, default=2, help="enlarge the images by pixel replication")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample)

    p = actions.add_parser("inpaint", help="DDPM: fill a hole in an image (RePaint)")
    p.add_argument("run", type=Path, help="run folder of a trained DDPM")
    p.add_argument("image", type=Path, help="image file; its centred square is used, at the model's size")
    hole = p.add_mutually_exclusive_group(required=True)
    hole.add_argument("--hole", help="x0,y0,x1,y1: the rectangle to fill, in the image's pixels")
    hole.add_argument("--mask", type=Path, help="an image of the same size, white where to fill")
    p.add_argument("--resample", type=int, default=4, help="times each step is taken (RePaint's resampling)")
    _restore_options(p)
    p.set_defaults(func=cmd_inpaint)

    p = actions.add_parser("upscale", help="DDPM: double an image's resolution (ILVR)")
    p.add_argument("run", type=Path, help="run folder of a trained DDPM")
    p.add_argument("image", type=Path, help="image file; its centred square is used at half the model's size")
    _restore_options(p)
    p.set_defaults(func=cmd_upscale)

    p = actions.add_parser("eval", help="KID/FID on pretrained features and a memorisation check")
    p.add_argument("run", type=Path)
    p.add_argument("--n", type=int, default=256, help="number of samples (and training images) compared")
    p.add_argument("--ddim-steps", type=int, default=50, help="DDPM: DDIM steps for the samples (0: full DDPM)")
    p.add_argument("--guidance", type=float, help="conditional DDPM: classifier-free guidance scale (default: the "
                                                  "model's)")
    p.add_argument("--classifier-scale", type=float, default=0.0,
                   help="conditional DDPM trained with --classifier: classifier guidance scale (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)


def _restore_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="PNG file: the input beside the result")
    p.add_argument("--scale", type=int, default=4, help="enlarge the images by pixel replication")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")


def _class_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="conditional DDPM: draw this class (name or index; repeat for more; default: every class), "
                        "--n samples each, one row per class")
    p.add_argument("--guidance", type=float, help="conditional DDPM: classifier-free guidance scale (default: the "
                                                  "model's; 0 unconditional, 1 conditional, more: closer to the class)")
    p.add_argument("--classifier-scale", type=float, default=0.0,
                   help="conditional DDPM trained with --classifier: classifier guidance scale (0: none)")


def _labels(model, names: list[str] | None, per_class: int) -> tuple[torch.Tensor | None, list[str]]:
    """(labels of the samples, the classes drawn, in row order) for a conditional model; (None, []) otherwise."""
    if not model.classes:
        if names:
            raise CliError(f"{model.kind} runs trained without classes draw no given class (train with --conditional)")
        return None, []
    picked = []
    for name in names or model.classes:
        if name in model.classes:
            picked.append(model.classes.index(name))
        elif name.isdigit() and int(name) < len(model.classes):
            picked.append(int(name))
        else:
            raise CliError(f"no class {name!r}: this model draws {', '.join(model.classes)}")
    return torch.tensor(picked).repeat_interleave(per_class), [model.classes[i] for i in picked]


def _source(args: argparse.Namespace) -> str:
    if (args.project is None) == (args.builtin is None):
        raise CliError("give either a project folder or --builtin digits")
    return f"builtin:{args.builtin}" if args.builtin else str(args.project)


def cmd_train(args: argparse.Namespace) -> int:
    config = from_options(GenerativeConfig, args, model=args.model, source=_source(args),
                          channels=3 if args.color else 1)
    if args.devices < 1:
        raise CliError(f"--devices must be at least 1, got {args.devices}")
    if args.devices > 1 and not distributed.world().distributed:
        if config.model != "ddpm":
            raise CliError(f"--devices applies to the ddpm; train the {config.model} in one process")
        return relaunch_distributed(args.argv, args.devices)
    try:
        world = distributed.join(pick_device(config.device))
        try:
            return _train(args, config, world)
        finally:
            distributed.leave()
    except TrainingError as exc:
        raise CliError(str(exc)) from None


def _train(args: argparse.Namespace, config: GenerativeConfig, world: distributed.World) -> int:
    """Every rank trains; rank 0 claims the run folder first, prints and writes the run."""
    failure = None
    if world.main:
        try:
            claim_output(args.out, "generate train", ("summary.json",))
        except CliError as exc:
            failure = exc
    if distributed.agree(failure is not None, distributed.rank_device(pick_device(config.device), world)):
        raise failure or CliError("the first training process could not claim the run folder")
    log, history, frames = Progress("training"), [], []
    log.enabled &= world.main
    try:
        trainer = GenerativeTrainer(config)
        for rec in trainer.run():
            history.append({"step": rec.step, **rec.losses})
            log(rec.step, rec.total_steps, " ".join(f"{k} {v:.4g}" for k, v in rec.losses.items()))
            if rec.preview is not None:
                frames.append(rec.preview.samples)
            for note in rec.notes if world.main else ():
                log.note(note)
        if not world.main:
            return 0
        trainer.save(args.out)
    except (TrainingError, StoreError) as exc:
        raise CliError(str(exc)) from None
    save_png(frames[-1], args.out / "samples.png", scale=2)
    save_gif(frames, args.out / "training.gif", scale=2)
    (args.out / "history.json").write_text(json.dumps(history) + "\n", encoding="utf-8")
    summary = {"run": str(args.out.resolve()), "model": config.model, "data": trainer.data.name,
               "data_warning": trainer.data.warning, "train_images": len(trainer.data.images), "steps": trainer.step,
               "minutes": round(rec.elapsed_s / 60, 2), "device": str(trainer.device), "world_size": world.size,
               "final_losses": rec.losses, "samples_png": str(args.out / "samples.png"),
               "training_gif": str(args.out / "training.gif"), "config": trainer.config.as_dict()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    emit(summary, args.json, f"trained a {config.model} for {trainer.step} steps in {summary['minutes']} min on "
                             f"{trainer.data.name}; saved to {args.out}")
    return 0


def _load(args: argparse.Namespace):
    try:
        return load_generative(args.run, pick_device(args.device))
    except (GenerativeModelError, TrainingError) as exc:
        raise CliError(str(exc)) from None


def cmd_sample(args: argparse.Namespace) -> int:
    if args.n is not None and args.n < 1:
        raise CliError("--n must be >= 1")
    model = _load(args)
    args.n = args.n or (8 if model.classes else 64)
    if model.kind != "ddpm" and (args.gif or args.ddim_steps):
        raise CliError(f"--gif and --ddim-steps apply to ddpm runs; {args.run} holds a {model.kind}")
    g = torch.Generator().manual_seed(args.seed)
    frames = []
    labels, drawn = _labels(model, args.classes, args.n)
    n = args.n if labels is None else len(labels)
    try:
        if model.kind == "ddpm":
            total = model.config.timesteps if args.ddim_steps is None else len(ddim_timesteps(model.config.timesteps, args.ddim_steps))
            keep = {round(i) for i in torch.linspace(0, total - 1, min(GIF_FRAMES, total)).tolist()} if args.gif else set()
            steps = model.reverse_process(model.noise(n, g), g, args.ddim_steps, args.eta, labels=labels,
                                          guidance=args.guidance, classifier_scale=args.classifier_scale)
            for k, step in enumerate(steps):
                if k in keep:
                    frames.append(image_grid(step.x, nrow=args.n if drawn else None))
                samples = step.x
        else:
            if args.guidance is not None or args.classifier_scale:
                raise CliError("--guidance and --classifier-scale steer a DDPM's sampler; a GAN draws its classes "
                               "directly")
            samples = model.sample(n, g, labels=labels)
    except (ValueError, GenerativeModelError) as exc:
        raise CliError(str(exc)) from None
    save_png(image_grid(samples, nrow=args.n if drawn else None), args.out, scale=args.scale)
    result = {"run": str(args.run), "model": model.kind, "n": n, "png": str(args.out),
              "sampler": ("ddpm" if args.ddim_steps is None else f"ddim ({args.ddim_steps} steps, eta {args.eta})")
              if model.kind == "ddpm" else model.kind}
    if drawn:
        result.update(classes=drawn, per_class=args.n)
        if model.kind == "ddpm":
            result.update(guidance=model.config.guidance if args.guidance is None else args.guidance,
                          classifier_scale=args.classifier_scale)
    if args.gif:
        save_gif(frames, args.gif, scale=args.scale)
        result["gif"] = str(args.gif)
    rows = f" ({args.n} per class, one row each: {', '.join(drawn)})" if drawn else ""
    emit(result, args.json, f"wrote {n} samples to {args.out}{rows}" + (f" and the reverse process to {args.gif}" if args.gif else ""))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.n < 2:
        raise CliError("--n must be >= 2")
    model = _load(args)
    c = model.config
    try:
        data = load_training_images(c.source, c.image_size, c.channels, c.random_crops, c.seed, c.classes_from)
    except (ValueError, OSError, StoreError) as exc:
        raise CliError(f"cannot reload the training images ({c.source}): {exc}") from None
    g = torch.Generator().manual_seed(args.seed)
    labels = torch.arange(args.n) % len(model.classes) if model.classes else None  # every class as often
    try:
        samples = model.sample(args.n, g, ddim_steps=(args.ddim_steps or None) if model.kind == "ddpm" else None,
                               labels=labels, guidance=args.guidance, classifier_scale=args.classifier_scale)
    except (ValueError, GenerativeModelError) as exc:
        raise CliError(str(exc)) from None
    report = quality(samples, data.images, seed=args.seed).as_dict()
    result = {"run": str(args.run), "model": model.kind, "data": data.name, **report}
    mem = report["memorization"]
    human = (f"KID {report['kid']:.4f}, FID {report['fid']:.2f} on {report['samples']} samples "
             f"({report['features']}); nearest-training-image ratio {mem['ratio']:.2f} (below ~0.5: copies)")
    if labels is not None:
        check = class_accuracy(samples, labels, data.images, data.labels, len(model.classes), args.seed).as_dict()
        result.update(classes=model.classes, class_check=check)
        if model.kind == "ddpm":
            result.update(guidance=c.guidance if args.guidance is None else args.guidance,
                          classifier_scale=args.classifier_scale)
        human += (f"; a separately trained classifier labels {check['sample_accuracy']:.0%} of the samples as their "
                  f"class (chance {check['chance']:.0%}; it labels {check['judge_heldout_accuracy']:.0%} of held-out "
                  "training images right)")
    emit(result, args.json, human)
    return 0


def _input(args: argparse.Namespace, model, size: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    try:
        return image_tensor(args.image, size, model.config.channels)
    except ImageLoadError as exc:
        raise CliError(str(exc)) from None


def cmd_inpaint(args: argparse.Namespace) -> int:
    model = _load(args)
    size = model.config.image_size
    image, (left, top, side) = _input(args, model, size)
    if args.mask is not None:
        try:
            mask = load_image(args.mask).pixels
        except ImageLoadError as exc:
            raise CliError(str(exc)) from None
        if mask.ndim == 3:
            mask = mask.max(2)
        square = Image.fromarray(mask[top:top + side, left:left + side]).resize((size, size), Image.Resampling.NEAREST)
        hole = torch.from_numpy(np.asarray(square) > 127)
    else:
        try:
            x0, y0, x1, y1 = (float(v) for v in args.hole.split(","))
        except ValueError:
            raise CliError(f"--hole takes x0,y0,x1,y1 in pixels, got {args.hole!r}") from None
        f = size / side
        c0, r0 = (min(size, max(0, math.floor((v - o) * f))) for v, o in ((x0, left), (y0, top)))
        c1, r1 = (min(size, max(0, math.ceil((v - o) * f))) for v, o in ((x1, left), (y1, top)))
        hole = torch.zeros(size, size, dtype=torch.bool)
        hole[r0:r1, c0:c1] = True
    if not hole.any() or hole.all():
        raise CliError("the hole must cover part of the image's centred square, not none or all of it")
    if args.resample < 1:
        raise CliError("--resample must be at least 1")
    keep = ~hole[None, None]
    try:
        result = inpaint(model, image, keep, torch.Generator().manual_seed(args.seed), args.resample)
    except GenerativeModelError as exc:
        raise CliError(str(exc)) from None
    save_png(image_grid(torch.cat([with_hole(image, keep), result.cpu()]), nrow=2), args.out, scale=args.scale)
    result_info = {"run": str(args.run), "image": str(args.image), "png": str(args.out), "size": size,
                   "hole_pixels": int(hole.sum()), "resample": args.resample, "steps": model.config.timesteps}
    emit(result_info, args.json, f"filled {int(hole.sum())} of {size * size} pixels; wrote {args.out} (left: the "
                                 "input with its hole, right: the result)")
    return 0


def cmd_upscale(args: argparse.Namespace) -> int:
    model = _load(args)
    size = model.config.image_size
    low, _ = _input(args, model, size // 2)
    try:
        high = super_resolve(model, low, torch.Generator().manual_seed(args.seed)).cpu()
    except GenerativeModelError as exc:
        raise CliError(str(exc)) from None
    blocks = torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest")
    save_png(image_grid(torch.cat([blocks, bicubic(low), high]), nrow=3), args.out, scale=args.scale)
    emit({"run": str(args.run), "image": str(args.image), "png": str(args.out), "input_size": size // 2,
          "output_size": size, "steps": model.config.timesteps}, args.json,
         f"doubled {size // 2} px to {size} px; wrote {args.out} (the input's pixels, bicubic, the DDPM's)")
    return 0
