"""Stroke rasterization against a brute-force distance reference and hand-worked cases."""
import numpy as np
import pytest

from engine.annotations.raster import rasterize, seed_map_to_pens, stroke_footprint


def brute_force(shape, pens, scale=1.0):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = xx + 0.5, yy + 0.5
    out = np.full(shape, 255, np.uint8)
    for label, radius, points in pens:
        pts = np.asarray(points, np.float64) * scale
        r = radius * scale
        best = np.full(shape, np.inf)
        pieces, cur = [], []
        for p in pts:
            if np.isnan(p).any():
                pieces.append(cur)
                cur = []
            else:
                cur.append(p)
        pieces.append(cur)
        for piece in pieces:
            if not piece:
                continue
            segs = [(piece[0], piece[0])] if len(piece) == 1 else list(zip(piece[:-1], piece[1:]))
            for a, b in segs:
                d = b - a
                L2 = d @ d
                t = np.zeros(shape) if L2 == 0 else np.clip(((cx - a[0]) * d[0] + (cy - a[1]) * d[1]) / L2, 0, 1)
                dist2 = (cx - a[0] - t * d[0]) ** 2 + (cy - a[1] - t * d[1]) ** 2
                best = np.minimum(best, dist2)
        out[best <= r * r] = 255 if label is None else label
    return out


def test_worked_single_pixel_dot():
    # A dot of radius 0.5 at a pixel centre covers exactly that pixel (neighbours are 1.0 away).
    m = rasterize((5, 5), [(3, 0.5, np.array([[2.5, 1.5]]))])
    expected = np.full((5, 5), 255, np.uint8)
    expected[1, 2] = 3
    assert np.array_equal(m, expected)


def test_worked_horizontal_segment_radius_one():
    # Segment from centre of (1,2) to centre of (4,2), radius 1: row 2 cols 1..4, rows 1 and 3 cols 1..4
    # (distance exactly 1), and the end pixels (0,2) and (5,2) at distance 1; diagonals at sqrt(2) excluded.
    m = rasterize((5, 7), [(1, 1.0, np.array([[1.5, 2.5], [4.5, 2.5]]))])
    expected = np.full((5, 7), 255, np.uint8)
    expected[1:4, 1:5] = 1
    expected[2, 0] = expected[2, 5] = 1
    assert np.array_equal(m, expected)


@pytest.mark.parametrize("seed", range(12))
def test_random_strokes_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
    pens = []
    for _ in range(rng.integers(1, 5)):
        n = int(rng.integers(1, 6))
        pts = rng.uniform(-5, max(shape) + 5, size=(n, 2))
        if n > 3 and rng.random() < 0.5:
            pts[2] = np.nan  # two pieces
        label = None if rng.random() < 0.2 else int(rng.integers(0, 4))
        pens.append((label, float(rng.choice([0.5, 1.0, 1.7, 3.0, 6.25])), pts.astype(np.float32)))
    scale = float(rng.choice([1.0, 0.5, 1.75]))
    np.testing.assert_array_equal(rasterize(shape, pens, scale), brute_force(shape, pens, scale))


def test_stroke_outside_image_paints_nothing():
    m, origin = stroke_footprint((10, 10), np.array([[-50, -50], [-20, -30]], np.float32), 2.0)
    assert m.size == 0
    assert (rasterize((10, 10), [(1, 2.0, np.array([[-50, -50]]))]) == 255).all()


def test_eraser_and_painting_order():
    pens = [(1, 3.0, np.array([[5, 5], [15, 5]])), (2, 2.0, np.array([[10, 0], [10, 10]])),
            (None, 1.0, np.array([[5.5, 5.5]]))]
    np.testing.assert_array_equal(rasterize((12, 20), pens), brute_force((12, 20), pens))


@pytest.mark.parametrize("seed", range(5))
def test_seed_map_to_pens_is_exact(seed):
    rng = np.random.default_rng(seed)
    seeds = np.full((40, 50), 255, np.uint8)
    noise = rng.random((40, 50))
    seeds[noise < 0.15] = 0
    seeds[noise > 0.9] = 2
    seeds[10:14, 5:40] = 1
    pens = seed_map_to_pens(seeds)
    assert all(r == 0.5 for _, r, _ in pens)
    np.testing.assert_array_equal(rasterize(seeds.shape, pens), seeds)
