"""Controls above the canvas: tool, brush size, layer opacities and how the prediction is shown."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, \
    QToolButton, QWidget

from wsv_gui.canvas.view import BOX, BRUSH, ERASER, PAN


NETWORK_MODE = "network"
MEASURES = ("uncertainty", "disagreement")
"""views of how sure the network is (engine.uncertainty): its normalized entropy as a heat map, and where a
marked image's refined mask overrules it"""
MODES = ("mask", NETWORK_MODE, *MEASURES)
"""the overlay's modes, before one probability heat map per class"""


def _slider(value: int, tip: str) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(0, 100)
    s.setValue(value)
    s.setFixedWidth(80)
    s.setToolTip(tip)
    return s


class CanvasToolbar(QWidget):
    toolChanged = Signal(str)
    radiusChanged = Signal(float)
    seedOpacityChanged = Signal(float)
    predictionOpacityChanged = Signal(float)
    predictionModeChanged = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        self.group = QButtonGroup(self)
        self.tool_buttons = {}
        for tool, text, tip in ((BRUSH, "Brush", "Paint marks of the selected class (B)"),
                                (ERASER, "Eraser", "Erase marks (E)"),
                                (BOX, "Box", "Box objects of the selected class: drag, or click two corners; drag an "
                                             "edge or corner to resize, the inside to move; Delete removes it (R)"),
                                (PAN, "Pan", "Drag to move around; also middle button or Space+drag (H)")):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(True)
            self.group.addButton(b)
            self.tool_buttons[tool] = b
            b.clicked.connect(lambda _=False, t=tool: self.toolChanged.emit(t))
            row.addWidget(b)
        self.tool_buttons[BRUSH].setChecked(True)
        row.addWidget(QLabel("Size"))
        self.radius = QDoubleSpinBox()
        self.radius.setRange(0.5, 200)
        self.radius.setDecimals(1)
        self.radius.setValue(6.0)
        self.radius.setToolTip("brush radius in image pixels ([ and ] change it)")
        self.radius.valueChanged.connect(self.radiusChanged)
        row.addWidget(self.radius)
        row.addWidget(QLabel("Marks"))
        self.seed_opacity = _slider(85, "opacity of your marks")
        self.seed_opacity.valueChanged.connect(lambda v: self.seedOpacityChanged.emit(v / 100))
        row.addWidget(self.seed_opacity)
        row.addSpacing(12)
        self.show_prediction = QCheckBox("Prediction")
        self.show_prediction.setChecked(True)
        self.show_prediction.setToolTip("show the network's current prediction (P)")
        self.show_prediction.toggled.connect(lambda _: self.predictionModeChanged.emit())
        row.addWidget(self.show_prediction)
        self.mode = QComboBox()
        self.mode.setToolTip("the mask (on a marked image refined with its marks, as Export Masks writes it), the "
                             "network's own answer, how unsure the network is (entropy: bright where it hesitates), "
                             "where a marked image's marks overrule it (the mask's classes there only), or one "
                             "class's probability as a heat map (N toggles mask and network)")
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(13)
        self.mode.currentIndexChanged.connect(lambda _: self.predictionModeChanged.emit())
        row.addWidget(self.mode)
        self.prediction_opacity = _slider(45, "opacity of the prediction")
        self.prediction_opacity.valueChanged.connect(lambda v: self.predictionOpacityChanged.emit(v / 100))
        row.addWidget(self.prediction_opacity)
        row.addStretch(1)

    def set_tool(self, tool: str) -> None:
        self.tool_buttons[tool].setChecked(True)

    def set_classes(self, names: list[str]) -> None:
        current = self.mode.currentIndex()
        self.mode.blockSignals(True)
        self.mode.clear()
        self.mode.addItems(MODES)
        self.mode.addItems([f"P({n})" for n in names])
        self.mode.setCurrentIndex(current if 0 <= current < self.mode.count() else 0)
        self.mode.blockSignals(False)

    def heatmap_class(self) -> int | None:
        """Class index whose probability is shown, or None for class colours."""
        i = self.mode.currentIndex()
        return None if i < len(MODES) else i - len(MODES)

    def measure(self) -> str | None:
        """The uncertainty view chosen (one of MEASURES), or None."""
        i = self.mode.currentIndex()
        return MODES[i] if 0 <= i < len(MODES) and MODES[i] in MEASURES else None

    def network_only(self) -> bool:
        """Whether the network's own answer is shown even where refined masks exist."""
        return self.mode.currentIndex() == MODES.index(NETWORK_MODE)

    def toggle_network(self) -> None:
        """Between the (refined) mask and the network's answer."""
        self.mode.setCurrentIndex(0 if self.network_only() else MODES.index(NETWORK_MODE))
