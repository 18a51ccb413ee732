"""The first window: it opens the demo project, lists images with thumbnails and mark counts, and shows marks."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.annotations.types import Stroke
from engine.project import Project


@pytest.fixture
def window(qtbot, user_data):
    from wsv_gui.main_window import MainWindow
    from wsv_gui.resources import demo_project

    w = MainWindow(demo_project())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(w.image_list.loading_done, timeout=10000)
    return w


def test_demo_project_lists_images_and_marks(window):
    assert window.image_list.count() == 6
    first = window.image_list.text(0)
    assert first.startswith("garden01.jpg") and "strokes" in first
    assert "no marks" in window.image_list.text(5)
    assert window.current_image_id is not None
    assert [window.class_panel.list.item(i).text().split()[0] for i in range(3)] == ["background", "flower", "leaf"]


def test_selected_image_shows_its_seed_layer(window, qtbot):
    seeds_layer = window.segmentation.canvas.seeds
    store = window.project.store
    expected = store.seed_map(window.current_image_id)
    np.testing.assert_array_equal(seeds_layer.labels, expected)
    rgba = seeds_layer.rgba()
    # An opaque pixel in its class colour where a seed is, a transparent one where none is.
    ys, xs = np.nonzero(expected != 255)
    colour = store.classes()[expected[ys[0], xs[0]]].color
    assert tuple(rgba[ys[0], xs[0]]) == (*colour, 255)
    ys, xs = np.nonzero(expected == 255)
    assert rgba[ys[0], xs[0], 3] == 0


def test_selecting_another_image_and_counts_follow_the_store(window, qtbot):
    store = window.project.store
    last = store.images()[-1]
    window.image_list.select(last.id)
    assert window.current_image_id == last.id
    store.add_stroke(Stroke(last.id, store.classes()[1].id, 3.0, [[10, 10], [40, 30]]))
    window.image_list.update_counts(store.mark_counts())
    window.segmentation.refresh_marks()
    assert "1 stroke" in window.image_list.text(5)


def test_unreadable_image_is_reported_not_fatal(qtbot, tmp_path, user_data):
    from wsv_gui.main_window import MainWindow

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "a.png")
    project = Project.create(folder)
    project.add_folder(folder)
    (folder / "a.png").write_bytes(b"garbage")  # broken after it was added
    w = MainWindow(project)
    qtbot.addWidget(w)
    assert w.current_image_id is None
    assert "a.png" in w.status_image.text()


def test_moved_images_are_located_and_their_marks_shown(qtbot, tmp_path, user_data):
    import shutil

    from wsv_gui.main_window import MainWindow

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, value in (("a.png", 50), ("b.png", 150)):
        Image.fromarray(np.full((20, 30, 3), value, np.uint8)).save(folder / name)
    project = Project.create(tmp_path / "proj")
    project.add_folder(folder)
    first = project.store.images()[0]
    project.store.add_stroke(Stroke(first.id, project.store.classes()[1].id, 2.0, [[3, 3], [10, 10]]))
    shutil.move(folder, tmp_path / "moved")
    w = MainWindow(project)
    qtbot.addWidget(w)
    assert w.current_image_id is None and "2 of 2 images are not where" in w.status_image.text()
    w.locate_missing_images(tmp_path / "moved")
    assert "Found 2 of 2 missing images" in w.statusBar().currentMessage()
    assert w.current_image_id == first.id and "moved/a.png" in w.status_image.text()
    np.testing.assert_array_equal(w.segmentation.canvas.seeds.labels, project.store.seed_map(first.id))
    assert (w.segmentation.canvas.seeds.labels == 1).any()  # the stroke drawn before the move is still there
    w.locate_missing_images()  # nothing missing now: says so without asking for a folder
    assert "Every image is where" in w.statusBar().currentMessage()


def test_screenshot_command(tmp_path, user_data):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(user_data))
    code = "import sys; from wsv_gui.app import main; sys.exit(main())"
    res = subprocess.run([sys.executable, "-c", code, "--screenshot", str(out), "--size", "1440x900"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    img = np.array(Image.open(out).convert("RGB"))
    assert img.shape == (900, 1440, 3)
    assert img.std() > 20  # a drawn window, not a blank one


def test_bad_project_argument_fails_cleanly(tmp_path, user_data):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(user_data))
    code = "import sys; from wsv_gui.app import main; sys.exit(main())"
    res = subprocess.run([sys.executable, "-c", code, "--project", str(tmp_path / "missing"), "--screenshot",
                          str(tmp_path / "x.png")], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "not a folder" in res.stderr


def test_import_annotations_opens_the_imported_project(qtbot, tmp_path, user_data, monkeypatch):
    """File ▸ Import Annotations…: a COCO file becomes a project the window opens, with its masks and classes."""
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    from engine.datasets.importer import import_dataset
    from engine.formats import export
    from tests.test_dataset_io import make_dataset
    from wsv_gui.main_window import MainWindow

    make_dataset(tmp_path / "ds")
    source, _ = import_dataset(tmp_path / "ds", tmp_path / "source")
    export("coco", source, tmp_path / "coco")
    source.close()
    window = MainWindow(Project.create(tmp_path / "empty"))
    qtbot.addWidget(window)
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("COCO JSON", True))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(tmp_path / "coco" / "annotations.json"), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "imported"))
    window.import_annotations()
    assert window.project.root == tmp_path / "imported"
    assert [c.name for c in window.project.store.classes()] == ["background", "cat", "dog"]
    assert len(window.project.store.ground_truth_ids()) == 4 and window.image_list.count() == 4
    window.close()


def test_a_large_project_decodes_only_the_rows_on_screen(qtbot, user_data, tmp_path):
    """3000 images listed: the list asks for the thumbnails of the rows it draws, not for every image."""
    from wsv_gui.main_window import MainWindow

    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(tmp_path / "one.png")
    project = Project.create(tmp_path / "big", ["background", "object"])
    with project.store.transaction():
        for i in range(3000):  # rows pointing at files that are not there: the list must not look at them all
            project.store.add_image(f"images/im{i:05d}.png", 40, 30, f"{i:064x}")
    project.store.add_image(str(tmp_path / "one.png"), 40, 30, "f" * 64)
    w = MainWindow(project)
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    qtbot.waitUntil(lambda: w.image_list.list_model.asked and w.image_list.loading_done(), timeout=10000)
    model = w.image_list.list_model
    assert w.image_list.count() == 3001
    assert 0 < len(model.asked) < 100
    rows = sorted(model.rows[i] for i in model.asked)
    assert rows[:-1] == list(range(len(rows) - 1)) and rows[-1] in (len(rows) - 1, 3000)  # the rows on screen
    # (Qt may also measure the last row)
    assert "not found" in model.data(model.index(0), 3).lower() or model.problems  # a missing file says so
    w.image_list.scrollToBottom()
    w.image_list.select_row(3000)
    qtbot.waitUntil(lambda: model.records[3000].id in model.icons, timeout=10000)
    assert len(model.asked) < 200
