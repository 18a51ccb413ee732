"""Looking inside a trained model: samples drawn on request from N(0, I) (or a DDPM's x_T) with a chosen seed,
their quality (KID/FID and memorisation, computed by the service), and, for a VAE, a walk through the latent
space between two training images.

The interpolation decodes points on the straight line between the posterior means μ(A) and μ(B); its two ends are
the VAE's reconstructions of A and B, shown beside the originals so the gap between them is visible too.
"""
from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, \
    QSpinBox, QVBoxLayout, QWidget

from engine.generative.grids import to_uint8
from wsv_gui.generative.images import GridView
from wsv_gui.generative.messages import Interpolation

GUIDANCE_STEP = 0.5
"""the guidance slider's step; the spin box beside it takes any value"""


def _scale_spin(value: float, tip: str) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(0.0, 20.0)
    s.setSingleStep(0.5)
    s.setDecimals(1)
    s.setValue(value)
    s.setToolTip(tip)
    return s


def _spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setToolTip(tip)
    return s


class SamplesView(QWidget):
    drawRequested = Signal(int, int, int, float, float)  # n (per class), seed, DDPM sampler steps (0: full
    # DDPM), classifier-free and classifier guidance scales
    interpolateRequested = Signal(int, int, int)  # image a, image b, steps
    evaluateRequested = Signal(int, int, float, float)  # n samples, DDPM sampler steps (0: full DDPM), guidance scales

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.images: np.ndarray | None = None
        self.kind: str | None = None
        self.interpolation: Interpolation | None = None

        draw_box = QGroupBox("Samples")
        dv = QVBoxLayout(draw_box)
        row = QHBoxLayout()
        self.count = _spin(1, 256, 64, "number of samples")
        self.seed = _spin(0, 1_000_000, 0, "the same seed gives the same noise, so models can be compared")
        self.ddim = _spin(0, 4000, 50, "DDPM: DDIM steps with the EMA weights (deterministic); 0 runs the full "
                                        "ancestral DDPM, T steps")
        self.ddim.setSpecialValueText("full DDPM")
        self.draw_button = QPushButton("Draw samples")
        self.draw_button.clicked.connect(lambda: self.drawRequested.emit(
            self.count.value(), self.seed.value(), self.ddim.value(), self.guidance.value(),
            self.classifier_scale.value()))
        self.count_label = QLabel("n")
        self.guidance = _scale_spin(3.0, "classifier-free guidance: 0 draws from the unconditional model, 1 from the "
                                         "conditional one, more keeps closer to the class at the cost of variety")
        self.classifier_scale = _scale_spin(0.0, "classifier guidance: how hard the classifier of noised images "
                                                 "pulls each step toward the class (0: not at all)")
        self.guidance_slider = QSlider(Qt.Orientation.Horizontal)
        self.guidance_slider.setRange(0, round(self.guidance.maximum() / GUIDANCE_STEP))
        self.guidance_slider.setToolTip(self.guidance.toolTip())
        self.guidance_slider.valueChanged.connect(self._slid)
        self.guidance.valueChanged.connect(lambda v: self.guidance_slider.setValue(round(v / GUIDANCE_STEP)))
        self.guidance_slider.setValue(round(self.guidance.value() / GUIDANCE_STEP))
        self.guidance_label, self.classifier_label = QLabel("classifier-free guidance"), QLabel("classifier guidance")
        for label, w in ((self.count_label, self.count), ("seed", self.seed), ("DDIM steps", self.ddim)):
            row.addWidget(QLabel(label) if isinstance(label, str) else label)
            row.addWidget(w)
        row.addWidget(self.draw_button)
        row.addStretch(1)
        self.eval_count = _spin(2, 5000, 256, "samples drawn for evaluation, compared with as many training images")
        self.eval_button = QPushButton("Evaluate")
        self.eval_button.setToolTip("KID and FID on EfficientNet-Lite0 features, and the nearest training image of "
                                    "every sample (DDPM: sampled with the DDIM steps on the left)")
        self.eval_button.clicked.connect(lambda: self.evaluateRequested.emit(
            self.eval_count.value(), self.ddim.value(), self.guidance.value(), self.classifier_scale.value()))
        row.addWidget(self.eval_button)
        row.addWidget(QLabel("on"))
        row.addWidget(self.eval_count)
        row.addWidget(QLabel("samples"))
        dv.addLayout(row)
        steering = QHBoxLayout()  # a conditional DDPM's: shown only for one
        for w, stretch in ((self.guidance_label, 0), (self.guidance_slider, 1), (self.guidance, 0),
                           (self.classifier_label, 0), (self.classifier_scale, 0)):
            steering.addWidget(w, stretch)
        dv.addLayout(steering)
        self.samples = GridView("Train or load a model, then draw samples.")
        self.samples_label = QLabel("")
        self.eval_label = QLabel("")
        self.eval_label.setWordWrap(True)
        self.eval_label.setTextFormat(Qt.TextFormat.RichText)
        dv.addWidget(self.samples, 1)
        dv.addWidget(self.samples_label)
        dv.addWidget(self.eval_label)

        interp_box = QGroupBox("Latent interpolation (VAE): decodes between μ(A) and μ(B)")
        iv = QVBoxLayout(interp_box)
        pick = QHBoxLayout()
        self.a = _spin(0, 0, 0, "index of training image A")
        self.b = _spin(0, 0, 1, "index of training image B")
        self.frames = _spin(2, 32, 10, "points on the line, ends included")
        self.thumb_a, self.thumb_b = GridView("", 48), GridView("", 48)
        for label, spin, thumb in (("A", self.a, self.thumb_a), ("B", self.b, self.thumb_b)):
            pick.addWidget(QLabel(label))
            pick.addWidget(spin)
            thumb.setFixedSize(64, 64)
            thumb.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            pick.addWidget(thumb)
        pick.addWidget(QLabel("steps"))
        pick.addWidget(self.frames)
        self.interpolate_button = QPushButton("Interpolate")
        self.interpolate_button.clicked.connect(self.request_interpolation)
        pick.addWidget(self.interpolate_button)
        pick.addStretch(1)
        iv.addLayout(pick)
        self.strip = GridView("Train or load a VAE, pick two training images.", 64)
        iv.addWidget(self.strip, 1)
        self.strip_label = QLabel("left: image A; then the decodes from μ(A) to μ(B); right: image B")
        iv.addWidget(self.strip_label)

        layout = QVBoxLayout(self)
        layout.addWidget(draw_box, 3)
        layout.addWidget(interp_box, 2)
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self.request_interpolation)
        for spin in (self.a, self.b, self.frames):
            spin.valueChanged.connect(self._show_thumbs)
            spin.valueChanged.connect(lambda _: self._debounce.start() if self.kind == "vae" else None)
        self.set_model(None)

    def _slid(self, value: int) -> None:
        """The slider moved: the spin box follows, unless it already holds a value between the slider's steps."""
        if round(self.guidance.value() / GUIDANCE_STEP) != value:
            self.guidance.setValue(value * GUIDANCE_STEP)

    def set_images(self, images: np.ndarray) -> None:
        """The training images (N, C, S, S) in [−1, 1], for picking A and B."""
        self.images = images
        for spin in (self.a, self.b):
            spin.setMaximum(max(0, len(images) - 1))
        self._show_thumbs()

    def set_model(self, kind: str | None, classes: list[str] | None = None, classifier: bool = False,
                  guidance: float = 3.0) -> None:
        """A model arrived (or went): the buttons that need one, and what the empty views say to do next. A
        conditional DDPM (``classes``) draws ``n`` per class, with its guidance scales."""
        self.kind = kind
        conditional = bool(classes)
        self.count_label.setText("n per class" if conditional else "n")
        if conditional and self.count.value() > 16:
            self.count.setValue(8)
        for w in (self.guidance, self.guidance_label, self.guidance_slider):
            w.setVisible(conditional and kind == "ddpm")
        for w in (self.classifier_scale, self.classifier_label):
            w.setVisible(conditional and classifier)
        if conditional:
            self.guidance.setValue(guidance)
        if self.samples.array is None:
            self.samples.clear_image("Drawing samples…" if kind else "Train or load a model, then draw samples.")
        self.draw_button.setEnabled(kind is not None)
        self.eval_button.setEnabled(kind is not None)
        self.ddim.setEnabled(kind == "ddpm")
        is_vae = kind == "vae"
        for w in (self.interpolate_button, self.a, self.b, self.frames):
            w.setEnabled(is_vae)
        if not is_vae:
            self.strip.clear_image("Latent interpolation needs a VAE: train or load one." if kind else
                                   "Train or load a VAE, pick two training images.")

    def request_interpolation(self) -> None:
        if self.kind == "vae":
            self.interpolateRequested.emit(self.a.value(), self.b.value(), self.frames.value())

    def _show_thumbs(self) -> None:
        if self.images is None or not len(self.images):
            return
        for spin, thumb in ((self.a, self.thumb_a), (self.b, self.thumb_b)):
            i = min(spin.value(), len(self.images) - 1)
            thumb.set_array(to_uint8(torch.from_numpy(self.images[i:i + 1]))[0])

    def show_samples(self, grid: np.ndarray, description: str) -> None:
        self.samples.set_array(grid)
        self.samples_label.setText(description)

    def show_interpolation(self, result: Interpolation) -> None:
        self.interpolation = result
        a, b = result.a, result.b
        self.strip.set_array(result.grid)
        self.strip_label.setText(f"left: training image {a}; then {len(result.frames)} decodes from μ({a}) to "
                                 f"μ({b}) (the ends are their reconstructions); right: training image {b}")

    def show_quality(self, r: dict) -> None:
        """The evaluation as it should be read: which features, how many images, and what the numbers mean."""
        mem = r["memorization"]
        check = r.get("class_check")
        classes = "" if check is None else (
            f"<br><b>By class:</b> a separately trained classifier labels {check['sample_accuracy'] * 100:.0f}% of "
            f"the samples as the class they were drawn for (chance {check['chance'] * 100:.0f}%; it labels "
            f"{check['judge_heldout_accuracy'] * 100:.0f}% of held-out training images right).")
        self.eval_label.setText(
            f"<b>KID {r['kid']:.4f}</b> on {r['features']}, {r['samples']} samples vs {r['reference_images']} "
            f"training images ({r['sampler']}). FID {r['fid']:.1f} on the same features (biased upward with few "
            f"samples; compare runs with each other, not with published Inception figures).<br>"
            f"<b>Memorisation:</b> a sample's nearest training image lies a median "
            f"{mem['median_sample_to_train']:.2f} away (pixel L2), training images {mem['train_to_train']:.2f} from "
            f"each other: ratio {mem['ratio']:.2f} (well below 1 means copies); {mem['close_fraction'] * 100:.0f}% of "
            f"samples are closer than half that.{classes}")
