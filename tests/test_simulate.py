"""The scribble simulator: strokes stay inside their regions, follow them, and are reproducible."""
import numpy as np
import pytest
from PIL import Image

from engine.datasets.simulate import rasterize_scribbles, simulate_scribbles, zhang_suen_thinning


def check_inside(mask, scribbles):
    seeds = rasterize_scribbles(mask.shape, scribbles)
    labelled = seeds != 255
    np.testing.assert_array_equal(seeds[labelled], mask[labelled])
    return seeds


def test_rectangle_gets_one_stroke_along_its_long_axis():
    mask = np.zeros((60, 120), np.uint8)
    mask[20:40, 10:110] = 1
    strokes = [s for s in simulate_scribbles(mask, ratio=1.0, min_area=10) if s.label == 1]
    assert len(strokes) == 1
    pts = strokes[0].points
    assert np.ptp(pts[:, 0]) > 60 and np.ptp(pts[:, 1]) < 6   # horizontal, long
    assert np.all(np.abs(pts[:, 1] - 30) < 4)                # near the middle row
    check_inside(mask, strokes)


def test_each_component_and_ring():
    mask = np.zeros((100, 100), np.uint8)
    mask[10:30, 10:30] = 1
    mask[60:90, 55:95] = 1
    yy, xx = np.mgrid[:100, :100]
    r = np.hypot(yy - 50, xx - 25)
    mask[(r > 12) & (r < 20) & (xx < 45)] = 2
    mask[0:3, 0:3] = 1  # too small
    s = simulate_scribbles(mask, min_area=50)
    assert sum(x.label == 1 for x in s) == 2
    assert sum(x.label == 2 for x in s) == 1
    seeds = check_inside(mask, s)
    assert (seeds[0:3, 0:3] == 255).all()


def test_void_never_labelled_and_random_masks_inside():
    rng = np.random.default_rng(0)
    for trial in range(10):
        mask = np.zeros((80, 90), np.uint8)
        yy, xx = np.mgrid[:80, :90]
        for k in range(6):
            cy, cx, a, b = rng.uniform(0, 80), rng.uniform(0, 90), rng.uniform(5, 30), rng.uniform(5, 30)
            mask[((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2 < 1] = rng.integers(1, 4)
        mask[rng.random(mask.shape) < 0.02] = 255
        mask[:, 40:42] = 255
        s = simulate_scribbles(mask, ratio=float(rng.uniform(0.1, 1)), radius=float(rng.uniform(0.5, 4)),
                               seed=trial)
        seeds = check_inside(mask, s)
        assert not (seeds[mask == 255] != 255).any()


def test_seed_reproducible_and_ratio_controls_length():
    mask = np.zeros((80, 200), np.uint8)
    mask[30:50, 10:190] = 1
    a = simulate_scribbles(mask, ratio=0.3, seed=1)
    b = simulate_scribbles(mask, ratio=0.3, seed=1)
    c = simulate_scribbles(mask, ratio=0.3, seed=7)
    assert all(np.array_equal(x.points, y.points) for x, y in zip(a, b))
    assert any(not np.array_equal(x.points, y.points) for x, y in zip(a, c))
    short = (rasterize_scribbles(mask.shape, a) != 255).sum()
    full = (rasterize_scribbles(mask.shape, simulate_scribbles(mask, ratio=1.0)) != 255).sum()
    assert full > 2 * short
    with pytest.raises(ValueError):
        simulate_scribbles(mask, ratio=0)


def test_thinning_gives_one_pixel_wide_connected_line():
    region = np.zeros((30, 60), bool)
    region[10:20, 5:55] = True
    sk = zhang_suen_thinning(region)
    assert sk.any() and (sk <= region).all()
    assert sk.sum(0)[15:45].max() == 1  # one pixel per column in the middle


@pytest.mark.data
def test_real_horse_masks_inside_and_sparse(shared_data):
    masks = sorted((shared_data / "horses" / "masks").glob("*.png"))[:15]
    fractions = []
    for i, path in enumerate(masks):
        mask = np.array(Image.open(path))
        seeds = check_inside(mask, simulate_scribbles(mask, seed=i))
        fractions.append(np.mean(seeds != 255))
        assert set(np.unique(seeds)) - {255} == set(np.unique(mask)) - {255}  # every class marked
    # Sparse like human scribbles (ACDC's real ones label about 1% of pixels).
    assert 0.003 < np.mean(fractions) < 0.05
