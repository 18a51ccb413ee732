"""Live training from the window: predictions arrive and change the overlay, pause/stop work, closing during
training ends the worker without a hang, and the model is saved."""
import cv2
import numpy as np
import pytest
from PIL import Image

from engine.annotations.types import Stroke
from engine.project import Project


@pytest.fixture
def window(qtbot, tmp_path, user_data):
    from wsv_gui.main_window import MainWindow

    folder = tmp_path / "photos"
    folder.mkdir()
    img = np.zeros((40, 56, 3), np.uint8)
    img[:, :28] = (30, 60, 200)
    img[:, 28:] = (230, 210, 40)
    Image.fromarray(img).save(folder / "two.png")
    project = Project.create(folder, ["left", "right"])
    project.add_folder(folder)
    image_id = project.store.images()[0].id
    left, right = project.store.classes()
    project.store.add_stroke(Stroke(image_id, left.id, 2.0, [[5, 5], [5, 35]]))
    project.store.add_stroke(Stroke(image_id, right.id, 2.0, [[50, 5], [50, 35]]))
    w = MainWindow(project)
    qtbot.addWidget(w)
    s = w.segmentation.training_panel.settings
    s.model.setCurrentText("unet")
    s.working_size.setValue(64)
    s.device.setCurrentText("cpu")
    w.show()
    return w


def test_training_sends_predictions_that_change_the_overlay(window, qtbot):
    assert window.segmentation.canvas.prediction.rgba().size == 0
    window.segmentation.train()
    qtbot.waitUntil(lambda: window.current_image_id in window.segmentation.previews, timeout=60000)
    qtbot.waitUntil(lambda: window.segmentation.canvas.prediction.rgba().size > 0, timeout=10000)
    first = window.segmentation.canvas.prediction.rgba().copy()
    steps_before = window.segmentation.training_panel._steps[-1]
    qtbot.waitUntil(lambda: window.segmentation.training_panel._steps[-1] > steps_before + 3, timeout=60000)
    assert window.segmentation.training_panel._losses["total"][-1] > 0
    assert window.segmentation.gradient_view._preview is not None
    # the overlay is the latest preview's mask in class colours — this image is marked, so refined with its
    # marks, which hold —; the network mode shows the network's own answer, heat-map mode one class's probability
    from wsv_gui.segmentation.prediction import overlay_rgba

    preview = window.segmentation.previews[window.current_image_id]
    assert preview.refined is not None and preview.refined.shape == preview.labels.shape
    seeds = window.project.store.seed_map(window.current_image_id, preview.labels.shape)
    assert (preview.refined[seeds != 255] == seeds[seeds != 255]).all()
    window.segmentation.refresh_prediction()
    np.testing.assert_array_equal(window.segmentation.canvas.prediction.rgba(), overlay_rgba(preview, window.class_colors(), None))
    lut = window.segmentation.canvas.prediction.rgba()
    window.segmentation.toolbar.toggle_network()
    np.testing.assert_array_equal(window.segmentation.canvas.prediction.rgba(),
                                  overlay_rgba(preview, window.class_colors(), None, network_only=True))
    assert window.segmentation.toolbar.network_only()
    window.segmentation.toolbar.toggle_network()
    np.testing.assert_array_equal(window.segmentation.canvas.prediction.rgba(), lut)
    toolbar = window.segmentation.toolbar
    toolbar.mode.setCurrentIndex(toolbar.mode.findText("uncertainty"))
    assert toolbar.measure() == "uncertainty" and toolbar.heatmap_class() is None
    unsure = window.segmentation.canvas.prediction.rgba()
    np.testing.assert_array_equal(unsure, overlay_rgba(preview, window.class_colors(), None, measure="uncertainty"))
    toolbar.mode.setCurrentIndex(toolbar.mode.findText("disagreement"))
    overruled = window.segmentation.canvas.prediction.rgba()
    np.testing.assert_array_equal(overruled[..., 3] > 0, preview.refined != preview.labels)
    toolbar.mode.setCurrentIndex(toolbar.mode.findText("P(right)"))
    heat = window.segmentation.canvas.prediction.rgba()
    np.testing.assert_array_equal(heat, overlay_rgba(preview, window.class_colors(), 1))
    assert not np.array_equal(heat, first)
    assert window.segmentation.canvas.prediction.opacity() >= 0.85  # a heat map is read by its shades: never faint
    steps, history = window.segmentation.shares[window.current_image_id]  # the share curve follows the previews
    assert len(steps) == len(history) >= 2 and window.segmentation.training_panel.share_plot.isVisibleTo(window.segmentation.training_panel)
    np.testing.assert_allclose(history[-1].sum(), 1.0)
    window.segmentation.stop_training(wait=True)
    assert window.segmentation.training is None
    assert (window.segmentation.model_dir / "model.safetensors").is_file()


