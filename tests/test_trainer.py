"""The trainer: learns from strokes, picks up new marks live, is deterministic, fails clearly, saves/loads."""
import numpy as np
import pytest
import torch
from PIL import Image

from engine.annotations.store import AnnotationStore
from engine.annotations.types import Stroke
from engine.models.registry import load_model
from engine.project import Project
from engine.training.config import TrainConfig
from engine.losses.colour import colour_consistency_loss
from engine.refine.masks import predict_full_size
from engine.training.common import TrainingError
from engine.training import terms
from engine.training.terms import pce_loss, regularizer_gradient, regularizer_loss
from engine.training.trainer import Trainer


def two_tone_project(root, n_images=2, size=48):
    """Images split into a dark left and a bright right half; image 0 has one stroke per half."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n_images):
        img = np.zeros((size, size, 3), np.uint8)
        img[:, : size // 2] = (40, 60, 200)
        img[:, size // 2:] = (230, 200, 40)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"im{i}.png")
    project = Project.create(root, ["left", "right"])
    project.add_folder(root)
    gt = np.zeros((size, size), np.uint8)
    gt[:, size // 2:] = 1
    for rec in project.store.images():
        project.store.set_ground_truth(rec.id, gt)
    left, right = project.store.classes()
    first = project.store.images()[0].id
    project.store.add_stroke(Stroke(first, left.id, 2.0, [[6, 10], [8, 38]]))
    project.store.add_stroke(Stroke(first, right.id, 2.0, [[40, 10], [38, 38]]))
    project.close()
    return root


def config(**kw):
    base = dict(model="unet", steps=8, batch_size=2, crop_size=32, working_size=48, regularizer="dense",
                preview_interval_s=0, eval_interval_s=0, device="cpu", seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_records_carry_losses_and_previews(tmp_path):
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config())
    image_id = trainer.project.store.images()[1].id
    trainer.preview_image_id = image_id
    records = list(trainer.run())
    trainer.close()
    assert [r.step for r in records] == list(range(1, 9))
    r = records[-1]
    assert set(r.losses) == {"pce", "reg", "total"} and all(np.isfinite(list(r.losses.values())))
    assert r.losses["total"] == pytest.approx(r.losses["pce"] + r.losses["reg"])
    assert r.labelled_images == 1 and r.device == "cpu" and r.steps_per_s > 0
    assert r.preview.image_id == image_id
    assert r.preview.labels.shape == (48, 48) and r.preview.probs.shape == (2, 48, 48)
    assert r.preview.reg_gradient.shape == (2, 48, 48)
    assert r.preview.refined is None                       # image 1 has no marks: nothing to refine with
    assert "unet" in records[0].notes[0]


def test_preview_of_a_marked_image_is_refined_with_its_marks(tmp_path):
    """Image 0's strokes hold in its refined preview, and the two-tone image splits along its edge even where
    the network, after a few steps, is still unsure; new marks are refined again at once."""
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=4, refine_interval_s=1000))
    store = trainer.project.store
    image_id = store.images()[0].id
    trainer.preview_image_id = image_id
    *_, last = trainer.run()
    refined = last.preview.refined
    seeds = store.seed_map(image_id, refined.shape)
    assert (refined[seeds != 255] == seeds[seeds != 255]).all()
    assert (refined[:, :20] == 0).mean() > 0.95 and (refined[:, 28:] == 1).mean() > 0.95
    left = store.classes()[0]
    store.add_stroke(Stroke(image_id, left.id, 2.0, [[40, 40], [44, 44]]))     # on the right half
    again = trainer.preview(image_id).refined
    assert (again[40:44, 40:44] == 0).all()                 # refined at once, not after refine_interval_s
    trainer.close()


def test_learns_the_two_halves(tmp_path):
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=60, lr=3e-3))
    for _ in trainer.run():
        pass
    miou = trainer.evaluate()
    trainer.close()
    assert miou > 0.9


def test_new_marks_reach_the_running_trainer(tmp_path):
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=20))
    run = trainer.run()
    assert next(run).labelled_images == 1
    other = AnnotationStore(root / "project.wsv")  # the GUI's connection
    second = other.images()[1].id
    other.add_stroke(Stroke(second, other.classes()[0].id, 2.0, [[5, 5], [5, 40]]))
    other.close()
    rec = next(run)
    assert rec.labelled_images == 2 and any("new marks" in n for n in rec.notes)
    run.close()
    trainer.close()


def test_class_list_edits_while_training(tmp_path):
    # A renamed class keeps its output and its new name reaches the saved model; a class added (or moved) has
    # no output to learn into, so the run stops with advice rather than mislabel or crash.
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=20))
    run = trainer.run()
    next(run)
    other = AnnotationStore(root / "project.wsv")  # the GUI's connection
    other.rename_class(other.classes()[1].id, "bright")
    next(run)
    assert trainer.classes == ["left", "bright"]
    trainer.save(tmp_path / "model")
    assert load_model(tmp_path / "model")[1].classes == ["left", "bright"]
    other.add_class("sky")
    other.close()
    with pytest.raises(TrainingError, match=r"classes changed while training \(left, bright → left, bright, sky\)"):
        next(run)
    trainer.close()


def test_deterministic_under_a_seed(tmp_path):
    root = two_tone_project(tmp_path / "p")
    losses = []
    for _ in range(2):
        trainer = Trainer(root, config(steps=4))
        losses.append([r.losses["total"] for r in trainer.run()])
        trainer.close()
    assert losses[0] == losses[1]


def test_no_marks_is_a_clear_error(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / "a.png")
    project = Project.create(root)
    project.add_folder(root)
    project.close()
    trainer = Trainer(root, config())
    with pytest.raises(TrainingError, match="no image has marks"):
        next(trainer.run())
    trainer.close()


def test_non_finite_loss_stops_with_advice(tmp_path, monkeypatch):
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config())
    monkeypatch.setattr(terms, "regularizer_loss", lambda config, image, probs, weights=None: probs.sum() * float("nan"))
    with pytest.raises(TrainingError, match="lower the learning rate"):
        list(trainer.run())
    trainer.close()


def test_saved_model_predicts_the_same(tmp_path):
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=3))
    list(trainer.run())
    trainer.save(tmp_path / "model")
    image, _ = trainer.source.image(trainer.project.store.images()[0].id)
    expected = trainer.predict_probs(image).argmax(0).numpy()
    trainer.close()
    model, cfg = load_model(tmp_path / "model")
    assert cfg.classes == ["left", "right"] and cfg.model == "unet"
    got = predict_full_size(model, image, (48, 48), torch.device("cpu"))
    np.testing.assert_array_equal(got, expected)
    big = predict_full_size(model, image, (96, 96), torch.device("cpu"))
    assert big.shape == (96, 96)


def test_new_layers_learn_faster_than_the_pretrained_encoder(tmp_path):
    """Beside a pretrained encoder the decoder and head get ``new_layer_lr_mult`` times the learning rate; a
    network with nothing pretrained in it gets the base rate everywhere."""
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(model="efficientnet-lite0-unet", steps=1, crop_size=32, lr=2e-3,
                                   new_layer_lr_mult=4.0))
    list(trainer.run())
    encoder, rest = trainer.optimizer.param_groups
    assert {id(p) for p in encoder["params"]} == {id(p) for p in trainer.model.encoder.parameters()}
    assert len(encoder["params"]) + len(rest["params"]) == len(list(trainer.model.parameters()))
    assert rest["lr"] == pytest.approx(4 * encoder["lr"]) and encoder["lr"] == pytest.approx(2e-3 / 30)  # warm-up
    trainer.close()
    scratch = Trainer(root, config(steps=1, lr=2e-3, new_layer_lr_mult=4.0))
    list(scratch.run())
    (group,) = scratch.optimizer.param_groups
    assert group["lr"] == pytest.approx(2e-3 / 30)
    scratch.close()


def test_preparing_marks_does_not_count_against_the_time_budget(tmp_path, monkeypatch):
    """Building targets (GrabCut seeds for boxed images take about a second each) is not training: a two-second
    budget still trains after a first batch whose targets took ten seconds on the trainer's clock."""
    import dataclasses

    import engine.training.trainer as trainer_module

    clock = [0.0]

    def monotonic():
        clock[0] += 0.01
        return clock[0]

    next_loaded = Trainer.next_loaded

    def slow_first_batch(self):
        loaded = next_loaded(self)
        if self.step == 0:
            clock[0] += 10.0
            loaded = dataclasses.replace(loaded, prepare_s=10.0)
        return loaded

    monkeypatch.setattr(trainer_module.time, "monotonic", monotonic)
    monkeypatch.setattr(Trainer, "next_loaded", slow_first_batch)
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=5, max_minutes=2 / 60))
    records = list(trainer.run())
    trainer.close()
    assert [r.step for r in records] == list(range(1, 6))
    assert "not counted as training time" in " ".join(records[0].notes)
    assert trainer.active_s < 2


