"""``wsv import``, ``wsv export``, ``wsv info`` and ``wsv locate``: moving data between dataset folders and
projects, and finding a project's moved images again."""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from engine.annotations.store import StoreError
from engine.cli.common import CliError, Progress, emit
from engine.datasets.folder import DatasetError
from engine.datasets.importer import MASKS_AS, SIMULATION_STYLES, ScribbleSimulation, import_dataset
from engine.datasets.people import PEOPLE_RADIUS
from engine.datasets.simulate import DEFAULT_RADIUS, DEFAULT_RATIO
from engine.formats import FORMATS, export
from engine.io.outputs import OutputFolderError, claim_output
from engine.models.registry import ModelError, load_model
from engine.project import Project
from engine.refine.masks import MaskMaker, project_masks
from engine.training.common import TrainingError, pick_device


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a dataset folder, COCO, labelme, VOC or YOLO into a (new) project",
                       description="Import images, classes, masks (as ground truth or as marks), scribbles, boxes "
                                   "and tags from a dataset folder or COCO, labelme, Pascal VOC or YOLO files into a "
                                   "project. Labels no class has become classes; an image or file that cannot be "
                                   "read is reported by name and the rest imported.")
    p.add_argument("dataset", type=Path, help="; ".join(f"{name}: {f.source}" for name, f in FORMATS.items()))
    p.add_argument("--format", choices=FORMATS, default="folder", help="what SRC is (default folder)")
    p.add_argument("--images", type=Path, help="where the images are, when not beside the annotation files")
    p.add_argument("--as", dest="masks_as", choices=MASKS_AS, default="truth",
                   help="masks become the images' ground truth, or marks (strokes over exactly their pixels) that "
                        "training learns from")
    p.add_argument("--project", type=Path, required=True, help="project folder to create or add to")
    p.add_argument("--split", choices=["train", "test", "all"], default="all")
    p.add_argument("--copy-images", action="store_true", help="copy images into the project instead of referencing them")
    p.add_argument("--scribbles-dir", default="scribbles", help="sub-folder holding scribble PNGs (default: scribbles)")
    p.add_argument("--simulate-scribbles", action="store_true",
                   help="simulate scribbles from masks for images that have none")
    p.add_argument("--boxes-from-masks", action="store_true",
                   help="box each connected object region of the masks, for images with no boxes")
    p.add_argument("--tags-from-masks", action="store_true",
                   help="tag the classes each mask shows, for images with no tags")
    p.add_argument("--sim-ratio", type=float, default=DEFAULT_RATIO,
                   help="simulated stroke length / skeleton length (0..1]")
    p.add_argument("--sim-radius", type=float,
                   help=f"simulated brush radius in pixels (default {DEFAULT_RADIUS}; people: {PEOPLE_RADIUS})")
    p.add_argument("--sim-style", choices=SIMULATION_STYLES, default="centre-lines",
                   help="simulated strokes: each region's whole centre line, or people's quick marks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="export a project to a dataset folder, COCO, labelme, VOC or YOLO",
                       description="folder: classes.txt, images, masks and scribbles (VOC palette PNGs), boxes and "
                                   "tags. coco: annotations.json (RLE masks per object, boxes, image_tags) beside "
                                   "images/. labelme: ID.json beside each image (polygons, rectangles, flags). voc: "
                                   "JPEGImages/, SegmentationClass/, Annotations/, ImageSets/. yolo: images/, "
                                   "labels/ (polygons or boxes), data.yaml. An image with a mask gives its objects "
                                   "from the mask, one without its boxes.")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--format", choices=FORMATS, default="folder", help="what to write (default folder)")
    p.add_argument("--masks-from", type=Path, metavar="RUN",
                   help="masks from this trained network (refined with each marked image's marks) instead of the "
                        "ground truth")
    p.add_argument("--no-images", action="store_true", help="write labels only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="classes and counts of images and marks in a project")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("locate", help="find a project's missing images (moved or renamed) in a folder",
                       description="Images the project cannot find where it refers to them are looked for in FOLDER "
                                   "and its subfolders by content (the SHA-256 recorded when they were added), so "
                                   "the marks drawn on them stay true.")
    p.add_argument("project", type=Path)
    p.add_argument("folder", type=Path, help="where the images are now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_locate)


def cmd_import(args: argparse.Namespace) -> int:
    try:
        simulation = ScribbleSimulation(args.sim_ratio, args.sim_radius, args.seed, args.sim_style)
    except ValueError as exc:
        raise CliError(f"--sim-ratio / --sim-radius / --sim-style: {exc}") from None
    simulate = simulation if args.simulate_scribbles else None
    try:
        source = FORMATS[args.format].read(args.dataset, args.images)
        project, report = import_dataset(source, args.project, split=args.split, copy_images=args.copy_images,
                                         masks_as=args.masks_as,
                                         scribbles_dir=args.scribbles_dir, simulate=simulate,
                                         simulate_boxes=args.boxes_from_masks, simulate_tags=args.tags_from_masks,
                                         on_progress=Progress("importing"))
    except (DatasetError, StoreError) as exc:
        raise CliError(str(exc)) from None
    project.close()
    result = {"project": str(args.project.resolve()), **vars(report)}
    human = (f"imported {report.images} images into {args.project}: {report.masks} masks, "
             f"{report.strokes} strokes on {report.scribbled_images} images"
             f"{f' ({report.simulated_images} simulated)' if report.simulated_images else ''}, "
             f"{report.boxes} boxes, {report.tagged_images} tagged images")
    for err in report.errors:
        human += f"\nskipped: {err}"
    emit(result, args.json, human)
    return 1 if report.errors and report.images == 0 else 0


def cmd_export(args: argparse.Namespace) -> int:
    project = _open(args.project)
    try:
        claim_output(args.out, "export")
    except OutputFolderError:
        project.close()
        raise
    try:
        masks = None if args.masks_from is None else _network_masks(project, args.masks_from)
        report = export(args.format, project, args.out, copy_images=not args.no_images, masks=masks,
                        on_progress=Progress("exporting"))
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc}") from None
    finally:
        project.close()
    human = (f"exported {FORMATS[args.format].title} to {args.out}: {report.images} images, {report.masks} masks, "
             f"{report.scribbles} scribble maps, boxes of {report.boxes} images, tags of {report.tags} images")
    for err in report.errors:
        human += f"\nproblem: {err}"
    emit({"out": str(args.out.resolve()), **vars(report)}, args.json, human)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    project = _open(args.project)
    store = project.store
    with store.read() as c:
        classes = store.classes()
        images = store.images()
        counts = store.mark_counts()
        per_class = Counter(dict(c.execute("SELECT class_id, COUNT(*) FROM strokes GROUP BY class_id").fetchall()))
        eraser = per_class.pop(None, 0)
        boxes = Counter(dict(c.execute("SELECT class_id, COUNT(*) FROM boxes GROUP BY class_id").fetchall()))
        tags = Counter(dict(c.execute("SELECT class_id, COUNT(*) FROM tags GROUP BY class_id").fetchall()))
        gt = len(store.ground_truth_ids())
    missing = project.missing_images()
    project.close()
    splits = Counter(rec.split or "none" for rec in images)
    result = {
        "project": str(project.root),
        "classes": [{"index": k.index, "name": k.name, "color": "#{:02x}{:02x}{:02x}".format(*k.color),
                     "strokes": per_class.get(k.id, 0), "boxes": boxes.get(k.id, 0), "tagged_images": tags.get(k.id, 0)}
                    for k in classes],
        "images": len(images),
        "missing_images": [rec.path for rec in missing],
        "splits": dict(splits),
        "images_with_strokes": sum(1 for v in counts.values() if v.strokes),
        "images_with_boxes": sum(1 for v in counts.values() if v.boxes),
        "tagged_images": sum(1 for v in counts.values() if v.tagged),
        "images_with_ground_truth": gt,
        "strokes": sum(v.strokes for v in counts.values()),
        "eraser_strokes": eraser,
        "boxes": sum(v.boxes for v in counts.values()),
    }
    lines = [f"project {project.root}", f"{len(images)} images ({', '.join(f'{k}: {v}' for k, v in sorted(splits.items()))}), "
             f"{gt} with ground truth",
             f"{result['strokes']} strokes on {result['images_with_strokes']} images, {result['boxes']} boxes on "
             f"{result['images_with_boxes']} images, {result['tagged_images']} tagged images", "classes:"]
    lines += [f"  {c['index']:>3} {c['name']:<20} {c['color']}  strokes {c['strokes']}, boxes {c['boxes']}, "
              f"tagged {c['tagged_images']}" for c in result["classes"]]
    if missing:
        lines.append(f"{len(missing)} images not found where the project refers to them, e.g. {missing[0].path}: "
                     f"wsv locate {args.project} FOLDER")
    emit(result, args.json, "\n".join(lines))
    return 0


