"""The Generative tab: train a VAE, DCGAN or DDPM on the project's images or the built-in digits, watch it learn,
then explore the model: samples, VAE latent interpolation, the DDPM forward and reverse processes, filling a
painted hole and adding 2× detail with a DDPM, KID/FID with a memorisation check, and saving, loading and exporting.

Training runs in a GenerativeWorker thread; everything asked of a trained model runs in the GenerativeService
thread. The views work from the model saved in the project (models/generative), which the worker refreshes every
30 s while training and again when it ends, so samples, the reverse process and evaluation can be tried during a
long run on a recent copy (a DDPM's with its EMA weights).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThread, QTimer, Qt
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter, \
    QTabWidget, QVBoxLayout, QWidget

from engine.generative.grids import save_gif, save_png
from engine.generative.models import DESCRIPTION_FILE, GenerativeModelError
from engine.generative.records import GenerativeRecord
from engine.project import Project
from wsv_gui.eta import time_left
from wsv_gui.generative.forward_view import ForwardView
from wsv_gui.generative.live_view import LiveView
from wsv_gui.generative.messages import ModelInfo, SampleGrid, TrainingSet
from wsv_gui.generative.model_files import copy_model, has_model, project_model_dir
from wsv_gui.generative.restore_view import RestoreView
from wsv_gui.generative.reverse_player import ReversePlayer
from wsv_gui.generative.samples_view import SamplesView
from wsv_gui.generative.service import GenerativeService
from wsv_gui.generative.settings import MODEL_NAMES, GenerativeSettings
from wsv_gui.generative.worker import GenerativeWorker
from wsv_gui.tab import Tab
from wsv_gui.workers import WorkerThread

EXPORT_SCALE = 2
"""exported PNGs and GIFs are enlarged by pixel replication: 32 px samples are too small to judge at 1:1"""
LATENT_VAE_DIR = Path("models") / "generative-vae"
"""inside the project: the copy of the tab's VAE that a latent DDPM trained from it decodes with"""
WARNING_STYLE = "color: #e8710a"
ERROR_STYLE = "color: #d93025"


