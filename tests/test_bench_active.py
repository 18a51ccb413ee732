"""``wsv bench active``: the simulated annotator's strokes, the curve summary, and the records at toy size."""
import json
import math

import numpy as np
import pytest

from engine.annotations.raster import stroke_footprint
from engine.bench.active import stroke_at, strokes_to_reach
from tests.test_bench_cli import run
from tests.test_dataset_io import make_dataset


def _mask():
    mask = np.zeros((60, 80), np.uint8)
    mask[10:40, 10:50] = 1        # an object of 30 x 40 pixels
    mask[45:55, 60:70] = 1        # a second region of the same class
    mask[0, :] = 255
    return mask


def _covered(mask, points, radius=1.5):
    foot, (r0, c0) = stroke_footprint(mask.shape, points, radius)
    out = np.zeros(mask.shape, bool)
    out[r0:r0 + foot.shape[0], c0:c0 + foot.shape[1]] = foot
    return out


def test_a_stroke_stays_in_the_region_of_the_pixel_and_is_as_long_as_a_person_draws():
    mask = _mask()
    rng = np.random.default_rng(0)
    label, points = stroke_at(mask, 12, 12, background=0, rng=rng)  # near a corner: moved in until it fits
    covered = _covered(mask, points)
    assert label == 1 and covered.any() and (mask[covered] == 1).all()
    assert not covered[45:55, 60:70].any()  # only the region the pixel lies in
    length = float(np.hypot(*np.diff(points, axis=0).T).sum())
    assert 0.8 * math.sqrt(30 * 40) <= length <= math.sqrt(30 * 40) + 1
    label, points = stroke_at(mask, 70, 30, background=0, rng=rng)
    covered = _covered(mask, points)
    assert label == 0 and (mask[covered] == 0).all()
    assert stroke_at(mask, 5, 0, background=0, rng=rng) is None  # an ignored pixel


def test_strokes_to_reach_interpolates_between_rounds():
    curve = [(8, 0.2), (12, 0.4), (16, 0.6)]
    assert strokes_to_reach(curve, 0.5) == pytest.approx(14.0)
    assert strokes_to_reach(curve, 0.1) == 8.0
    assert strokes_to_reach(curve, 0.7) is None


@pytest.mark.timeout(300)
def test_bench_active_records(capsys, tmp_path):
    make_dataset(tmp_path / "toy", n=6, size=(48, 32))
    (tmp_path / "toy" / "train.txt").write_text("im0\nim1\nim2\nim3\n")
    (tmp_path / "toy" / "test.txt").write_text("im4\nim5\n")
    code, out, err = run(capsys, "bench", "active", "--data", tmp_path, "--datasets", "toy", "--seeds", "0,1",
                         "--pool", "4", "--test", "2", "--start-images", "1", "--rounds", "2", "--strokes-per-round",
                         "2", "--steps-per-round", "2", "--model", "unet", "--working-size", "48", "--crop-size", "32",
                         "--work", tmp_path / "work", "--json")
    assert code == 0, err
    records = json.loads(out)
    rounds = [r for r in records if "round" in r]
    assert len(rounds) == 2 * 2 * 3  # seeds x policies x (start + rounds)
    for seed in (0, 1):
        for policy in ("suggested", "random"):
            curve = [r for r in rounds if r["seed"] == seed and r["policy"] == policy]
            assert [r["round"] for r in curve] == [0, 1, 2] and [r["steps"] for r in curve] == [2, 4, 6]
            assert curve[1]["strokes"] - curve[0]["strokes"] == 2 and curve[2]["strokes"] - curve[1]["strokes"] == 2
            assert all(0 <= r["test_miou"] <= 1 for r in curve)
    start = {(r["seed"], r["policy"]): r["strokes"] for r in rounds if r["round"] == 0}
    assert start[0, "suggested"] == start[0, "random"]  # both annotators start from the same marks
    finals = [r for r in records if r.get("summary") == "final"]
    assert {r["policy"] for r in finals} == {"suggested", "random"} and all(r["seeds"] == 2 for r in finals)
    (reach,) = [r for r in records if r.get("summary") == "strokes to reach random's final mIoU"]
    assert reach["random_strokes"] == finals[1]["strokes"]
    code, _, err = run(capsys, "bench", "active", "--data", tmp_path, "--datasets", "nothing")
    assert code != 0 and "not found" in err