def test_pause_resume_stop(window, qtbot):
    window.segmentation.train()
    qtbot.waitUntil(lambda: len(window.segmentation.training_panel._steps) > 0, timeout=60000)
    window.segmentation.pause()
    qtbot.wait(300)
    n = len(window.segmentation.training_panel._steps)
    qtbot.wait(700)
    assert len(window.segmentation.training_panel._steps) <= n + 1  # at most the step in flight
    assert window.segmentation.training_panel.train_button.text() == "Resume"
    window.segmentation.train()
    qtbot.waitUntil(lambda: len(window.segmentation.training_panel._steps) > n + 2, timeout=60000)
    window.segmentation.stop_training()
    qtbot.waitUntil(lambda: window.segmentation.training is None, timeout=60000)
    assert window.segmentation.training_panel.train_button.isEnabled()


def test_close_during_training_does_not_hang(window, qtbot):
    window.segmentation.train()
    qtbot.waitUntil(lambda: len(window.segmentation.training_panel._steps) > 0, timeout=60000)
    thread = window.segmentation.training
    window.close()
    assert thread.isFinished()


def test_accept_prediction_makes_exact_marks(window, qtbot):
    window.segmentation.train()
    qtbot.waitUntil(lambda: window.current_image_id in window.segmentation.previews, timeout=60000)
    window.segmentation.stop_training(wait=True)
    store = window.project.store
    image_id = window.current_image_id
    before = len(store.strokes(image_id))
    preview = window.segmentation.previews[image_id]
    mine = store.seed_map(image_id)
    assert (mine != 255).any()
    window.segmentation.accept_prediction(0.0)
    after = store.seed_map(image_id)
    marked = mine != 255
    np.testing.assert_array_equal(after[marked], mine[marked])  # the user's strokes win where they disagree
    near = cv2.dilate(cv2.resize(marked.astype(np.uint8), preview.labels.shape[::-1], interpolation=cv2.INTER_AREA),
                      np.ones((5, 5), np.uint8)) > 0
    seeds = store.seed_map(image_id, preview.labels.shape)
    np.testing.assert_array_equal(seeds[~near], preview.refined[~near])  # elsewhere every pixel carries its class
    window.undo_stack.undo()
    assert len(store.strokes(window.current_image_id)) == before


def test_training_error_is_shown_not_fatal(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    store = window.project.store
    for s in store.strokes(window.current_image_id):
        store.delete_stroke(s.id)
    window.segmentation.train()
    qtbot.waitUntil(lambda: window.segmentation.training is None, timeout=60000)
    assert shown and "no image has marks" in shown[0]


def test_settings_form_sets_the_pce_weighting(window):
    s = window.segmentation.training_panel.settings
    assert s.config().balanced_pce and s.pce.currentText() == "balanced"
    s.pce.setCurrentText("mean")
    assert not s.config().balanced_pce


def test_settings_form_starts_at_the_defaults_and_steps_the_weight_by_its_own_digit(window):
    from engine.training.config import DEFAULT_REG_WEIGHT, TrainConfig

    s = window.segmentation.training_panel.settings
    d, c = TrainConfig(), s.config()
    assert (c.regularizer, c.reg_weight, c.sigma_xy, c.sigma_rgb) == (d.regularizer, d.effective_reg_weight,
                                                                      d.sigma_xy, d.sigma_rgb)
    s.reg_weight.stepBy(1)  # 0.0005 → 0.0006: a fixed step of 0.01 would have made it twenty times heavier
    assert s.config().reg_weight == pytest.approx(DEFAULT_REG_WEIGHT["dense"] + 0.0001)
    s.regularizer.setCurrentText("grid")
    s.reg_weight.stepBy(1)  # 20 → 21
    assert s.config().reg_weight == pytest.approx(DEFAULT_REG_WEIGHT["grid"] + 1)


def test_stop_then_continue_or_restart(window, qtbot):
    """After Stop the network is saved: Continue trains on from it, Restart starts afresh; both say so."""
    panel = window.segmentation.training_panel
    assert panel.train_button.text() == "Train" and not panel.restart_button.isVisibleTo(panel)
    window.segmentation.train()
    qtbot.waitUntil(lambda: len(panel._steps) > 0, timeout=60000)
    window.segmentation.stop_training(wait=True)
    assert panel.train_button.text() == "Continue" and panel.restart_button.isVisibleTo(panel)
    window.segmentation.train()
    assert window.segmentation.training.worker.config.init_from == str(window.segmentation.model_dir)
    qtbot.waitUntil(lambda: len(panel._steps) > 0, timeout=60000)
    window.segmentation.stop_training(wait=True)
    panel.restart_button.click()
    assert window.segmentation.training.worker.config.init_from is None
    window.segmentation.stop_training(wait=True)


def test_marks_of_one_class_are_questioned_before_training(window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    store = window.project.store
    right = store.classes()[1]
    for s in store.strokes(window.current_image_id):
        if s.class_id == right.id:
            store.delete_stroke(s.id)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    window.segmentation.train()
    assert window.segmentation.training is None and "one class, left" in asked[0]


def test_the_loss_axis_labels_decades_only(window):
    axis = window.segmentation.training_panel.loss_plot.getAxis("left")
    assert axis.logTickStrings([-1.0, -0.69897, 0.0, 0.30103], 1, 1) == ["0.1", "", "1", ""]


@pytest.mark.parametrize("title", ["dataset folder", "COCO JSON"])
def test_export_masks_runs_as_a_worker_job_and_says_what_it_wrote(window, qtbot, tmp_path, monkeypatch, title):
    """Export Masks after a Stop, in the format picked: the refined mask of the marked image and masks.json,
    then a summary."""
    import json

    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    seg = window.segmentation
    seg.train()
    qtbot.waitUntil(lambda: len(seg.training_panel._steps) > 0, timeout=60000)
    seg.stop_training(wait=True)
    out = tmp_path / "exported"
    told = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: (title, True))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: told.append("warning: " + a[2]))
    seg.export_masks()
    qtbot.waitUntil(lambda: bool(told), timeout=60000)
    assert told[0].startswith(f"Exported {title}: 1 masks (1 refined with their images' marks")
    if title == "COCO JSON":
        from pycocotools.coco import COCO

        assert len(COCO(str(out / "annotations.json")).getAnnIds()) >= 2  # left and right regions
    else:
        assert (out / "masks" / "two.png").is_file()
    record = json.loads((out / "masks.json").read_text())
    assert "two" in json.dumps(record) and "refined" in json.dumps(record)


