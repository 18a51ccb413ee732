"""The scribble simulator against brute-force references and hand-worked cases: strokes rasterize exactly, stay
inside their own region (a hard guarantee), follow the region's centre line, and are reproducible."""
import cv2
import numpy as np
import pytest
from PIL import Image

from engine.datasets import simulate
from engine.datasets.simulate import Scribble, rasterize_scribbles, simulate_scribbles, zhang_suen_thinning


def brute_force_seeds(shape, scribbles):
    """Seed map by the definition: every pixel centre against every segment, by endpoint and perpendicular
    distances (a different formula from the rasterizer's clamped projection); also the squared distances."""
    h, w = shape
    cy, cx = np.mgrid[0:h, 0:w] + 0.5
    out = np.full(shape, 255, np.uint8)
    gaps = []
    for s in scribbles:
        pts = s.points.astype(np.float64)
        segs = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
        best = np.full(shape, np.inf)
        for a, b in segs:
            best = np.minimum(best, np.minimum((cx - a[0]) ** 2 + (cy - a[1]) ** 2, (cx - b[0]) ** 2 + (cy - b[1]) ** 2))
            d = b - a
            length = np.hypot(*d)
            if length > 0:
                along = ((cx - a[0]) * d[0] + (cy - a[1]) * d[1]) / length
                across = ((cx - a[0]) * d[1] - (cy - a[1]) * d[0]) / length
                best = np.where((along > 0) & (along < length), np.minimum(best, across ** 2), best)
        out[best <= s.radius ** 2] = s.label
        gaps.append(np.abs(best - s.radius ** 2))
    return out, np.min(gaps, axis=0)


def test_rasterize_worked_case():
    # Segment along row 1 from pixel (1, 1) to pixel (3, 1), radius 1: the row itself plus the pixels exactly 1
    # away (above, below, and the two beyond the ends); the corners at sqrt(2) stay out.
    s = Scribble(label=4, radius=1.0, points=np.float32([[1.5, 1.5], [3.5, 1.5]]))
    expected = np.array([[255, 4, 4, 4, 255],
                         [4, 4, 4, 4, 4],
                         [255, 4, 4, 4, 255],
                         [255, 255, 255, 255, 255]], np.uint8)
    np.testing.assert_array_equal(rasterize_scribbles((4, 5), [s]), expected)
    dot = Scribble(label=0, radius=0.5, points=np.float32([[2.5, 2.5]]))
    seeds = rasterize_scribbles((4, 5), [s, dot])
    assert seeds[2, 2] == 0 and (seeds == 0).sum() == 1  # later scribbles paint over earlier ones


def test_rasterize_matches_brute_force():
    rng = np.random.default_rng(3)
    for trial in range(40):
        shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
        scribbles = []
        for k in range(int(rng.integers(1, 5))):
            pts = rng.uniform(-3, max(shape) + 3, size=(int(rng.integers(1, 6)), 2)).astype(np.float32)
            if k == 0:
                pts = np.round(pts) + np.float32(0.5)  # on pixel centres: distance ties at integer radii
            radius = float(rng.choice([0.5, 1.0, 1.5, 2.0, rng.uniform(0.5, 6)]))
            scribbles.append(Scribble(int(rng.integers(0, 5)), radius, pts))
        expected, gap = brute_force_seeds(shape, scribbles)
        clear = gap > 1e-6  # where rounding could decide, either answer is fine
        got = rasterize_scribbles(shape, scribbles)
        np.testing.assert_array_equal(got[clear], expected[clear])


def check_strokes(mask, scribbles, min_area=50, ignore_index=255):
    """The hard guarantee: every scribble paints only pixels of one region of its class, and every region of at
    least ``min_area`` pixels gets exactly one scribble (so void pixels are never labelled)."""
    regions = {}
    for label in np.unique(mask):
        if label == ignore_index:
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats((mask == label).astype(np.uint8), connectivity=8)
        regions[int(label)] = comp, {k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_area}
    hit = []
    for s in scribbles:
        assert s.points.dtype == np.float32 and s.points.shape[1] == 2 and s.radius >= 0.5
        painted = rasterize_scribbles(mask.shape, [s]) != 255
        comp, big = regions[s.label]
        ids = np.unique(comp[painted])
        assert len(ids) == 1 and ids[0] in big, f"scribble of class {s.label} leaves its region"
        hit.append((s.label, int(ids[0])))
    assert sorted(hit) == sorted((label, k) for label, (_, big) in regions.items() for k in big)
    seeds = rasterize_scribbles(mask.shape, scribbles)
    labelled = seeds != 255
    np.testing.assert_array_equal(seeds[labelled], mask[labelled])
    return seeds


def test_rectangle_gets_one_stroke_along_its_long_axis():
    mask = np.zeros((60, 120), np.uint8)
    mask[20:40, 10:110] = 1
    scribbles = simulate_scribbles(mask, ratio=1.0, radius=2.0, min_area=10)
    check_strokes(mask, scribbles, min_area=10)
    (stroke,) = [s for s in scribbles if s.label == 1]
    pts = stroke.points
    assert np.ptp(pts[:, 0]) > 70 and np.ptp(pts[:, 1]) <= 1  # horizontal, most of the length
    assert np.all(np.abs(pts[:, 1] - 30) <= 1)                # on the middle row
    assert stroke.radius == 2.0


