"""The Generative tab on a real window: tiny VAE, GAN and DDPM runs on the built-in digits fill the curves and
the sample grids from the worker thread; the forward viewer, the reverse-process player, latent interpolation,
evaluation, saving, loading and exports work; stop and bad input end in a message, never a crash."""
import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from engine.generative.data import builtin_digits
from engine.generative.grids import to_uint8
from engine.generative.models import load_generative
from engine.generative.records import GenerativePreview, GenerativeRecord
from engine.generative.vae import reconstruct
from engine.project import Project


@pytest.fixture
def window(qtbot, user_data, one_thread):
    from wsv_gui.main_window import MainWindow
    from wsv_gui.resources import demo_project

    w = MainWindow(demo_project())
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    w.tabs.setCurrentWidget(w.generative)
    qtbot.waitExposed(w)
    return w


def tiny(tab, model: str, steps: int = 5) -> None:
    """Settings that train in seconds on a CPU: 16 px, 8 channels, batches of 8, T = 20."""
    s = tab.settings
    s.model.setCurrentIndex(s.model.findData(model))
    s.size.setCurrentIndex(s.size.findData(16))
    s.steps.setValue(steps)
    s.minutes.setValue(0)
    s.batch.setValue(8)
    s.base.setValue(8)
    s.latent.setValue(8)
    s.timesteps.setValue(20)


def train(tab, qtbot, timeout_ms: int = 60000) -> None:
    tab.train()
    qtbot.waitUntil(lambda: tab.training is None, timeout=timeout_ms)
    qtbot.waitUntil(lambda: tab.model_info is not None, timeout=10000)


def test_ddpm_trains_and_its_views_work(window, qtbot, tmp_path, monkeypatch):
    tab = window.generative
    tiny(tab, "ddpm", steps=6)
    assert tab.samples_view.samples.pixmap().isNull() and tab.live.samples.pixmap().isNull()
    train(tab, qtbot)
    assert "Model saved" in tab.status.text(), tab.status.text()
    assert tab.live.steps == [1, 2, 3, 4, 5, 6]
    xs, ys = tab.live.curves["loss"].getData()
    assert len(xs) == 6 and np.isfinite(ys).all()
    assert len(tab.live.curves["steps_per_s"].getData()[0]) == 6
    assert len(tab.live.history) >= 2 and not tab.live.samples.pixmap().isNull()
    assert not np.array_equal(tab.live.history[0][1], tab.live.history[-1][1])  # the samples changed as it learnt
    assert tab.model_info.kind == "ddpm" and tab.model_info.steps_done == 6
    qtbot.waitUntil(lambda: tab.samples_view.samples.array is not None, timeout=60000)  # drawn without a click
    assert "Press Run" in tab.player.label.text()

    # forward process: t = 0 is the clean image, t = T − 1 is almost pure noise
    fwd = tab.forward
    qtbot.waitUntil(lambda: fwd.images is not None, timeout=10000)
    assert fwd.t.maximum() == 20
    fwd.index.setValue(3)
    fwd.t.setValue(0)
    clean = to_uint8(torch.from_numpy(fwd.images[3:4]))[0]
    np.testing.assert_array_equal(fwd.shown, clean)
    fwd.t.setValue(19)
    noisy = fwd.shown[..., 0].astype(float).ravel()
    assert abs(np.corrcoef(noisy, clean[..., 0].astype(float).ravel())[0, 1]) < 0.3
    assert fwd.marker.value() == 19 and "t = 19/20" in fwd.t_label.text()

    # reverse process: DDIM over 5 steps gives x_T plus 5 frames, computed in the service thread, then replayed
    p = tab.player
    p.steps.setValue(5)
    p.count.setValue(4)
    p.run_button.click()
    qtbot.waitUntil(lambda: not p.running, timeout=30000)
    assert [f.t for f in p.frames][0] == 20 and p.frames[-1].t == 0 and len(p.frames) == 6
    p.play_button.setChecked(True)
    qtbot.waitUntil(lambda: not p.play_button.isChecked(), timeout=10000)
    assert p.slider.value() == p.slider.maximum() and "t = 0" in p.label.text()
    np.testing.assert_array_equal(p.x_view.array, p.frames[-1].x)

    # exports, evaluation, save and load
    gif, png, saved = tmp_path / "r.gif", tmp_path / "s.png", tmp_path / "saved"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(gif), ""))
    tab.export_gif()
    with Image.open(gif) as im:
        assert im.n_frames == 6
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(png), ""))
    tab.export_png()
    assert Image.open(png).size[0] == 2 * tab.last_grid.shape[1]
    view = tab.samples_view
    view.eval_count.setValue(8)
    view.ddim.setValue(5)
    view.eval_button.click()
    qtbot.waitUntil(lambda: "KID" in view.eval_label.text(), timeout=60000)
    text = view.eval_label.text()
    assert "EfficientNet-Lite0" in text and "8 samples vs 8 training images" in text and "Memorisation" in text
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(saved))
    tab.save_model()
    assert load_generative(saved).steps_done == 6
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    tab.load_model()
    assert "holds no generative model" in tab.status.text()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(saved))
    tab.load_model()
    qtbot.waitUntil(lambda: tab.model_dir == saved, timeout=10000)
    assert str(saved) in tab.model_label.text()


