"""A corpus of bad inputs through the command line, as a demanding user meets them: each case ends with a
message that names the file and the problem (never a traceback), the rest of the work done, and nothing the
user made lost or overwritten."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from engine.cli.main import main
from engine.models.registry import ModelConfig, build_model, save_model
from engine.project import PROJECT_FILE, Project
from tests.test_dataset_io import make_dataset


def run(capsys, *argv) -> tuple[int, str]:
    """Exit status and what ``wsv ARGV`` printed (stdout, then stderr); a traceback fails the test by
    propagating."""
    code = main([str(a) for a in argv])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


@pytest.fixture
def dataset(tmp_path):
    make_dataset(tmp_path / "ds")
    return tmp_path / "ds"


@pytest.fixture
def model_run(tmp_path):
    """A saved (untrained) model: enough for predict's error paths."""
    model, _ = build_model("unet", 3, pretrained=False)
    save_model(model, ModelConfig("unet", ["background", "cat", "dog"], working_size=64), tmp_path / "run")
    return tmp_path / "run"


def keepsake(folder):
    """A folder of the user's own, to check it is left alone."""
    (folder / "project").mkdir(parents=True)
    (folder / "project" / "notes.txt").write_text("mine")
    return folder / "project" / "notes.txt"


# ---- output folders that are not ours -----------------------------------------------------------------------
@pytest.mark.parametrize("command", [["train"], ["detect", "train"]])
def test_training_refuses_an_unrelated_out_folder(capsys, tmp_path, dataset, command):
    mine = keepsake(tmp_path / "out")
    code, err = run(capsys, *command, dataset, "--out", tmp_path / "out", "--steps", "1")
    assert code == 1 and "already holds other files" in err and str(tmp_path / "out") in err
    assert mine.read_text() == "mine"


def test_a_run_folder_is_reused_but_a_foreign_project_in_it_is_not_deleted(capsys, tmp_path, dataset):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".wsv-output.json").write_text('{"kind": "train"}')
    mine = keepsake(out)
    code, err = run(capsys, "train", dataset, "--out", out, "--steps", "1")
    assert code == 1 and "not a project this command wrote" in err and mine.read_text() == "mine"


@pytest.mark.parametrize("where", ["file", "foreign", "other-kind"])
def test_predict_and_export_refuse_outputs_that_are_not_theirs(capsys, tmp_path, dataset, model_run, where):
    out = tmp_path / "out"
    if where == "file":
        out.write_text("x")
    elif where == "foreign":
        out.mkdir()
        (out / "a.png").write_bytes(b"mine")
    else:
        out.mkdir()
        (out / ".wsv-output.json").write_text('{"kind": "train"}')
    code, err = run(capsys, "predict", model_run, dataset / "images", "--out", out)
    assert code == 1 and str(out) in err
    Project.create(tmp_path / "proj").close()
    code, err = run(capsys, "export", tmp_path / "proj", out)
    assert code == 1 and str(out) in err
    if where == "foreign":
        assert (out / "a.png").read_bytes() == b"mine" and sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_predict_twice_into_its_own_folder(capsys, tmp_path, dataset, model_run):
    for _ in range(2):
        code, err = run(capsys, "predict", model_run, dataset / "images", "--out", tmp_path / "masks")
        assert code == 0, err
    assert len(list((tmp_path / "masks").glob("*.png"))) == 4


# ---- dataset files ------------------------------------------------------------------------------------------
BAD_BOXES = {
    "infinity": ('[{"class": 1, "box": [0, 0, Infinity, 5]}]', "Infinity"),
    "nan": ('[{"class": 1, "box": [0, 0, NaN, 5]}]', "NaN"),
    "fractional class": ('[{"class": 1.7, "box": [0, 0, 5, 5]}]', "1.7"),
    "bool class": ('[{"class": true, "box": [0, 0, 5, 5]}]', "True"),
    "string coordinate": ('[{"class": 1, "box": [0, 0, "5", 5]}]', "four finite numbers"),
    "outside the image": ('[{"class": 1, "box": [40, 20, 90, 60]}]', "outside the 48x32 image"),
    "reversed": ('[{"class": 1, "box": [9, 0, 5, 5]}]', "empty or reversed"),
    "not a list": ('{"class": 1}', "expected a list"),
    "unknown class": ('[{"class": 7, "box": [0, 0, 5, 5]}]', "out of range"),
}
BAD_TAGS = {
    "string": ('{"present": "10"}', "a list of class indices"),
    "bool": ('{"present": [true]}', "True"),
    "fraction": ('{"present": [0.5]}', "0.5"),
    "list": ("[1, 2]", "expected"),
}