def cmd_locate(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise CliError(f"{args.folder} is not a folder")
    project = _open(args.project)
    try:
        before = len(project.missing_images())
        report = project.locate_images(args.folder, Progress("reading"))
    except StoreError as exc:
        raise CliError(str(exc)) from None
    finally:
        project.close()
    result = {"missing_before": before, "found": {rec.id: rec.path for rec in report.found},
              "still_missing": [rec.path for rec in report.missing]}
    human = ("no image was missing" if not before else
             f"found {len(report.found)} of {before} missing images in {args.folder}"
             + (f"; still missing: {', '.join(rec.path for rec in report.missing[:10])}"
                + (" …" if len(report.missing) > 10 else "") if report.missing else ""))
    emit(result, args.json, human)
    return 1 if report.missing else 0


def _open(root: Path) -> Project:
    try:
        return Project.open(root)
    except StoreError as exc:
        raise CliError(str(exc)) from None


def _network_masks(project: Project, run: Path):
    """Each image's mask from the network saved in ``run``: refined with the image's marks where it has any,
    the network's own elsewhere (as wsv predict and the GUI's Export Masks make them)."""
    try:
        device = pick_device("auto")
        model, config = load_model(run, device)
    except (ModelError, TrainingError) as exc:
        raise CliError(str(exc)) from None
    names = [c.name for c in project.store.classes()]
    if names != config.classes:
        raise CliError(f"the network in {run} was trained for the classes {', '.join(config.classes)}, not this "
                       f"project's {', '.join(names)}")
    return project_masks(MaskMaker(model, config.classes, config.working_size, device), project)