def test_vae_reconstructions_samples_and_interpolation(window, qtbot):
    tab = window.generative
    tiny(tab, "vae")
    train(tab, qtbot)
    assert set(tab.live.values) >= {"recon", "kl", "total"}
    assert all(len(tab.live.curves[k].getData()[0]) == 5 for k in ("recon", "kl", "total"))
    assert tab.live.reconstructions.array is not None and tab.live.recon_box.isVisible()

    view = tab.samples_view
    view.count.setValue(9)
    view.draw_button.click()
    qtbot.waitUntil(lambda: "9 samples" in view.samples_label.text(), timeout=10000)
    assert view.samples.array.shape == (3 * 18 + 2, 3 * 18 + 2, 3) and "9 samples" in view.samples_label.text()

    view.frames.setValue(6)
    view.a.setValue(3)
    view.b.setValue(7)
    qtbot.waitUntil(lambda: view.interpolation is not None and (view.interpolation.a, view.interpolation.b) == (3, 7),
                    timeout=10000)
    frames = view.interpolation.frames
    assert frames.shape == (6, 16, 16, 3)
    model = load_generative(tab.model_dir)
    images = builtin_digits(16, 1, seed=0).images
    ends = to_uint8(reconstruct(model.net, images[[3, 7]]))  # decodes of the posterior means
    assert np.abs(frames[0].astype(int) - ends[0]).max() <= 1 and np.abs(frames[-1].astype(int) - ends[1]).max() <= 1
    assert not np.array_equal(frames[0], frames[-1])
    assert view.strip.array.shape[1] == 8 * 18 + 2  # image A, six decodes, image B


def test_gan_curves_diversity_and_collapse_hint(window, qtbot):
    tab = window.generative
    tiny(tab, "gan")
    train(tab, qtbot)
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert len(tab.live.curves[name].getData()[0]) == 5
    assert tab.live.diversity and "Diversity" in tab.live.diversity_label.text()
    assert not tab.live.recon_box.isVisible() and not tab.samples_view.interpolate_button.isEnabled()
    grid = np.zeros((20, 20, 3), np.uint8)
    tab.live.add_record(GenerativeRecord(6, 6, {"d_loss": 0.1, "g_loss": 5.0, "d_real": 0.99, "d_fake": 0.01}, 2e-4,
                                         1.0, 1.0, "cpu", GenerativePreview(6, grid, None, 0.2)))
    assert "mode collapse" in tab.live.diversity_label.text()
    np.testing.assert_array_equal(tab.live.samples.array, grid)


def test_stop_mid_run_keeps_the_model(window, qtbot):
    tab = window.generative
    tiny(tab, "vae", steps=100_000)
    tab.train()
    assert not tab.settings.isEnabled() and tab.stop_button.isEnabled()
    qtbot.waitUntil(lambda: len(tab.live.steps) >= 3, timeout=30000)
    tab.stop_button.click()
    qtbot.waitUntil(lambda: tab.training is None, timeout=30000)
    assert "Model saved" in tab.status.text()
    qtbot.waitUntil(lambda: tab.model_info is not None, timeout=10000)
    assert 3 <= tab.model_info.steps_done < 100_000 and tab.settings.isEnabled()