@pytest.mark.parametrize("kind,name", [("boxes", n) for n in BAD_BOXES] + [("tags", n) for n in BAD_TAGS])
def test_malformed_marks_are_named_and_the_image_left_out_whole(capsys, tmp_path, dataset, kind, name):
    text, words = (BAD_BOXES if kind == "boxes" else BAD_TAGS)[name]
    (dataset / kind / "im1.json").write_text(text)
    code, err = run(capsys, "import", dataset, "--project", tmp_path / "proj")
    assert code == 0 and "im1.json" in err and words in err
    with Project.open(tmp_path / "proj") as project:
        assert sorted(r.path.rsplit("/", 1)[-1] for r in project.store.images()) == ["im0.png", "im2.png", "im3.png"]
    (dataset / kind / "im1.json").unlink()  # fixed: a rerun brings the image in with all its marks
    code, err = run(capsys, "import", dataset, "--project", tmp_path / "proj")
    assert code == 0 and "skipped" not in err
    with Project.open(tmp_path / "proj") as project:
        assert len(project.store.images()) == 4


@pytest.mark.parametrize("damage", ["truncated png", "truncated jpeg", "empty", "text", "dangling link"])
def test_broken_images_are_reported_at_import(capsys, tmp_path, dataset, damage):
    path = dataset / "images" / "im1.png"
    if damage == "truncated png":
        path.write_bytes(path.read_bytes()[:-200])
    elif damage == "truncated jpeg":
        path.unlink()
        path = path.with_suffix(".jpg")
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 48, 3), np.uint8)).save(path, quality=95)
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_text("not an image")
    else:
        path.unlink()
        path.symlink_to(tmp_path / "gone.png")
    code, err = run(capsys, "import", dataset, "--project", tmp_path / "proj")
    assert code == 0 and path.name in err and "skipped" in err
    with Project.open(tmp_path / "proj") as project:
        assert len(project.store.images()) == 3


def test_a_linked_non_image_is_not_copied_into_the_project(capsys, tmp_path, dataset):
    (tmp_path / "secret.txt").write_text("private")
    path = dataset / "images" / "im1.png"
    path.unlink()
    path.symlink_to(tmp_path / "secret.txt")
    code, err = run(capsys, "import", dataset, "--project", tmp_path / "proj", "--copy-images")
    assert code == 0 and "im1.png" in err
    assert sorted(p.name for p in (tmp_path / "proj" / "images").iterdir()) == ["im0.png", "im2.png", "im3.png"]


def test_classes_file_that_is_not_utf8(capsys, tmp_path, dataset):
    (dataset / "classes.txt").write_bytes("background\nchat\xe9\n".encode("latin-1"))
    code, err = run(capsys, "import", dataset, "--project", tmp_path / "proj")
    assert code == 1 and "classes.txt" in err and "UTF-8" in err


def test_images_folder_that_cannot_be_listed(capsys, tmp_path, dataset, monkeypatch):
    from pathlib import Path

    real = Path.iterdir

    def refuse(self):
        if self.name == "images":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)
    monkeypatch.setattr(Path, "iterdir", refuse)
    code, err = run(capsys, "import", dataset, "--project", tmp_path / "proj")
    assert code == 1 and "cannot list" in err and "Permission denied" in err


# ---- project files ------------------------------------------------------------------------------------------
def newer_project(root):
    Project.create(root).close()
    with sqlite3.connect(root / PROJECT_FILE) as conn:
        conn.execute("PRAGMA user_version = 99")
    return root


@pytest.mark.parametrize("command", ["info", "export", "import", "train", "predict"])
def test_a_project_from_a_newer_version(capsys, tmp_path, dataset, model_run, command):
    proj = newer_project(tmp_path / "proj")
    argv = {"info": ["info", proj], "export": ["export", proj, tmp_path / "out"],
            "import": ["import", dataset, "--project", proj], "train": ["train", proj, "--out", tmp_path / "run2"],
            "predict": ["predict", model_run, proj, "--out", tmp_path / "masks"]}[command]
    code, err = run(capsys, *argv)
    assert code == 1 and "newer WSV Studio" in err


@pytest.mark.parametrize("damage", ["empty", "garbage"])
def test_a_damaged_project_file(capsys, tmp_path, damage):
    root = tmp_path / "proj"
    root.mkdir()
    (root / PROJECT_FILE).write_bytes(b"" if damage == "empty" else b"not sqlite at all" * 100)
    before = (root / PROJECT_FILE).read_bytes()
    for argv in (["info", root], ["train", root, "--out", tmp_path / "run"]):
        code, err = run(capsys, *argv)
        assert code == 1 and PROJECT_FILE in err
    assert (root / PROJECT_FILE).read_bytes() == before  # never replaced by a new, empty project


