"""kill -9 in the middle of an import or a model save: what is on disk afterwards is whole (each image complete
with all its marks, or absent; the previous model or the new one, never a mix), and a rerun finishes the job."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from engine.annotations.store import AnnotationStore, StoreError
from engine.io.images import load_image
from engine.models.registry import load_model
from engine.project import PROJECT_FILE, Project

IMAGES = 60


def make_dataset(root):
    """IMAGES images, each with a mask, scribbles, a box and tags, so an incomplete import shows."""
    rng = np.random.default_rng(0)
    for sub in ("images", "masks", "scribbles", "boxes", "tags"):
        (root / sub).mkdir(parents=True)
    (root / "classes.txt").write_text("background\nobject\n")
    for i in range(IMAGES):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(root / "images" / f"im{i}.png")
        mask = np.zeros((64, 96), np.uint8)
        mask[10:40, 20:60] = 1
        Image.fromarray(mask).save(root / "masks" / f"im{i}.png")
        seeds = np.full((64, 96), 255, np.uint8)
        seeds[25, 25:55] = 1
        seeds[55, 5:90] = 0
        Image.fromarray(seeds).save(root / "scribbles" / f"im{i}.png")
        (root / "boxes" / f"im{i}.json").write_text('[{"class": 1, "box": [20, 10, 60, 40]}]')
        (root / "tags" / f"im{i}.json").write_text('{"present": [0, 1]}')


def image_count(db) -> int:
    if not db.is_file():
        return 0
    try:
        with AnnotationStore(db) as store:
            return len(store.images())
    except StoreError:
        return 0


def assert_complete(root) -> int:
    with Project.open(root) as project:
        store = project.store
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for rec in store.images():
            marks = store.marks(rec.id)
            assert store.ground_truth(rec.id) is not None, rec.path
            assert len(marks.strokes) == 2 and len(marks.boxes) == 1 and marks.tags is not None, rec.path
        return len(store.images())


@pytest.mark.parametrize("kill_after", [1, 15])
def test_import_killed_midway_leaves_whole_images_and_resumes(tmp_path, kill_after):
    make_dataset(tmp_path / "ds")
    argv = [sys.executable, "-m", "engine.cli.main", "import", str(tmp_path / "ds"), "--project",
            str(tmp_path / "proj"), "--copy-images"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "proj" / PROJECT_FILE
    deadline = time.monotonic() + 120
    while image_count(db) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the import ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = assert_complete(tmp_path / "proj")
    assert kill_after <= done < IMAGES
    for path in (tmp_path / "proj" / "images").glob("*.png"):  # a copy cut short is never left looking whole
        load_image(path)
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert assert_complete(tmp_path / "proj") == IMAGES
    assert not list((tmp_path / "proj" / "images").glob(".*partial"))  # the rerun finished the cut copy


def test_project_creation_is_all_or_nothing(tmp_path, monkeypatch):
    calls = []

    def add_class(self, name, color=None):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("killed")
        return original(self, name, color)
    original = AnnotationStore.add_class
    monkeypatch.setattr(AnnotationStore, "add_class", add_class)
    with pytest.raises(OSError):
        Project.create(tmp_path / "proj", ["background", "object"])
    assert not Project.exists(tmp_path / "proj")
    monkeypatch.setattr(AnnotationStore, "add_class", original)
    with Project.create(tmp_path / "proj", ["background", "object"]) as project:
        assert [c.name for c in project.store.classes()] == ["background", "object"]


SAVER = textwrap.dedent("""
    import sys, torch
    from engine.models.registry import ModelConfig, build_model, save_model
    model, _ = build_model("unet", 2, pretrained=False)
    for i in range(1, 100000):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(i))
        save_model(model, ModelConfig("unet", ["a", "b"], extra={"save": i}), sys.argv[1])
        print(i, flush=True)
""")


@pytest.mark.parametrize("trial", range(3))
def test_a_save_killed_midway_leaves_one_whole_model(tmp_path, trial):
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        last = 0
        while last < 3 + trial:
            line = proc.stdout.readline()
            assert line, "saver died"
            last = int(line)
        time.sleep(0.013 * (trial + 1))  # somewhere inside a later save
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    model, config = load_model(tmp_path / "run")
    saved = config.extra["save"]
    assert saved >= last
    assert all(float(p.flatten()[0]) == saved for p in model.parameters())  # weights and description agree
