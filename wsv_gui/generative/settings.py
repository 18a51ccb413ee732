"""The Generative tab's settings: where the training images come from and which model learns from them.

Only the settings of the chosen model are shown (β for the VAE, schedule and T for the DDPM, latent size for the
VAE and GAN, the VAE a latent DDPM works in). ``config()`` turns the form into an engine GenerativeConfig; ``apply()`` does the reverse for a
loaded model, so the views and the data match what the model was trained on.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, \
    QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from engine.generative.config import GenerativeConfig, default_lr, device_defaults
from engine.generative.data import SIZES
from engine.generative.diffusion import SCHEDULES
from engine.generative.models import GenerativeModelError, read_config

BUILTIN = "builtin:digits"
PROJECT = "project"
MODEL_NAMES = {"vae": "VAE (variational auto-encoder)", "gan": "GAN (DCGAN)", "ddpm": "DDPM (diffusion)"}
PREVIEW_INTERVAL_S = {"vae": 2.0, "gan": 2.0, "ddpm": 10.0}
"""seconds between sample previews: a VAE or GAN preview is one forward pass, but a DDPM preview runs DDIM over
25 steps for 16 images, as costly as several training steps on a CPU, so it comes less often"""


def _spin(lo: int, hi: int, value: int, step: int = 1, tip: str = "") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setValue(value)
    s.setToolTip(tip)
    return s


class GenerativeSettings(QWidget):
    dataChanged = Signal()
    scheduleChanged = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cuda = torch.cuda.is_available()
        d = GenerativeConfig(**device_defaults(self.cuda))
        data_box = QGroupBox("Training images")
        self.data_form = QFormLayout(data_box)
        self.source = QComboBox()
        self.source.addItem("Built-in digits (offline)", BUILTIN)
        self.source.addItem("This project's images", PROJECT)
        self.source.setToolTip("the project's images, centre-cropped and resized; or 2000 small digits that need "
                               "no download, for a first run")
        self.data_form.addRow("Source", self.source)
        self.size = QComboBox()
        for s in SIZES:
            self.size.addItem(f"{s} px", s)
        self.size.setCurrentIndex(SIZES.index(d.image_size))
        self.size.setToolTip("images are made square at this size; 16 px trains fastest, 64 px wants a GPU")
        self.data_form.addRow("Size", self.size)
        self.colour = QCheckBox("Colour (else grayscale)")
        self.data_form.addRow("", self.colour)
        self.crops = _spin(0, 64, 0, tip="extra random crops (half the shorter side) from every project image at "
                                         "least 4 × the size: more training images from a few large photos")
        self.data_form.addRow("Random crops", self.crops)
        self.data_label = QLabel("")
        self.data_label.setWordWrap(True)
        self.data_form.addRow(self.data_label)

        model_box = QGroupBox("Model")
        self.model_form = QFormLayout(model_box)
        self.model = QComboBox()
        for kind, name in MODEL_NAMES.items():
            self.model.addItem(name, kind)
        self.model.setCurrentIndex(list(MODEL_NAMES).index(d.model))
        self.model_form.addRow("Model", self.model)
        self.steps = _spin(1, 1_000_000, d.steps, 100, "training steps (one batch each)")
        self.model_form.addRow("Steps", self.steps)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0, 24 * 60)
        self.minutes.setDecimals(1)
        self.minutes.setValue(5.0)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("stop after this much training time even if the steps are not done")
        self.model_form.addRow("Time limit", self.minutes)
        self.batch = _spin(2, 1024, d.batch_size, 8, "images per training step")
        self.model_form.addRow("Batch size", self.batch)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.00001, 1.0)
        self.lr.setSingleStep(0.0001)
        self.lr.setToolTip("Adam learning rate; each model starts at its usual recipe's value")
        self.model_form.addRow("Learning rate", self.lr)
        self.base = _spin(8, 256, d.base_channels, 8, "width of the networks at full resolution: 16 trains fast on "
                                                       "a CPU, 64 and more on a GPU")
        self.model_form.addRow("Base channels", self.base)
        self.latent = _spin(1, 512, d.latent_dim, 8, "size of the latent vector z")
        self.model_form.addRow("Latent size", self.latent)
        self.beta = QDoubleSpinBox()
        self.beta.setRange(0.0, 100.0)
        self.beta.setDecimals(2)
        self.beta.setSingleStep(0.1)
        self.beta.setValue(d.beta)
        self.beta.setToolTip("weight of the KL term: 1 is the ELBO; larger gives a smoother latent space and "
                             "blurrier reconstructions")
        self.model_form.addRow("β (KL weight)", self.beta)
        self.schedule = QComboBox()
        self.schedule.addItems(SCHEDULES)
        self.schedule.setToolTip("noise schedule β_t: linear (Ho et al.) or cosine (Nichol & Dhariwal)")
        self.model_form.addRow("Schedule", self.schedule)
        self.timesteps = _spin(2, 4000, d.timesteps, 100, "T, the number of diffusion steps")
        self.model_form.addRow("Steps T", self.timesteps)
        self.by_class = QCheckBox("By class (conditional)")
        self.by_class.setToolTip("learn each class's images, p(x | class): the digits' labels, or this project's "
                                 "boxed objects or tagged images, by class. The DDPM drops a label now and then "
                                 "for classifier-free guidance; the GAN gives the class to both of its networks")
        self.model_form.addRow("", self.by_class)
        self.class_source = QComboBox()
        self.class_source.addItem("Boxed objects", "boxes")
        self.class_source.addItem("Tagged images", "tags")
        self.class_source.setToolTip("where this project's classes come from: crops of the boxes, or whole images "
                                     "tagged with one class (one tagged with several besides the background is left "
                                     "out)")
        self.model_form.addRow("Classes from", self.class_source)
        self.with_classifier = QCheckBox("Also a classifier of noised images")
        self.with_classifier.setToolTip("trained beside the DDPM, for classifier guidance when sampling")
        self.model_form.addRow("", self.with_classifier)
        self.in_latent = QCheckBox("In a VAE's latent space")
        self.in_latent.setToolTip("latent diffusion: the DDPM learns the codes a trained VAE (kept frozen) gives the images, and its "
                                  "samples are decoded by that VAE: many times faster per step, bounded by what the "
                                  "VAE can draw")
        self.model_form.addRow("", self.in_latent)
        self.vae_path: str | None = None
        """the chosen VAE's folder; None: the VAE the tab has loaded (GenerativeTab.train keeps a copy of it)"""
        self.vae_label = QLabel("")
        self.vae_label.setWordWrap(True)
        self.vae_button = QPushButton("Choose…")
        self.vae_button.setToolTip("a folder with a VAE saved from this tab (Save model…) or by wsv generate train")
        self.vae_button.clicked.connect(self._choose_vae)
        vae_row = QWidget()
        vr = QHBoxLayout(vae_row)
        vr.setContentsMargins(0, 0, 0, 0)
        vr.addWidget(self.vae_label, 1)
        vr.addWidget(self.vae_button)
        self.vae_row = vae_row
        self.model_form.addRow("VAE", vae_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(data_box)
        layout.addWidget(model_box)

        for w in (self.source, self.size):
            w.currentIndexChanged.connect(self.dataChanged)
        self.colour.toggled.connect(self.dataChanged)
        self.by_class.toggled.connect(self.dataChanged)
        self.class_source.currentIndexChanged.connect(self.dataChanged)
        self.by_class.toggled.connect(self._show_rows)
        self.in_latent.toggled.connect(self._show_rows)
        self.crops.valueChanged.connect(self.dataChanged)
        self.source.currentIndexChanged.connect(self._show_rows)
        self.schedule.currentIndexChanged.connect(self.scheduleChanged)
        self.timesteps.valueChanged.connect(self.scheduleChanged)
        self.model.currentIndexChanged.connect(self._model_changed)
        self._model_changed()

    @property
    def kind(self) -> str:
        return self.model.currentData()

    def _model_changed(self) -> None:
        self.lr.setValue(default_lr(self.kind, self.cuda))
        self._show_rows()

    def _show_rows(self) -> None:
        kind = self.kind
        self.model_form.setRowVisible(self.latent, kind in ("vae", "gan"))
        self.model_form.setRowVisible(self.beta, kind == "vae")
        self.model_form.setRowVisible(self.schedule, kind == "ddpm")
        self.model_form.setRowVisible(self.timesteps, kind == "ddpm")
        self.model_form.setRowVisible(self.by_class, kind in ("ddpm", "gan"))
        self.model_form.setRowVisible(self.with_classifier, kind == "ddpm" and self.by_class.isChecked())
        self.model_form.setRowVisible(self.class_source, self.conditional and self.source.currentData() == PROJECT)
        self.model_form.setRowVisible(self.in_latent, kind == "ddpm" and not self.by_class.isChecked())
        self.model_form.setRowVisible(self.vae_row, self.latent_wanted)
        self.vae_label.setText(self.vae_path or "the VAE loaded now (train one first, or choose a saved one)")

    @property
    def latent_wanted(self) -> bool:
        """A latent DDPM is asked for (its VAE may still be the one loaded in the tab)."""
        return self.kind == "ddpm" and not self.by_class.isChecked() and self.in_latent.isChecked()

    def set_vae(self, folder: str | None) -> None:
        """The VAE a latent DDPM trains in; its image size and colour become the data's, which it must match."""
        if folder is not None:
            v = read_config(folder)
            self.size.setCurrentIndex(self.size.findData(v.image_size))
            self.colour.setChecked(v.channels == 3)
        self.vae_path = folder
        self._show_rows()

    def _choose_vae(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a saved VAE's folder", self.vae_path or "")
        if not folder:
            return
        try:
            if read_config(folder).model != "vae":
                raise GenerativeModelError(f"{folder} holds a {read_config(folder).model}, not a VAE")
            self.set_vae(folder)
        except GenerativeModelError as exc:
            self.vae_label.setText(f"<span style='color: #d93025'>{exc}</span>")
        self.data_form.setRowVisible(self.crops, self.source.currentData() == PROJECT)

    def data_key(self, project_root: Path | None) -> dict:
        """The data settings as the service's cache key (and the trainer's data arguments)."""
        if self.source.currentData() == PROJECT:
            if project_root is None:
                raise ValueError("no project is open: choose the built-in digits")
            source = str(project_root)
        else:
            source = BUILTIN
        return {"source": source, "image_size": self.size.currentData(), "channels": 3 if self.colour.isChecked() else 1,
                "random_crops": self.crops.value() if source != BUILTIN else 0, "seed": 0,
                "classes": self.class_source.currentData() if self.conditional and source != BUILTIN else None}

    @property
    def conditional(self) -> bool:
        return self.kind in ("ddpm", "gan") and self.by_class.isChecked()

    def config(self, project_root: Path | None) -> GenerativeConfig:
        """Raises ValueError with the reason when the settings cannot be used."""
        key = self.data_key(project_root)
        del key["classes"]  # the config says it as 'conditional' and 'class_source'
        if self.latent_wanted and self.vae_path is None:
            raise ValueError("latent diffusion needs a trained VAE: train one here first, or choose a saved one")
        return GenerativeConfig(model=self.kind, **key, conditional=self.conditional,
                                class_source=self.class_source.currentData(),
                                latent_vae=self.vae_path if self.latent_wanted else None,
                                classifier=self.conditional and self.kind == "ddpm" and self.with_classifier.isChecked(),
                                batch_size=self.batch.value(),
                                lr=self.lr.value(), steps=self.steps.value(),
                                max_minutes=self.minutes.value() or None, base_channels=self.base.value(),
                                latent_dim=self.latent.value(), beta=self.beta.value(),
                                schedule=self.schedule.currentText(), timesteps=self.timesteps.value(),
                                preview_interval_s=PREVIEW_INTERVAL_S[self.kind], threads=max(1, (os.cpu_count() or 2) - 1))

    def apply(self, config: dict) -> None:
        """Show a loaded model's settings (its training images: the built-in set, or this project's)."""
        self.model.setCurrentIndex(list(MODEL_NAMES).index(config["model"]))
        self.source.setCurrentIndex(self.source.findData(BUILTIN if config["source"].startswith("builtin:") else PROJECT))
        self.size.setCurrentIndex(self.size.findData(config["image_size"]))
        self.colour.setChecked(config["channels"] == 3)
        self.crops.setValue(config.get("random_crops", 0))
        self.steps.setValue(config["steps"])
        self.minutes.setValue(config.get("max_minutes") or 0)
        self.batch.setValue(config["batch_size"])
        self.lr.setValue(config.get("lr") or default_lr(config["model"], self.cuda))
        self.base.setValue(config["base_channels"])
        self.latent.setValue(config["latent_dim"])
        self.beta.setValue(config["beta"])
        self.schedule.setCurrentText(config["schedule"])
        self.timesteps.setValue(config["timesteps"])
        self.by_class.setChecked(bool(config.get("conditional")))
        self.with_classifier.setChecked(bool(config.get("classifier")))
        self.class_source.setCurrentIndex(self.class_source.findData(config.get("class_source", "boxes")))
        self.vae_path = config.get("latent_vae")
        self.in_latent.setChecked(bool(self.vae_path))
        self._show_rows()

    def schedule_settings(self) -> tuple[str, int]:
        return self.schedule.currentText(), self.timesteps.value()
