"""The file formats a project is imported from and exported to, declared once: the CLI's --format choices and
the GUI's Import/Export dialogs read ``FORMATS``. A reader opens a source as a dataset (the interface of
engine.datasets.folder.DatasetFolder, which engine.datasets.importer imports); a writer writes a project, with
each image's mask from a mask source (default: its ground truth)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.datasets.exporter import export_dataset
from engine.datasets.folder import DatasetFolder
from engine.formats.coco import CocoSource, write_coco
from engine.formats.labelme import LabelmeSource, write_labelme
from engine.formats.voc import VocSource, write_voc
from engine.formats.yolo import YoloSource, write_yolo


@dataclass(frozen=True)
class Format:
    title: str
    read: Callable[[Path, Path | None], object]
    """(source path, images folder or None) -> a dataset to import"""
    write: Callable[..., object]
    """(project, out, *, masks, copy_images, on_progress) -> ExportReport"""
    source: str
    """what the source path is, for help texts"""


FORMATS: dict[str, Format] = {
    "folder": Format("dataset folder", lambda path, images: DatasetFolder.open(path), export_dataset,
                     "a dataset folder (classes.txt, images/, masks/, scribbles/, boxes/, tags/)"),
    "coco": Format("COCO JSON", CocoSource.open, write_coco,
                   "a COCO JSON file, or the folder holding annotations.json"),
    "labelme": Format("labelme JSON", LabelmeSource.open, write_labelme, "a folder of labelme JSON files"),
    "voc": Format("Pascal VOC", VocSource.open, write_voc,
                  "a VOC folder (JPEGImages/, SegmentationClass/, Annotations/)"),
    "yolo": Format("YOLO", YoloSource.open, write_yolo, "a YOLO folder (images/, labels/, data.yaml)"),
}
