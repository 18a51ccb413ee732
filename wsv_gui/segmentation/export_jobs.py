"""Exporting masks from the trained model, as a Worker job (wsv_gui.workers) with progress and cancel: each
marked image's mask refined with its own marks, the network's mask for the others (engine.refine.masks), as the
overlay shows.

The job opens its own project connection and loads the model the trainer last saved, so the window stays
responsive and the export never races the trainer for the network.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from engine.datasets.exporter import ExportReport
from engine.errors import UserError
from engine.formats import FORMATS
from engine.models.registry import ModelError, load_model
from engine.project import Project
from engine.refine.masks import REFINED, MaskMaker, project_masks
from engine.training.common import pick_device
from wsv_gui.workers import Worker


class MaskExport:
    """The export, in one of engine.formats.FORMATS, as a generator of (images done, total); ``summary()`` says
    what was written."""

    def __init__(self, project_root: Path, model_dir: Path | None, out: Path, format_name: str = "folder") -> None:
        """``model_dir`` None: the ground truth's masks."""
        self.project_root, self.out, self.format = project_root, out, FORMATS[format_name]
        self.device = pick_device("auto")
        self.model, self.config = load_model(model_dir, self.device) if model_dir is not None else (None, None)
        self.report = ExportReport()
        self.maker: MaskMaker | None = None
        self.complete = False

    def run(self) -> Iterator[tuple[int, int]]:
        with Project.open(self.project_root) as project:
            masks = None
            if self.model is not None:
                names = [c.name for c in project.store.classes()]
                if names != self.config.classes:
                    raise ModelError(f"the classes changed since the model was trained "
                                     f"({', '.join(self.config.classes)} → {', '.join(names)}): train again before "
                                     f"exporting masks")
                self.maker = MaskMaker(self.model, self.config.classes, self.config.working_size, self.device)
                masks = project_masks(self.maker, project)
            yield from self.format.steps(project, self.out, self.report, masks=masks)
        if self.maker is not None:
            (self.out / "masks.json").write_text(json.dumps(self.maker.record(str(self.project_root)), indent=1)
                                                 + "\n", encoding="utf-8")
        self.complete = True

    def summary(self) -> str:
        if not self.complete:
            return f"Export cancelled; the files written so far are in {self.out}"
        report = self.report
        if self.maker is None:
            made = f"{report.masks} ground-truth masks"
        else:
            refined = sum(1 for kind in self.maker.kinds.values() if kind == REFINED)
            made = (f"{report.masks} masks ({refined} refined with their images' marks, {report.masks - refined} "
                    f"from the network; masks.json says which)")
        text = f"Exported {self.format.title}: {made}, {report.scribbles} scribble maps and {report.images} images " \
               f"to {self.out}"
        if report.errors:
            text += f"\n\n{len(report.errors)} problems, first: {report.errors[0]}"
        return text


class ExportMasksWorker(Worker):
    """``progress`` carries (done, total); ``stopped`` the summary (or that it was cancelled)."""

    what = "export"
    user_errors = (UserError, OSError)
    """a full disk or a folder that cannot be written is told in words"""

    def __init__(self, project_root: Path, model_dir: Path | None, out: Path, format_name: str = "folder") -> None:
        super().__init__()
        self.project_root, self.model_dir, self.out, self.format_name = project_root, model_dir, out, format_name

    def create(self) -> MaskExport:
        return MaskExport(self.project_root, self.model_dir, self.out, self.format_name)

    def finish(self, export: MaskExport) -> str:
        return export.summary()