@pytest.mark.parametrize("radius, margin, expected", [(1.5, 1.0, 1.5), (4.0, 1.0, 2.5), (3.0, 0.0, 3.0)])
def test_radius_shrinks_to_the_region(radius, margin, expected):
    # A 7 px high bar: its centre row is 4 px from the nearest outside pixel centres, 3.5 px from the boundary.
    mask = np.zeros((40, 100), np.uint8)
    mask[20:27, 10:90] = 1
    scribbles = simulate_scribbles(mask, ratio=1.0, radius=radius, margin=margin)
    check_strokes(mask, scribbles)
    (stroke,) = [s for s in scribbles if s.label == 1]
    assert stroke.radius == expected and np.all(stroke.points[:, 1] == 23.5)
    column = rasterize_scribbles(mask.shape, [stroke])[:, 50]
    assert np.array_equal(np.flatnonzero(column == 1), np.arange(23 - int(expected), 24 + int(expected)))


def test_two_blobs_ring_and_specks():
    mask = np.zeros((100, 120), np.uint8)
    mask[10:30, 10:30] = 1
    mask[60:90, 60:100] = 1
    yy, xx = np.mgrid[:100, :120]
    dist = np.hypot(yy - 50, xx - 30)
    mask[(dist > 12) & (dist < 20)] = 2
    mask[2:8, 110:116] = 1  # 36 px: below min_area
    mask[90:97, 5:12] = 3   # 49 px: below min_area
    scribbles = simulate_scribbles(mask, min_area=50, ratio=1.0)
    seeds = check_strokes(mask, scribbles, min_area=50)
    assert [s.label for s in scribbles].count(1) == 2
    (ring,) = [s for s in scribbles if s.label == 2]
    assert np.all(np.abs(np.hypot(ring.points[:, 1] - 50.5, ring.points[:, 0] - 30.5) - 16) < 2.5)  # mid-ring
    assert np.ptp(ring.points, axis=0).max() > 25  # goes a good way round
    assert (seeds[2:8, 110:116] == 255).all() and (seeds[90:97, 5:12] == 255).all()


def test_single_pixel_skeleton_gives_a_dot():
    mask = np.zeros((12, 12), np.uint8)
    mask[4:7, 5:8] = 1  # a 3x3 block thins to its centre pixel (6, 5)
    assert np.array_equal(np.argwhere(zhang_suen_thinning(mask == 1)), [[5, 6]])
    (dot,) = [s for s in simulate_scribbles(mask, min_area=9) if s.label == 1]
    np.testing.assert_array_equal(dot.points, [[6.5, 5.5]])
    check_strokes(mask, simulate_scribbles(mask, min_area=9), min_area=9)


def random_ellipses(rng, shape=(90, 110), n=8, classes=4):
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros(shape, np.uint8)
    for _ in range(n):
        cy, cx, a, b, t = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, 35), rng.uniform(3, 35), rng.uniform(0, np.pi)
        u, v = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t), -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        mask[(u / a) ** 2 + (v / b) ** 2 < 1] = rng.integers(0, classes)
    return mask


def test_random_masks_stay_inside_and_void_stays_unlabelled():
    rng = np.random.default_rng(0)
    for trial in range(25):
        mask = random_ellipses(rng)
        mask[rng.random(mask.shape) < 0.01] = 255  # scattered void pixels
        mask[:, 50:52] = 255                        # a void band splitting regions
        kwargs = dict(ratio=float(rng.uniform(0.05, 1)), radius=float(rng.uniform(0.5, 5)),
                      margin=float(rng.choice([0.0, 0.5, 1.0, 2.0])), min_area=int(rng.integers(1, 80)), seed=trial)
        scribbles = simulate_scribbles(mask, **kwargs)
        seeds = check_strokes(mask, scribbles, min_area=kwargs["min_area"])
        assert (seeds[mask == 255] == 255).all()
        assert all(s.radius <= kwargs["radius"] for s in scribbles)


def test_unsimplified_fallback_stays_inside(monkeypatch):
    # A coarse simplification cuts corners out of curved regions, so strokes fall back to the pixel path.
    monkeypatch.setattr(simulate, "SIMPLIFY_TOLERANCE", 6.0)
    rng = np.random.default_rng(1)
    for trial in range(15):
        mask = random_ellipses(rng, n=12)
        check_strokes(mask, simulate_scribbles(mask, ratio=1.0, radius=float(rng.uniform(0.5, 6)), margin=0.0,
                                               min_area=5, seed=trial), min_area=5)


