"""``wsv bench``: speed and quality figures as JSON records (docs/benchmarks.md's tables come from these)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from engine.cli.common import CliError, emit
from engine.datasets.importer import SIMULATION_STYLES
from engine.datasets.people import PEOPLE_RADIUS
from engine.datasets.simulate import DEFAULT_RADIUS, DEFAULT_RATIO
from engine.cli.train_cmds import TRAIN_MINUTES
from engine.settings import add_options, from_options
from engine.training.config import DEFAULT_REG_WEIGHT, REGULARIZERS, TrainConfig
from engine.training.pretrain import TASKS

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print its records")
    bench = p.add_subparsers(dest="bench", required=True, metavar="BENCH")

    q = bench.add_parser("quality", help="mIoU of full vs scribble, box and tag supervision, with and without CRF losses")
    q.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"evaluation data folder (default {DEFAULT_DATA})")
    q.add_argument("--datasets", default="horses,acdc",
                   help="comma-separated data sets in --data, or the object sets built from them "
                        "(msrc-objects, horses-objects: one object per photo, people-like strokes)")
    q.add_argument("--methods", default="full,pce,pce+grid,pce+dense",
                   help="comma-separated: full, boxes-grabcut, or pce, boxes, tags alone or with a regularizer "
                        f"(+{', +'.join(r for r in REGULARIZERS if r != 'none')}); the default is the scribble set")
    q.add_argument("--dense-weight", type=float, help=f"dense CRF loss weight of the +dense methods (default "
                                                      f"{DEFAULT_REG_WEIGHT['dense']})")
    add_options(q, TrainConfig, skip=("supervision", "regularizer", "reg_weight"),
                defaults={"max_minutes": TRAIN_MINUTES})
    q.add_argument("--scribble-ratio", type=float, default=DEFAULT_RATIO,
                   help="where a data set has no scribbles: how much of each region's centre line the simulated "
                        "strokes draw (1.0, the whole centre line, is what ACDC's annotators drew or less; 0.3 "
                        "with radius 2 a quick, sparse pass)")
    q.add_argument("--scribble-radius", type=float,
                   help=f"where a data set has no scribbles: the simulated strokes' brush radius in pixels (default "
                        f"{DEFAULT_RADIUS}; people: {PEOPLE_RADIUS})")
    q.add_argument("--scribble-style", choices=SIMULATION_STYLES, default="centre-lines",
                   help="where a data set has no scribbles: each region's whole centre line, or people's quick marks")
    q.add_argument("--work", type=Path, default=Path("runs/bench-quality"), help="folder for projects and models")
    q.add_argument("--figures", type=Path, help="write each method's predictions on a few test images here (PNG)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_quality)

    from engine.bench.active import ActiveSetup

    a = bench.add_parser("active", help="test mIoU against strokes drawn where the suggestions point or at random")
    a.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"evaluation data folder (default {DEFAULT_DATA})")
    a.add_argument("--datasets", default="horses,msrc", help="comma-separated data sets in --data")
    a.add_argument("--seeds", default="0,1", help="comma-separated seeds: pool, starting marks, network, strokes")
    for name, help_text in (("pool", "training images the simulated annotator may mark"),
                            ("test", "test images scored after every round"),
                            ("start_images", "pool images with people-like strokes before the first round"),
                            ("rounds", "rounds of strokes"), ("strokes_per_round", "strokes drawn each round"),
                            ("steps_per_round", "training steps after each round")):
        a.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(ActiveSetup, name),
                       help=f"{help_text} (default {getattr(ActiveSetup, name)})")
    add_options(a, TrainConfig, skip=("supervision", "steps", "max_minutes", "seed"),
                defaults={"working_size": 192, "crop_size": 160})
    a.add_argument("--work", type=Path, default=Path("runs/bench-active"), help="folder for the projects")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_active)

    pt = bench.add_parser("pretrain", help="test mIoU with few marked patients, with and without self-supervised "
                                           "pretraining")
    pt.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"evaluation data folder (default {DEFAULT_DATA})")
    pt.add_argument("--dataset", default="acdc", help="data set in --data with scribbles and masks")
    pt.add_argument("--patients", default="5,10,30", help="comma-separated counts of training patients whose "
                                                          "scribbles are kept")
    pt.add_argument("--seeds", default="0,1", help="comma-separated seeds: patients chosen, pretraining, training")
    pt.add_argument("--task", choices=TASKS, default="inpainting", help="the pretraining task")
    pt.add_argument("--pretrain-steps", type=int, default=1000, help="pretraining steps on every training image")
    add_options(pt, TrainConfig, skip=("supervision", "seed"),
                defaults={"model": "unet", "steps": 1000, "max_minutes": 60, "working_size": 160, "crop_size": 160})
    pt.add_argument("--work", type=Path, default=Path("runs/bench-pretrain"), help="folder for projects and runs")
    pt.add_argument("--json", action="store_true")
    pt.set_defaults(func=cmd_pretrain)

    r = bench.add_parser("refine", help="ways of refining marked images' masks, on the models bench quality saved")
    r.add_argument("--data", type=Path, default=DEFAULT_DATA)
    r.add_argument("--datasets", default="msrc-objects,horses-objects")
    r.add_argument("--methods", default="pce+dense,boxes+dense", help="bench quality methods whose models to use")
    r.add_argument("--seed", type=int, default=0, help="the bench quality seed the models were trained with")
    r.add_argument("--work", type=Path, default=Path("runs/bench-quality"), help="bench quality's work folder")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_refine)

    c = bench.add_parser("crf", help="dense and grid CRF loss speed, and the dense loss's error vs brute force")
    c.add_argument("--data", type=Path, default=DEFAULT_DATA)
    c.add_argument("--sizes", default="256,512,1024")
    c.add_argument("--classes", default="2,21")
    c.add_argument("--sigma-xy", default="100,5", help="spatial bandwidths to run (σ_rgb is 15)")
    c.add_argument("--reps", type=int, default=5)
    c.add_argument("--no-accuracy", action="store_true", help="skip the brute-force comparison")
    c.add_argument("--device", default="auto", help="auto (CPU, and CUDA when present), cpu or cuda")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_crf)

    d = bench.add_parser("detect", help="mAP and speed of a CNN detector vs HOG + linear SVM on boxes from masks")
    d.add_argument("--data", type=Path, default=DEFAULT_DATA)
    d.add_argument("--datasets", default="horses")
    d.add_argument("--methods", default="fasterrcnn_mobilenet_v3_large_320_fpn,hog-svm",
                   help="comma-separated torchvision detector names and/or hog-svm")
    d.add_argument("--steps", type=int, default=300, help="training steps of the CNN detectors")
    d.add_argument("--device", default="auto")
    d.add_argument("--work", type=Path, default=Path("runs/bench-detect"), help="folder for the imported projects")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_detect)

    add_generative_parser(bench)

    s = bench.add_parser("scribbles", help="simulated strokes against a data set's real scribbles: length, pixels")
    s.add_argument("--data", type=Path, default=DEFAULT_DATA)
    s.add_argument("--datasets", default="acdc", help="data sets with both scribbles/ and masks/")
    s.add_argument("--split", choices=("train", "test", "all"), default="train")
    s.add_argument("--scribble-ratio", type=float, default=DEFAULT_RATIO,
                   help="simulated share of each region's centre line")
    s.add_argument("--scribble-radius", type=float,
                   help=f"simulated brush radius in pixels (default {DEFAULT_RADIUS}; people: {PEOPLE_RADIUS})")
    s.add_argument("--scribble-style", choices=SIMULATION_STYLES, default="centre-lines",
                   help="simulated strokes: each region's whole centre line, or people's quick marks")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_scribbles)

    ld = bench.add_parser("load", help="training throughput idle and beside competing CPU-bound processes, with "
                                       "the engine's thread wait policy and libgomp's default")
    ld.add_argument("--seconds", type=float, default=30.0, help="how long each configuration trains after warm-up")
    ld.add_argument("--competitors", default=None,
                    help="comma-separated numbers of competing busy processes (default: 0 and 1)")
    ld.add_argument("--policies", default="passive,spin",
                    help="comma-separated wait policies: passive (the engine's default), spin (libgomp's default: "
                         "300 000 spins before sleeping) or spin-N")
    ld.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    ld.add_argument("--repeats", type=int, default=1, help="run the whole grid this many times")
    ld.add_argument("--json", action="store_true")
    ld.set_defaults(func=cmd_load)

    sc = bench.add_parser("scale", help="import rate, opening and first paint of a large project, store latency "
                                         "with a million strokes, training with 1 and 2 processes")
    sc.add_argument("--import-images", type=int, default=10_000, help="0.5-megapixel photos to import")
    sc.add_argument("--open-images", type=int, default=100_000, help="images in the project opened")
    sc.add_argument("--strokes", type=int, default=1_000_000, help="strokes in the project whose store is timed")
    sc.add_argument("--train-seconds", type=float, default=60.0,
                    help="training time with 1 and with 2 processes (0: skip)")
    sc.add_argument("--memory-images", default="500,5000",
                    help="comma-separated counts of marked photos whose training memory is measured (at most "
                         "--import-images; empty: skip)")
    sc.add_argument("--memory-steps", type=int, default=100, help="training steps of each memory run")
    sc.add_argument("--work", type=Path, default=Path("runs/bench-scale"),
                    help="folder for the generated photos and projects (kept for reruns)")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_scale)

    g = bench.add_parser("gui", help="event-loop stalls and stroke latency on a 4000x3000 image while training")
    g.add_argument("--seconds", type=float, default=30.0, help="how long to measure while training")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gui)


def cmd_crf(args: argparse.Namespace) -> int:
    import torch

    from engine.bench.crf import run_crf

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    try:
        records = run_crf(args.data, _ints(args.sizes), _ints(args.classes), [float(v) for v in args.sigma_xy.split(",")],
                          reps=args.reps, accuracy=not args.no_accuracy, devices=devices,
                          log=lambda m: print(m, file=sys.stderr))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def _ints(text: str, minimum: int = 1) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < minimum:
        what = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise CliError(f"expected comma-separated {what}, got {text!r}")
    return values


def cmd_detect(args: argparse.Namespace) -> int:
    from engine.bench.detect import run_detect
    from engine.training.common import TrainingError
    from engine.detection.hog_svm import METHOD as HOG_SVM
    from engine.detection.models import DETECTORS

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in DETECTORS and m != HOG_SVM]
    if unknown:
        raise CliError(f"unknown methods {unknown}; choose from {', '.join([*DETECTORS, HOG_SVM])}")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    missing = [d for d in datasets if not (args.data / d / "classes.txt").is_file()]
    if missing:
        raise CliError(f"data sets not found in {args.data}: {', '.join(missing)}")
    try:
        records = run_detect(args.data, datasets, methods, args.steps, args.work, args.device,
                             log=lambda m: print(m, file=sys.stderr))
    except (ValueError, TrainingError) as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def add_generative_parser(bench: argparse._SubParsersAction) -> None:
    from engine.generative.config import GenerativeConfig
    from engine.generative.data import SIZES

    from engine.bench.generative import VARIANTS

    p = bench.add_parser("generative", help="training speed of the VAE, GAN and DDPM, their conditional forms and "
                                            "latent diffusion; sampling time, KID/FID and class accuracy")
    p.add_argument("--models", default="vae,gan,ddpm", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--data", default="builtin:digits", help="'builtin:digits' or a project folder")
    p.add_argument("--size", type=int, choices=SIZES, default=GenerativeConfig.image_size)
    p.add_argument("--color", action="store_true", help="colour images (default: grayscale)")
    p.add_argument("--steps", type=int, default=GenerativeConfig.steps, help="training steps per model")
    p.add_argument("--max-minutes", type=float, default=3.5, help="training budget per model")
    p.add_argument("--batch-size", type=int, default=GenerativeConfig.batch_size)
    p.add_argument("--base-channels", type=int, default=GenerativeConfig.base_channels)
    p.add_argument("--timesteps", type=int, default=GenerativeConfig.timesteps, help="DDPM T")
    p.add_argument("--samples", type=int, default=256, help="samples scored per model (and DDIM)")
    p.add_argument("--ddpm-samples", type=int, default=64,
                   help="samples drawn with T-step ancestral DDPM, and again with DDIM from the same noise")
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--guidance-scales", default="0,1,3", help="cddpm: classifier-free guidance scales sampled")
    p.add_argument("--classifier-scale", type=float, default=5.0,
                   help="cddpm: classifier guidance scale of its last row (0: no such row)")
    p.add_argument("--device", default="auto", help="auto (CPU, and CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("runs/bench-generative"), help="folder for the trained models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_generative)


def cmd_generative(args: argparse.Namespace) -> int:
    import torch

    from engine.annotations.store import StoreError
    from engine.bench.generative import VARIANTS, run_generative, table
    from engine.generative.config import GenerativeConfig
    from engine.training.common import TrainingError

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in VARIANTS]
    if unknown or not models:
        raise CliError(f"unknown models {unknown}; choose from {', '.join(VARIANTS)}")
    try:
        scales = [float(v) for v in args.guidance_scales.split(",") if v.strip()]
    except ValueError:
        raise CliError(f"--guidance-scales takes comma-separated numbers, got {args.guidance_scales!r}") from None
    if not scales or min(scales) < 0 or args.classifier_scale < 0:
        raise CliError("guidance scales must be at least 0, and --guidance-scales must name one")
    if args.samples < 4 or args.ddpm_samples < 4:
        raise CliError("--samples and --ddpm-samples must be >= 4 (KID's spread is taken over half-size subsets)")
    if not 1 <= args.ddim_steps <= args.timesteps:
        raise CliError(f"--ddim-steps must lie in 1..{args.timesteps} (the DDPM's T)")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    try:
        base = GenerativeConfig(source=args.data, image_size=args.size, channels=3 if args.color else 1,
                                steps=args.steps, max_minutes=args.max_minutes, batch_size=args.batch_size,
                                base_channels=args.base_channels, timesteps=args.timesteps, threads=args.threads, seed=args.seed)
        records = run_generative(base, models, args.samples, args.ddpm_samples, args.ddim_steps, devices, args.work,
                                 log=lambda m: print(m, file=sys.stderr), guidance_scales=scales,
                                 classifier_scale=args.classifier_scale)
    except (ValueError, OSError, StoreError, TrainingError) as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, table(records))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from engine.bench.load import policy_env, run_load

    policies = _names(args.policies)
    if not policies:
        raise CliError("--policies names no wait policy")
    for policy in policies:
        try:
            policy_env(policy)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    competitors = sorted({0, *_ints(args.competitors, minimum=0)}) if args.competitors else [0, 1]
    if args.seconds <= 0 or args.repeats < 1:
        raise CliError(f"--seconds must be positive and --repeats at least 1, got {args.seconds} and {args.repeats}")
    try:
        records = run_load(args.seconds, competitors, policies, args.threads, log=lambda m: print(m, file=sys.stderr),
                           repeats=args.repeats)
    except (ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    from engine.bench.scale import run_scale

    for name in ("import_images", "open_images", "strokes"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.train_seconds < 0:
        raise CliError(f"--train-seconds must be >= 0, got {args.train_seconds}")
    try:
        records = run_scale(args.work, args.import_images, args.open_images, args.strokes, args.train_seconds,
                            _ints(args.memory_images, 1) if args.memory_images else [], args.memory_steps,
                            log=lambda m: print(m, file=sys.stderr))
    except (RuntimeError, OSError) as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    """Runs in a child process: the engine never imports Qt, the benchmark needs the real window."""
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    res = subprocess.run([sys.executable, "-m", "wsv_gui.bench", "--seconds", str(args.seconds)],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise CliError(f"the GUI benchmark failed:\n{res.stderr.strip()[-2000:]}")
    records = json.loads(res.stdout)
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from engine.bench.objects import OBJECT_SETS
    from engine.bench.quality import METHODS, ImportMismatch, run_quality

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CliError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    missing = [d for d in datasets if not (args.data / OBJECT_SETS.get(d, (d,))[0] / "classes.txt").is_file()]
    if missing:
        raise CliError(f"data sets not found in {args.data}: {', '.join(missing)}")
    simulation = _simulation(args)
    if args.dense_weight is not None and args.dense_weight < 0:
        raise CliError(f"--dense-weight must be >= 0, got {args.dense_weight}")
    base = from_options(TrainConfig, args, eval_interval_s=0)
    try:
        records = run_quality(args.data, datasets, methods, base, args.work, log=lambda m: print(m, file=sys.stderr),
                              simulation=simulation, figures=args.figures, dense_weight=args.dense_weight)
    except ImportMismatch as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def cmd_active(args: argparse.Namespace) -> int:
    from engine.bench.active import ActiveSetup, run_active

    datasets = _names(args.datasets)
    missing = [d for d in datasets if not (args.data / d / "masks").is_dir()]
    if missing:
        raise CliError(f"data sets with masks not found in {args.data}: {', '.join(missing)}")
    setup = ActiveSetup(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ActiveSetup)})
    for f in dataclasses.fields(ActiveSetup):
        if getattr(setup, f.name) < (0 if f.name == "rounds" else 1):
            raise CliError(f"--{f.name.replace('_', '-')} must be positive, got {getattr(setup, f.name)}")
    if setup.start_images > setup.pool:
        raise CliError(f"--start-images ({setup.start_images}) cannot exceed --pool ({setup.pool})")
    base = from_options(TrainConfig, args, supervision="scribbles", eval_interval_s=0)
    records = run_active(args.data, datasets, _ints(args.seeds, 0), setup, base, args.work,
                         log=lambda m: print(m, file=sys.stderr))
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from engine.bench.pretrain import run_pretrain_bench

    if not (args.data / args.dataset / "scribbles").is_dir():
        raise CliError(f"no data set with scribbles at {args.data / args.dataset}")
    if args.pretrain_steps < 1:
        raise CliError(f"--pretrain-steps must be at least 1, got {args.pretrain_steps}")
    base = from_options(TrainConfig, args, eval_interval_s=0)
    try:
        records = run_pretrain_bench(args.data, args.dataset, _ints(args.patients), _ints(args.seeds, 0), args.task,
                                     args.pretrain_steps, base, args.work, log=lambda m: print(m, file=sys.stderr))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def cmd_refine(args: argparse.Namespace) -> int:
    from engine.bench.refine import run_refine
    from engine.datasets.folder import DatasetError

    from engine.bench.quality import METHODS

    unknown = [m for m in _names(args.methods) if m not in METHODS]
    if unknown:
        raise CliError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    try:
        records = run_refine(args.data, _names(args.datasets), _names(args.methods), args.work, args.seed,
                             log=lambda m: print(m, file=sys.stderr))
    except (ValueError, DatasetError) as exc:
        raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def cmd_scribbles(args: argparse.Namespace) -> int:
    from engine.bench.scribbles import compare_scribbles
    from engine.datasets.folder import DatasetError, DatasetFolder

    simulation = _simulation(args)
    records = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        try:
            records += compare_scribbles(DatasetFolder.open(args.data / name), simulation, args.split,
                                         log=lambda m: print(m, file=sys.stderr))
        except (DatasetError, ValueError) as exc:
            raise CliError(str(exc)) from None
    emit(records, args.json, "\n".join(_row(r) for r in records))
    return 0


def _simulation(args: argparse.Namespace):
    from engine.datasets.importer import ScribbleSimulation

    try:
        return ScribbleSimulation(args.scribble_ratio, args.scribble_radius, style=args.scribble_style)
    except ValueError as exc:
        raise CliError(f"--scribble-ratio / --scribble-radius / --scribble-style: {exc}") from None


def _row(r: dict) -> str:
    return "  ".join(f"{k}={v}" for k, v in r.items() if k != "bench")
