"""``wsv train``, ``wsv predict`` and ``wsv eval`` end to end on a small dataset folder."""
import json

import numpy as np
from PIL import Image

from engine.cli.main import main
from engine.io.palette import load_index_png
from tests.test_dataset_io import make_dataset


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_predict_eval(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_dataset(ds, n=4, size=(48, 32))
    code, out, err = run(capsys, "train", ds, "--supervision", "scribbles", "--regularizer", "dense", "--model", "unet",
                         "--steps", "3", "--batch-size", "2", "--working-size", "48", "--out", tmp_path / "run", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 3 and summary["model"] == "unet" and summary["labelled_images"] == 2
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "history.json").is_file()
    code, out, err = run(capsys, "predict", tmp_path / "run", ds / "images", "--out", tmp_path / "pred", "--json")
    assert code == 0, err
    assert json.loads(out)["masks"] == 4
    mask = load_index_png(tmp_path / "pred" / "im0.png")
    assert mask.shape == (32, 48) and mask.max() < 3
    code, out, err = run(capsys, "eval", tmp_path / "pred", ds, "--split", "all", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == 4 and 0 <= result["miou"] <= 1 and set(result["iou"]) == {"background", "cat", "dog"}


def test_train_full_supervision_never_needs_scribbles(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_dataset(ds)
    code, out, err = run(capsys, "train", ds, "--supervision", "full", "--regularizer", "none", "--model", "unet",
                         "--steps", "2", "--batch-size", "1", "--working-size", "48", "--out", tmp_path / "run", "--json")
    assert code == 0, err
    assert json.loads(out)["labelled_images"] == 3  # the train split's images with masks


def test_train_on_marks_without_masks(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_dataset(ds)
    for f in (ds / "masks").iterdir():
        f.unlink()
    (ds / "masks").rmdir()
    code, out, err = run(capsys, "train", ds, "--model", "unet", "--steps", "2", "--batch-size", "1",
                         "--working-size", "48", "--out", tmp_path / "run", "--json")
    assert code == 0, err
    assert json.loads(out)["labelled_images"] == 2  # the scribbled train images


def test_train_simulates_scribbles_where_a_data_set_has_none(tmp_path, capsys):
    """Without scribbles the masks are turned into strokes of the asked length and brush; bad settings are refused
    before anything is written."""
    from engine.project import Project

    ds = tmp_path / "ds"
    make_dataset(ds)
    for f in (ds / "scribbles").iterdir():
        f.unlink()
    args = ["train", ds, "--model", "unet", "--steps", "1", "--batch-size", "1", "--working-size", "48", "--json"]
    code, out, err = run(capsys, *args, "--sim-ratio", "0.5", "--sim-radius", "1.5", "--out", tmp_path / "run")
    assert code == 0, err
    assert "simulating them from its masks (ratio 0.5, radius 1.5)" in err
    assert json.loads(out)["labelled_images"] == 3  # every train image has a mask, so every one gets strokes
    with Project.open(tmp_path / "run" / "project") as project:
        strokes = [s for r in project.store.images() for s in project.store.marks(r.id).strokes]
    assert strokes and all(s.radius == 1.5 for s in strokes)
    for bad in (["--sim-ratio", "0"], ["--sim-radius", "0.1"]):
        code, _, err = run(capsys, *args, *bad, "--out", tmp_path / "bad")
        assert code == 1 and bad[0] in err and not (tmp_path / "bad").exists()


def test_errors(tmp_path, capsys):
    code, _, err = run(capsys, "predict", tmp_path / "norun", tmp_path, "--out", tmp_path / "o")
    assert code == 1 and "no saved model" in err
    ds = tmp_path / "ds"
    make_dataset(ds)
    (tmp_path / "pred").mkdir()
    code, _, err = run(capsys, "eval", tmp_path / "pred", ds)
    assert code == 1 and "no predicted mask" in err
    Image.fromarray(np.full((5, 5), 9, np.uint8)).save(tmp_path / "pred" / "im3.png")
    code, _, err = run(capsys, "eval", tmp_path / "pred", ds)
    assert code == 1 and "im3.png" in err


def test_train_from_boxes_and_tags_derived_from_masks(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_dataset(ds)
    for sub in ("boxes", "tags"):
        for f in (ds / sub).iterdir():
            f.unlink()
    for supervision in ("boxes", "boxes-grabcut", "tags"):
        code, out, err = run(capsys, "train", ds, "--supervision", supervision, "--model", "unet", "--steps", "2",
                             "--batch-size", "2", "--working-size", "48", "--out", tmp_path / supervision, "--json")
        assert code == 0, err
        assert "deriving them from its masks" in err
        summary = json.loads(out)
        assert summary["labelled_images"] == 3
        losses = summary["final_losses"]
        assert ("box" in losses) == (supervision == "boxes") and ("tags" in losses) == (supervision == "tags")
