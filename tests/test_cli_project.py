"""``wsv import``, ``wsv info`` and ``wsv export`` as a user runs them: JSON out, clear errors, exit codes."""
import json

import numpy as np
from PIL import Image

from engine.cli.main import main
from tests.test_dataset_io import make_dataset


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_info_export(tmp_path, capsys):
    make_dataset(tmp_path / "ds")
    code, out, _ = run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "p", "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["images"], result["masks"], result["strokes"] > 0, result["errors"]) == (4, 4, True, [])
    code, out, _ = run(capsys, "info", tmp_path / "p", "--json")
    info = json.loads(out)
    assert info["images"] == 4 and info["images_with_ground_truth"] == 4
    assert [c["name"] for c in info["classes"]] == ["background", "cat", "dog"]
    assert info["boxes"] == 4 and info["tagged_images"] == 4 and info["splits"] == {"train": 3, "test": 1}
    assert sum(c["strokes"] for c in info["classes"]) == info["strokes"]
    code, out, _ = run(capsys, "export", tmp_path / "p", tmp_path / "out", "--json")
    assert code == 0 and json.loads(out)["masks"] == 4
    assert (tmp_path / "out" / "classes.txt").read_text() == "background\ncat\ndog\n"


def test_human_output_and_simulation(tmp_path, capsys):
    make_dataset(tmp_path / "ds")
    for f in (tmp_path / "ds" / "scribbles").iterdir():
        f.unlink()
    code, out, _ = run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "p", "--simulate-scribbles",
                       "--sim-ratio", "0.5")
    assert code == 0 and "imported 4 images" in out and "(4 simulated)" in out


def test_boxes_and_tags_from_masks(tmp_path, capsys):
    from engine.datasets.folder import DatasetFolder
    from engine.datasets.weak_labels import boxes_from_mask, tags_from_mask

    make_dataset(tmp_path / "ds")
    for sub in ("boxes", "tags"):
        for f in (tmp_path / "ds" / sub).iterdir():
            f.unlink()
    code, out, _ = run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "plain", "--json")
    assert code == 0 and (json.loads(out)["boxes"], json.loads(out)["tagged_images"]) == (0, 0)
    code, out, _ = run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "p", "--boxes-from-masks",
                       "--tags-from-masks", "--json")
    ds = DatasetFolder.open(tmp_path / "ds")
    masks = [np.asarray(Image.open(ds.root / "masks" / f"{i}.png")) for i in ds.images]
    result = json.loads(out)
    assert code == 0 and result["boxes"] == sum(len(boxes_from_mask(m)) for m in masks) > 0
    assert result["tagged_images"] == sum(bool(tags_from_mask(m)) for m in masks) == 4


def test_errors_exit_non_zero_with_message(tmp_path, capsys):
    code, out, err = run(capsys, "info", tmp_path / "nothing")
    assert code == 1 and out == "" and "not a WSV Studio project" in err
    code, _, err = run(capsys, "import", tmp_path, "--project", tmp_path / "p")
    assert code == 1 and "classes.txt" in err
    make_dataset(tmp_path / "ds")
    code, _, err = run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "p", "--sim-ratio", "2")
    assert code == 1 and "--sim-ratio" in err
    code, _, err = run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "q", "--scribbles-dir", "nope")
    assert code == 1 and "nope" in err


def test_import_reports_bad_images_and_keeps_going(tmp_path, capsys):
    make_dataset(tmp_path / "ds")
    (tmp_path / "ds" / "images" / "im0.png").write_bytes(b"\x89PNG truncated")
    code, out, _ = run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "p")
    assert code == 0 and "imported 3 images" in out and "skipped:" in out and "im0.png" in out


def test_export_to_unwritable_place(tmp_path, capsys):
    make_dataset(tmp_path / "ds")
    run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "p")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "export", tmp_path / "p", blocker / "out")
    assert code == 1 and "cannot write" in err


def test_mask_values_survive_round_trip_through_cli(tmp_path, capsys):
    make_dataset(tmp_path / "ds")
    run(capsys, "import", tmp_path / "ds", "--project", tmp_path / "p")
    run(capsys, "export", tmp_path / "p", tmp_path / "out")
    for f in (tmp_path / "ds" / "masks").iterdir():
        assert np.array_equal(np.array(Image.open(f)), np.array(Image.open(tmp_path / "out" / "masks" / f.name)))