class GenerativeTab(Tab):
    title = "Generative"
    key = "generative"

    def __init__(self, host) -> None:
        super().__init__(host)
        self.project: Project | None = None
        self.training: WorkerThread | None = None
        self.model_info: ModelInfo | None = None
        self.last_grid = None
        """the newest samples grid, from a training preview, drawn on request or a filled / 2× image (what Export
        PNG writes)"""
        self._data_wanted: dict | None = None
        self._model_wanted: str | None = None
        """the folder last asked for: a model still loading for an earlier project or request is ignored"""
        self._reset_views_on_load = False
        self._training_failed = False

        self.settings = GenerativeSettings()
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(lambda: self.stop())
        self.status = QLabel("Choose the images and a model, then press Train.")
        self.status.setWordWrap(True)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.model_label = QLabel("No model yet.")
        self.model_label.setWordWrap(True)
        self.save_button = QPushButton("Save model…")
        self.save_button.setToolTip("copy the model (safetensors weights + JSON description) to a folder")
        self.save_button.clicked.connect(self.save_model)
        self.load_button = QPushButton("Load model…")
        self.load_button.setToolTip("a folder saved here or written by wsv generate train")
        self.load_button.clicked.connect(self.load_model)
        self.png_button = QPushButton("Export grid PNG…")
        self.png_button.setToolTip("the newest grid: the last training preview, the samples drawn last or the last "
                                   "filled / 2× image")
        self.png_button.clicked.connect(self.export_png)
        self.gif_button = QPushButton("Export reverse GIF…")
        self.gif_button.setToolTip("the reverse process in the Diffusion view, x_t beside x̂₀")
        self.gif_button.clicked.connect(self.export_gif)

        panel = QWidget()
        pv = QVBoxLayout(panel)
        pv.addWidget(self.settings)
        pv.addLayout(self._row(self.train_button, self.stop_button))
        pv.addWidget(self.status)
        pv.addWidget(self.notes)
        pv.addWidget(self.model_label)
        pv.addLayout(self._row(self.save_button, self.load_button))
        pv.addLayout(self._row(self.png_button, self.gif_button))
        pv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(panel.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)

        self.live = LiveView()
        self.samples_view = SamplesView()
        self.forward = ForwardView()
        self.player = ReversePlayer()
        self.restore = RestoreView()
        diffusion = QSplitter(Qt.Orientation.Vertical)
        diffusion.addWidget(self._titled("Forward process q(x_t | x₀) on a training image", self.forward))
        diffusion.addWidget(self._titled("Reverse process of the trained DDPM, from x_T to a sample", self.player))
        diffusion.setSizes([330, 470])
        self.views = QTabWidget()
        self.views.addTab(self.live, "Training")
        self.views.addTab(self.samples_view, "Samples && latent space")
        self.views.addTab(diffusion, "Diffusion")
        self.views.addTab(self.restore, "Fill && 2× detail")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.views)
        split.setStretchFactor(1, 1)
        split.setSizes([350, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

        self.service = GenerativeService()
        self.service_thread = QThread(self)
        self.service.moveToThread(self.service_thread)
        self.service_thread.start()
        self._data_timer = QTimer(self, singleShot=True, interval=300)
        self._data_timer.timeout.connect(self.request_data)
        self._connect()
        self._set_model(None)

    @staticmethod
    def _row(*widgets) -> QHBoxLayout:
        row = QHBoxLayout()
        for w in widgets:
            row.addWidget(w)
        return row

    @staticmethod
    def _titled(title: str, widget: QWidget) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        label = QLabel(f"<b>{title}</b>")
        v.addWidget(label)
        v.addWidget(widget, 1)
        return box

    def _connect(self) -> None:
        s, svc = self.settings, self.service
        s.dataChanged.connect(self._data_timer.start)
        s.scheduleChanged.connect(lambda: self.forward.set_schedule(*s.schedule_settings()))
        svc.data_ready.connect(self._on_data)
        svc.model_ready.connect(self._on_model)
        svc.samples_ready.connect(self._on_samples)
        svc.interpolation_ready.connect(self.samples_view.show_interpolation)
        svc.reverse_frame.connect(self.player.add_frame)
        svc.reverse_finished.connect(self.player.finished)
        svc.evaluation_ready.connect(self._on_evaluated)
        svc.restore_progress.connect(self.restore.show_progress)
        svc.restore_ready.connect(self._on_restored)
        svc.failed.connect(self._on_service_failed)
        self.samples_view.drawRequested.connect(self._draw)
        self.samples_view.interpolateRequested.connect(self._interpolate)
        self.samples_view.evaluateRequested.connect(self._evaluate)
        self.player.runRequested.connect(self._reverse)
        self.restore.restoreRequested.connect(self._restore)
        self.restore.cancelRequested.connect(svc.cancel, Qt.ConnectionType.DirectConnection)
        # cancel() must reach the service while it is busy, so it is called directly, not queued behind the job
        self.player.cancelRequested.connect(svc.cancel, Qt.ConnectionType.DirectConnection)

    def _say(self, text: str, style: str = "") -> None:
        self.status.setStyleSheet(style)
        self.status.setText(text)

    # ---- project and data -------------------------------------------------------------------------------------
    def _dialog_dir(self, name: str = "") -> str:
        """Where file dialogs open: beside the project (Qt's default is the directory the app started from)."""
        base = self.project.root.parent if self.project is not None else Path.cwd()
        return str(base / name) if name else str(base)

    def set_project(self, project: Project) -> None:
        """The window's project: its images are one data source, and its saved model is loaded."""
        self.stop(wait=True)
        self.project = project
        self._set_model(None)
        self.live.reset(self.settings.kind)
        self.notes.setText("")
        self.samples_view.eval_label.setText("")
        self._say("Choose the images and a model, then press Train.")
        folder = project_model_dir(project.root)
        self._model_wanted = None
        if has_model(folder):
            self._reset_views_on_load = True
            self.request_model(str(folder))
            self._say("Loading the generative model saved in this project…")
        self._data_wanted = None
        if self.isVisible():
            self.request_data()

    def showEvent(self, event) -> None:
        """Training images are read when the tab is first looked at, not when the window opens."""
        super().showEvent(event)
        if self._data_wanted is None:
            self.request_data()

    def request_data(self) -> None:
        root = self.project.root if self.project is not None else None
        try:
            key = self.settings.data_key(root)
        except ValueError as exc:
            self.settings.data_label.setStyleSheet(ERROR_STYLE)
            self.settings.data_label.setText(str(exc))
            return
        if key == self._data_wanted:
            return
        self._data_wanted = key
        self.settings.data_label.setStyleSheet("")
        self.settings.data_label.setText("loading the training images…")
        self.service.load_data.emit(key)

    def _on_data(self, data: TrainingSet) -> None:
        if data.key != self._data_wanted:
            return  # the settings changed since
        count = str(len(data.images))
        text = f"{data.name}." if count in data.name else f"{count} images: {data.name}."
        if data.warning:
            text += f" <span style='{WARNING_STYLE}'>Warning: {data.warning}.</span>"
        self.settings.data_label.setStyleSheet("")
        self.settings.data_label.setText(text)
        self.forward.set_images(data.images)
        self.samples_view.set_images(data.images)
        self.restore.set_images(data.images)

    # ---- training ---------------------------------------------------------------------------------------------
    def train(self) -> None:
        if self.training is not None or self.project is None:
            return
        try:
            self._keep_loaded_vae()
            config = self.settings.config(self.project.root)
        except ValueError as exc:
            self._say(f"Cannot train: {exc}", ERROR_STYLE)
            return
        worker = GenerativeWorker(config, project_model_dir(self.project.root))
        worker.progress.connect(self._on_progress)
        worker.saved.connect(self.request_model)
        worker.failed.connect(self._on_training_failed)
        worker.stopped.connect(self._on_stopped)
        self.training = WorkerThread(worker, self)
        self._training_failed = False
        self.live.reset(config.model)
        self.views.setCurrentWidget(self.live)
        self.notes.setText("")
        self.settings.setEnabled(False)
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.load_button.setEnabled(False)
        self._say(f"Starting: loading the training images and building the {MODEL_NAMES[config.model]}…")
        self.training.start()

    def _keep_loaded_vae(self) -> None:
        """A latent DDPM asked for without a chosen VAE learns in the VAE loaded now. The project's model folder
        is about to hold the DDPM, so the VAE is first copied beside it (LATENT_VAE_DIR) and chosen from there."""
        s = self.settings
        if not s.latent_wanted or s.vae_path is not None or self.model_info is None or self.model_info.kind != "vae":
            return
        target = self.project.root / LATENT_VAE_DIR
        try:
            copy_model(Path(self.model_info.folder), target)
            s.set_vae(str(target))
        except (OSError, GenerativeModelError) as exc:
            raise ValueError(f"could not keep a copy of the VAE in {target}: {exc}") from None

    def stop(self, wait: bool = False) -> None:
        if self.training is None:
            return
        worker = self.training.worker
        worker.stop()
        self._say("Stopping after this step…")
        if wait:  # the project or the window goes away: nothing the worker still says applies to it
            worker.progress.disconnect(self._on_progress)
            worker.saved.disconnect(self.request_model)
            worker.stopped.disconnect(self._on_stopped)
            self.training.wait(120000)
            self._finish_training()
            self._say("Training stopped.")

    def shutdown(self) -> None:
        self.stop(wait=True)
        self.service.cancel()
        self.service_thread.quit()
        self.service_thread.wait(60000)

    def _on_progress(self, rec: GenerativeRecord) -> None:
        self.live.add_record(rec)
        if rec.notes:
            self.notes.setText("\n".join(filter(None, [self.notes.text(), *rec.notes])))
        if rec.preview is not None:
            self.last_grid = rec.preview.samples
        self._say(f"Training: step {rec.step}/{rec.total_steps}, {rec.steps_per_s:.2f} steps/s on {rec.device}, "
                  f"{time_left(rec.total_steps - rec.step, rec.steps_per_s)}.")

    def _on_training_failed(self, message: str) -> None:
        self._training_failed = True
        self._say(f"Training stopped: {message}", ERROR_STYLE)

    def _on_stopped(self, saved: str) -> None:
        self._finish_training()
        if saved:
            self.request_model(saved)
            if not self._training_failed:
                self._say(f"Model saved in {saved}.")
        elif not self._training_failed:
            self._say("Stopped before the first step: nothing was saved.")

    def _finish_training(self) -> None:
        if self.training is not None:
            self.training.wait(10000)
            self.training = None
        self.live.redraw()
        self.settings.setEnabled(True)
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.load_button.setEnabled(True)

    # ---- the trained model ------------------------------------------------------------------------------------
    def _set_model(self, info: ModelInfo | None) -> None:
        self.model_info = info
        kind = info.kind if info else None
        config = info.config if info else {}
        self.samples_view.set_model(kind, config.get("class_names") if config.get("conditional") else None,
                                    bool(config.get("classifier")), config.get("guidance", 3.0))
        self.player.set_enabled_model(kind == "ddpm")
        self.restore.set_model(kind, bool(config.get("latent_vae")), config.get("channels", 1),
                               config.get("image_size", 0), config.get("timesteps", 0))
        self.save_button.setEnabled(info is not None)
        if info is None:
            self.model_label.setText("No model yet: the views below Training need one.")
        else:
            here = self.project is not None and Path(info.folder) == project_model_dir(self.project.root)
            where = "saved in this project (models/generative)" if here else f"from {info.folder}"
            self.model_label.setText(f"Model: {MODEL_NAMES[info.kind]}, {info.steps_done} steps on {info.data_name}; "
                                     f"{where}.")

    @property
    def model_dir(self) -> Path | None:
        return Path(self.model_info.folder) if self.model_info else None

    def request_model(self, folder: str) -> None:
        self._model_wanted = folder
        self.service.load_model.emit(folder)

    def _on_model(self, info: ModelInfo) -> None:
        if info.folder != self._model_wanted:
            return
        self._set_model(info)
        if self.training is None:
            self.settings.apply(info.config)
            self.forward.set_schedule(*self.settings.schedule_settings())
        if self._reset_views_on_load:
            self._reset_views_on_load = False
            self.live.reset(info.kind)
            self._say(f"Loaded a {MODEL_NAMES[info.kind]} from {info.folder}.")
        if info.kind == "vae":
            self.samples_view.request_interpolation()
        if self.samples_view.samples.array is None:  # a first model: show what it draws without being asked
            self.samples_view.draw_button.click()

    def _on_service_failed(self, request: str, message: str) -> None:
        """Each failure is shown where its request was made (the reverse player shows its own, from
        reverse_finished)."""
        if request == "data":
            self._data_wanted = None
            self.settings.data_label.setStyleSheet(ERROR_STYLE)
            self.settings.data_label.setText(message)
        elif request == "model":
            self._reset_views_on_load = False
            self._say(f"Loading the model failed: {message}", ERROR_STYLE)
        elif request == "evaluate":
            self.samples_view.eval_label.setText(f"<span style='{ERROR_STYLE}'>Evaluation failed: {message}</span>")
        elif request == "draw":
            self.samples_view.samples_label.setText(f"Drawing samples failed: {message}")
        elif request == "interpolate":
            self.samples_view.strip_label.setText(f"Interpolation failed: {message}")
        elif request == "restore":
            self.restore.finished(None, message)

    def _draw(self, n: int, seed: int, steps: int, guidance: float, classifier_scale: float) -> None:
        if self.model_dir is not None:
            self.service.draw.emit(str(self.model_dir), n, seed, steps, guidance, classifier_scale)
            self.samples_view.samples_label.setText("drawing samples…")

    def _on_samples(self, samples: SampleGrid) -> None:
        self.samples_view.show_samples(samples.grid, samples.description)
        self.last_grid = samples.grid

    def _interpolate(self, a: int, b: int, steps: int) -> None:
        if self.model_dir is not None:
            self.service.interpolate.emit(str(self.model_dir), a, b, steps)

    def _reverse(self, n: int, seed: int, steps: int, eta: float) -> None:
        if self.model_dir is None:
            self.player.finished("no model")
            return
        self.service.cancel()  # a run still going gives way to the new one
        self.service.reverse.emit(str(self.model_dir), n, seed, steps, eta)

    def _restore(self, request) -> None:
        if self.model_dir is None:
            self.restore.finished(None, "no model")
            return
        self.service.restore.emit(str(self.model_dir), request)

    def _on_restored(self, result: SampleGrid) -> None:
        self.restore.finished(result.grid, result.description)
        self.last_grid = result.grid

    def _evaluate(self, n: int, steps: int, guidance: float, classifier_scale: float) -> None:
        if self.model_dir is None:
            return
        self.samples_view.eval_label.setText(f"Evaluating: drawing {n} samples, then EfficientNet-Lite0 features…")
        self.service.evaluate.emit(str(self.model_dir), n, steps, guidance, classifier_scale)

    def _on_evaluated(self, report: dict) -> None:
        self.samples_view.show_quality(report)

    # ---- files ------------------------------------------------------------------------------------------------
    def save_model(self) -> None:
        if self.model_dir is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Save the generative model (safetensors + JSON) into folder",
                                                  self._dialog_dir())
        if not folder:
            return
        try:
            copy_model(self.model_dir, Path(folder))
        except OSError as exc:
            self._say(f"Could not save the model: {exc}", ERROR_STYLE)
            return
        self._say(f"Model saved to {folder}.")

    def load_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Load a generative model from folder", self._dialog_dir())
        if not folder:
            return
        if not has_model(Path(folder)):
            self._say(f"{folder} holds no generative model ({DESCRIPTION_FILE} and its weights expected).", ERROR_STYLE)
            return
        self._reset_views_on_load = True
        self._say(f"Loading the model in {folder}…")
        self.request_model(folder)

    def export_png(self) -> None:
        if self.last_grid is None:
            self._say("No samples yet: train, or draw samples from a model.", ERROR_STYLE)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the sample grid", self._dialog_dir("samples.png"),
                                              "PNG images (*.png)")
        if path:
            self._write(lambda: save_png(self.last_grid, path, scale=EXPORT_SCALE), path)

    def export_gif(self) -> None:
        if not self.player.frames:
            self._say("Run the reverse process in the Diffusion view first.", ERROR_STYLE)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the reverse process", self._dialog_dir("reverse.gif"),
                                              "GIF animations (*.gif)")
        if path:
            self._write(lambda: save_gif(self.player.gif_frames(), path, scale=EXPORT_SCALE), path)

    def _write(self, write, path: str) -> None:
        try:
            write()
        except (OSError, ValueError) as exc:
            self._say(f"Could not write {path}: {exc}", ERROR_STYLE)
            return
        self._say(f"Wrote {path}.")
