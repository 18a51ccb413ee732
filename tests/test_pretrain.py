"""Self-supervised pretraining: the corruptions by hand, learning on a toy project, and training starting from it."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.models.registry import load_model
from engine.project import Project
from engine.training.common import TrainingError
from engine.training.pretrain import KEPT_WEIGHT, PretrainConfig, Pretrainer, corrupt
from engine.training.trainer import Trainer
from tests.test_trainer import config, two_tone_project


def test_the_corruptions_hide_noise_or_decolour_as_described():
    g = torch.Generator().manual_seed(0)
    crops = torch.rand(3, 3, 32, 32) * 255
    hidden_in, weight = corrupt("inpainting", crops, g)
    hidden = (weight == 1).expand_as(crops)
    assert 0.1 < hidden.float().mean() < 0.9 and weight.shape == (3, 1, 32, 32)
    torch.testing.assert_close(weight.unique(), torch.tensor([KEPT_WEIGHT, 1.0]))
    assert (hidden_in[hidden] == 127.5).all() and torch.equal(hidden_in[~hidden], crops[~hidden])
    noisy, weight = corrupt("denoising", crops, g)
    assert (weight == 1).all() and not torch.equal(noisy, crops) and 0 <= noisy.min() and noisy.max() <= 255
    gray, weight = corrupt("colorization", crops, g)
    luma = 0.299 * crops[:, 0] + 0.587 * crops[:, 1] + 0.114 * crops[:, 2]
    for k in range(3):
        torch.testing.assert_close(gray[:, k], luma)


def _pretrain_config(**kw):
    base = dict(model="unet", steps=40, batch_size=4, crop_size=32, working_size=48, device="cpu", lr=3e-3,
                preview_interval_s=0)
    return PretrainConfig(**{**base, **kw})


@pytest.mark.timeout(300)
def test_pretraining_learns_and_training_starts_from_it(tmp_path, one_thread):
    root = two_tone_project(tmp_path / "p", n_images=3)
    pre = Pretrainer(root, _pretrain_config(task="denoising"))
    records = list(pre.run())
    pre.save(tmp_path / "run")
    pre.close()
    assert [r.step for r in records] == list(range(1, 41)) and records[0].images == 3
    first, last = np.mean([r.loss for r in records[:5]]), np.mean([r.loss for r in records[-5:]])
    assert last < 0.7 * first  # it learns to denoise
    shown = records[-1].preview
    assert len(shown) == 3 and all(a.shape == (32, 32, 3) and a.dtype == np.uint8 for a in shown)
    saved, _ = load_model(tmp_path / "run")
    trainer = Trainer(root, config(init_from=str(tmp_path / "run"), steps=1))
    assert trainer.pretrained.startswith("self-supervised denoising on 3 images")
    own, theirs = trainer.model.state_dict(), saved.state_dict()
    copied = [k for k in theirs if own[k].shape == theirs[k].shape]
    assert len(copied) >= len(theirs) - 2  # everything but the head's weight and bias
    assert all(torch.equal(own[k], theirs[k]) for k in copied)
    assert any(own[k].shape != theirs[k].shape for k in theirs)  # 2 classes here, 3 colours there
    list(trainer.run())
    trainer.close()
    with pytest.raises(TrainingError, match="pretrained a unet"):
        Trainer(root, config(init_from=str(tmp_path / "run"), model="efficientnet-lite0-unet"))


def test_colorization_of_grayscale_images_is_refused(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)).save(folder / "a.png")
    Project.create(folder, ["a", "b"]).add_folder(folder)
    pre = Pretrainer(folder, _pretrain_config(task="colorization", steps=2))
    with pytest.raises(TrainingError, match="grayscale"):
        list(pre.run())
    pre.close()


def test_wsv_pretrain_then_train_init(tmp_path, capsys, one_thread):
    from engine.cli.main import main

    root = two_tone_project(tmp_path / "p", n_images=2)
    assert main(["pretrain", str(root), "--task", "inpainting", "--model", "unet", "--steps", "3", "--batch-size",
                 "2", "--crop-size", "32", "--working-size", "48", "--out", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "inpainting" and summary["steps"] == 3 and summary["images"] == 2
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 3
    assert main(["train", str(root), "--init", str(tmp_path / "run"), "--model", "unet", "--steps", "2",
                 "--working-size", "48", "--crop-size", "32", "--batch-size", "2", "--out", str(tmp_path / "t"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["initial_weights"].startswith("self-supervised inpainting")


@pytest.mark.timeout(300)
def test_bench_pretrain_records(tmp_path, capsys, one_thread):
    from engine.cli.main import main
    from tests.test_dataset_io import make_dataset

    ids = make_dataset(tmp_path / "toy", n=8, size=(48, 32))  # scribbles on im0, im2, im4, im6
    (tmp_path / "toy" / "train.txt").write_text("\n".join(ids[:6]) + "\n")
    (tmp_path / "toy" / "test.txt").write_text("\n".join(ids[6:]) + "\n")
    code = main(["bench", "pretrain", "--data", str(tmp_path), "--dataset", "toy", "--patients", "2,4", "--seeds",
                 "0", "--task", "denoising", "--pretrain-steps", "2", "--steps", "2", "--working-size", "48",
                 "--crop-size", "32", "--batch-size", "2", "--work", str(tmp_path / "work"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = json.loads(out)
    assert [(r["marked_patients"], r["pretrained"]) for r in records] == [(2, False), (2, True), (4, False), (4, True)]
    assert all(r["initial_weights"].startswith("self-supervised denoising") == r["pretrained"] for r in records)
    assert all(0 <= r["test_miou"] <= 1 and r["full_miou"] > 0 for r in records)
    with Project.open(tmp_path / "work" / "project-seed0-2") as project:  # only the chosen patients keep strokes
        marked = [i for i, c in project.store.mark_counts().items() if c.strokes]
        assert len(marked) <= 2
