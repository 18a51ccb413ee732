"""Exporting masks from the trained model, in a background thread with progress and cancel: each marked image's
mask refined with its own marks, the network's mask for the others (engine.refine.masks), as the overlay shows.

The job opens its own project connection and loads the model the trainer last saved, so the window stays
responsive and the export never races the trainer for the network.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from engine.datasets.exporter import export_dataset, image_ids
from engine.io.images import ImageLoadError
from engine.models.registry import ModelError, load_model
from engine.project import Project
from engine.refine.masks import REFINED, MaskMaker, store_marks
from engine.training.common import pick_device


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
                store = project.store
                names = [c.name for c in store.classes()]
                if names != config.classes:
                    raise ModelError(f"the classes changed since the model was trained ({', '.join(config.classes)} "
                                     f"→ {', '.join(names)}): train again before exporting masks")
                maker = MaskMaker(model, config.classes, config.working_size, device)
                stems = image_ids(store.images())

                def mask(rec):
                    try:
                        return maker(stems[rec.id], project.image_path(rec), store_marks(store, rec))
                    except (ImageLoadError, ValueError):
                        return None

                def on_progress(done: int, total: int) -> None:
                    if self.isInterruptionRequested():
                        raise Cancelled()
                    self.progress.emit(done, total)

                report = export_dataset(project, self.out, masks=mask, on_progress=on_progress)
            (self.out / "masks.json").write_text(json.dumps(maker.record(str(self.project_root)), indent=1) + "\n",
                                                 encoding="utf-8")
            refined = sum(1 for kind in maker.kinds.values() if kind == REFINED)
            summary = f"Exported {report.masks} masks ({refined} refined with their images' marks, " \
                      f"{report.masks - refined} from the network; masks.json says which), {report.scribbles} " \
                      f"scribble maps and {report.images} images to {self.out}"
            if report.errors:
                summary += f"\n\n{len(report.errors)} problems, first: {report.errors[0]}"
            self.done.emit(summary)
        except Cancelled:
            self.failed.emit("Export cancelled; the files written so far are in " + str(self.out))
        except (ModelError, OSError) as exc:
            self.failed.emit(str(exc))
