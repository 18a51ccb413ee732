"""Suggestions in the window: training scores every image, the list shows and sorts by the scores, S goes to the
image that needs marks most, and the shown image's regions worth a stroke are outlined."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine.annotations.types import Stroke
from engine.project import Project


@pytest.fixture
def window(qtbot, tmp_path, user_data):
    from wsv_gui.main_window import MainWindow

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        img = np.zeros((40, 56, 3), np.uint8)
        img[:, :28] = (30, 60, 200)
        img[:, 28:] = (230, 210, 40)
        img[10 + 5 * i:30, 10:46] = rng.integers(0, 255, 3)  # a patch of a colour no stroke touched
        Image.fromarray(img).save(folder / f"im{i}.png")
    project = Project.create(folder, ["left", "right"])
    project.add_folder(folder)
    image_id = project.store.images()[0].id
    left, right = project.store.classes()
    project.store.add_stroke(Stroke(image_id, left.id, 2.0, [[3, 3], [3, 37]]))
    project.store.add_stroke(Stroke(image_id, right.id, 2.0, [[52, 3], [52, 37]]))
    w = MainWindow(project)
    qtbot.addWidget(w)
    s = w.segmentation.training_panel.settings
    s.model.setCurrentText("unet")
    s.working_size.setValue(64)
    s.device.setCurrentText("cpu")
    w.show()
    return w


@pytest.mark.timeout(240)
def test_scores_sort_the_list_and_s_goes_where_marks_are_needed(window, qtbot):
    from engine.suggest import REGION_COUNT, regions_to_mark

    seg, images = window.segmentation, window.image_list
    seg.next_suggested()  # nothing scored yet: a hint, no jump
    assert "No suggestion yet" in window.statusBar().currentMessage()
    first = window.current_image_id
    seg.train()
    ids = [r.id for r in window.project.store.images()]
    qtbot.waitUntil(lambda: set(images.list_model.scores) == set(ids), timeout=120000)
    seg.pause()
    scores = dict(images.list_model.scores)
    assert all(0 <= v <= 1 for v in scores.values())
    assert all("needs marks" in images.text(row) for row in range(images.count()))

    window.image_order.setCurrentIndex(1)  # most in need first; the shown image stays current
    listed = [images.list_model.records[row].id for row in range(images.count())]
    assert listed == sorted(ids, key=lambda i: (-scores[i], i)) and window.current_image_id == first

    order = sorted(set(ids) - {first}, key=lambda i: (-scores[i], i))
    qtbot.keyClick(window, Qt.Key.Key_S)
    assert window.current_image_id == order[0] and images.current_id() == order[0]
    qtbot.keyClick(window, Qt.Key.Key_S)
    assert window.current_image_id == order[1]  # not back to one shown in this round
    qtbot.keyClick(window, Qt.Key.Key_S)
    assert window.current_image_id == max(set(ids) - {order[1]}, key=lambda i: (scores[i], -i))  # a new round
    shown = window.current_image_id

    seg.train()  # resume: the shown image's preview arrives, with its regions outlined
    qtbot.waitUntil(lambda: shown in seg.previews, timeout=60000)
    seg.pause()
    seg.refresh_prediction()
    preview = seg.previews[shown]
    probs = preview.probs.astype(np.float32)
    marked = window.project.store.seed_map(shown, probs.shape[1:]) != 255
    factor = window.project.store.image(shown).width / probs.shape[2]
    expected = [r.scaled(factor) for r in regions_to_mark(probs, REGION_COUNT, marked)]
    np.testing.assert_allclose(np.array(seg.canvas.suggestions.rects()).reshape(-1, 4), np.array(expected).reshape(-1, 4))
    assert len(seg.canvas.suggestions.rects()) <= REGION_COUNT
    seg.show_regions.trigger()  # View ▸ Outline Regions Worth a Stroke, off
    assert seg.canvas.suggestions.rects() == []
    seg.stop_training(wait=True)
