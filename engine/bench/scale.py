"""``wsv bench scale``: how the tool holds up with large projects and more than one training process.

* import: a folder of generated 0.5-megapixel JPEG photos imported in place (files referenced, not copied;
  each decoded once to refuse damaged ones, and hashed so moved files are found again);
* open: a project of many images (rows only: opening never reads the image files) opened, listed, its
  mark counts read and its files looked for, as the window does before it first draws;
* first paint: the real window on that project, from construction to its first drawn frame (a child process,
  since the engine never imports Qt);
* store: with a million strokes in the project, the latency of committing one more stroke and of reading one
  image's marks (the queries the canvas makes), median and 99th percentile;
* training: images per second of ``wsv train`` on the demo data set with 1 and 2 processes (torchrun, DDP);
* training memory: the peak memory of ``wsv train`` on projects of more and more marked photos, read from disk
  by worker processes through a bounded cache.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from engine.annotations.types import Stroke
from engine.project import Project

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def _photos(folder: Path, count: int, size: tuple[int, int] = (816, 612)) -> None:
    """``count`` distinct photo-like JPEGs of ``size`` (0.5 megapixels): smooth colour fields with detail."""
    import cv2

    rng = np.random.default_rng(0)
    w, h = size
    base = cv2.GaussianBlur((rng.random((h, 2 * w, 3)) * 255).astype(np.uint8), (0, 0), 3)
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"photo{i:06d}.jpg"), np.roll(base, i * 7, axis=1)[:, :w], [cv2.IMWRITE_JPEG_QUALITY, 90])


def bench_import(work: Path, count: int, log: Callable[[str], None]) -> dict:
    from engine.datasets.importer import import_dataset

    ds = work / "photos"
    if not (ds / "images").is_dir() or len(list((ds / "images").iterdir())) != count:
        shutil.rmtree(ds, ignore_errors=True)
        log(f"writing {count} photos ...")
        _photos(ds / "images", count)
        (ds / "classes.txt").write_text("background\nobject\n")
    shutil.rmtree(work / "imported", ignore_errors=True)
    t0 = time.perf_counter()
    project, report = import_dataset(ds, work / "imported")
    seconds = time.perf_counter() - t0
    project.close()
    log(f"import: {report.images} images in {seconds:.1f} s")
    return {"bench": "scale", "measure": "import", "images": report.images, "megapixels_each": 0.5,
            "seconds": round(seconds, 2), "images_per_s": round(report.images / seconds, 1),
            "copied": False}


def _large_project(root: Path, images: int) -> None:
    if Project.exists(root):
        return
    project = Project.create(root, ["background", "object"])
    with project.store.transaction():
        for i in range(images):
            project.store.add_image(f"images/im{i:06d}.jpg", 816, 612, f"{i:064x}")
    project.close()


def bench_open(work: Path, images: int, log: Callable[[str], None]) -> list[dict]:
    root = work / f"project-{images}"
    _large_project(root, images)
    t0 = time.perf_counter()
    project = Project.open(root)
    records = project.store.images()
    project.store.mark_counts()
    project.missing_images(records)
    opened = time.perf_counter() - t0
    project.close()
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    code = ("import json, sys, time; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from engine.project import Project; from wsv_gui.main_window import MainWindow; "
            "t0 = time.perf_counter(); w = MainWindow(Project.open(sys.argv[1])); w.show(); app.processEvents(); "
            "print(json.dumps({'seconds': time.perf_counter() - t0, 'rows': w.image_list.count(), "
            "'thumbnails_asked': len(w.image_list.list_model.asked)})); w.close()")
    res = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"the window could not be measured:\n{res.stderr.strip()[-2000:]}")
    paint = json.loads(res.stdout.strip().splitlines()[-1])
    log(f"open {images} images: {opened:.2f} s; window first paint {paint['seconds']:.2f} s")
    return [{"bench": "scale", "measure": "open", "images": images, "seconds": round(opened, 3),
             "what": "open the project, list its images, count their marks, look for their files"},
            {"bench": "scale", "measure": "gui_first_paint", "images": images, "seconds": round(paint["seconds"], 3),
             "rows": paint["rows"], "thumbnails_asked": paint["thumbnails_asked"],
             "what": "main window built on the project and drawn once"}]


def bench_store(work: Path, strokes: int, log: Callable[[str], None], images: int = 1000) -> dict:
    root = work / f"marks-{strokes}"
    if not Project.exists(root):
        project = Project.create(root, ["background", "object"])
        store = project.store
        with store.transaction():
            ids = [store.add_image(f"images/im{i:06d}.jpg", 816, 612, f"{i:064x}").id for i in range(images)]
        bg = store.classes()[0].id
        rng = np.random.default_rng(0)
        for start in range(0, strokes, 50_000):
            n = min(50_000, strokes - start)
            pts = rng.uniform(0, 600, (n, 8, 2)).astype(np.float32)
            store.add_strokes(Stroke(ids[(start + i) % images], bg, 3.0, pts[i]) for i in range(n))
        project.close()
    project = Project.open(root)
    store = project.store
    ids = [r.id for r in store.images()]
    bg = store.classes()[0].id
    write, read = [], []
    line = np.array([[10.0, 10.0], [200.0, 120.0], [300, 300]], np.float32)
    for i in range(200):
        t0 = time.perf_counter()
        store.add_stroke(Stroke(ids[i * 5 % len(ids)], bg, 3.0, line))
        write.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        store.marks(ids[i * 7 % len(ids)])
        read.append((time.perf_counter() - t0) * 1000)
    total = sum(c.strokes for c in store.mark_counts().values())
    project.close()
    write.sort(), read.sort()
    p99 = lambda v: v[int(0.99 * (len(v) - 1))]  # noqa: E731
    log(f"store with {total} strokes: commit a stroke {statistics.median(write):.1f} ms (p99 {p99(write):.1f}), "
        f"read an image's marks {statistics.median(read):.1f} ms (p99 {p99(read):.1f})")
    return {"bench": "scale", "measure": "store", "strokes": total, "images": len(ids),
            "write_ms_median": round(statistics.median(write), 2), "write_ms_p99": round(p99(write), 2),
            "read_marks_ms_median": round(statistics.median(read), 2), "read_marks_ms_p99": round(p99(read), 2)}


def bench_training(work: Path, seconds: float, log: Callable[[str], None]) -> list[dict]:
    wsv = Path(sys.executable).with_name("wsv")
    out = []
    for devices in (1, 2):
        run = work / f"train-{devices}"
        shutil.rmtree(run, ignore_errors=True)
        res = subprocess.run([str(wsv), "train", str(DEMO), "--split", "all", "--devices", str(devices), "--out",
                              str(run), "--steps", "100000", "--max-minutes", str(seconds / 60), "--json"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"wsv train --devices {devices} failed:\n{res.stderr.strip()[-2000:]}")
        summary = json.loads(res.stdout)
        rate = summary["steps"] * summary["config"]["batch_size"] / (summary["minutes"] * 60)
        log(f"training with {devices} process(es): {rate:.2f} images/s")
        out.append({"bench": "scale", "measure": "training", "processes": devices,
                    "world_size": summary["world_size"], "steps": summary["steps"],
                    "minutes": summary["minutes"], "images_per_s": round(rate, 2),
                    "what": "wsv train on the demo data set, default settings, global batch "
                            f"{summary['config']['batch_size']}"})
    return out


def _marked_project(root: Path, photos: list[Path]) -> None:
    """A project of ``photos`` referenced in place, each with an object stroke and a background stroke."""
    if Project.exists(root):
        return
    project = Project.create(root, ["background", "object"])
    project.add_images(photos)
    background, obj = project.store.classes()
    with project.store.transaction():
        for rec in project.store.images():
            w, h = rec.width, rec.height
            project.store.add_stroke(Stroke(rec.id, obj.id, 3.0, [[w * 0.4, h * 0.5], [w * 0.6, h * 0.5]]))
            project.store.add_stroke(Stroke(rec.id, background.id, 3.0, [[w * 0.05, h * 0.1], [w * 0.05, h * 0.9]]))
    project.close()


_PEAK_RSS = """import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if code.returncode:
    sys.exit(code.stderr[-2000:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
"""Runs a command and prints the peak resident memory (KiB) of the largest process it started, from a fresh
parent so that no earlier run counts."""


def bench_memory(work: Path, counts: list[int], steps: int, workers: int, cache_mb: int,
                 log: Callable[[str], None]) -> list[dict]:
    """Peak memory of ``wsv train`` on projects of ``counts`` marked 0.5-megapixel photos, the same steps each:
    the trainer keeps an index of the images and a cache of at most ``cache_mb``, so the peak should not grow
    with the count."""
    wsv = Path(sys.executable).with_name("wsv")
    photos = sorted((work / "photos" / "images").iterdir())
    out = []
    for count in counts:
        if count > len(photos):
            raise RuntimeError(f"the memory runs need {count} photos; import at least that many (--import-images)")
        root = work / f"marked-{count}"
        _marked_project(root, photos[:count])
        run = work / f"memory-{count}"
        shutil.rmtree(run, ignore_errors=True)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(wsv), "train", str(root), "--steps", str(steps),
                              "--workers", str(workers), "--cache-mb", str(cache_mb), "--out", str(run)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"wsv train on {count} marked images failed:\n{res.stderr.strip()[-2000:]}")
        peak_mb = int(res.stdout.split()[-1]) / 1024
        seconds = time.perf_counter() - t0
        log(f"training on {count} marked images: peak memory {peak_mb:.0f} MiB, {steps} steps in {seconds:.0f} s")
        out.append({"bench": "scale", "measure": "training memory", "marked_images": count, "steps": steps,
                    "workers": workers, "cache_mb": cache_mb, "peak_rss_mb": round(peak_mb),
                    "seconds": round(seconds, 1),
                    "what": "peak resident memory of the largest process of wsv train (the trainer or a reader), "
                            "default model and batch, images read from disk as drawn"})
    return out


def run_scale(work: Path, import_images: int, open_images: int, strokes: int, train_seconds: float,
              memory_counts: list[int], memory_steps: int, log: Callable[[str], None] = print) -> list[dict]:
    work.mkdir(parents=True, exist_ok=True)
    records = [bench_import(work, import_images, log)]
    records += bench_open(work, open_images, log)
    records.append(bench_store(work, strokes, log))
    if train_seconds > 0:
        records += bench_training(work, train_seconds, log)
    if memory_counts and memory_steps > 0:
        records += bench_memory(work, memory_counts, memory_steps, workers=2, cache_mb=256, log=log)
    return records