@pytest.mark.parametrize("supervision, balanced_pce, expected", [
    ("scribbles", True, True), ("scribbles", False, False), ("full", True, False)])
def test_strokes_train_with_the_class_balanced_pce_and_full_masks_with_the_plain_mean(
        tmp_path, monkeypatch, supervision, balanced_pce, expected):
    trainer_module = terms
    seen = []
    original = trainer_module.partial_cross_entropy

    def spy(logits, seeds, balanced=False):
        seen.append(balanced)
        return original(logits, seeds, balanced=balanced)

    monkeypatch.setattr(trainer_module, "partial_cross_entropy", spy)
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=2, supervision=supervision, balanced_pce=balanced_pce))
    list(trainer.run())
    trainer.close()
    assert seen == [expected, expected]


def test_pce_balances_drawn_seeds_and_averages_derived_ones(tmp_path):
    from engine.losses.pce import partial_cross_entropy
    from engine.training.data import Batch

    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config())
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 8, 8, generator=g)
    seeds = torch.full((2, 8, 8), 255)
    drawn = torch.zeros((2, 8, 8), dtype=torch.bool)
    seeds[0, 1, :6], seeds[0, 6, :2] = 0, 1  # image 0: strokes, six pixels of class 0 and two of class 1
    drawn[0] = seeds[0] != 255
    seeds[1, :4], seeds[1, 4:, 3:] = 0, 1  # image 1: seeds from a box (outside it background, inside GrabCut's)
    batch = Batch(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), seeds, drawn, [],
                  torch.zeros(2, 2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool),
                  torch.zeros(2, dtype=torch.bool), False)
    logp = torch.log_softmax(logits, 1)
    strokes = (-logp[0, 0, 1, :6].mean() - logp[0, 1, 6, :2].mean()) / 2
    derived = -torch.cat([logp[1, 0, :4].flatten(), logp[1, 1, 4:, 3:].flatten()]).mean()
    assert torch.allclose(pce_loss(logits, batch, trainer.config.balanced_pce), (strokes + derived) / 2, atol=1e-6)
    trainer.config.balanced_pce = False
    assert torch.allclose(pce_loss(logits, batch, trainer.config.balanced_pce), partial_cross_entropy(logits, seeds), atol=1e-6)
    trainer.close()


