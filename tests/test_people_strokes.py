"""People-like strokes and the one-object-per-photo development sets built from masks."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.bench.objects import build_object_set, object_mask
from engine.datasets.importer import ScribbleSimulation
from engine.datasets.people import BACKGROUND_SHARE, BACKGROUND_STROKES, simulate_people_scribbles
from engine.datasets.simulate import rasterize_scribbles


def scene(h=240, w=320):
    """A large ellipse (class 1), a bar (class 2) and void pixels on a background."""
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), np.uint8)
    mask[((xx - 120) / 70.0) ** 2 + ((yy - 120) / 50.0) ** 2 < 1] = 1
    mask[30:50, 220:300] = 2
    mask[200:210, 250:260] = 255
    return mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_short_stroke_per_object_and_three_on_the_background(seed):
    mask = scene()
    strokes = simulate_people_scribbles(mask, background=0, seed=seed)
    assert [s.label for s in strokes].count(1) == 1 and [s.label for s in strokes].count(2) == 1
    assert [s.label for s in strokes].count(0) == BACKGROUND_STROKES
    seeds = rasterize_scribbles(mask.shape, strokes)
    labelled = seeds != 255
    assert (seeds[labelled] == mask[labelled]).all()          # never a wrong label, never on void
    for k in (1, 2):
        area = (mask == k).sum()
        assert 0.75 < (seeds == k).sum() / (3 * np.sqrt(area)) < 1.3   # about 3·√area pixels: as long as it is wide
    share = (seeds == 0).sum() / (mask == 0).sum()
    assert 0.7 * BACKGROUND_SHARE < share < 1.3 * BACKGROUND_SHARE
    again = simulate_people_scribbles(mask, background=0, seed=seed)
    assert all(np.array_equal(a.points, b.points) for a, b in zip(strokes, again))


def test_without_a_background_class_only_objects_are_stroked():
    mask = scene()
    strokes = simulate_people_scribbles(mask, background=None)
    assert sorted(s.label for s in strokes) == [0, 1, 2]   # class 0 is an object like any other here


def test_simulation_style_draws_people_strokes():
    sim = ScribbleSimulation(style="people")
    assert sim.brush == 1.5 and "people" in sim.describe()
    assert len(sim.draw(scene(), background=0)) == 2 + BACKGROUND_STROKES
    with pytest.raises(ValueError):
        ScribbleSimulation(style="zigzag")


def test_object_mask_takes_the_largest_thing_region():
    truth = np.zeros((100, 100), np.uint8)          # class 0: stuff
    truth[10:60, 10:60] = 3                          # the largest thing region
    truth[70:80, 70:80] = 3                          # another region of that class: neither object nor background
    truth[5:8, 80:95] = 4                            # another thing class: ignored too
    truth[90:95, 0:5] = 255
    obj = object_mask(truth, [3, 4])
    assert (obj[10:60, 10:60] == 1).all() and (obj == 1).sum() == 2500
    assert (obj[70:80, 70:80] == 255).all() and (obj[5:8, 80:95] == 255).all() and (obj[90:95, 0:5] == 255).all()
    assert (obj[truth == 0] == 0).all()
    assert object_mask(np.zeros((100, 100), np.uint8), [3]) is None   # no object at all


def test_build_object_set(tmp_path, monkeypatch):
    import engine.bench.objects as objects

    src = tmp_path / "toy"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    (src / "classes.txt").write_text("grass\ncow\nsheep\n")
    rng = np.random.default_rng(0)
    ids = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(src / "images" / f"t{i}.png")
        truth = np.zeros((80, 100), np.uint8)
        truth[20:60, 20 + i:70] = 1 + i % 2
        Image.fromarray(truth).save(src / "masks" / f"t{i}.png")
        ids.append(f"t{i}")
    (src / "train.txt").write_text("\n".join(ids[:4]) + "\n")
    (src / "test.txt").write_text("\n".join(ids[4:]) + "\n")
    monkeypatch.setitem(objects.OBJECT_SETS, "toy-objects", ("toy", ("cow", "sheep"), 3))
    ds = build_object_set(tmp_path, "toy-objects", tmp_path / "out", ScribbleSimulation(style="people"))
    assert ds.classes == ["background", "object"] and len(ds.ids("train")) == 3 and ds.ids("test") == ["t4", "t5"]
    assert {int(i[1:]) % 2 for i in ds.ids("train")} == {0, 1}      # drawn round robin: cows and sheep
    for image_id in ds.ids("train"):
        assert ds.scribbles(image_id, (100, 80)) is not None
        ((k, (x0, y0, x1, y1)),) = ds.boxes(image_id)
        assert k == 1 and (y0, y1) == (20, 60)
    assert not (tmp_path / "out" / "scribbles" / "t4.png").exists()
    stamp = (tmp_path / "out" / "objects.json").stat().st_mtime_ns
    build_object_set(tmp_path, "toy-objects", tmp_path / "out", ScribbleSimulation(style="people"))
    assert (tmp_path / "out" / "objects.json").stat().st_mtime_ns == stamp   # same settings: kept as it is
    build_object_set(tmp_path, "toy-objects", tmp_path / "out", ScribbleSimulation(style="people", seed=1))
    assert json.loads((tmp_path / "out" / "objects.json").read_text())["scribble_seed"] == 1