def test_non_finite_loss_and_bad_data_give_messages(window, qtbot, monkeypatch, tmp_path):
    tab = window.generative
    tiny(tab, "ddpm")
    monkeypatch.setattr("engine.generative.trainer.ddpm_loss", lambda *a, **k: torch.tensor(float("nan")))
    tab.train()
    qtbot.waitUntil(lambda: tab.training is None, timeout=30000)
    assert "Training stopped" in tab.status.text() and "nan" in tab.status.text()
    assert tab.train_button.isEnabled()

    # the demo project's six images: the data loader's warning is shown before training
    s = tab.settings
    s.source.setCurrentIndex(s.source.findData("project"))
    qtbot.waitUntil(lambda: "fewer than 64" in s.data_label.text(), timeout=20000)
    assert "6 images" in s.data_label.text() and s.crops.isVisible()

    # a model folder whose files are damaged: a message from the service thread, which carries on
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "generative.json").write_text("{not json")
    (broken / "generative.safetensors").write_bytes(b"garbage")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(broken))
    tab.load_model()
    qtbot.waitUntil(lambda: "Loading the model failed" in tab.status.text(), timeout=10000)
    assert "damaged or incomplete" in tab.status.text() and tab.model_info is None

    # a project without images: a message, in the data label and when training
    empty = Project.create(tmp_path / "empty")
    window.set_project(empty)
    qtbot.waitUntil(lambda: "no readable images" in s.data_label.text(), timeout=20000)
    tab.train()
    qtbot.waitUntil(lambda: tab.training is None, timeout=30000)
    assert "no readable images" in tab.status.text()


def test_reverse_frames_are_thinned_evenly():
    from wsv_gui.generative.service import MAX_FRAMES, frame_indices

    assert frame_indices(5) == {0, 1, 2, 3, 4, 5}
    kept = frame_indices(1000)
    assert len(kept) == MAX_FRAMES and {0, 1000} <= kept
    gaps = np.diff(sorted(kept))
    assert gaps.min() >= 5 and gaps.max() <= 6


def test_trailing_mean_by_hand():
    from wsv_gui.generative.live_view import trailing_mean

    np.testing.assert_allclose(trailing_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])


def test_defaults_fit_the_device(window):
    """On a CPU the form starts at settings that show samples within minutes; on a GPU at the recipes'."""
    import torch

    from engine.generative.config import DEFAULT_LR, GenerativeConfig

    s = window.generative.settings
    s.model.setCurrentIndex(s.model.findData("ddpm"))
    if torch.cuda.is_available():
        assert s.size.currentData() == GenerativeConfig.image_size and s.lr.value() == DEFAULT_LR["ddpm"]
    else:
        assert s.size.currentData() == 16 and s.base.value() == 16 and s.lr.value() == 1e-3


def test_conditional_ddpm_draws_a_row_per_class_with_guidance(window, qtbot):
    tab = window.generative
    tiny(tab, "ddpm", steps=4)
    s = tab.settings
    assert not s.model_form.isRowVisible(s.with_classifier)
    s.by_class.setChecked(True)
    assert s.model_form.isRowVisible(s.with_classifier)
    s.with_classifier.setChecked(True)
    config = s.config(None)
    assert config.conditional and config.classifier
    train(tab, qtbot)
    assert tab.model_info.config["class_names"] == [str(d) for d in range(10)]
    view = tab.samples_view
    assert view.count_label.text() == "n per class" and not view.guidance.isHidden()
    assert not view.classifier_scale.isHidden() and view.guidance.value() == 3.0
    qtbot.waitUntil(lambda: view.samples.array is not None, timeout=60000)
    view.count.setValue(2)
    view.ddim.setValue(3)
    view.guidance_slider.setValue(8)  # the slider and the spin box are one setting
    assert view.guidance.value() == 4.0 and not view.guidance_slider.isHidden()
    view.guidance.setValue(2.3)
    assert view.guidance_slider.value() == 5 and view.guidance.value() == 2.3
    view.guidance.setValue(2.0)
    view.classifier_scale.setValue(1.0)
    view.draw_button.click()
    qtbot.waitUntil(lambda: "per class" in view.samples_label.text(), timeout=60000)
    assert view.samples.array.shape[0] == 10 * 18 + 2  # ten rows of 16 px images
    assert "guidance 2" in view.samples_label.text() and "classifier guidance 1" in view.samples_label.text()
    view.eval_count.setValue(20)
    view.eval_button.click()
    qtbot.waitUntil(lambda: "KID" in view.eval_label.text(), timeout=120000)
    assert "By class" in view.eval_label.text() and "chance 10%" in view.eval_label.text()
    assert not s.model_form.isRowVisible(s.class_source)  # the digits bring their labels
    s.source.setCurrentIndex(s.source.findData("project"))
    assert s.model_form.isRowVisible(s.class_source)
    s.class_source.setCurrentIndex(s.class_source.findData("tags"))
    assert s.data_key(window.project.root)["classes"] == "tags" and s.config(window.project.root).class_source == "tags"
    s.model.setCurrentIndex(s.model.findData("vae"))  # the DDPM's own options hide for other models
    assert not s.model_form.isRowVisible(s.by_class) and not s.config(window.project.root).conditional