@pytest.mark.parametrize("background", [False, True])
def test_boxed_images_take_a_lighter_regularizer_only_without_a_background_class(tmp_path, background):
    from engine.losses.dense_crf import dense_crf_loss
    from engine.training.data import Batch

    root = two_tone_project(tmp_path / "p")  # classes left, right: no background, every class boxed
    if background:
        with Project.open(root) as project:
            project.store.rename_class(project.store.classes()[0].id, "background")
    trainer = Trainer(root, config(supervision="marks", reg_ramp_steps=0, boxed_reg_factor=0.25))
    g = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 16, 16, generator=g) * 255
    logits = torch.randn(2, 2, 16, 16, generator=g)
    batch = Batch(images, images, torch.full((2, 16, 16), 255), torch.zeros((2, 16, 16), dtype=torch.bool),
                  [torch.zeros((0, 5))] * 2, torch.zeros(2, 2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool),
                  torch.tensor([False, True]), False)  # image 1 is boxed
    probs = logits.softmax(1)
    c = trainer.config
    # the dense CRF loss at its weight with the regional colour term at its own
    each = [c.effective_reg_weight * dense_crf_loss(images[i:i + 1], probs[i:i + 1], sigma_rgb=c.sigma_rgb,
                                                    sigma_xy=c.sigma_xy)
            + c.colour_weight * colour_consistency_loss(images[i:i + 1], probs[i:i + 1]) for i in range(2)]
    factor = 1.0 if background else 0.25
    expected = (each[0] + factor * each[1]) / 2
    assert torch.allclose(trainer._losses(logits, batch)["reg"], expected, rtol=1e-5)
    batch.boxed[:] = False  # no boxed image: the plain batch mean
    assert torch.allclose(trainer._losses(logits, batch)["reg"], (each[0] + each[1]) / 2, rtol=1e-5)
    trainer.close()


