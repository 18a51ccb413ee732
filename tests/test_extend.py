"""The recipes of docs/architecture.md: a training term and a tab each land in one place plus one line of
registration, and show up in the CLI, the settings form, the curves, the status line and the window."""
import argparse

import numpy as np
import pytest

from engine.settings import add_options, from_options
from engine.training.config import TrainConfig
from engine.training.terms import TERMS, Term
from tests.test_trainer import config, two_tone_project


def toy_loss(s):
    """The mean probability of class 0: a toy term, as a user would write one."""
    return s.probs[:, 0].mean()


@pytest.fixture
def toy_term(monkeypatch):
    monkeypatch.setitem(TERMS, "toy", Term("toy term", toy_loss, weight=0.5, help="weight of the toy term",
                                           colour=(10, 20, 30)))


def test_a_registered_term_is_an_option_is_trained_and_is_reported(toy_term, tmp_path):
    from engine.training.trainer import Trainer

    parser = argparse.ArgumentParser()
    add_options(parser, TrainConfig)
    assert from_options(TrainConfig, parser.parse_args([])).weights["toy"] == 0.5
    assert from_options(TrainConfig, parser.parse_args(["--toy-weight", "0.25"])).weights["toy"] == 0.25
    trainer = Trainer(two_tone_project(tmp_path / "p"), config(steps=2, weights={"toy": 0.25}))
    records = list(trainer.run())
    trainer.close()
    losses = records[-1].losses
    assert 0 < losses["toy"] <= 0.25
    assert losses["total"] == pytest.approx(losses["pce"] + losses["reg"] + losses["toy"], rel=1e-5)


def test_a_registered_term_gets_a_form_row_a_curve_and_a_place_in_the_status_line(toy_term, qtbot, user_data):
    from engine.training.records import ProgressRecord
    from wsv_gui.segmentation.panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.settings.toy_weight.setValue(0.75)
    assert panel.settings.config().weights["toy"] == 0.75
    panel.add(ProgressRecord(3, 10, {"pce": 0.5, "reg": 0.1, "toy": 0.2, "total": 0.8}, 1.0, 1.0, "cpu", 1))
    panel._redraw()
    xs, ys = panel.curves["toy"].getData()
    assert list(xs) == [3] and list(ys) == [pytest.approx(np.log10(0.2))]  # the loss axis is logarithmic
    assert panel.curves["toy"].opts["name"] == "toy term"
    assert "toy term 0.2000" in panel.status.text() and "pCE 0.5000" in panel.status.text()


def test_a_registered_tab_joins_the_window_and_hears_the_contract(qtbot, tmp_path, user_data, monkeypatch):
    import wsv_gui.main_window as main_window
    from engine.project import Project
    from wsv_gui.tab import Tab

    heard = []

    class ToyTab(Tab):
        title = "Toy"
        key = "toy"

        def set_project(self, project):
            heard.append(("project", project.root))

        def show_image(self, shown):
            heard.append(("image", shown.image_id, shown.image.pixels.shape))

        def shutdown(self):
            heard.append(("shutdown",))

    monkeypatch.setattr(main_window, "TABS", (*main_window.TABS, ToyTab))
    root = two_tone_project(tmp_path / "p")
    window = main_window.MainWindow(Project.open(root))
    qtbot.addWidget(window)
    assert window.tabs.tabText(window.tabs.count() - 1) == "Toy" and window.toy.host is window
    first = window.project.store.images()[0].id
    assert heard[0] == ("project", root) and heard[1] == ("image", first, (48, 48, 3))
    window.close()
    assert heard[-1] == ("shutdown",)
