"""The Segmentation tab: the canvas where strokes and boxes are drawn, the training panel (Train / Pause / Stop,
settings, curves) and the gradient view; it owns the live training worker, the previews it sends, and the
export of masks and of the trained network."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox, QProgressDialog, QSplitter, \
    QVBoxLayout, QWidget

from engine.annotations.types import UNLABELED, ClassDef
from engine.errors import UserError
from engine.formats import FORMATS
from engine.io.atomic import write_atomic
from engine.models.onnx_model import export_onnx
from engine.models.registry import load_model
from engine.project import Project
from engine.suggest import REGION_COUNT, needs_marks, regions_to_mark
from engine.training.records import ProgressRecord
from wsv_gui.canvas.toolbar import CanvasToolbar
from wsv_gui.canvas.view import BOX, BRUSH, ERASER, PAN, CanvasView
from wsv_gui.commands import AddStrokes
from wsv_gui.segmentation.export_jobs import ExportMasksWorker
from wsv_gui.segmentation.gradient_view import GradientView
from wsv_gui.segmentation.panel import TrainingPanel
from wsv_gui.segmentation.prediction import overlay_rgba, prediction_strokes
from wsv_gui.segmentation.pretrain_dialog import PretrainDialog, pretrained_dir
from wsv_gui.segmentation.shares import class_shares, shrink_hint
from wsv_gui.segmentation.worker import TrainingWorker
from wsv_gui.tab import Menus, ShownImage, Tab, menu_action
from wsv_gui.workers import WorkerThread

HEAT_OPACITY = 0.85
"""least opacity of a P(class) heat map over the photo"""
SCORE_INTERVAL_S = 2.0
"""how often the trainer scores a few more images for the suggestions (each costs a forward pass)"""


class SegmentationTab(Tab):
    title = "Segmentation"
    key = "segmentation"

    def __init__(self, host) -> None:
        super().__init__(host)
        self.project: Project | None = None
        self.image_id: int | None = None
        self.previews: dict = {}
        self.shares: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        """image id -> (steps, class shares) of its previews, for the share curve"""
        self.training: WorkerThread | None = None
        self.visited: set[int] = set()
        """images shown in this round of Next Suggested Image, which passes them over (a round ends when every
        scored image was shown)"""
        self.canvas = CanvasView()
        self.toolbar = CanvasToolbar()
        self.training_panel = TrainingPanel()
        self.gradient_view = GradientView()
        canvas_box = QWidget()
        v = QVBoxLayout(canvas_box)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.toolbar)
        v.addWidget(self.canvas, 1)
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.training_panel)
        side.addWidget(self.gradient_view)
        side.setSizes([560, 320])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(canvas_box)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setSizes([900, 380])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self._connect()

    def _connect(self) -> None:
        c, t, host = self.canvas, self.toolbar, self.host
        c.zoomChanged.connect(lambda z: host.status_zoom.setText(f"zoom {z * 100:.0f}%"))
        c.strokeFinished.connect(host.commit_stroke)
        c.boxDrawn.connect(host.add_box)
        c.boxMoved.connect(host.move_box)
        c.boxDeleteRequested.connect(host.delete_box)
        c.brushSizeChanged.connect(lambda r: (t.radius.blockSignals(True), t.radius.setValue(r), t.radius.blockSignals(False)))
        t.toolChanged.connect(self.set_tool)
        t.radiusChanged.connect(c.set_radius)
        t.seedOpacityChanged.connect(c.seeds.setOpacity)
        t.predictionOpacityChanged.connect(c.prediction.setOpacity)
        t.predictionModeChanged.connect(self.refresh_prediction)
        p = self.training_panel
        p.trainRequested.connect(self.train)
        p.restartRequested.connect(lambda: self.train(restart=True))
        p.pauseRequested.connect(self.pause)
        p.stopRequested.connect(self.stop_training)

    def add_menus(self, menus: Menus) -> None:
        host = self.host
        menu_action(host, menus.file, "Export &Masks…", self.export_masks, "Ctrl+E")
        menu_action(host, menus.file, "Export Trained Mo&del…", self.export_model)
        menu_action(host, menus.edit, "&Accept Prediction as Marks", lambda: self.accept_prediction(0.0), "Ctrl+Return")
        menu_action(host, menus.edit, "Accept &Confident Pixels (p ≥ 0.9)", lambda: self.accept_prediction(0.9),
                "Ctrl+Shift+Return")
        menu_action(host, menus.view, "&Fit to Window", self.canvas.fit, "F")
        menu_action(host, menus.view, "&Actual Pixels (1:1)", self.canvas.actual_size, "Ctrl+1")
        menu_action(host, menus.view, "Show/Hide &Prediction", self.toolbar.show_prediction.toggle, "P")
        menu_action(host, menus.view, "Refined Mask / &Network's Answer", self.toolbar.toggle_network, "N")
        menus.view.addSeparator()
        menu_action(host, menus.view, "Next &Suggested Image", self.next_suggested, "S")
        self.show_regions = menu_action(host, menus.view, "Outline Regions Worth a Stroke",
                                        lambda: self.refresh_prediction())
        self.show_regions.setCheckable(True)
        self.show_regions.setChecked(True)
        m = menus.bar.addMenu("&Training")
        menu_action(host, m, "&Train / Resume", self.train, "Ctrl+T")
        menu_action(host, m, "&Pause", self.pause, "Ctrl+P")
        menu_action(host, m, "&Stop", self.stop_training, "Ctrl+.")
        m.addSeparator()
        menu_action(host, m, "Pretrain on &Unlabeled Images…", self.pretrain)
        for key, tool in (("B", BRUSH), ("E", ERASER), ("R", BOX), ("H", PAN)):
            QShortcut(QKeySequence(key), host, activated=lambda t=tool: self.set_tool(t))
        QShortcut(QKeySequence("["), host, activated=lambda: self.canvas.grow_brush(1 / 1.25))
        QShortcut(QKeySequence("]"), host, activated=lambda: self.canvas.grow_brush(1.25))

    # ---- the tab contract ---------------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        self.stop_training(wait=True)
        self.project = project
        self.image_id = None
        self.previews.clear()
        self.shares.clear()
        self.visited.clear()
        self.canvas.clear()
        self.gradient_view.clear()
        self.training_panel.reset()
        self.training_panel.settings.set_project(project.root)
        self.training_panel.set_state("idle", saved=self.has_saved_model())

    def classes_changed(self, classes: list[ClassDef]) -> None:
        names = [c.name for c in classes]
        self.toolbar.set_classes(names)
        self.gradient_view.set_classes(names, self.host.class_colors())
        self.refresh_marks()
        self.refresh_boxes()

    def show_image(self, shown: ShownImage | None) -> None:
        if shown is None:
            self.image_id = None
            self.canvas.clear()
            return
        self.image_id = shown.image_id
        self.visited.add(shown.image_id)
        self.canvas.set_image(shown.image, self.project.store.seed_map(shown.image_id), self.host.class_colors())
        self.refresh_boxes()
        if self.training is not None:
            self.training.worker.preview_image_id = shown.image_id
        self.refresh_prediction()
        self._show_shares()

    def marks_changed(self, kind: str, detail) -> None:
        """A stroke just drawn is painted into the seed layer alone (cheap on huge images); anything else
        re-rasterizes the image's marks."""
        if kind == "added":
            if len(detail) == 1 and detail[0].image_id == self.image_id:
                s = detail[0]
                index = {c.id: c.index for c in self.project.store.classes()}
                self.canvas.paint_stroke(index.get(s.class_id), s.radius, s.points)
            elif any(s.image_id == self.image_id for s in detail):
                self.refresh_marks()
        elif kind == "error" or detail == self.image_id:
            self.refresh_marks()
            self.refresh_boxes()

    def shutdown(self) -> None:
        """Stop training cleanly (the worker finishes its step and saves the model); records still queued are
        dropped, as the project closes."""
        self.stop_training(wait=True)
        job = getattr(self, "export_job", None)
        if job is not None and job.isRunning():  # an export ends between two images, its files whole
            job.worker.stop()
            job.wait(60000)
        dialog = getattr(self, "pretrain_dialog", None)
        if dialog is not None:  # pretraining ends after its step and keeps what it learnt
            dialog.stop(wait=True)
        self.project = None

    # ---- marks on the canvas ------------------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self.toolbar.set_tool(tool)

    def class_selected(self, cls: ClassDef) -> None:
        self.canvas.brush_color = QColor(*cls.color)
        if self.canvas.tool == ERASER:
            self.set_tool(BRUSH)

    def refresh_marks(self) -> None:
        if self.image_id is None:
            return
        self.canvas.seeds.set_colors(self.host.class_colors())
        self.canvas.seeds.set_labels(self.project.store.seed_map(self.image_id))

    def refresh_boxes(self) -> None:
        if self.image_id is None:
            return
        classes = self.project.store.classes()
        self.canvas.boxes.set_boxes(self.project.store.boxes(self.image_id), {c.id: QColor(*c.color) for c in classes},
                                    {c.id: c.name for c in classes})

    def accept_prediction(self, min_confidence: float) -> None:
        preview = self.previews.get(self.image_id)
        if preview is None:
            QMessageBox.information(self, "Accept prediction", "There is no prediction for this image yet: train first.")
            return
        store = self.project.store
        marked = store.seed_map(self.image_id) != UNLABELED
        strokes = prediction_strokes(preview, store.image(self.image_id), store.classes(), marked,
                                     min_confidence, self.toolbar.network_only())
        if strokes:
            what = "prediction" if not min_confidence else f"confident prediction (p ≥ {min_confidence})"
            self.host.push(AddStrokes(store, strokes, self.host.on_change, f"accept {what}"))

    # ---- prediction -----------------------------------------------------------------------------------------------
    def refresh_prediction(self) -> None:
        preview = self.previews.get(self.image_id)
        self._outline_regions(preview)
        if preview is None or not self.toolbar.show_prediction.isChecked():
            self.canvas.set_prediction(None)
        else:
            heat, measure = self.toolbar.heatmap_class(), self.toolbar.measure()
            colors = self.host.class_colors()
            self.canvas.set_prediction(overlay_rgba(preview, colors, heat, self.toolbar.network_only(), measure))
            # A heat map is read by its shades (and the disagreement by a few pixels): at a mask's see-through
            # opacity they fade into the photo.
            opacity = self.toolbar.prediction_opacity.value() / 100
            shaded = heat is not None or measure is not None
            self.canvas.prediction.setOpacity(max(opacity, HEAT_OPACITY) if shaded else opacity)
        if preview is not None:
            self.gradient_view.show_preview(preview)
        else:
            self.gradient_view.clear()

    # ---- suggestions ----------------------------------------------------------------------------------------------
    def _marked(self, image_id: int, shape: tuple[int, int]) -> np.ndarray:
        return self.project.store.seed_map(image_id, shape) != UNLABELED

    def _outline_regions(self, preview) -> None:
        """Outline where a stroke would teach the most, from the network's current answer for the shown image."""
        if preview is None or not self.show_regions.isChecked():
            self.canvas.suggestions.clear()
            return
        probs = preview.probs.astype(np.float32)
        regions = regions_to_mark(probs, REGION_COUNT, self._marked(preview.image_id, probs.shape[1:]))
        factor = self.project.store.image(preview.image_id).width / probs.shape[2]
        self.canvas.suggestions.show([r.scaled(factor) for r in regions])

    def next_suggested(self) -> None:
        """Go to the image that needs marks most (by the scores training has sent so far), one not yet shown in
        this round; its regions worth a stroke are outlined once its preview arrives."""
        images = self.host.image_list
        target = images.most_in_need(self.visited)
        if target is None and images.list_model.scores:
            self.visited = {self.image_id}  # every scored image was shown: start another round
            target = images.most_in_need(self.visited)
        if target is None:
            self.host.statusBar().showMessage("No suggestion yet: the images are scored while the network trains "
                                              "(Training ▸ Train)", 6000)
            return
        if self.host.image_order.currentIndex() == 1:
            images.order(by_need=True)
        images.select(target)
        score = images.list_model.scores[target]
        self.host.statusBar().showMessage(f"needs marks {score:.0%}: a stroke in the outlined regions teaches the "
                                          "network the most", 6000)

    # ---- training -------------------------------------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        return self.project.root / "models" / "latest"

    def has_saved_model(self) -> bool:
        return (self.model_dir / "model.safetensors").is_file()

    def train(self, restart: bool = False) -> None:
        """Resume a paused run; else start one — from the network saved at the last Stop (Continue) unless
        ``restart`` or there is none."""
        if self.training is not None:
            self.training.worker.resume()
            self.training_panel.set_state("running")
            return
        config = self._settings()
        if config is None or not self._marks_teach_something():
            return
        config = dataclasses.replace(config, score_interval_s=SCORE_INTERVAL_S)
        if not restart and self.has_saved_model():
            config = dataclasses.replace(config, init_from=str(self.model_dir))
        elif self._pretrained_for(config.model):
            config = dataclasses.replace(config, init_from=str(pretrained_dir(self.project.root)))
        worker = TrainingWorker(self.project.root, config, self.model_dir)
        worker.preview_image_id = self.image_id
        worker.progress.connect(self._on_progress)
        worker.failed.connect(self._on_failed)
        worker.stopped.connect(self._on_worker_stopped)  # a method of the tab: runs in the GUI thread
        self.training = WorkerThread(worker, self)
        self.training_panel.reset()
        self.shares.clear()
        self._show_shares()
        self.training_panel.set_state("running")
        self.host.set_training_status("starting…")
        self.training.start()

    def _settings(self):
        """The form's TrainConfig, or None after saying why it cannot be used."""
        try:
            return self.training_panel.settings.config()
        except ValueError as exc:
            QMessageBox.warning(self, "Training settings", str(exc))
            return None

    def _pretrained_for(self, model: str) -> bool:
        """Whether the project holds a pretrained network (Training ▸ Pretrain) of this architecture."""
        try:
            saved = json.loads((pretrained_dir(self.project.root) / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return saved.get("model") == model

    def pretrain(self) -> None:
        """Self-supervised pretraining of the network the settings describe, in a dialog (not beside training:
        both would share the CPU or GPU)."""
        if self.training is not None:
            QMessageBox.information(self, "Pretrain", "Stop training first: pretraining prepares a fresh run.")
            return
        config = self._settings()
        if config is None:
            return
        self.pretrain_dialog = PretrainDialog(self.project.root, config.model, config.working_size, self)
        self.pretrain_dialog.show()

    def pause(self) -> None:
        if self.training is not None:
            self.training.worker.pause()
            self.training_panel.set_state("paused")
            self.host.set_training_status("paused")

    def stop_training(self, wait: bool = False) -> None:
        if self.training is None:
            return
        self.training.worker.stop()
        self.host.set_training_status("stopping…")
        if wait:
            self.training.wait(60000)
            self._on_stopped("", self.training)

    def _on_progress(self, rec: ProgressRecord) -> None:
        if self.project is None or self.training is None:  # a record still queued when the run or window ended
            return
        self.training_panel.add(rec)
        for note in rec.notes:
            self.host.statusBar().showMessage(note, 5000)
        self.host.set_training_status(f"{rec.device} · step {rec.step} · {rec.steps_per_s:.1f} steps/s · "
                                      f"{rec.labelled_images} marked image{'s' * (rec.labelled_images != 1)}")
        scores = dict(rec.scores)
        if rec.preview is not None:
            p = rec.preview
            scores[p.image_id] = needs_marks(p.probs.astype(np.float32), self._marked(p.image_id, p.labels.shape))
        if scores:
            self.host.image_list.update_scores(scores)
        if rec.preview is not None:
            self.previews[rec.preview.image_id] = rec.preview
            steps, history = self.shares.setdefault(rec.preview.image_id, ([], []))
            steps.append(rec.step)
            history.append(class_shares(rec.preview.labels, len(self.project.store.classes())))
            if rec.preview.image_id == self.image_id:
                self.refresh_prediction()
                self._show_shares()

    def _show_shares(self) -> None:
        """The share curve of the shown image, and why a class fell back to its strokes where one did."""
        steps, history = self.shares.get(self.image_id, ([], []))
        hint = ""
        if history:
            seeds = self.project.store.seed_map(self.image_id, self.previews[self.image_id].labels.shape)
            stroked = class_shares(seeds, len(history[-1]))
            hint = shrink_hint([c.name for c in self.project.store.classes()], history, stroked)
        self.training_panel.show_shares(steps, history, self.host.class_colors(), hint)

    def _on_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Training stopped", message)

    def _on_worker_stopped(self, saved: str) -> None:
        thread = next((t for t in self.findChildren(WorkerThread) if t.worker is self.sender()), None)
        if thread is not None:
            self._on_stopped(saved, thread)

    def _on_stopped(self, saved: str, thread: WorkerThread) -> None:
        """A training thread ended. Its signal may arrive after a new run started (Stop, then Continue at once):
        only the current run's end changes the tab."""
        thread.wait(10000)
        if thread is not self.training:
            return
        self.training = None
        if self.project is None:  # the window closed while the worker's last signal was queued
            return
        self.training_panel.set_state("idle", saved=self.has_saved_model())
        self.host.set_training_status("model saved" if saved else "not training")

    def _marks_teach_something(self) -> bool:
        """Strokes of a single class (and no boxes or tags) teach a network nothing but that class: say so, and
        let the user train anyway (to watch what happens) or go back and mark another class."""
        classes = self.project.store.marked_classes()
        if len(classes) != 1:
            return True
        answer = QMessageBox.question(
            self, "Train", f"All your marks are of one class, {classes[0]}. A network learns to tell classes apart "
                           "only from marks of at least two (a few strokes of the background too, for example).\n\n"
                           "Train anyway?")
        return answer == QMessageBox.StandardButton.Yes

    # ---- export ---------------------------------------------------------------------------------------------------
    def _ensure_model(self) -> bool:
        if self.training is not None:
            answer = QMessageBox.question(self, "Export", "Training is running. Stop it and export what it learnt?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
            self.stop_training(wait=True)
        if not self.has_saved_model():
            QMessageBox.information(self, "Export", "There is no trained model yet: press Train first.")
            return False
        return True

    def export_masks(self) -> None:
        """Masks from the trained network (refined with each marked image's marks) or, where the project has
        any, the ground truth; in the format the user picks, with the boxes and tags."""
        sources = ["the trained network (refined with each marked image's marks)", "the ground truth"]
        source = sources[0]
        if self.project.store.ground_truth_ids():
            source, ok = QInputDialog.getItem(self, "Export masks", "Masks from:", sources, 0, False)
            if not ok:
                return
        truth = source == sources[1]
        if not truth and not self._ensure_model():
            return
        titles = {f.title: name for name, f in FORMATS.items()}
        title, ok = QInputDialog.getItem(self, "Export masks", "Format (boxes and tags go too, where it holds them):",
                                         list(titles), 0, False)
        if not ok:
            return
        folder = QFileDialog.getExistingDirectory(self, f"Export as {title} into folder", self.host.dialog_dir())
        if not folder or not self.host.claim(Path(folder), "export"):
            return
        dialog = QProgressDialog("Predicting and writing masks…", "Cancel", 0, 0, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        worker = ExportMasksWorker(self.project.root, None if truth else self.model_dir, Path(folder), titles[title])
        # Methods of the tab, so that they run in the GUI thread; Cancel calls stop() directly (an Event).
        worker.progress.connect(self._on_export_progress)
        worker.failed.connect(self._on_export_failed)
        worker.stopped.connect(self._on_export_stopped)
        dialog.canceled.connect(lambda: worker.stop())
        self.export_dialog = dialog
        self.export_job = WorkerThread(worker, self)
        self.export_job.start()

    def _on_export_progress(self, done: tuple[int, int]) -> None:
        self.export_dialog.setMaximum(done[1])
        self.export_dialog.setValue(done[0])

    def _on_export_failed(self, message: str) -> None:
        self.export_dialog.close()
        QMessageBox.warning(self, "Export", message)

    def _on_export_stopped(self, summary: str) -> None:
        self.export_dialog.close()
        if summary:
            QMessageBox.information(self, "Export", summary)

    def export_model(self) -> None:
        if not self._ensure_model():
            return
        kinds = ["safetensors + JSON (WSV Studio, wsv predict)", "ONNX (onnxruntime and other tools)"]
        kind, ok = QInputDialog.getItem(self, "Export trained model", "Format:", kinds, 0, False)
        if not ok:
            return
        if kind == kinds[1]:
            self._export_onnx()
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the trained model (safetensors + JSON) into folder",
                                                  self.host.dialog_dir())
        if not folder or not self.host.claim(Path(folder), "model", ("model.safetensors",)):
            return
        try:
            for name in ("model.safetensors", "model.json"):
                write_atomic(Path(folder) / name, lambda p, src=self.model_dir / name: shutil.copyfile(src, p))
        except OSError as exc:
            QMessageBox.warning(self, "Export model", f"Cannot write to {folder}: {exc.strerror or exc}")
            return
        self.host.statusBar().showMessage(f"model exported to {folder}", 5000)

    def _export_onnx(self) -> None:
        """The network as ONNX, checked against PyTorch with onnxruntime (a few seconds: the window waits)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export the trained model as ONNX",
                                              str(Path(self.host.dialog_dir()) / "model.onnx"), "ONNX (*.onnx)")
        if not path:
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            model, config = load_model(self.model_dir)
            result = export_onnx(model, config, Path(path))
        except (UserError, OSError) as exc:
            QMessageBox.warning(self, "Export model", str(exc))
            return
        finally:
            QApplication.restoreOverrideCursor()
        check = (f"onnxruntime agrees with PyTorch to {result['max_probability_difference']:.1e} in probability"
                 if result["checked"] else "not run: onnxruntime is not installed")
        QMessageBox.information(self, "Export model", f"Wrote {path}\n\nInput: RGB 0..255, longer side "
                                f"{config.working_size} px; output: logits for {', '.join(config.classes)}.\n{check}")

