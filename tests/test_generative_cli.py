"""Training sets (built-in and from a project) and ``wsv generate train|sample|eval`` on tiny runs."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from engine.cli.main import main
from engine.generative.data import builtin_digits, project_images
from engine.project import Project


def test_builtin_digits_range_and_colour():
    gray = builtin_digits(32, n=100)
    assert gray.images.shape == (100, 1, 32, 32) and "digits" in gray.name
    assert gray.images.min() >= -1 and gray.images.max() <= 1 and gray.images.std() > 0.2
    assert gray.warning is None
    colour = builtin_digits(16, channels=3, n=10)
    assert colour.images.shape == (10, 3, 16, 16) and "fewer than 64" in colour.warning


def test_project_images_crop_resize_and_random_crops(tmp_path):
    project = Project.create(tmp_path / "p")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(200, 100), (40, 60)]):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        project.add_image(path)
    project.close()
    data = project_images(tmp_path / "p", size=16, channels=1, random_crops=3)
    # the 200 x 100 image is >= 4 x 16 on its short side, so it adds 3 crops; the small one does not
    assert data.images.shape == (2 + 3, 1, 16, 16)
    assert "random crops" in data.name and "fewer than 64" in data.warning
    assert data.images.min() >= -1 and data.images.max() <= 1


def test_cli_train_sample_eval(tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    assert main(["generate", "train", "ddpm", "--builtin", "digits", "--out", str(run), "--size", "16", "--steps", "5",
                 "--batch-size", "8", "--base-channels", "8", "--timesteps", "20", "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 5 and set(summary["final_losses"]) == {"loss"}
    assert (run / "generative.safetensors").is_file() and (run / "training.gif").is_file()
    assert main(["generate", "sample", str(run), "--n", "4", "--out", str(tmp_path / "g.png"), "--ddim-steps", "5",
                 "--gif", str(tmp_path / "r.gif"), "--device", "cpu", "--json"]) == 0
    capsys.readouterr()
    with Image.open(tmp_path / "r.gif") as gif:
        assert gif.n_frames == 5
    assert Image.open(tmp_path / "g.png").size[0] > 32
    assert main(["generate", "eval", str(run), "--n", "8", "--ddim-steps", "5", "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 8 and "EfficientNet-Lite0" in report["features"]
    assert report["kid"] > 0 and report["memorization"]["ratio"] > 0


def test_cli_errors(tmp_path, capsys):
    assert main(["generate", "train", "vae", "--out", str(tmp_path / "r")]) == 1
    assert "--builtin" in capsys.readouterr().err
    assert main(["generate", "sample", str(tmp_path), "--out", str(tmp_path / "g.png")]) == 1
    assert "no generative model" in capsys.readouterr().err
    assert main(["generate", "train", "gan", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 1
    assert "error" in capsys.readouterr().err