@pytest.mark.parametrize("regularizer,colour_weight", [("dense", 0.0), ("colour", 1.0), ("ncut", 2.0), ("none", 1.0)])
def test_regional_colour_term_comes_with_the_pairwise_regularizers(tmp_path, regularizer, colour_weight):
    """The pairwise regularizers carry the regional colour term at ``colour_weight``; the colour regularizer is
    that term alone (at its own weight), and none is none."""
    from engine.losses import dense_crf_loss, normalized_cut_loss

    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(regularizer=regularizer, colour_weight=colour_weight))
    c = trainer.config
    g = torch.Generator().manual_seed(4)
    images = torch.rand(2, 3, 16, 16, generator=g) * 255
    probs = torch.randn(2, 2, 16, 16, generator=g).softmax(1)
    colour = colour_consistency_loss(images, probs)
    expected = {"dense": c.effective_reg_weight * dense_crf_loss(images, probs, c.sigma_rgb, c.sigma_xy),
                "colour": c.effective_reg_weight * colour,
                "ncut": c.effective_reg_weight * normalized_cut_loss(images, probs, c.sigma_rgb, c.sigma_xy)
                + colour_weight * colour,
                "none": torch.zeros(())}[regularizer]
    assert torch.allclose(regularizer_loss(trainer.config, images, probs), expected, rtol=1e-5)
    grad = regularizer_gradient(images, probs, trainer.config)
    assert (grad is None) == (regularizer == "none")
    trainer.close()


def test_grayscale_images_go_without_the_colour_term(tmp_path):
    """An intensity model merges classes that share intensities (the heart's structures in MRI): on a one-channel
    image the pairwise regularizer comes alone."""
    from engine.losses import dense_crf_loss

    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(regularizer="dense", colour_weight=1.0))
    c = trainer.config
    g = torch.Generator().manual_seed(5)
    gray = torch.rand(2, 1, 16, 16, generator=g) * 255
    probs = torch.randn(2, 2, 16, 16, generator=g).softmax(1)
    expected = c.effective_reg_weight * dense_crf_loss(gray, probs, c.sigma_rgb, c.sigma_xy)
    assert torch.allclose(regularizer_loss(trainer.config, gray, probs), expected, rtol=1e-5)
    colour = torch.cat([gray] * 3, 1)
    assert not torch.allclose(regularizer_loss(trainer.config, colour, probs), expected, rtol=1e-5)
    trainer.close()


def test_continue_from_a_saved_network(tmp_path):
    """Stop, then Continue: the network starts where it stopped, not from its initial weights."""
    root = two_tone_project(tmp_path / "p")
    trainer = Trainer(root, config(steps=3))
    list(trainer.run())
    trainer.save(tmp_path / "model")
    saved = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.close()
    again = Trainer(root, config(steps=3, init_from=str(tmp_path / "model")))
    for k, v in again.model.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)
    assert again.pretrained.startswith("continued from")
    again.close()
    fresh = Trainer(root, config(steps=3))
    assert any(not torch.equal(v, saved[k]) for k, v in fresh.model.state_dict().items())
    fresh.close()
    with Project.open(root) as project:
        project.store.add_class("third")
    with pytest.raises(TrainingError, match="restart instead"):
        Trainer(root, config(steps=3, init_from=str(tmp_path / "model")))


def test_the_trainer_scores_every_image_in_turn_for_suggestions(tmp_path):
    from engine.suggest import needs_marks

    root = two_tone_project(tmp_path / "p", n_images=3)
    trainer = Trainer(root, config(steps=3, score_interval_s=1e-9, score_images=2))
    records = list(trainer.run())
    ids = [r.id for r in trainer.project.store.images()]
    assert [list(r.scores) for r in records] == [ids[:2], ids[2:], ids[:2]]  # in turn, then again
    image, _ = trainer.source.image(ids[0])  # scored after the last step, by the network as it is now
    marked = trainer.project.store.seed_map(ids[0], image.shape[:2]) != 255
    assert marked.any()
    probs = trainer.predict_probs(image).numpy()
    assert records[2].scores[ids[0]] == pytest.approx(needs_marks(probs, marked), abs=1e-6)
    assert all(0 <= v <= 1 for r in records for v in r.scores.values())
    trainer.close()
    assert not any(r.scores for r in Trainer(root, config(steps=2)).run())  # off by default
