"""Finding moved images again by their content, so a project whose images moved keeps every mark."""
import shutil

import numpy as np
import pytest
from PIL import Image

from engine.annotations.store import StoreError
from engine.annotations.types import Stroke
from engine.project import Project


def picture(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 10, 3), value, np.uint8)).save(path)


def test_moved_and_renamed_images_are_found_by_content_and_keep_their_marks(tmp_path):
    photos = tmp_path / "photos"
    for name, value in (("a.png", 10), ("b.png", 20), ("c.png", 30), ("twin1.png", 40), ("twin2.png", 40)):
        picture(photos / name, value)
    with Project.create(tmp_path / "proj", ["background", "thing"]) as project:
        project.add_folder(photos)
        first = project.store.images()[0]
        thing = project.store.classes()[1]
        project.store.add_stroke(Stroke(first.id, thing.id, 2.0, [[1, 1], [5, 5]]))
    moved = tmp_path / "elsewhere" / "deep"
    shutil.move(photos, moved)
    (moved / "b.png").rename(moved / "renamed.png")
    picture(tmp_path / "elsewhere" / "a-decoy" / "a.png", 99)  # named like a missing image, other content
    with Project.open(tmp_path / "proj") as project:
        assert len(project.missing_images()) == 5
        calls = []
        report = project.locate_images(tmp_path / "elsewhere", lambda d, t: calls.append((d, t)))
        assert report.missing == [] and len(report.found) == 5 and calls and calls[-1][0] <= calls[-1][1]
        assert project.missing_images() == []
        by_path = sorted(rec.path.rsplit("/", 1)[1] for rec in project.store.images())
        assert by_path == ["a.png", "c.png", "renamed.png", "twin1.png", "twin2.png"]  # each twin has its own copy
        assert all("a-decoy" not in rec.path for rec in project.store.images())
        assert project.store.marks(first.id).strokes[0].points.tolist() == [[1, 1], [5, 5]]
        assert project.load_image(project.store.image(first.id)).pixels[0, 0, 0] == 10


def test_images_not_found_stay_missing_and_paths_stay_unique(tmp_path):
    picture(tmp_path / "photos" / "a.png", 10)
    picture(tmp_path / "photos" / "b.png", 20)
    with Project.create(tmp_path / "proj") as project:
        project.add_folder(tmp_path / "photos")
        (tmp_path / "photos" / "a.png").unlink()
        (tmp_path / "empty").mkdir()
        report = project.locate_images(tmp_path / "empty")
        assert [rec.path.rsplit("/", 1)[1] for rec in report.missing] == ["a.png"] and report.found == []
        a, b = project.store.images()
        with pytest.raises(StoreError, match="already refers to"):
            project.store.set_image_path(a.id, b.path)


def test_cli_info_names_missing_images_and_locate_finds_them(tmp_path, capsys):
    import json

    from engine.cli.main import main
    picture(tmp_path / "photos" / "a.png", 10)
    with Project.create(tmp_path / "proj") as project:
        project.add_folder(tmp_path / "photos")
    shutil.move(tmp_path / "photos", tmp_path / "moved")
    assert main(["info", str(tmp_path / "proj")]) == 0
    assert "1 images not found" in capsys.readouterr().out
    assert main(["locate", str(tmp_path / "proj"), str(tmp_path / "nowhere")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert main(["locate", str(tmp_path / "proj"), str(tmp_path / "moved"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["missing_before"] == 1 and result["still_missing"] == [] and len(result["found"]) == 1
    assert main(["info", str(tmp_path / "proj"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing_images"] == []
