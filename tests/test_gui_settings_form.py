"""The settings form is built from the declared settings and keeps the last values used per project."""
import pytest

from engine.settings import SettingError, settings
from engine.training.config import DEFAULT_REG_WEIGHT, TrainConfig


def test_the_form_has_a_row_per_labelled_setting_with_its_help(qtbot):
    from wsv_gui.segmentation.settings import TrainingSettings

    form = TrainingSettings()
    qtbot.addWidget(form)
    labelled = [s for s in settings(TrainConfig) if s.spec.label]
    assert list(form.rows) == [s.name for s in labelled]
    assert {"regularizer", "reg_weight", "pce", "model", "device", "box_weight", "tags_weight"} <= set(form.rows)
    assert form.regularizer.toolTip() == next(s.spec.help for s in labelled if s.name == "regularizer")
    form.regularizer.setCurrentText("grid")  # a weight follows its regularizer's default
    assert form.reg_weight.value() == DEFAULT_REG_WEIGHT["grid"]


def test_values_are_kept_per_project(qtbot, tmp_path):
    from wsv_gui.segmentation.settings import TrainingSettings

    first, second = tmp_path / "a", tmp_path / "b"
    form = TrainingSettings()
    qtbot.addWidget(form)
    form.set_project(first)
    form.regularizer.setCurrentText("ncut")
    form.reg_weight.setValue(2.5)
    form.sigma_xy.setValue(40)
    form.pce.setCurrentText("mean")
    form.box_weight.setValue(0.5)
    form.config()  # training starts: the values are remembered
    form.set_project(second)  # another project starts at the defaults
    assert (form.regularizer.currentText(), form.reg_weight.value(), form.sigma_xy.value()) == \
        ("dense", DEFAULT_REG_WEIGHT["dense"], TrainConfig.sigma_xy)
    again = TrainingSettings()
    qtbot.addWidget(again)
    again.set_project(first)  # reopened later: the values it trained with
    c = again.config()
    assert (c.regularizer, c.reg_weight, c.sigma_xy, c.balanced_pce, c.weights["box"]) == ("ncut", 2.5, 40, False, 0.5)


def test_a_value_out_of_range_is_refused_in_words(qtbot, monkeypatch):
    from wsv_gui.segmentation.settings import TrainingSettings

    form = TrainingSettings()
    qtbot.addWidget(form)
    monkeypatch.setattr(form.sigma_xy, "value", lambda: 0.0)
    with pytest.raises(SettingError, match="sigma_xy must be a positive number"):
        form.config()
