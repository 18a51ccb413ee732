"""Annotating with the mouse on a real window: strokes reach the store, undo/redo, class editing."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.annotations.store import AnnotationStore
from engine.project import Project


def open_window(qtbot, folder, classes=("background", "cat", "dog"), names=("a", "b")):
    """A shown main window on a new project of random 160x120 photos in ``folder``."""
    from wsv_gui.main_window import MainWindow

    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    project = Project.create(folder, list(classes))
    project.add_folder(folder)
    w = MainWindow(project)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def window(qtbot, tmp_path, user_data):
    return open_window(qtbot, tmp_path / "photos")


def drag(canvas, points, button=Qt.MouseButton.LeftButton):
    """Press, move through and release at scene points, as a user's mouse would."""
    vp = canvas.viewport()
    view_pts = [canvas.mapFromScene(QPointF(*p)) for p in points]

    def send(kind, pt, buttons):
        ev = QMouseEvent(kind, QPointF(pt), QPointF(vp.mapToGlobal(pt)), button, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, ev)

    send(QMouseEvent.Type.MouseButtonPress, view_pts[0], button)
    for pt in view_pts[1:]:
        send(QMouseEvent.Type.MouseMove, pt, button)
    send(QMouseEvent.Type.MouseButtonRelease, view_pts[-1], Qt.MouseButton.NoButton)


def test_drawn_stroke_is_in_the_store_and_on_screen(window):
    store = window.project.store
    image_id = window.current_image_id
    window.class_panel.select_index(2)  # "dog"
    window.segmentation.canvas.set_radius(4.0)
    drag(window.segmentation.canvas, [(20, 30), (60, 35), (100, 60)])
    strokes = store.strokes(image_id)
    assert len(strokes) == 1
    s = strokes[0]
    assert s.class_id == store.classes()[2].id and s.radius == 4.0
    assert np.abs(s.points[0] - (20, 30)).max() < 1.5 and np.abs(s.points[-1] - (100, 60)).max() < 1.5
    # The seed layer on screen equals the store's rasterization, pixel for pixel.
    np.testing.assert_array_equal(window.segmentation.canvas.seeds.labels, store.seed_map(image_id))
    assert "1 stroke" in window.image_list.text(0)
    # Another connection (e.g. after a crash and restart) sees it: it was committed.
    other = AnnotationStore(window.project.db_path)
    assert len(other.strokes(image_id)) == 1
    other.close()


def test_eraser_undo_redo(window):
    store = window.project.store
    image_id = window.current_image_id
    window.class_panel.select_index(1)
    window.segmentation.canvas.set_radius(5.0)
    drag(window.segmentation.canvas, [(30, 60), (130, 60)])
    window.segmentation.set_tool("eraser")
    drag(window.segmentation.canvas, [(80, 40), (80, 80)])
    labels = window.segmentation.canvas.seeds.labels
    assert labels[60, 50] == 1 and labels[60, 80] == 255
    assert [s.class_id is None for s in store.strokes(image_id)] == [False, True]
    window.undo_stack.undo()
    assert len(store.strokes(image_id)) == 1 and window.segmentation.canvas.seeds.labels[60, 80] == 1
    window.undo_stack.undo()
    assert store.strokes(image_id) == [] and (window.segmentation.canvas.seeds.labels == 255).all()
    window.undo_stack.redo()
    window.undo_stack.redo()
    assert len(store.strokes(image_id)) == 2
    np.testing.assert_array_equal(window.segmentation.canvas.seeds.labels, store.seed_map(image_id))


def test_keys_pick_class_and_brush_size(window, qtbot):
    window.segmentation.canvas.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_3)
    assert window.class_panel.current_class().name == "dog"
    r = window.segmentation.canvas.radius
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.segmentation.canvas.radius == pytest.approx(r * 1.25)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert window.segmentation.canvas.radius == pytest.approx(r)
    assert window.segmentation.toolbar.radius.value() == pytest.approx(r, abs=0.05)


def test_class_edits_are_undoable(window):
    store = window.project.store
    from wsv_gui.canvas.toolbar import MODES
    from wsv_gui.commands import AddClass, DeleteClass, EditClass, ReorderClasses

    window.push(AddClass(store, "bird", window.on_change))
    assert [c.name for c in store.classes()] == ["background", "cat", "dog", "bird"]
    assert window.class_panel.list.count() == 4 and window.segmentation.toolbar.mode.count() == len(MODES) + 4
    cat = store.classes()[1]
    window.class_panel.select_index(1)
    drag(window.segmentation.canvas, [(10, 10), (50, 10)])
    window.push(EditClass(store, cat, window.on_change, name="kitten", color=(1, 2, 3)))
    assert store.classes()[1].name == "kitten"
    window.push(ReorderClasses(store, [c.id for c in reversed(store.classes())], window.on_change))
    assert store.classes()[0].name == "bird"
    window.push(DeleteClass(store, cat.id, window.on_change))
    assert "kitten" not in [c.name for c in store.classes()]
    assert store.strokes(window.current_image_id) == []
    for _ in range(5):
        window.undo_stack.undo()
    assert [c.name for c in store.classes()] == ["background", "cat", "dog"]
    assert store.strokes(window.current_image_id) == []  # the stroke was drawn after the class was added