def test_export_copies_only_the_images_the_project_recorded(capsys, tmp_path, dataset):
    code, _ = run(capsys, "import", dataset, "--project", tmp_path / "proj")
    assert code == 0
    (tmp_path / "secret.png").write_text("private")
    with sqlite3.connect(tmp_path / "proj" / PROJECT_FILE) as conn:
        conn.execute("UPDATE images SET path = '../secret.png' WHERE id = 1")
        conn.execute("UPDATE images SET path = '../../../../etc/passwd' WHERE id = 2")
    code, err = run(capsys, "export", tmp_path / "proj", tmp_path / "out")
    assert code == 0 and "secret.png" in err and "passwd" in err
    assert len(list((tmp_path / "out" / "images").iterdir())) == 2
    assert all(b"private" not in p.read_bytes() for p in (tmp_path / "out" / "images").iterdir())


def test_a_file_name_with_a_line_break_keeps_the_split_files_whole(capsys, tmp_path, dataset):
    code, _ = run(capsys, "import", dataset, "--project", tmp_path / "proj")
    (dataset / "images" / "im0.png").rename(dataset / "images" / "a\nb.png")
    with sqlite3.connect(tmp_path / "proj" / PROJECT_FILE) as conn:
        conn.execute("UPDATE images SET path = ? WHERE id = 1", ("../ds/images/a\nb.png",))
    code, err = run(capsys, "export", tmp_path / "proj", tmp_path / "out")
    assert code == 0, err
    train = (tmp_path / "out" / "train.txt").read_text().splitlines()
    assert train[0] == "a_b" and (tmp_path / "out" / "images" / "a_b.png").is_file()


# ---- command-line values ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "0"])
@pytest.mark.parametrize("command", [["train"], ["detect", "train"], ["generate", "train"]])
def test_time_limits_must_be_positive(capsys, tmp_path, dataset, command, value):
    source = ["vae", "--builtin", "digits"] if command[0] == "generate" else [dataset]
    code, err = run(capsys, *command, *source, "--out", tmp_path / "run", f"--max-minutes={value}")
    assert code == 1 and "max_minutes must be a positive number" in err
    assert not (tmp_path / "run").exists()


def test_a_truncated_model_file(capsys, tmp_path, dataset, model_run):
    weights = model_run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    code, err = run(capsys, "predict", model_run, dataset / "images", "--out", tmp_path / "masks")
    assert code == 1 and "model.safetensors" in err and "damaged or incomplete" in err


def test_two_images_with_one_name_do_not_share_a_mask(capsys, tmp_path, dataset, model_run):
    Image.open(dataset / "images" / "im0.png").convert("RGB").save(dataset / "images" / "im0.jpg")
    code, err = run(capsys, "predict", model_run, dataset / "images", "--out", tmp_path / "masks")
    assert code == 0 and "im0.png" in err and "rename one of them" in err
    record = json.loads((tmp_path / "masks" / "masks.json").read_text())
    assert sorted(record["masks"]) == ["im0", "im1", "im2", "im3"]


def test_a_folder_opened_in_the_gui_names_the_files_it_skipped(tmp_path):
    from wsv_gui.app import open_project

    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"junk")
    (tmp_path / "c.png").symlink_to(tmp_path / "gone.png")
    project, skipped = open_project(tmp_path)
    assert len(project.store.images()) == 1
    assert sorted(s.split(":")[0] for s in skipped) == [f"cannot read {tmp_path / 'b.png'}",
                                                         f"cannot read {tmp_path / 'c.png'}"]
    project.close()


@pytest.mark.parametrize("argv,words", [
    (["train", "{ds}", "--out", "{tmp}/r", "--device", "banana"], "unknown device 'banana'"),
    (["train", "{ds}", "--out", "{tmp}/r", "--device", "cuda:7"], "CUDA"),
    (["bench", "crf", "--sizes", "0"], "positive integers"),
    (["eval", "{tmp}/nothing", "{ds}"], "is not a folder of predicted masks"),
    (["predict", "{ds}", "{ds}/images", "--out", "{tmp}/m"], "holds no saved model"),
    (["import", "{ds}", "--project", "{ds}/classes.txt"], "classes.txt"),
])
def test_command_line_misuse(capsys, tmp_path, dataset, argv, words):
    code, err = run(capsys, *[a.format(ds=dataset, tmp=tmp_path) for a in argv])
    assert code == 1 and words in err


def test_the_gui_exports_only_into_folders_of_its_own(tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication, QMessageBox

    from wsv_gui.main_window import MainWindow

    QApplication.instance() or QApplication([])
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.json").write_text("my notes")
    window = MainWindow(Project.create(tmp_path / "proj"))
    try:
        assert not window.claim(tmp_path / "mine", "export")
        assert "already holds other files" in shown[0] and (tmp_path / "mine" / "model.json").read_text() == "my notes"
        assert window.claim(tmp_path / "new", "export") and window.claim(tmp_path / "new", "export")
        assert not window.claim(tmp_path / "new", "model")
    finally:
        window.close()