def test_latent_ddpm_in_the_loaded_vae(window, qtbot):
    tab = window.generative
    s = tab.settings
    tiny(tab, "ddpm", steps=3)
    s.in_latent.setChecked(True)
    assert s.model_form.isRowVisible(s.vae_row)
    tab.train()  # no VAE yet: a message, no run
    assert tab.training is None and "needs a trained VAE" in tab.status.text()
    tiny(tab, "vae", steps=3)
    train(tab, qtbot)
    assert tab.model_info.kind == "vae"
    s.model.setCurrentIndex(s.model.findData("ddpm"))
    s.in_latent.setChecked(True)
    train(tab, qtbot)
    qtbot.waitUntil(lambda: tab.model_info.kind == "ddpm", timeout=10000)  # the VAE stays loaded until then
    kept = window.project.root / "models" / "generative-vae"
    info = tab.model_info
    assert info.kind == "ddpm" and info.config["latent_vae"] == str(kept) and (kept / "generative.safetensors").is_file()
    assert load_generative(kept).kind == "vae" and load_generative(info.folder).latent
    assert s.vae_path == str(kept) and s.in_latent.isChecked()  # the form shows what the model was trained with
    view = tab.samples_view
    qtbot.waitUntil(lambda: view.samples.array is not None, timeout=60000)
    # the restoration tools need pixels: they say so and stay off
    assert "latent space" in tab.restore.status.text() and not tab.restore.upscale_button.isEnabled()


def test_fill_a_painted_hole_and_add_detail(window, qtbot):
    from PySide6.QtCore import QPoint, Qt

    tab = window.generative
    tiny(tab, "ddpm", steps=3)
    train(tab, qtbot)
    view = tab.restore
    tab.views.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.image is not None and view.upscale_button.isEnabled(), timeout=20000)
    assert not view.fill_button.isEnabled()  # no hole yet
    canvas = view.canvas
    frame = canvas._frame()
    centre = frame.center()
    view.brush.setValue(3)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre)
    hole = canvas.hole.copy()
    assert 0 < hole.sum() < hole.size and hole[8, 8]  # a disc around the centre of the 16 px image
    qtbot.mousePress(canvas, Qt.MouseButton.RightButton, pos=centre)  # the right button rubs out
    qtbot.mouseRelease(canvas, Qt.MouseButton.RightButton, pos=centre)
    assert not canvas.hole.any() and not view.fill_button.isEnabled()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre)
    view.resample.setValue(2)
    view.fill_button.click()
    assert not view.fill_button.isEnabled()  # one run at a time
    qtbot.waitUntil(lambda: not view.running, timeout=60000)
    assert view.progress.value() == view.progress.maximum() == 20
    grid = view.result.array
    assert grid.shape == (16 + 4, 3 * 18 + 2, 3) and "RePaint" in view.result_label.text()
    original, filled = grid[2:18, 2:18], grid[2:18, 2 + 2 * 18:18 + 2 * 18]
    assert (filled[~hole] == original[~hole]).all()  # the kept pixels are the image's own
    assert tab.last_grid is grid

    view.upscale_button.click()
    qtbot.waitUntil(lambda: not view.running, timeout=60000)
    grid = view.result.array
    assert grid.shape == (16 + 4, 4 * 18 + 2, 3) and "ILVR" in view.result_label.text()

    # cancelling stops a run between steps and says so
    view.resample.setValue(50)
    view.fill_button.click()
    qtbot.waitUntil(lambda: 0 < view.progress.value() < 20, timeout=60000)  # it has started
    view.cancel_button.click()
    qtbot.waitUntil(lambda: not view.running, timeout=60000)
    assert "cancelled" in view.status.text() and view.result.array is grid
