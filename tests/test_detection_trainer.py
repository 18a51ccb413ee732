"""The detector trainer: finite loss terms as torchvision names them, previews, held-out mAP, determinism, clear
failures, and save/load giving identical detections."""
import numpy as np
import pytest
import torch
from PIL import Image

from engine.detection import models
from engine.detection.config import DetectionConfig
from engine.detection.inference import load_detector
from engine.detection.models import run_detector
from engine.detection.trainer import DetectionTrainer
from engine.project import Project
from engine.training.common import TrainingError
from tests.test_detection_hog_svm import square_project

FASTER_RCNN_TERMS = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "total"}


@pytest.fixture(autouse=True)
def hermetic(monkeypatch):
    """Random initial weights whatever the torch cache holds, and torch's (process-wide) thread count, which
    the trainer sets, given back to later tests."""
    monkeypatch.setattr(models, "backbone_cached", lambda weights: False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def config(**kw):
    base = dict(steps=3, batch_size=2, working_size=64, min_size=96, max_size=96, device="cpu", threads=1, seed=5,
                preview_interval_s=0, eval_interval_s=1e-6, holdout_fraction=0.3)
    base.update(kw)
    return DetectionConfig(**base)


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    return square_project(tmp_path_factory.mktemp("det") / "p", n=6)


@pytest.mark.timeout(120)
def test_records_carry_loss_terms_previews_and_heldout_map(squares, tmp_path):
    trainer = DetectionTrainer(squares, config())
    image_id = trainer.project.store.images()[0].id
    trainer.preview_image_id = image_id
    records = list(trainer.run())
    assert [r.step for r in records] == [1, 2, 3] and records[0].total_steps == 3
    for r in records:
        assert set(r.losses) == FASTER_RCNN_TERMS and all(np.isfinite(list(r.losses.values())))
        assert r.losses["total"] == pytest.approx(sum(v for k, v in r.losses.items() if k != "total"), rel=1e-5)
        assert r.steps_per_s > 0 and r.device == "cpu"
    assert records[0].lr == pytest.approx(0.01) and records[2].lr < records[1].lr < records[0].lr  # cosine decay
    assert "backbone weights: none" in records[0].notes[0] and "random weights" in records[0].notes[1]
    last = records[-1]
    assert last.heldout_images > 0 and last.train_images + last.heldout_images == 6 and last.boxes == last.train_images
    assert last.map50 is not None and 0.0 <= last.map50 <= 1.0
    d = last.preview.detections
    assert last.preview.image_id == image_id
    assert d.boxes.dtype == np.float32 and d.boxes.shape == (len(d), 4) and d.labels.dtype == np.int64
    assert len(d) == 0 or (d.boxes.max() <= 96.5 and d.labels.min() >= 1 and d.scores.min() >= 0.01)
    # Saved and loaded (safetensors + JSON), the detector finds exactly the same boxes.
    trainer.save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["detector.json", "detector.safetensors"]
    loaded = load_detector(tmp_path / "run")
    assert loaded.classes == ["background", "square"] and loaded.working_size == 64
    image, _ = trainer.data.load_image(image_id)
    # A trained toy detector may find nothing at the raw floor; the model's box regression shows any difference.
    trainer.model.eval()
    with torch.no_grad():
        x = [torch.from_numpy(image).permute(2, 0, 1).float() / 255]
        want = trainer.model.backbone(trainer.model.transform(x)[0].tensors)
        got = loaded.model.backbone(loaded.model.transform(x)[0].tensors)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
    a, b = run_detector(trainer.model, image, trainer.device), loaded.detect(image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    trainer.close()


@pytest.mark.timeout(120)
def test_seeded_runs_repeat_exactly(squares):
    runs = []
    for _ in range(2):
        trainer = DetectionTrainer(squares, config(steps=2, eval_interval_s=0))
        runs.append([r.losses for r in trainer.run()])
        trainer.close()
    assert runs[0] == runs[1]


def test_non_finite_loss_stops_with_advice(squares, monkeypatch):
    trainer = DetectionTrainer(squares, config())
    nan = torch.tensor(float("nan"), requires_grad=True)
    monkeypatch.setattr(trainer.model, "forward", lambda images, targets: {"loss_classifier": nan * 1.0})
    with pytest.raises(TrainingError, match=r"loss became nan at step 1 .*lower the learning rate"):
        next(trainer.run())
    trainer.close()


def test_out_of_memory_becomes_advice(squares, monkeypatch):
    trainer = DetectionTrainer(squares, config())

    def oom(samples):
        raise torch.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(trainer, "_train_step", oom)
    with pytest.raises(TrainingError, match="out of memory on cpu at batch size 2.*lower the batch size"):
        next(trainer.run())
    trainer.close()


def test_no_boxes_and_time_budget(squares, tmp_path):
    trainer = DetectionTrainer(squares, config(holdout_fraction=0.0, max_minutes=1e-9, steps=50, eval_interval_s=0,
                                               optimizer="adamw"))
    records = list(trainer.run())
    assert len(records) == 1  # the budget ends the run after the first step
    assert trainer.config.effective_lr == pytest.approx(1e-4)
    trainer.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(empty / "a.png")
    with Project.create(empty, ["background", "thing"]) as project:
        project.add_folder(empty)
    trainer = DetectionTrainer(empty, config())
    with pytest.raises(TrainingError, match="no training image has boxes yet"):
        next(trainer.run())
    trainer.close()
    with pytest.raises(ValueError, match="model must be one of"):
        DetectionConfig(model="yolo")


@pytest.mark.timeout(120)
def test_class_zero_is_an_object_where_no_class_is_background(tmp_path, monkeypatch):
    # torchvision reserves label 0 for "no object": with no background class, the network sees class k as label
    # k + 1 and answers in class indices again; the saved detector records the offset.
    root = square_project(tmp_path / "p", n=4, classes=("square", "sky"))
    trainer = DetectionTrainer(root, config(steps=1, eval_interval_s=0, holdout_fraction=0.0))
    assert trainer.label_offset == 1 and trainer.model.roi_heads.box_predictor.cls_score.out_features == 3
    trainer.data.refresh()
    assert {int(k) for s in trainer.data.samples.values() for k in s.labels} == {0}
    seen = []
    forward = trainer.model.forward

    def spy(images, targets=None):
        seen.extend(int(k) for t in targets or [] for k in t["labels"])
        return forward(images, targets)
    monkeypatch.setattr(trainer.model, "forward", spy)
    list(trainer.run())
    assert set(seen) == {1}
    trainer.model.roi_heads.score_thresh = 0.0  # keep whatever the one-step network finds
    image, _ = trainer.data.load_image(trainer.project.store.images()[0].id)
    found = run_detector(trainer.model, image, trainer.device, label_offset=trainer.label_offset)
    assert len(found) and set(found.labels.tolist()) <= {0, 1}
    trainer.save(tmp_path / "run")
    loaded = load_detector(tmp_path / "run")
    assert loaded.config.label_offset == 1 and loaded.classes == ["square", "sky"]
    trainer.close()


def test_class_list_changed_while_training_stops_with_advice(tmp_path):
    root = square_project(tmp_path / "p", n=3)
    trainer = DetectionTrainer(root, config(steps=5, eval_interval_s=0, holdout_fraction=0.0))
    run = trainer.run()
    next(run)
    with Project.open(root) as project:
        project.store.add_class("cow", (10, 20, 30))
    with pytest.raises(TrainingError, match="classes changed while training .*start training again"):
        next(run)
    trainer.close()
