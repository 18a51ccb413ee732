"""A form built from a config class's declared settings (engine.settings): one row per setting with a label, in
declaration order — a combo box for choices, a number box within the declared limits, a check box for yes/no —
each with its help as tooltip. The last values used are kept per project (QSettings), so a project reopens with
the settings it was trained with."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from engine.settings import Setting, settings

NUMBER_LIMIT = 1e6
"""the number boxes' range where a setting declares no limit of its own"""


class SettingsForm(QWidget):
    def __init__(self, config_cls: type, parent=None) -> None:
        super().__init__(parent)
        self.config_cls = config_cls
        self.project_key: str | None = None
        self.rows: dict[str, tuple[Setting, QWidget]] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for s in settings(config_cls):
            if s.spec.label is None:
                continue
            widget = _widget(s)
            widget.setToolTip(s.spec.help)
            self.rows[s.name] = (s, widget)
            setattr(self, s.name, widget)
            form.addRow(s.spec.label, widget)
        for s, widget in self.rows.values():  # a setting whose default depends on another's value
            if s.spec.follows is not None:
                other, table = s.spec.follows
                box = self.rows[other][1]
                box.currentTextChanged.connect(lambda v, w=widget, t=table: w.setValue(t[v]))
                widget.setValue(table[box.currentText()])

    def values(self) -> dict[str, Any]:
        """The form's values by setting name."""
        return {name: _read(s, w) for name, (s, w) in self.rows.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (by setting name); unknown names and values a widget cannot show are passed over."""
        for name in sorted(values, key=lambda n: self.rows[n][0].spec.follows is not None if n in self.rows else 0):
            if name in self.rows:
                _write(*self.rows[name], values[name])

    def config(self, **fixed: Any):
        """The config of the form's values with ``fixed`` on top; raises SettingError for a value out of range.
        The values are remembered for the project."""
        kwargs: dict[str, Any] = {}
        for name, (s, widget) in self.rows.items():
            s.put(kwargs, _read(s, widget))
        for name, value in fixed.items():
            if isinstance(value, dict) and isinstance(kwargs.get(name), dict):
                kwargs[name].update(value)
            else:
                kwargs[name] = value
        config = self.config_cls(**kwargs)
        self._remember()
        return config

    # ---- per project ------------------------------------------------------------------------------------------
    def set_project(self, root: Path) -> None:
        """Show the values last used in this project (the declared defaults for a project never trained)."""
        digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
        self.project_key = f"settings/{self.config_cls.__name__}/{digest}"
        self.set_values({s.name: s.default for s, _ in self.rows.values() if s.spec.follows is None})
        stored = QSettings().value(self.project_key)
        if stored:
            try:
                self.set_values(json.loads(stored))
            except (TypeError, ValueError):
                pass  # a damaged entry: the defaults stand

    def _remember(self) -> None:
        if self.project_key is not None:
            QSettings().setValue(self.project_key, json.dumps(self.values()))


def _widget(s: Setting) -> QWidget:
    choices = s.choices()
    if choices is not None or s.spec.suggestions is not None:
        box = QComboBox()
        box.addItems(list(choices if choices is not None else s.spec.suggestions()))
        box.setCurrentText(s.spec.words[0 if s.default else 1] if s.spec.words else str(s.default))
        return box
    if s.kind is bool:
        box = QCheckBox()
        box.setChecked(bool(s.default))
        return box
    spec = s.spec
    low = spec.low if spec.low is not None else (0.0 if spec.positive else -NUMBER_LIMIT)
    high = spec.high if spec.high is not None else NUMBER_LIMIT
    if s.kind is int:
        box = QSpinBox()
        box.setRange(int(low), int(min(high, 2**31 - 1)))
        if spec.step:
            box.setSingleStep(int(spec.step))
    else:
        box = QDoubleSpinBox()
        box.setDecimals(spec.decimals)
        box.setRange(low, high)
        if spec.step is None:  # the value's own last digit: the dense CRF weight is thousands of times the grid's
            box.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        else:
            box.setSingleStep(spec.step)
    if s.default is not None:
        box.setValue(s.default)
    return box


def _read(s: Setting, widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        text = widget.currentText()
        return text == s.spec.words[0] if s.spec.words else text
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    return widget.value()


def _write(s: Setting, widget: QWidget, value: Any) -> None:
    if value is None:
        return
    if isinstance(widget, QComboBox):
        text = (s.spec.words[0 if value else 1] if s.spec.words else str(value))
        if widget.findText(text) >= 0:
            widget.setCurrentText(text)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        widget.setValue(value)
