"""The training settings form: every knob of TrainConfig a user may want, with the defaults pre-set."""
from __future__ import annotations

import os

import torch
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from engine.models.registry import MODEL_NAMES, default_model_name
from engine.training.config import DEFAULT_REG_WEIGHT, PCE_MODES, REGULARIZERS, TrainConfig


def _spin(lo: float, hi: float, value: float, decimals: int, step: float | None, tip: str) -> QDoubleSpinBox:
    """A number box; ``step`` None steps by the value's own last digit, for values that span orders of magnitude
    (the dense CRF weight is thousands of times smaller than the grid's, and a fixed step would jump past it)."""
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    if step is None:
        box.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
    else:
        box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class SettingsForm(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        d = TrainConfig()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.regularizer = QComboBox()
        self.regularizer.addItems(REGULARIZERS)
        self.regularizer.setCurrentText(d.regularizer)
        self.regularizer.setToolTip("loss on all pixels: 'dense' CRF follows colour edges across the whole image, "
                                    "'grid' between neighbouring pixels, 'ncut' is the normalized cut, 'colour' the "
                                    "regional colour term alone, 'none' trains on the marks alone")
        self.weight = _spin(0, 1000, DEFAULT_REG_WEIGHT[d.regularizer], 4, None,
                            f"weight of the regularizer; boxed images take {d.boxed_reg_factor:g} of it in a "
                            f"project with no class named background")
        self.regularizer.currentTextChanged.connect(lambda r: self.weight.setValue(DEFAULT_REG_WEIGHT[r]))
        self.colour_weight = _spin(0, 100, d.colour_weight, 2, 0.25,
                                   "weight of the regional colour term that comes with grid, dense and ncut on colour "
                                   "images: it keeps each class's colours together, so a short stroke's object does "
                                   "not shrink to it")
        self.sigma_rgb = _spin(1, 255, d.sigma_rgb, 1, 1, "colour bandwidth of the dense CRF kernel (0..255 units)")
        self.sigma_xy = _spin(1, 2000, d.sigma_xy, 1, 5, "spatial bandwidth of the dense CRF kernel (pixels)")
        self.pce = QComboBox()
        self.pce.addItems(PCE_MODES)
        self.pce.setCurrentText("balanced" if d.balanced_pce else "mean")
        self.pce.setToolTip("partial cross-entropy on the brush strokes: 'balanced' weighs each class the same "
                            "however long its strokes, 'mean' weighs each stroked pixel the same (seeds that "
                            "boxes give always take the mean)")
        self.model = QComboBox()
        self.model.addItems(MODEL_NAMES)
        self.model.setCurrentText(default_model_name())
        self.lr = _spin(1e-5, 1.0, d.lr, 5, 1e-4, "learning rate (AdamW)")
        self.working_size = QSpinBox()
        self.working_size.setRange(64, 2048)
        self.working_size.setSingleStep(32)
        self.working_size.setValue(d.working_size)
        self.working_size.setToolTip("longer image side the network sees, in pixels")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())])
        for label, widget in (("Regularizer", self.regularizer), ("Weight", self.weight),
                              ("Colour weight", self.colour_weight), ("σ rgb", self.sigma_rgb),
                              ("σ xy", self.sigma_xy), ("pCE", self.pce), ("Model", self.model),
                              ("Learning rate", self.lr), ("Working size", self.working_size), ("Device", self.device)):
            form.addRow(label, widget)

    def config(self) -> TrainConfig:
        """Live training learns from every kind of mark each image has, runs until stopped (the step budget is
        effectively unlimited), takes small batches so the prediction on screen updates often, and leaves one
        CPU core to the window so it stays responsive."""
        return TrainConfig(supervision="marks", regularizer=self.regularizer.currentText(), reg_weight=self.weight.value(),
                           colour_weight=self.colour_weight.value(),
                           sigma_rgb=self.sigma_rgb.value(), sigma_xy=self.sigma_xy.value(),
                           balanced_pce=self.pce.currentText() == "balanced", model=self.model.currentText(),
                           lr=self.lr.value(), steps=1_000_000, batch_size=2,
                           working_size=self.working_size.value(), device=self.device.currentText(),
                           threads=max(1, (os.cpu_count() or 2) - 1), eval_interval_s=15.0, preview_interval_s=0.5)
