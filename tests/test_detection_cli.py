"""``wsv detect train|predict|eval|export`` end to end on a small dataset folder."""
import json

import pytest
import torch

from engine.cli.main import main
from engine.detection import models
from engine.detection.data import done_image_ids
from engine.project import Project
from tests.test_dataset_io import make_dataset


@pytest.fixture(autouse=True)
def hermetic(monkeypatch):
    """Random initial weights whatever the torch cache holds, and torch's thread count given back afterwards."""
    monkeypatch.setattr(models, "backbone_cached", lambda weights: False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv):
    code = main(["detect", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


NETWORK = ("--steps", "2", "--batch-size", "1", "--working-size", "48", "--min-size", "64", "--max-size", "64",
           "--threads", "1", "--device", "cpu")


@pytest.mark.timeout(120)
def test_train_predict_eval_network(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_dataset(ds, n=4, size=(48, 32))
    code, out, err = run(capsys, "train", ds, "--out", tmp_path / "run", *NETWORK, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["detector"] == models.DEFAULT_DETECTOR and summary["steps"] == 2
    assert summary["train_images"] == 3 and summary["heldout_images"] == 1  # the dataset's test split is held out
    assert set(summary["final_losses"]) >= {"loss_classifier", "loss_box_reg", "loss_objectness", "total"}
    assert set(summary["heldout"]["ap50"]) == {"cat", "dog"} and summary["initial_weights"] == "none"
    for name in ("detector.json", "detector.safetensors", "history.json", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    with Project.open(tmp_path / "run" / "project") as project:  # every imported image had a boxes file
        assert len(done_image_ids(project.store)) == 4

    code, out, err = run(capsys, "predict", tmp_path / "run", ds / "images", ds / "images" / "im0.png",
                         "--out", tmp_path / "pred", "--score-threshold", "0", "--device", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == 5 and result["errors"] == []
    coco = json.loads((tmp_path / "pred" / "detections.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog"] and [c["id"] for c in coco["categories"]] == [1, 2]
    assert len(coco["images"]) == 5 and coco["images"][0]["width"] == 48 and coco["images"][0]["height"] == 32
    assert len(coco["annotations"]) == result["detections"]
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        assert w >= 0 and h >= 0 and a["category_id"] in (1, 2) and 0 <= a["score"] <= 1 and a["iscrowd"] == 0

    code, out, err = run(capsys, "eval", tmp_path / "run", ds, "--split", "all", "--device", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == 4 and result["ground_truth"] == "boxes"
    assert result["gt_boxes"] == {"cat": 4, "dog": 0} and result["ap50"]["dog"] is None
    assert 0 <= result["map50"] <= 1 and 0 <= result["map"] <= result["map50"] + 1e-9
    code, out, err = run(capsys, "eval", tmp_path / "run", ds, "--device", "cpu")  # human output, test split
    assert code == 0 and "mAP@0.5" in out and "cat" in out

    code, out, err = run(capsys, "export", tmp_path / "run", "--onnx", tmp_path / "onnx" / "d.onnx", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (tmp_path / "onnx" / "d.onnx").stat().st_size > 100_000  # the weights are inside
    assert result["checked"] and result["max_box_difference_px"] < 1e-2  # the onnx extra is in the dev group


def test_hog_svm_from_masks(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_dataset(ds, n=4, size=(48, 32))
    for f in (ds / "boxes").iterdir():
        f.unlink()
    code, out, err = run(capsys, "train", ds, "--method", "hog-svm", "--working-size", "48", "--out",
                         tmp_path / "run", "--json")
    assert code == 0, err
    assert "deriving them from its masks" in err
    summary = json.loads(out)
    assert summary["method"] == "hog-svm" and set(summary["windows"]) == {"cat", "dog"}
    assert summary["boxes"] == 6  # a cat and a dog in each of the three training images
    code, out, err = run(capsys, "eval", tmp_path / "run", ds, "--split", "all", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ground_truth"] == "derived from masks" and result["gt_boxes"] == {"cat": 4, "dog": 4}
    code, out, err = run(capsys, "predict", tmp_path / "run", ds / "images", "--out", tmp_path / "pred", "--json")
    assert code == 0, err
    assert json.loads(out)["score_threshold"] == 0.0  # the SVM's decision boundary by default
    code, _, err = run(capsys, "export", tmp_path / "run", "--onnx", tmp_path / "d.onnx")
    assert code == 1 and "only network detectors" in err


def test_errors(tmp_path, capsys):
    code, _, err = run(capsys, "train", tmp_path / "missing", "--out", tmp_path / "run")
    assert code == 1 and "not a folder" in err
    ds = tmp_path / "ds"
    make_dataset(ds)
    for sub in ("boxes", "masks"):
        for f in (ds / sub).iterdir():
            f.unlink()
    code, _, err = run(capsys, "train", ds, "--out", tmp_path / "run")
    assert code == 1 and "neither boxes/ nor masks/" in err
    (ds / "boxes" / "im0.json").write_text("[]")  # known, but nothing in it
    code, _, err = run(capsys, "train", ds, "--out", tmp_path / "run")
    assert code == 1 and "no boxes around objects" in err
    code, _, err = run(capsys, "predict", tmp_path / "norun", ds / "images", "--out", tmp_path / "o")
    assert code == 1 and "no saved detector" in err
    code, _, err = run(capsys, "train", ds, "--out", tmp_path / "run", "--steps", "0")
    assert code == 1 and "steps" in err


def test_ground_truth_from_masks_boxes_class_zero_where_no_class_is_background(tmp_path):
    from engine.cli.detect_cmds import _ground_truth
    from engine.datasets.folder import DatasetFolder
    ds = tmp_path / "ds"
    make_dataset(ds, n=4, size=(48, 32))
    with_background = _ground_truth(DatasetFolder.open(ds), "im0", derive=True)
    assert sorted(with_background.labels.tolist()) == [1, 2]  # the background is what no box covers
    (ds / "classes.txt").write_text("building\ncat\ndog\n")  # MSRC-like: class 0 is an object
    without = _ground_truth(DatasetFolder.open(ds), "im0", derive=True)
    assert sorted(without.labels.tolist()) == [0, 1, 2]
