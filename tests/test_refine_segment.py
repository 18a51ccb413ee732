"""Refining a marked image's mask: marks hold, boxes bound the objects, and the image's own colours and edges
recover an object the network only roughly found."""
import numpy as np
import pytest

from engine.annotations.types import UNLABELED
from engine.refine.segment import RefineSettings, allowed_labels, refine_labels


def scene(seed=0, h=60, w=80):
    """A noisy photo-like scene: a textured background and an elliptic object of another colour mixture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    obj = ((xx - 45) / 18.0) ** 2 + ((yy - 30) / 14.0) ** 2 < 1
    img = np.where(rng.random((h, w, 1)) < 0.5, [70, 120, 60], [90, 140, 80]).astype(np.float64)
    img[obj] = np.where(rng.random((obj.sum(), 1)) < 0.5, [200, 60, 50], [230, 90, 70])
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), obj


def strokes(h=60, w=80):
    seeds = np.full((h, w), UNLABELED, np.uint8)
    seeds[30, 40:50] = 1          # a short stroke through the object
    seeds[5, 5:30] = 0            # background strokes
    seeds[50:58, 70] = 0
    return seeds


def test_a_blurry_network_guess_becomes_the_object():
    img, obj = scene()
    yy, xx = np.mgrid[0:60, 0:80]
    blob = np.exp(-(((xx - 40) / 25.0) ** 2 + ((yy - 32) / 20.0) ** 2))    # offset, too large, no edges
    probs = np.stack([1 - 0.8 * blob, 0.8 * blob]).astype(np.float32)
    labels = refine_labels(img, probs, seeds=strokes(), background=0)
    iou = ((labels == 1) & obj).sum() / ((labels == 1) | obj).sum()
    raw = probs.argmax(0) == 1
    assert iou > 0.95 > (raw & obj).sum() / (raw | obj).sum()


def test_strokes_are_kept_even_against_the_network():
    img, _ = scene(1)
    probs = np.zeros((2, 60, 80), np.float32)
    probs[0] = 1.0                                # the network sees no object at all
    seeds = strokes()
    labels = refine_labels(img, probs, seeds=seeds, background=0)
    marked = seeds != UNLABELED
    assert (labels[marked] == seeds[marked]).all()


def test_nothing_outside_the_box_is_the_object():
    img, obj = scene(2)
    probs = np.full((2, 60, 80), 0.5, np.float32)
    probs[1, :, :] = 0.9                          # the network calls everything object
    probs[0] = 1 - probs[1]
    box = np.array([[1, 27, 16, 64, 45]], np.float32)
    labels = refine_labels(img, probs, boxes=box, background=0)
    inside = np.zeros_like(obj)
    inside[16:45, 27:64] = True
    assert not (labels[~inside] == 1).any()
    assert ((labels == 1) & obj).sum() / ((labels == 1) | obj).sum() > 0.9


def test_allowed_labels_from_marks():
    seeds = np.full((4, 6), UNLABELED, np.uint8)
    seeds[0, 0] = 2
    boxes = np.array([[1, 2, 1, 5, 3]], np.float32)       # class 1 in columns 2..4, rows 1..2
    present = np.array([True, True, False, False])
    allowed = allowed_labels((4, 6), 4, seeds, boxes, present, background=0)
    assert allowed[:, 0, 0].tolist() == [False, False, True, False]   # a stroke: its class only
    assert allowed[1, 1, 2] and allowed[1, 2, 4] and not allowed[1, 0, 2] and not allowed[1, 1, 5]
    assert not allowed[3].any()                   # neither boxed, stroked nor tagged present
    present[3] = True                             # tagged present: allowed, though not boxed
    assert allowed_labels((4, 6), 4, seeds, boxes, present, background=0)[3, 1:].all()
    assert allowed[0].sum() == allowed[0].size - 1   # the background everywhere but on the other class's stroke
    # without a background class boxes say nothing about the outside
    free = allowed_labels((4, 6), 4, None, boxes, None, background=None)
    assert free.all()


def test_grayscale_and_many_classes():
    rng = np.random.default_rng(3)
    img = np.zeros((40, 60, 1), np.uint8)
    img[:, :20], img[:, 20:40], img[:, 40:] = 40, 130, 220
    img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
    seeds = np.full((40, 60), UNLABELED, np.uint8)
    seeds[20, 5:10], seeds[20, 25:30], seeds[20, 45:50] = 0, 1, 2
    probs = np.full((4, 40, 60), 0.25, np.float32)
    labels = refine_labels(img, probs, seeds=seeds, background=0)
    expected = np.repeat(np.array([0] * 20 + [1] * 20 + [2] * 20)[None], 40, 0)
    assert (labels == expected).mean() > 0.97


def test_settings_are_checked():
    with pytest.raises(ValueError):
        RefineSettings(network_error=1.5)
    with pytest.raises(ValueError):
        refine_labels(np.zeros((4, 4, 3), np.uint8), np.full((2, 5, 5), 0.5, np.float32))


def test_full_size_masks_in_bands_equal_one_upsampling(monkeypatch):
    """A huge image's mask is upsampled a band of rows at a time; it must equal F.interpolate of the whole."""
    import torch
    import torch.nn.functional as F

    from engine.refine import masks

    logits = torch.randn(1, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    model = lambda x: logits  # noqa: E731 - a stand-in network with fixed logits
    monkeypatch.setattr(masks, "BAND_VALUES", 5000)
    for w, h in [(200, 150), (53, 37), (31, 20), (1000, 7)]:
        got = masks.predict_full_size(model, np.zeros((37, 53, 3), np.uint8), (w, h), torch.device("cpu"))
        want = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0].argmax(0).numpy()
        np.testing.assert_array_equal(got, want)
