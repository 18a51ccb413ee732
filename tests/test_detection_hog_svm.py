"""HOG features and the linear SVM against hand-worked and brute-force references, and the HOG + SVM detector
learning to find bright squares."""
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from engine.annotations.types import Box
from engine.detection.evaluate import box_iou
from engine.detection.hog import block_grid, blocks_in, descriptor, gradient_votes, l2hys, score_map, window_shape
from engine.detection import hog_svm
from engine.detection.hog_svm import ClassModel, HogSvmConfig, HogSvmDetector, HogSvmTrainer
from engine.detection.linear_svm import class_weights, svm_objective, train_linear_svm
from engine.detection.postprocess import postprocess
from engine.project import Project
from engine.training.common import TrainingError


def test_gradient_votes_by_hand():
    # A vertical step from 0 to 100 between columns 7 and 8: centred differences give gx = 100 at columns 7 and
    # 8, gy = 0, so orientation 0 degrees, which lies halfway between bin 8 (170) and bin 0 (10): 50 each.
    img = np.zeros((16, 16), np.uint8)
    img[:, 8:] = 100
    votes = gradient_votes(img)
    expected = np.zeros_like(votes)
    expected[0, :, 7:9] = expected[8, :, 7:9] = 50
    np.testing.assert_allclose(votes, expected, atol=1e-4)
    # A horizontal step: 90 degrees is the centre of bin 4, which takes all 100.
    votes = gradient_votes(img.T.copy())
    assert votes[4, 7:9, :].min() == pytest.approx(100) and votes.sum() == pytest.approx(100 * 2 * 16)
    # On colour images the channel with the strongest gradient votes.
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, 8:, 1] = 100
    rgb[:8, :, 2] = 30
    np.testing.assert_allclose(gradient_votes(rgb)[:, :, 7:9], expected[:, :, 7:9], atol=1e-4)