def test_tips_in_corners_do_not_thin_the_brush():
    # The skeleton of a triangle runs into its sharp corners; the stroke keeps its radius by stopping short.
    yy, xx = np.mgrid[:80, :80]
    mask = ((xx > yy) & (yy > 10) & (xx < 70)).astype(np.uint8)
    (stroke,) = [s for s in simulate_scribbles(mask, ratio=1.0, radius=2.0) if s.label == 1]
    assert stroke.radius == 2.0 and np.ptp(stroke.points, axis=0).max() > 20
    check_strokes(mask, simulate_scribbles(mask, ratio=1.0, radius=2.0))


def test_seeded_and_ratio_controls_coverage():
    mask = np.zeros((80, 200), np.uint8)
    mask[30:50, 10:190] = 1
    a, b = simulate_scribbles(mask, ratio=0.3, seed=1), simulate_scribbles(mask, ratio=0.3, seed=1)
    assert [(s.label, s.radius) for s in a] == [(s.label, s.radius) for s in b]
    assert all(np.array_equal(x.points, y.points) for x, y in zip(a, b))
    c = simulate_scribbles(mask, ratio=0.3, seed=2)
    assert not np.array_equal(a[1].points, c[1].points)  # another piece of the rectangle's centre line
    assert abs(np.ptp(a[1].points[:, 0]) - np.ptp(c[1].points[:, 0])) <= 2  # of the same length
    full = simulate_scribbles(mask, ratio=1.0, seed=1)
    assert (rasterize_scribbles(mask.shape, full) != 255).sum() > 2.5 * (rasterize_scribbles(mask.shape, a) != 255).sum()


@pytest.mark.parametrize("bad", [dict(ratio=0), dict(ratio=-0.2), dict(ratio=1.01), dict(radius=0.4), dict(margin=-1)])
def test_invalid_settings(bad):
    with pytest.raises(ValueError):
        simulate_scribbles(np.zeros((10, 10), np.uint8), **bad)


def zhang_suen_reference(region):
    """Zhang & Suen's thinning as published: every pixel tested in each sub-iteration, until nothing changes."""
    img = np.pad(region.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            n = [img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:],
                 img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]]  # P2 .. P9
            count = sum(n)
            transitions = sum((n[i] == 0) & (n[(i + 1) % 8] == 1) for i in range(8))
            if step == 0:
                rule = (n[0] * n[2] * n[4] == 0) & (n[2] * n[4] * n[6] == 0)
            else:
                rule = (n[0] * n[2] * n[6] == 0) & (n[0] * n[4] * n[6] == 0)
            remove = (img[1:-1, 1:-1] == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & rule
            img[1:-1, 1:-1][remove] = 0
            changed |= bool(remove.any())
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def test_thinning_matches_reference_and_is_one_pixel_wide():
    rng = np.random.default_rng(5)
    for trial in range(30):
        region = random_ellipses(rng, shape=(50, 60), n=5, classes=2) == 1
        if trial % 3 == 0:
            region ^= rng.random(region.shape) < 0.05  # ragged edges and holes
        np.testing.assert_array_equal(zhang_suen_thinning(region), zhang_suen_reference(region))
    bar = np.zeros((30, 60), bool)
    bar[10:20, 5:55] = True
    skeleton = zhang_suen_thinning(bar)
    assert (skeleton <= bar).all() and skeleton.sum(0)[15:45].max() == 1
    assert cv2.connectedComponents(skeleton.astype(np.uint8), connectivity=8)[0] == 2


def real_masks(shared_data, name, count):
    folder = shared_data / name / "masks"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    paths = sorted(folder.glob("*.png"))
    return [np.array(Image.open(p)) for p in paths[::max(1, len(paths) // count)][:count]]


@pytest.mark.data
@pytest.mark.parametrize("name", ["horses", "msrc", "acdc"])
def test_real_masks_stay_inside(shared_data, name):
    for i, mask in enumerate(real_masks(shared_data, name, 12)):
        for ratio in (0.3, 1.0):
            check_strokes(mask, simulate_scribbles(mask, ratio=ratio, seed=i))


@pytest.mark.data
def test_default_strokes_draw_no_more_than_acdc_annotators(shared_data):
    """The defaults are calibrated on ACDC's real scribbles: on its test slices every class's human strokes are at
    least as long as the simulated ones (median over regions), and the two label a like share of the pixels."""
    from engine.bench.scribbles import compare_scribbles
    from engine.datasets.folder import DatasetFolder
    from engine.datasets.importer import ScribbleSimulation

    if not (shared_data / "acdc" / "scribbles").is_dir():
        pytest.skip("ACDC's real scribbles not found")
    records = compare_scribbles(DatasetFolder.open(shared_data / "acdc"), ScribbleSimulation(), "test", log=print)
    overall, *classes = records
    assert [r["class"] for r in classes] == ["background", "right ventricle", "myocardium", "left ventricle"]
    assert all(r["length_ratio_median"] >= 1 for r in classes)
    assert overall["human_share"] / 2 < overall["simulated_share"] < overall["human_share"] * 2
    sparse = compare_scribbles(DatasetFolder.open(shared_data / "acdc"), ScribbleSimulation(0.3, 2.0), "test",
                               log=print)
    assert all(r["length_ratio_median"] > 3 for r in sparse[1:])  # the stress test: far shorter than any person's
