"""The box tool and the tags panel on a real window: gestures reach the store, undo/redo, what the list shows."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from tests.test_gui_annotate import drag, open_window, window  # noqa: F401  (the window fixture)


def click(canvas, point):
    drag(canvas, [point])


@pytest.fixture
def boxing(window):  # noqa: F811
    window.class_panel.select_index(1)  # "cat"
    window.segmentation.set_tool("box")
    return window


def test_drag_draws_a_box_of_the_selected_class(boxing):
    w = boxing
    store, image_id = w.project.store, w.current_image_id
    drag(w.segmentation.canvas, [(20, 30), (50, 50), (90, 80)])
    (box,) = store.boxes(image_id)
    assert box.class_id == store.classes()[1].id
    assert box.xyxy == pytest.approx((20, 30, 90, 80), abs=1.5)
    assert list(w.segmentation.canvas.boxes.items) == [box.id]  # shown, from the store
    assert "1 box" in w.image_list.text(0)


def test_two_clicks_draw_a_box_and_boxes_stay_inside_the_image(boxing):
    w = boxing
    store, image_id = w.project.store, w.current_image_id
    click(w.segmentation.canvas, (100, 20))
    assert store.boxes(image_id) == [] and w.segmentation.canvas.boxes.pending is not None
    click(w.segmentation.canvas, (400, 100))  # beyond the 160-px-wide image: clamped to its edge
    (box,) = store.boxes(image_id)
    assert box.xyxy == pytest.approx((100, 20, 160, 100), abs=1.5)


def test_move_resize_delete_and_undo(boxing):
    w = boxing
    store, image_id = w.project.store, w.current_image_id
    drag(w.segmentation.canvas, [(20, 20), (60, 60)])
    (box,) = store.boxes(image_id)
    drag(w.segmentation.canvas, [(40, 40), (50, 45), (60, 50)])  # inside: move by (20, 10)
    assert store.boxes(image_id)[0].xyxy == pytest.approx((40, 30, 80, 70), abs=1.5)
    assert store.boxes(image_id)[0].id == box.id
    drag(w.segmentation.canvas, [(80, 70), (100, 90)])  # bottom-right corner: resize
    assert store.boxes(image_id)[0].xyxy == pytest.approx((40, 30, 100, 90), abs=1.5)
    w.undo_stack.undo()
    assert store.boxes(image_id)[0].xyxy == pytest.approx((40, 30, 80, 70), abs=1.5)
    w.segmentation.canvas.setFocus()
    w.segmentation.canvas.boxes.select(box.id)
    QApplication.sendEvent(w.segmentation.canvas, _key(Qt.Key.Key_Delete))
    assert store.boxes(image_id) == [] and not w.segmentation.canvas.boxes.items
    w.undo_stack.undo()
    assert [b.id for b in store.boxes(image_id)] == [box.id] and box.id in w.segmentation.canvas.boxes.items
    w.undo_stack.undo()
    w.undo_stack.undo()
    assert store.boxes(image_id) == []
    w.undo_stack.redo()
    assert [b.id for b in store.boxes(image_id)] == [box.id]


def test_background_boxes_are_refused_and_escape_cancels(window):  # noqa: F811
    w = window
    store, image_id = w.project.store, w.current_image_id
    w.class_panel.select_index(0)
    w.segmentation.set_tool("box")
    drag(w.segmentation.canvas, [(20, 20), (60, 60)])
    assert store.boxes(image_id) == [] and "object class" in w.statusBar().currentMessage()
    w.class_panel.select_index(2)
    click(w.segmentation.canvas, (10, 10))
    QApplication.sendEvent(w.segmentation.canvas, _key(Qt.Key.Key_Escape))
    click(w.segmentation.canvas, (50, 50))  # a fresh first click, not the second corner
    assert store.boxes(image_id) == []


def test_tags_panel(window):  # noqa: F811
    w = window
    store, image_id = w.project.store, w.current_image_id
    bg, cat, dog = (c.id for c in store.classes())
    panel = w.tags_panel
    assert store.tags(image_id) is None and "Untagged" in panel.state.text()
    panel.list.item(2).setCheckState(Qt.CheckState.Checked)  # dog; background comes with the first tag
    assert store.tags(image_id).class_ids == {bg, dog}
    assert "dog" in panel.state.text() and "tagged" in w.image_list.text(0)
    panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert store.tags(image_id).class_ids == {dog}
    w.undo_stack.undo()
    assert store.tags(image_id).class_ids == {bg, dog}
    assert panel.list.item(0).checkState() == Qt.CheckState.Checked
    panel.clear_button.click()
    assert store.tags(image_id) is None
    w.undo_stack.undo()
    assert store.tags(image_id).class_ids == {bg, dog}
    w.image_list.select_row(1)
    assert "Untagged" in panel.state.text()


def _key(key):
    return QKeyEvent(QKeyEvent.Type.KeyPress, key, Qt.KeyboardModifier.NoModifier)


def test_cam_view_shows_the_pooled_image_score(window):  # noqa: F811
    import numpy as np
    import torch

    from engine.losses.tags import pooled_scores
    from engine.training.records import Preview
    from wsv_gui.segmentation.gradient_view import PROBABILITY, top_fraction_score

    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=(30, 40)).transpose(2, 0, 1).astype(np.float32)
    expected = pooled_scores(torch.from_numpy(probs)[None])[0, 2].item()
    assert top_fraction_score(probs[2])[1] == pytest.approx(expected, rel=1e-5)
    view = window.segmentation.gradient_view
    view.show_preview(Preview(window.current_image_id, probs.argmax(0).astype(np.uint8), probs.astype(np.float16), None))
    view.mode_box.setCurrentText(PROBABILITY)
    view.class_box.setCurrentIndex(2)
    assert f"{top_fraction_score(probs[2].astype(np.float16).astype(np.float32))[1]:.2f}" in view.caption.text()
    assert view.map_item.image.shape == (30, 40)
    view.mode_box.setCurrentIndex(0)
    assert "No regularizer" in view.caption.text()


def test_without_a_background_class_every_class_is_boxed_and_tags_tick_only_what_is_ticked(qtbot, tmp_path,
                                                                                        user_data):
    """An MSRC-like project (no class named background): the first class is an ordinary class."""
    w = open_window(qtbot, tmp_path / "photos", classes=("building", "grass", "cow"), names=("a",))
    store, image_id = w.project.store, w.current_image_id
    building, grass, cow = (c.id for c in store.classes())
    w.class_panel.select_index(0)
    w.segmentation.set_tool("box")
    drag(w.segmentation.canvas, [(20, 20), (60, 60)])
    assert [b.class_id for b in store.boxes(image_id)] == [building]
    w.tags_panel.list.item(2).setCheckState(Qt.CheckState.Checked)
    assert store.tags(image_id).class_ids == {cow}