def test_export_trained_model_as_onnx(window, qtbot, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    from engine.models.onnx_model import OnnxSegmenter

    seg = window.segmentation
    seg.train()
    qtbot.waitUntil(lambda: len(seg.training_panel._steps) > 0, timeout=60000)
    seg.stop_training(wait=True)
    told = []
    monkeypatch.setattr(QInputDialog, "getItem", lambda _parent, _title, _label, items, *a, **k: (items[1], True))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "net.onnx"), ""))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    seg.export_model()
    assert told and "onnxruntime agrees with PyTorch" in told[0]
    assert OnnxSegmenter(tmp_path / "net.onnx").config.classes == ["left", "right"]


def test_export_the_ground_truth_without_a_trained_network(window, qtbot, tmp_path, monkeypatch):
    """A project with ground truth exports it, as the user picks, with no network trained."""
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    from engine.io.palette import load_index_png

    store = window.project.store
    image_id = window.current_image_id
    truth = np.zeros((40, 56), np.uint8)
    truth[:, 28:] = 1
    store.set_ground_truth(image_id, truth)
    out, told = tmp_path / "truth", []
    answers = {"Masks from:": "the ground truth", "Format (boxes and tags go too, where it holds them):": "Pascal VOC"}
    monkeypatch.setattr(QInputDialog, "getItem", lambda _p, _t, label, *a, **k: (answers[label], True))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: told.append("warning: " + a[2]))
    assert not window.segmentation.has_saved_model()
    window.segmentation.export_masks()
    qtbot.waitUntil(lambda: bool(told), timeout=30000)
    assert told[0].startswith("Exported Pascal VOC: 1 ground-truth masks")
    np.testing.assert_array_equal(load_index_png(out / "SegmentationClass" / "two.png"), truth)


@pytest.mark.timeout(240)
def test_pretraining_from_the_window_feeds_the_next_fresh_run(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    said = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: said.append(a[2]))
    seg = window.segmentation
    seg.pretrain()
    dialog = seg.pretrain_dialog
    dialog.task.setCurrentIndex(dialog.task.findData("denoising"))
    dialog.steps.setValue(4)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=120000)
    assert len(dialog.losses) == 4 and dialog.saved.endswith("pretrained")
    assert all(view.array is not None and view.array.shape[2] == 3 for view in dialog.views)
    assert "next fresh training" in dialog.status.text()
    dialog.close()
    seg.train()
    assert seg.training.worker.config.init_from == dialog.saved
    qtbot.waitUntil(lambda: len(seg.training_panel._steps) > 0, timeout=60000)
    seg.pretrain()  # not beside training
    assert said and "Stop training first" in said[-1]
    seg.stop_training(wait=True)
