"""GrabCut from boxes: the naive full proposals, and the confident part of its answer used as seeds."""
import numpy as np

from engine.annotations.types import UNLABELED
from engine.baselines.grabcut import grabcut_box_seeds, grabcut_from_boxes


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A bright 40x40 square object on a textured dark background, boxed with a 10 px margin."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 60, (100, 120, 3)).astype(np.uint8)
    img[30:70, 40:80] = rng.integers(190, 250, (40, 40, 3))
    truth = np.zeros((100, 120), np.uint8)
    truth[30:70, 40:80] = 1
    return img, truth


def test_proposals_fill_the_object_and_nothing_outside_the_box():
    img, truth = scene()
    labels = grabcut_from_boxes(img, np.array([[1, 30, 20, 90, 80]], np.float32), 2)
    assert (labels == truth).mean() > 0.98
    assert (labels[:20] == 0).all() and (labels[:, :30] == 0).all()


def test_seeds_trust_grabcut_background_and_its_foreground_in_the_box_centre():
    img, truth = scene()
    seeds = grabcut_box_seeds(img, np.array([[1, 30, 20, 90, 80]], np.float32), margin_fraction=0.05,
                              center_fraction=0.5)
    assert set(np.unique(seeds)) == {0, 1, UNLABELED}
    # object seeds: the 60 px box's central 30 x 30 square (rows 35..64, cols 45..74), all on the object
    assert (seeds[35:65, 45:75] == 1).all() and (seeds == 1).sum() == 30 * 30
    # background seeds: inside the box, off the object and at least 3 px (5 % of 60) from it
    bg = seeds == 0
    assert not bg[~np.pad(np.ones((60, 60), bool), ((20, 20), (30, 30)))].any()  # nothing outside the box
    assert not bg[27:73, 40:80].any() and not bg[30:70, 37:83].any()  # 3 px beyond each side of the square
    assert 60 * 60 - 46 * 46 <= bg.sum() <= 60 * 60 - 46 * 46 + 16  # the disc leaves the band's corners round
    assert (seeds[truth.astype(bool)] != 0).all()


def test_boxes_never_seed_background_inside_another_box():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 60, (100, 140, 3)).astype(np.uint8)
    img[30:70, 20:60] = 220
    img[35:75, 75:115] = (40, 200, 240)
    boxes = np.array([[1, 10, 20, 80, 80], [2, 65, 25, 125, 85]], np.float32)  # overlapping in x 65..80
    seeds = grabcut_box_seeds(img, boxes)
    assert not (seeds[25:80, 65:80] == 0).any()
    assert (seeds == 1).any() and (seeds == 2).any() and (seeds == 0).any()


def test_seeds_of_two_classes_never_claim_the_same_pixel():
    img = np.zeros((60, 60, 3), np.uint8)
    img[10:50, 10:50] = 220
    boxes = np.array([[1, 5, 5, 55, 55], [2, 5, 5, 55, 55]], np.float32)  # two classes, one object
    seeds = grabcut_box_seeds(img, boxes)
    assert (seeds == UNLABELED).all()
    one = grabcut_box_seeds(img, boxes[:1])
    assert (one == 1).sum() > 20 * 20 and (one == 0).any()


def test_a_smaller_box_of_another_class_lies_on_top_of_a_larger_one():
    """A cow box inside a grass box: the grass box's centre seeds stop at the cow's box, as in the proposals."""
    rng = np.random.default_rng(2)
    img = rng.integers(0, 40, (120, 160, 3)).astype(np.uint8)
    img[10:110, 10:150] = rng.integers(60, 120, (100, 140, 3))  # the large region
    img[45:75, 65:95] = 230  # a small bright object in its centre
    boxes = np.array([[1, 10, 10, 150, 110], [2, 60, 40, 100, 80]], np.float32)
    seeds = grabcut_box_seeds(img, boxes)
    assert not (seeds[40:80, 60:100] == 1).any()
    assert (seeds[35:85, 45:115] == 1).any() and (seeds[40:80, 60:100] == 2).any()
    proposals = grabcut_from_boxes(img, boxes, 3)
    seeded = (seeds != UNLABELED) & (seeds != 0)
    assert (seeds[seeded] == proposals[seeded]).all()


def test_a_box_whose_grabcut_answer_stops_short_of_a_side_seeds_no_background():
    """The 40 px object fills only the left half of an 85 px wide box: GrabCut's foreground ends 35 px (41 %)
    short of the right side, so its background in that box is not trusted; its centre foreground still is."""
    img, truth = scene()
    seeds = grabcut_box_seeds(img, np.array([[1, 30, 20, 115, 80]], np.float32))
    assert not (seeds == 0).any()
    assert (seeds == 1).any() and (truth[seeds == 1] == 1).all()
    tight = grabcut_box_seeds(img, np.array([[1, 30, 20, 90, 80]], np.float32))
    assert (tight == 0).sum() > 1000


def test_with_no_background_class_only_the_boxes_speak():
    """MSRC-like: every class is boxed (a large region and an object inside it). Outside every box nothing is
    claimed; inside, the proposals give each pixel the class of a box holding it, and the seeds are only the
    boxes' confident centres, never a background class."""
    rng = np.random.default_rng(2)
    img = rng.integers(0, 40, (120, 160, 3)).astype(np.uint8)
    img[10:110, 10:150] = rng.integers(60, 120, (100, 140, 3))
    img[45:75, 65:95] = 230
    boxes = np.array([[0, 10, 10, 150, 110], [1, 60, 40, 100, 80]], np.float32)
    proposals = grabcut_from_boxes(img, boxes, 2, background=None)
    inside = np.zeros((120, 160), bool)
    inside[10:110, 10:150] = True
    assert (proposals[~inside] == UNLABELED).all() and (proposals[inside] != UNLABELED).all()
    assert (proposals[50:70, 70:90] == 1).all()  # the object's core
    assert not (proposals[:, :60] == 1).any() and not (proposals[:, 100:] == 1).any()  # class 1 only in its box
    seeds = grabcut_box_seeds(img, boxes, background=None)
    assert not (seeds[~inside] != UNLABELED).any()
    assert set(np.unique(seeds)) == {0, 1, UNLABELED}
    assert (seeds[50:70, 70:90] == 1).all() and not (seeds[40:80, 60:100] == 0).any()
    with_background = grabcut_box_seeds(img, boxes[1:], background=0)  # the object alone, 0 as background
    assert (with_background == 0).any()
    assert not (grabcut_box_seeds(img, boxes[1:], background=None) == 0).any()
