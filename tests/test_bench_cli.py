"""``wsv bench`` commands print flat JSON records (run here at toy sizes; the real figures are in docs/benchmarks.md)."""
import json
import shutil

import numpy as np
from PIL import Image

from engine.cli.main import main
from tests.test_dataset_io import make_dataset


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_crf_records(capsys, tmp_path):
    code, out, err = run(capsys, "bench", "crf", "--data", tmp_path, "--sizes", "48", "--classes", "2",
                         "--sigma-xy", "100", "--reps", "1", "--json")
    assert code == 0, err
    records = json.loads(out)
    speed = [r for r in records if "ms" in r]
    accuracy = [r for r in records if "rel_error_max" in r]
    assert {r["loss"] for r in speed} == {"dense", "grid"} and all(r["ms"] > 0 for r in speed)
    assert len(accuracy) == 2 and all(r["rel_error_max"] < 0.03 for r in accuracy)  # colour and gray
    assert all(r["image"].startswith("demo render") for r in records)  # no evaluation data in tmp_path


def test_bench_quality_records(capsys, tmp_path):
    make_dataset(tmp_path / "toy", n=4, size=(48, 32))
    code, out, err = run(capsys, "bench", "quality", "--data", tmp_path, "--datasets", "toy", "--methods",
                         "full,pce+dense,boxes,tags+dense", "--model", "unet", "--steps", "2", "--working-size", "48",
                         "--work", tmp_path / "work", "--figures", tmp_path / "fig", "--dense-weight", "0.004",
                         "--sigma-xy", "20", "--seed", "3", "--json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["seed"] for r in records[:4]] == [3] * 4
    assert [(r["reg_weight"], r["sigma_xy"]) for r in records[:4]] == [(0.0, 20), (0.004, 20), (0.0, 20), (0.004, 20)]
    assert [r["method"] for r in records] == ["full", "pce+dense", "boxes", "tags+dense", "grabcut", "grabcut-boxes"]
    assert [r["marks"] for r in records] == ["full", "scribbles", "boxes", "tags", "scribbles", "boxes"]
    assert records[1]["pct_of_full"] is not None and 0 <= records[1]["test_miou"] <= 1
    assert records[2]["marks_origin"] == "real"  # the toy set ships boxes
    assert records[4]["marked_images"] == 2 and records[5]["boxed_images"] >= 1
    figure = np.asarray(Image.open(tmp_path / "fig" / "toy-boxes.png"))
    assert figure.shape[0] == 164 and figure.shape[1] > 3 * 160  # one test image: photo, prediction, truth


def test_bench_errors(capsys, tmp_path):
    code, _, err = run(capsys, "bench", "quality", "--data", tmp_path, "--datasets", "nope")
    assert code == 1 and "nope" in err
    code, _, err = run(capsys, "bench", "quality", "--data", tmp_path, "--methods", "magic")
    assert code == 1 and "magic" in err
    make_dataset(tmp_path / "toy", n=4, size=(48, 32))
    code, _, err = run(capsys, "bench", "quality", "--data", tmp_path, "--datasets", "toy", "--dense-weight", "-1")
    assert code == 1 and "--dense-weight must be >= 0" in err


def test_bench_detect_records(capsys, tmp_path):
    make_dataset(tmp_path / "toy", n=6, size=(96, 64))
    code, out, err = run(capsys, "bench", "detect", "--data", tmp_path, "--datasets", "toy", "--methods", "hog-svm",
                         "--work", tmp_path / "work", "--json")
    assert code == 0, err
    (record,) = json.loads(out)
    assert record["method"] == "hog-svm" and record["test_images"] == 1 and 0 <= record["map50"] <= 1
    code, _, err = run(capsys, "bench", "detect", "--data", tmp_path, "--datasets", "toy", "--methods", "yolo")
    assert code == 1 and "yolo" in err


def test_bench_quality_reuses_grabcut_baselines(capsys, tmp_path, monkeypatch):
    """The GrabCut baselines are computed once per set of marks; a second run on the same project reads them."""
    import engine.bench.quality as quality

    make_dataset(tmp_path / "toy", n=4, size=(48, 32))
    args = ["bench", "quality", "--data", tmp_path, "--datasets", "toy", "--methods", "boxes", "--model", "unet",
            "--steps", "1", "--working-size", "48", "--work", tmp_path / "work", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    first = {r["method"]: r for r in json.loads(out)}

    def fail(*a, **k):
        raise AssertionError("GrabCut recomputed")

    monkeypatch.setattr(quality, "grabcut_from_scribbles", fail)
    monkeypatch.setattr(quality, "grabcut_from_boxes", fail)
    code, out, err = run(capsys, *args)
    assert code == 0, err
    second = {r["method"]: r for r in json.loads(out)}
    assert second["grabcut"] == first["grabcut"] and second["grabcut-boxes"] == first["grabcut-boxes"]


def test_baseline_cache_recomputes_when_marks_change(tmp_path):
    from engine.bench.quality import BaselineCache

    calls = []
    seeds = np.full((4, 4), 255, np.uint8)

    def compute():
        calls.append(1)
        return 0.5 * len(calls)

    assert BaselineCache(tmp_path / "b.json").get("g", [("a.png", seeds)], compute) == 0.5
    assert BaselineCache(tmp_path / "b.json").get("g", [("a.png", seeds)], compute) == 0.5
    seeds[1, 1] = 0
    assert BaselineCache(tmp_path / "b.json").get("g", [("a.png", seeds)], compute) == 1.0
    assert len(calls) == 2 and len(json.loads((tmp_path / "b.json").read_text())) == 1


def test_bench_quality_scribble_simulation_settings(capsys, tmp_path):
    """Simulated scribbles follow --scribble-ratio and --scribble-radius; a work folder imported with other
    settings is refused, not silently reused, and one recorded before the radius was (always 2) is still read."""

    make_dataset(tmp_path / "toy", n=4, size=(48, 32))
    shutil.rmtree(tmp_path / "toy" / "scribbles")
    args = ["bench", "quality", "--data", tmp_path, "--datasets", "toy", "--methods", "full", "--model", "unet",
            "--steps", "1", "--working-size", "48", "--work", tmp_path / "work", "--json"]
    code, out, err = run(capsys, *args, "--scribble-ratio", "0.5", "--scribble-radius", "1")
    assert code == 0, err
    assert json.loads(out)[-1]["marks_origin"] == "simulated (ratio 0.5, radius 1.0)"
    code, _, err = run(capsys, *args, "--scribble-ratio", "1", "--scribble-radius", "1")
    assert code == 1 and "another --work" in err
    code, _, err = run(capsys, *args, "--scribble-ratio", "0.5", "--scribble-radius", "2")
    assert code == 1 and "another --work" in err
    settings = tmp_path / "work" / "toy" / "import.json"
    settings.write_text(json.dumps({"scribble_ratio": 0.5, "box_background": 0}))
    code, _, err = run(capsys, *args, "--scribble-ratio", "0.5", "--scribble-radius", "2")
    assert code == 0, err
    code, _, err = run(capsys, *args, "--scribble-ratio", "0")
    assert code == 1 and "--scribble-ratio" in err
    code, _, err = run(capsys, *args, "--scribble-radius", "0.2")
    assert code == 1 and "--scribble-radius" in err


def test_bench_scribbles_compares_real_strokes_with_the_simulator(capsys, tmp_path):
    """Strokes identical to the simulator's measure a length ratio of exactly 1 and the same pixel shares; a
    class nobody scribbled measures 0; a data set without scribbles is refused with a clear error."""
    from engine.datasets.simulate import rasterize_scribbles, simulate_scribbles

    make_dataset(tmp_path / "toy", n=4, size=(48, 32))
    for image_id in ("im0", "im2"):  # the scribbled train images: the simulator's strokes, the dog's erased
        mask = np.asarray(Image.open(tmp_path / "toy" / "masks" / f"{image_id}.png"))
        seeds = rasterize_scribbles(mask.shape, simulate_scribbles(mask, ratio=0.5, radius=1))
        seeds[seeds == 2] = 255
        Image.fromarray(seeds).save(tmp_path / "toy" / "scribbles" / f"{image_id}.png")
    args = ["bench", "scribbles", "--data", tmp_path, "--datasets", "toy", "--scribble-ratio", "0.5",
            "--scribble-radius", "1", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    records = {r["class"]: r for r in json.loads(out)}
    assert records["all pixels"]["images"] == 2
    for name in ("background", "cat"):
        r = records[name]
        assert r["regions"] == 2 and r["length_ratio_median"] == 1.0 and r["human_share"] == r["simulated_share"] > 0
    assert records["dog"]["length_ratio_median"] == 0 and records["dog"]["human_share"] == 0
    assert records["all pixels"]["human_share"] < records["all pixels"]["simulated_share"]
    for folder in (tmp_path / "toy" / "scribbles").iterdir():
        folder.unlink()
    code, _, err = run(capsys, *args)
    assert code == 1 and "scribbles/" in err


def test_bench_quality_and_refine_on_an_object_set(capsys, tmp_path, monkeypatch):
    """An object set is built from its source; each method's row scores the network and the refined masks of
    the images its marks are on (strokes hold there), GrabCut rows come from the same marks, and bench refine
    scores each refinement variant on the models bench quality saved."""
    import engine.bench.objects as objects

    src = tmp_path / "toy"
    make_dataset(src, n=6, size=(64, 48))
    (src / "classes.txt").write_text("grass\ncow\nsheep\n")
    shutil.rmtree(src / "scribbles")
    monkeypatch.setitem(objects.OBJECT_SETS, "toy-objects", ("toy", ("cow", "sheep"), 3))
    work = tmp_path / "work"
    args = ["--data", tmp_path, "--datasets", "toy-objects", "--work", work, "--json"]
    code, out, err = run(capsys, "bench", "quality", *args, "--methods", "pce+dense,boxes", "--model", "unet",
                         "--steps", "1", "--working-size", "48")
    assert code == 0, err
    rows = {r["method"]: r for r in json.loads(out)}
    assert set(rows) == {"pce+dense", "boxes", "grabcut", "grabcut-boxes"}
    for method in ("pce+dense", "boxes"):
        r = rows[method]
        assert r["marked_images"] == 3 and r["test_images"] > 0 and r["colour_weight"] == (1.0 if "dense" in method
                                                                                             else None)
        assert 0 <= r["refined_image_iou"] <= 1 and 0 <= r["marked_image_iou"] <= 1 and r["refine_seconds"] > 0
        assert (work / "toy-objects" / "models" / f"{method}-seed0" / "model.safetensors").is_file()
    assert rows["grabcut"]["marks_origin"] == "simulated (people-like strokes)"
    assert 0 <= rows["grabcut-boxes"]["boxed_image_iou"] <= 1
    code, out, err = run(capsys, "bench", "refine", *args, "--methods", "pce+dense,boxes")
    assert code == 0, err
    records = json.loads(out)
    from engine.bench.refine import VARIANTS
    assert len(records) == 2 * len(VARIANTS)
    assert all(0 <= r["marked_image_iou"] <= 1 and r["images"] == 3 for r in records)
    code, _, err = run(capsys, "bench", "refine", *args, "--methods", "tags")
    assert code == 1 and "bench quality" in err


def test_bench_scale_records(capsys, tmp_path):
    code, out, err = run(capsys, "bench", "scale", "--import-images", "3", "--open-images", "300", "--strokes", "500",
                         "--train-seconds", "0", "--memory-images", "3", "--memory-steps", "2", "--work", tmp_path,
                         "--json")
    assert code == 0, err
    records = {r["measure"]: r for r in json.loads(out)}
    memory = records["training memory"]
    assert memory["marked_images"] == 3 and memory["peak_rss_mb"] > 50 and memory["workers"] == 2
    assert (tmp_path / "memory-3" / "summary.json").is_file()
    assert records["import"]["images"] == 3 and records["import"]["images_per_s"] > 0
    assert records["open"]["images"] == 300 and records["gui_first_paint"]["rows"] == 300
    assert 0 < records["gui_first_paint"]["thumbnails_asked"] < 300
    assert records["store"]["strokes"] == 500 + 200  # the bench's own strokes on top
    assert not list((tmp_path / "imported").glob("images/*"))  # referenced in place, not copied