def test_pan_does_not_paint(window):
    window.segmentation.set_tool("pan")
    drag(window.segmentation.canvas, [(20, 20), (80, 80)])
    assert window.project.store.strokes(window.current_image_id) == []


def test_a_stroke_the_store_refuses_leaves_no_undo_entry(window, monkeypatch):
    """Disk full or the project locked by another program: the user is told, the canvas shows what is stored,
    and undo does not offer a change that never happened."""
    from PySide6.QtWidgets import QMessageBox

    from engine.annotations.store import StoreError
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    store = window.project.store
    drag(window.segmentation.canvas, [(10, 10), (50, 10)])
    assert window.undo_stack.count() == 1 and len(store.strokes(window.current_image_id)) == 1

    def full(*args, **kwargs):
        raise StoreError("cannot write to project.wsv: database or disk is full")
    monkeypatch.setattr(store, "add_strokes", full)
    drag(window.segmentation.canvas, [(10, 30), (50, 30)])
    assert window.undo_stack.count() == 1 and len(store.strokes(window.current_image_id)) == 1
    assert len(shown) == 1 and "disk is full" in shown[0]
    np.testing.assert_array_equal(window.segmentation.canvas.seeds.labels, store.seed_map(window.current_image_id))
    assert window.status_saved.text() == "NOT SAVED"

    monkeypatch.setattr(store, "delete_stroke", full)  # an undo that cannot be saved is dropped, the stroke kept
    window.undo_stack.undo()
    assert len(shown) == 2 and len(store.strokes(window.current_image_id)) == 1 and window.undo_stack.count() == 0


def test_redo_answers_every_usual_key(window, qtbot):
    """Ctrl+Shift+Z is often the platform's own Redo: bound twice, Qt would call it ambiguous and do nothing."""
    store = window.project.store
    for keys in ((Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier),
                 (Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)):
        drag(window.segmentation.canvas, [(10, 10), (50, 10)])
        n = len(store.strokes(window.current_image_id))
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert len(store.strokes(window.current_image_id)) == n - 1
        qtbot.keyClick(window, *keys)
        assert len(store.strokes(window.current_image_id)) == n


def test_a_class_name_that_exists_is_refused_without_a_broken_undo_entry(window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from wsv_gui.commands import AddClass
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    count = window.undo_stack.count()
    window.push(AddClass(window.project.store, "cat", window.on_change))
    assert len(shown) == 1 and "already exists" in shown[0] and window.undo_stack.count() == count
    window.undo_stack.undo()  # nothing of it left to undo
    assert [c.name for c in window.project.store.classes()] == ["background", "cat", "dog"]


def test_a_stroke_outside_the_image_is_not_saved(window):
    window.segmentation.canvas.fit()
    drag(window.segmentation.canvas, [(-60, -40), (-20, -40)])
    drag(window.segmentation.canvas, [(200, 10), (260, 10)])
    assert window.project.store.strokes(window.current_image_id) == []
    assert "outside the image" in window.statusBar().currentMessage()
    drag(window.segmentation.canvas, [(-20, 10), (5, 10)])  # one that reaches into the image is kept
    assert len(window.project.store.strokes(window.current_image_id)) == 1


def test_the_title_names_the_project_once(window):
    assert window.windowTitle() == "photos" and "WSV Studio" not in window.windowTitle()


def test_file_dialogs_open_beside_the_project(window):
    assert window.dialog_dir() == str(window.project.root.parent)
    assert window.generative._dialog_dir("samples.png") == str(window.project.root.parent / "samples.png")


def test_the_image_stays_fitted_as_the_window_resizes(window, qtbot):
    """The first image is fitted before the window has its size; it must end up fitted like any later one."""
    canvas = window.segmentation.canvas
    canvas.fit()
    before = canvas.zoom()
    window.resize(1800, 1150)
    qtbot.waitUntil(lambda: canvas.zoom() > before * 1.1, timeout=5000)
    canvas.actual_size()  # once the user picks a zoom, resizing keeps it
    window.resize(1400, 900)
    qtbot.wait(100)
    assert canvas.zoom() == 1.0


def test_an_image_too_large_for_the_window_is_named_not_decoded(window, monkeypatch):
    import wsv_gui.main_window as main_window

    monkeypatch.setattr(main_window, "CANVAS_MAX_PIXELS", 100 * 100)  # the test photos are 160 × 120
    image_id = window.project.store.images()[1].id
    window.show_image(image_id)
    assert window.current_image_id is None and "too large to show here" in window.status_image.text()
    assert "160×120" in window.status_image.text()
