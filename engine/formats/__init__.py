"""The file formats a project is imported from and exported to, declared once: the CLI's --format choices and
the GUI's export dialog read ``FORMATS``. A reader opens a source as a dataset (the interface of
engine.datasets.folder.DatasetFolder, which engine.datasets.importer imports); a writer is a generator that
writes a project one image at a time, yielding (images done, total), with each image's mask from a mask source
(default: its ground truth), so that whoever drives it shows progress and may stop between images."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from engine.datasets.exporter import ExportReport, MaskSource, export_steps
from engine.datasets.folder import DatasetFolder
from engine.formats.coco import CocoSource, coco_steps
from engine.formats.labelme import LabelmeSource, labelme_steps
from engine.formats.voc import VocSource, voc_steps
from engine.formats.yolo import YoloSource, yolo_steps
from engine.project import Project


@dataclass(frozen=True)
class Format:
    title: str
    read: Callable[[Path, Path | None], object]
    """(source path, images folder or None) -> a dataset to import"""
    steps: Callable[..., Iterator[tuple[int, int]]]
    """(project, out, report, *, masks, copy_images) -> generator of (done, total), filling report"""
    source: str
    """what the source path is, for help texts"""


FORMATS: dict[str, Format] = {
    "folder": Format("dataset folder", lambda path, images: DatasetFolder.open(path), export_steps,
                     "a dataset folder (classes.txt, images/, masks/, scribbles/, boxes/, tags/)"),
    "coco": Format("COCO JSON", CocoSource.open, coco_steps,
                   "a COCO JSON file, or the folder holding annotations.json"),
    "labelme": Format("labelme JSON", LabelmeSource.open, labelme_steps, "a folder of labelme JSON files"),
    "voc": Format("Pascal VOC", VocSource.open, voc_steps,
                  "a VOC folder (JPEGImages/, SegmentationClass/, Annotations/)"),
    "yolo": Format("YOLO", YoloSource.open, yolo_steps, "a YOLO folder (images/, labels/, data.yaml)"),
}


def export(name: str, project: Project, out: str | Path, *, masks: MaskSource | None = None,
           copy_images: bool = True, on_progress: Callable[[int, int], None] | None = None) -> ExportReport:
    """Write ``project`` into ``out`` in the format ``name``, all at once."""
    report = ExportReport()
    for done, total in FORMATS[name].steps(project, out, report, masks=masks, copy_images=copy_images):
        if on_progress:
            on_progress(done, total)
    return report
