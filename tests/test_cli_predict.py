"""``wsv predict`` on a folder of images, a dataset folder and a project: marked images get masks refined with
their marks (strokes hold, nothing of a boxed class outside its boxes), the rest the network's; masks.json."""
import json

import numpy as np
import pytest

from engine.datasets.importer import import_dataset
from engine.io.palette import load_index_png
from tests.test_cli_train import run
from tests.test_dataset_io import make_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    ds = root / "ds"
    make_dataset(ds, n=4, size=(48, 32))
    from engine.cli.main import main
    code = main(["train", str(ds), "--model", "unet", "--steps", "2", "--batch-size", "2", "--working-size", "48",
                 "--out", str(root / "run")])
    assert code == 0
    return root, ds


def test_dataset_folder_refines_marked_images(trained, capsys):
    root, ds = trained
    out = root / "masks"
    code, stdout, err = run(capsys, "predict", root / "run", ds, "--out", out, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    # every image has a box and tags; im0 and im2 also have strokes
    assert (result["masks"], result["refined"], result["network"]) == (4, 4, 0)
    record = json.loads((out / "masks.json").read_text())
    assert record["kind"] == "dataset" and record["masks"] == {f"im{i}": "refined" for i in range(4)}
    assert record["refinement"]["network_error"] == pytest.approx(0.3)
    for i in (0, 2):
        seeds, mask = load_index_png(ds / "scribbles" / f"im{i}.png"), load_index_png(out / f"im{i}.png")
        marked = seeds != 255
        assert (mask[marked] == seeds[marked]).all()          # every stroke holds
    for i in range(4):
        mask = load_index_png(out / f"im{i}.png")
        outside = np.ones(mask.shape, bool)
        outside[5:20, 5:31] = False                            # the cat box [5, 5, 30.5, 20]
        assert not (mask[outside] == 1).any()                  # no cat outside the cat's box


def test_no_refine_and_plain_folders_give_the_network(trained, capsys):
    root, ds = trained
    code, stdout, err = run(capsys, "predict", root / "run", ds, "--out", root / "raw", "--no-refine", "--json")
    assert code == 0, err
    assert json.loads(stdout)["refined"] == 0
    assert json.loads((root / "raw" / "masks.json").read_text())["refinement"] is None
    code, stdout, err = run(capsys, "predict", root / "run", ds / "images", "--out", root / "plain", "--json")
    assert code == 0, err
    assert json.loads(stdout)["network"] == 4
    for i in range(4):
        assert (load_index_png(root / "plain" / f"im{i}.png") == load_index_png(root / "raw" / f"im{i}.png")).all()


def test_project_source(trained, capsys, tmp_path):
    root, ds = trained
    project, _ = import_dataset(ds, tmp_path / "proj", split="train")
    project.close()
    code, stdout, err = run(capsys, "predict", root / "run", tmp_path / "proj", "--out", tmp_path / "m", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["masks"] == 3 and result["refined"] == 3
    seeds = load_index_png(ds / "scribbles" / "im0.png")
    mask = load_index_png(tmp_path / "m" / "im0.png")
    assert (mask[seeds != 255] == seeds[seeds != 255]).all()


def test_bad_sources(trained, capsys, tmp_path):
    root, ds = trained
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "images").mkdir()
    (tmp_path / "other" / "classes.txt").write_text("background\nhorse\n")
    code, _, err = run(capsys, "predict", root / "run", tmp_path / "other", "--out", tmp_path / "o")
    assert code == 1 and "classes" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "predict", root / "run", ds, "--out", tmp_path / "file")
    assert code == 1 and "is a file" in err
    bad = tmp_path / "bad"
    make_dataset(bad)
    (bad / "boxes" / "im1.json").write_text("[{\"class\": 7, \"box\": [0, 0, 4, 4]}]")
    code, stdout, err = run(capsys, "predict", root / "run", bad, "--out", tmp_path / "b", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["masks"] == 3 and "im1.json" in result["errors"][0]   # reported by name, the rest written
