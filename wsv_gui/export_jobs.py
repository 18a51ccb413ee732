"""Exporting masks predicted by the trained model, in a background thread with progress and cancel.

The job opens its own project connection and loads the model the trainer last saved, so the window stays
responsive and the export never races the trainer for the network.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThread, Signal

from engine.datasets.exporter import export_dataset
from engine.io.images import ImageLoadError
from engine.models.registry import ModelError, load_model
from engine.project import Project
from engine.training.trainer import pick_device, predict_full_size


class Cancelled(Exception):
    pass


class ExportMasksJob(QThread):
    progress = Signal(int, int)
    done = Signal(str)
    failed = Signal(str)

    def __init__(self, project_root: Path, model_dir: Path, out: Path, parent=None) -> None:
        super().__init__(parent)
        self.project_root, self.model_dir, self.out = project_root, model_dir, out

    def run(self) -> None:
        try:
            device = pick_device("auto")
            model, config = load_model(self.model_dir, device)
            with Project.open(self.project_root) as project:
                def predict(rec):
                    try:
                        img = project.load_image(rec, max_side=config.working_size)
                    except ImageLoadError:
                        return None
                    return predict_full_size(model, img.pixels, img.original_size, device)

                def on_progress(done: int, total: int) -> None:
                    if self.isInterruptionRequested():
                        raise Cancelled()
                    self.progress.emit(done, total)

                report = export_dataset(project, self.out, masks=predict, on_progress=on_progress)
            summary = f"Exported {report.masks} predicted masks, {report.scribbles} scribble maps and " \
                      f"{report.images} images to {self.out}"
            if report.errors:
                summary += f"\n\n{len(report.errors)} problems, first: {report.errors[0]}"
            self.done.emit(summary)
        except Cancelled:
            self.failed.emit("Export cancelled; the files written so far are in " + str(self.out))
        except (ModelError, OSError) as exc:
            self.failed.emit(str(exc))