def hog_ref(img):
    """HOG written out pixel by pixel: centred differences (edges replicated), the strongest channel, linear
    interpolation between orientation-bin centres, bilinear weights to the cells around each pixel, blocks of
    2 x 2 cells normalised with L2-Hys."""
    img = img.astype(np.float64)
    if img.ndim == 2:
        img = img[:, :, None]
    h, w, ch = img.shape
    cells = np.zeros((h // 8, w // 8, 9))
    for y in range(h):
        for x in range(w):
            best = (-1.0, 0.0, 0.0)
            for c in range(ch):
                gx = img[y, min(x + 1, w - 1), c] - img[y, max(x - 1, 0), c]
                gy = img[min(y + 1, h - 1), x, c] - img[max(y - 1, 0), x, c]
                if gx * gx + gy * gy > best[0]:
                    best = (gx * gx + gy * gy, gx, gy)
            mag = math.sqrt(best[0])
            pos = (math.atan2(best[2], best[1]) % math.pi) / (math.pi / 9) - 0.5
            b0 = math.floor(pos)
            f = pos - b0
            for i in range(h // 8):
                wy = max(0.0, 1 - abs(y + 0.5 - (8 * i + 4)) / 8)
                for j in range(w // 8):
                    wx = max(0.0, 1 - abs(x + 0.5 - (8 * j + 4)) / 8)
                    cells[i, j, b0 % 9] += mag * (1 - f) * wy * wx
                    cells[i, j, (b0 + 1) % 9] += mag * f * wy * wx
    blocks = np.zeros((h // 8 - 1, w // 8 - 1, 36))
    for i in range(h // 8 - 1):
        for j in range(w // 8 - 1):
            v = np.concatenate([cells[i, j], cells[i, j + 1], cells[i + 1, j], cells[i + 1, j + 1]])
            v = v / math.sqrt(np.sum(v * v) + 1e-6)
            v = np.minimum(v, 0.2)
            blocks[i, j] = v / math.sqrt(np.sum(v * v) + 1e-6)
    return blocks


@pytest.mark.parametrize("shape", [(24, 32), (16, 24, 3)])
def test_hog_matches_the_written_out_definition(shape):
    img = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_allclose(block_grid(img), hog_ref(img), atol=2e-5)
    assert block_grid(img).shape == (shape[0] // 8 - 1, shape[1] // 8 - 1, 36)
    assert block_grid(img[:12, :12]).shape == (0, 0, 36)  # smaller than one block


def test_l2hys_clips_dominant_edges():
    # One strong edge in a block: after L2 it is 1, clipped to 0.2 and renormalised back to 1 (the others stay 0).
    # A flat histogram (all 36 equal, 1/6 each after L2) is below the clip and unchanged.
    img = np.zeros((16, 16), np.uint8)
    img[:, 8:] = 255
    block = block_grid(img)[0, 0]
    assert np.linalg.norm(block) == pytest.approx(1.0, abs=1e-4) and block.max() <= 1.0
    np.testing.assert_allclose(l2hys(np.ones((1, 36))), np.full((1, 36), 1 / 6), atol=1e-5)
    np.testing.assert_allclose(l2hys(np.eye(36)[:1] * 5.0 + 1e-9)[0, 0], 1.0, atol=1e-4)


def test_window_shape_follows_the_aspect_ratio():
    assert window_shape(1.0) == (64, 64)
    assert window_shape(2.0) == (128, 64) and window_shape(0.5) == (64, 128)
    assert window_shape(1.3) == (80, 64)  # 64 * 1.3 = 83.2 -> nearest multiple of 8
    assert window_shape(40.0) == (256, 64)  # aspect clamped to 4
    assert blocks_in((80, 64)) == (7, 9)


def test_score_map_equals_each_windows_descriptor_dot_weights():
    rng = np.random.default_rng(2)
    grid = block_grid(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    weights = rng.normal(size=(3, 4, 36)).astype(np.float32)
    scores = score_map(grid, weights, 0.25)
    assert scores.shape == (grid.shape[0] - 2, grid.shape[1] - 3)
    for j, i in [(0, 0), (2, 3), (scores.shape[0] - 1, scores.shape[1] - 1)]:
        window = grid[j:j + 3, i:i + 4].ravel()
        assert scores[j, i] == pytest.approx(window @ weights.ravel() + 0.25, rel=1e-4)


def test_descriptor_of_a_window_sized_patch_is_its_block_grid():
    patch = np.random.default_rng(3).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    assert descriptor(patch).shape == (7 * 5 * 36,)


def test_svm_hard_margin_by_hand():
    # 1-D points -2, -1 (negative) and 1, 2 (positive): the widest margin puts the boundary at 0 with the support
    # vectors -1 and 1 on the margins, i.e. w = 1, b = 0. A large C approaches that hard-margin solution.
    w, b = train_linear_svm(np.array([[-2.0], [-1.0], [1.0], [2.0]]), np.array([-1, -1, 1, 1]), c=1e4)
    assert w[0] == pytest.approx(1.0, abs=1e-3) and b == pytest.approx(0.0, abs=1e-3)
    # Shifted by 10 the boundary moves with the data (the bias is not regularised).
    w, b = train_linear_svm(np.array([[8.0], [9.0], [11.0], [12.0]]), np.array([-1, -1, 1, 1]), c=1e4)
    assert -b / w[0] == pytest.approx(10.0, abs=1e-2)


def test_svm_solution_is_optimal_on_overlapping_classes():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(0.5, 1, (40, 5)), rng.normal(-0.5, 1, (200, 5))])
    y = np.concatenate([np.ones(40), -np.ones(200)])
    w, b = train_linear_svm(x, y, c=0.1)
    # The objective is convex and differentiable, so its gradient vanishes at the optimum.
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    loss = svm_objective(wt, bt, torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(class_weights(y)), 0.1)
    loss.backward()
    assert float(torch.linalg.norm(wt.grad)) < 1e-3 and abs(float(bt.grad)) < 1e-3
    # Balanced class weights: each class weighs half the total despite 40 vs 200 samples.
    cw = class_weights(y)
    assert cw[:40].sum() == pytest.approx(120) and cw[40:].sum() == pytest.approx(120)
    with pytest.raises(ValueError, match="both classes"):
        class_weights(np.ones(3))


def square_image(rng, size=96):
    img = rng.normal(60, 15, (size, size, 3))
    s = int(rng.integers(22, 32))
    x, y = int(rng.integers(0, size - s)), int(rng.integers(0, size - s))
    img[y:y + s, x:x + s] = rng.normal(200, 15, (s, s, 3))
    return np.clip(img, 0, 255).astype(np.uint8), (x, y, x + s, y + s)


def square_project(root, n=10, seed=0, classes=("background", "square")):
    """Noisy dark images, each with one bright square boxed as class 'square'."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    truth = {}
    for i in range(n):
        img, box = square_image(rng)
        Image.fromarray(img).save(root / f"im{i}.png")
        truth[f"im{i}.png"] = box
    project = Project.create(root, list(classes))
    project.add_folder(root)
    square = project.store.classes()[list(classes).index("square")]
    for rec in project.store.images():
        project.store.add_box(Box(rec.id, square.id, *truth[rec.path]))
    project.close()
    return root


def test_hog_svm_learns_to_find_bright_squares(tmp_path):
    root = square_project(tmp_path / "p")
    trainer = HogSvmTrainer(root, HogSvmConfig(holdout_fraction=0.3, mining_rounds=1))
    records = list(trainer.run())
    # features, SVM, one mining stage per training image, SVM again
    total = 3 + len(trainer.data.samples)
    assert [r.stage for r in records] == list(range(1, total + 1)) and records[-1].total_stages == total
    assert "mining" in records[2].description and "round 2" in records[-1].description
    assert records[0].positives == 2 * len(trainer.data.samples)  # each box and its mirror image
    assert records[-1].negatives > records[0].negatives  # hard negatives were added
    assert trainer.data.heldout, "the split holds some images out"
    scores = trainer.evaluate()
    assert scores.map50 >= 0.75
    # A new image: the best detection after NMS is the square.
    img, box = square_image(np.random.default_rng(99))
    found = postprocess(trainer.detector.detect(img), trainer.detector.default_score_threshold, 0.3)
    assert len(found) >= 1 and box_iou(found.boxes[:1], [box])[0, 0] >= 0.5
    # Saved as JSON + .npy, loaded without pickle, it detects exactly the same.
    trainer.save(tmp_path / "run")
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert len(files) == 2 and files[0] == "detector.json" and re.fullmatch(r"hog_svm_class1-\w+\.npy", files[1])
    trainer.save(tmp_path / "run")  # saved again: the earlier weights make way
    assert len(list((tmp_path / "run").iterdir())) == 2
    loaded = HogSvmDetector.load(tmp_path / "run")
    again = loaded.detect(img)
    raw = trainer.detector.detect(img)
    np.testing.assert_array_equal(again.boxes, raw.boxes)
    np.testing.assert_array_equal(again.scores, raw.scores)
    trainer.close()


def test_a_stop_during_mining_keeps_the_first_svms(tmp_path):
    trainer = HogSvmTrainer(square_project(tmp_path / "p", n=6), HogSvmConfig(holdout_fraction=0.0, mining_rounds=1))
    records = trainer.run()
    for record in records:
        if "mining" in record.description:
            break
    records.close()
    assert trainer.detector is not None and [m.label for m in trainer.detector.models] == [1]
    img, _ = square_image(np.random.default_rng(5))
    assert len(trainer.detector.detect(img)) > 0
    trainer.close()


def test_hog_svm_needs_boxes(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "a.png")
    with Project.create(root, ["background", "thing"]) as project:
        project.add_folder(root)
    trainer = HogSvmTrainer(root, HogSvmConfig())
    with pytest.raises(TrainingError, match="no training image has boxes"):
        list(trainer.run())
    trainer.close()
    with pytest.raises(ValueError, match="multiple of 8"):
        HogSvmConfig(window_short_side=60)


def test_only_the_best_windows_per_class_reach_nms(monkeypatch):
    rng = np.random.default_rng(3)
    weights = rng.normal(0, 0.05, (7, 7, 36)).astype(np.float32)
    model = ClassModel(1, (64, 64), 8, weights, 0.0, [0])
    detector = HogSvmDetector(["background", "thing"], 512, 1.2, 2048, [model])
    img = rng.integers(0, 255, (160, 200, 3)).astype(np.uint8)
    (every,) = detector.detect_per_class(img)
    assert len(every) > 100  # every window lies within the margin
    monkeypatch.setattr(hog_svm, "PRE_NMS_PER_CLASS", 40)
    (best,) = detector.detect_per_class(img)
    assert len(best) == 40
    np.testing.assert_allclose(np.sort(best.scores), np.sort(every.scores)[-40:])


def test_class_zero_is_found_where_no_class_is_background(tmp_path):
    # MSRC-like: no class named background, the boxed class comes first and must be learnt like any other.
    root = square_project(tmp_path / "p", classes=("square", "sky"))
    trainer = HogSvmTrainer(root, HogSvmConfig(holdout_fraction=0.3, mining_rounds=0))
    list(trainer.run())
    assert [m.label for m in trainer.detector.models] == [0]
    scores = trainer.evaluate()
    assert scores.ap50[0] >= 0.75 and scores.ap50[1] is None
    trainer.close()
