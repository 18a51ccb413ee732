"""The Detection tab on a real window: boxes drawn there reach the store, a detector trains in the worker
thread and shows live detections, thresholds re-filter them, evaluation fills the PR plot; closing mid-training
does not hang."""
import numpy as np
import pytest
from PIL import Image

from engine.annotations.types import Box
from engine.detection.data import done_image_ids
from engine.project import Project
from tests.test_gui_annotate import drag


@pytest.fixture
def window(qtbot, tmp_path, user_data):
    from wsv_gui.main_window import MainWindow

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.integers(0, 60, (96, 128, 3), dtype=np.uint8)
        x, y = 10 + 12 * i, 20 + 5 * i
        img[y:y + 32, x:x + 32] = (230, 220, 40)
        Image.fromarray(img).save(folder / f"im{i}.png")
    project = Project.create(folder, ["background", "square"])
    project.add_folder(folder)
    square = project.store.classes()[1].id
    for i, rec in enumerate(project.store.images()):
        x, y = 10 + 12 * i, 20 + 5 * i
        project.store.add_box(Box(rec.id, square, x, y, x + 32, y + 32))
    w = MainWindow(project)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    w.tabs.setCurrentWidget(w.detection)
    qtbot.waitExposed(w)
    return w


def test_boxes_drawn_in_the_detection_tab_are_shared(window):
    w = window
    store, image_id = w.project.store, w.current_image_id
    w.class_panel.select_index(1)
    drag(w.detection.canvas, [(60, 5), (90, 15)])
    assert len(store.boxes(image_id)) == 2
    assert len(w.segmentation.canvas.boxes.items) == 2 and len(w.detection.canvas.boxes.items) == 2
    w.detection.negative.setChecked(True)
    assert image_id in done_image_ids(store)


@pytest.mark.timeout(240)
def test_train_shows_detections_and_pr_curve(window, qtbot):
    tab = window.detection
    tab.method.setCurrentIndex(tab.method.findData("fasterrcnn_mobilenet_v3_large_320_fpn"))
    tab.steps_box.setValue(10)
    tab.holdout.setValue(34)
    tab.train()
    qtbot.waitUntil(lambda: tab.training is None, timeout=200000)
    assert "Detector saved" in tab.status.text(), tab.status.text()
    assert set(tab.losses) >= {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "total"}
    assert len(tab.steps) == 10 and all(np.isfinite(v).all() for v in tab.losses.values())
    assert "mAP@0.5" in tab.metrics.text()
    qtbot.waitUntil(lambda: window.current_image_id in tab.raw, timeout=60000)  # from the saved detector
    raw = tab.raw[window.current_image_id]
    tab.score.setValue(0)
    n_low = len(tab.overlay.items)
    tab.score.setValue(100)
    assert len(tab.overlay.items) <= n_low and len(tab.overlay.items) == int((raw.scores >= 1.0).sum())


@pytest.mark.timeout(120)
def test_hog_svm_in_the_tab_and_close_while_training(window, qtbot):
    tab = window.detection
    tab.method.setCurrentIndex(tab.method.findData("hog-svm"))
    tab.train()
    qtbot.waitUntil(lambda: tab.training is None, timeout=100000)
    assert "Detector saved" in tab.status.text(), tab.status.text()
    assert tab.kind == "hog-svm" and tab.score_label.text() == "Score ≥ 0.00"
    tab.method.setCurrentIndex(0)
    tab.steps_box.setValue(100000)
    tab.train()
    qtbot.waitUntil(lambda: bool(tab.steps), timeout=60000)
    window.close()  # stops the worker after its current step
    assert tab.training is None


def test_the_default_method_gives_boxes_soon_on_this_device(window):
    """On a CPU a CNN detector needs many minutes before it finds anything; HOG + SVM takes seconds."""
    import torch

    from engine.detection.hog_svm import METHOD as HOG_SVM
    from engine.detection.models import DEFAULT_DETECTOR

    tab = window.detection
    assert tab.method.currentData() == (DEFAULT_DETECTOR if torch.cuda.is_available() else HOG_SVM)


def test_time_left_in_words():
    from wsv_gui.eta import time_left

    assert time_left(0, 2.0) == "finishing"
    assert time_left(10, 0.0) == "estimating time left…"
    assert time_left(30, 2.0) == "about 15 s left"
    assert time_left(500, 0.25) == "about 33 min left"
    assert time_left(100_000, 10.0) == "about 2.8 h left"


def test_steps_are_asked_only_of_the_cnn_detectors(window):
    from engine.detection.hog_svm import METHOD as HOG_SVM
    from engine.detection.models import DEFAULT_DETECTOR

    tab = window.detection
    tab.method.setCurrentIndex(tab.method.findData(HOG_SVM))
    assert not tab.steps_box.isVisibleTo(tab)
    tab.method.setCurrentIndex(tab.method.findData(DEFAULT_DETECTOR))
    assert tab.steps_box.isVisibleTo(tab)
