"""Dataset folder import and export: round trips, bad files reported, real data where available."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.datasets.exporter import export_dataset
from engine.datasets.folder import DatasetError, DatasetFolder
from engine.datasets.importer import ScribbleSimulation, import_dataset
from engine.io.palette import load_index_png, voc_colormap


def make_dataset(root, n=4, size=(48, 32)):
    """A small dataset with masks, scribbles on half the images, boxes and tags."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    for sub in ("masks", "scribbles", "boxes", "tags"):
        (root / sub).mkdir()
    (root / "classes.txt").write_text("background\ncat\ndog\n")
    ids = [f"im{i}" for i in range(n)]
    for i, image_id in enumerate(ids):
        w, h = size
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"{image_id}.png")
        mask = np.zeros((h, w), np.uint8)
        mask[5:20, 5 + i:30] = 1
        mask[22:30, 35:45] = 2
        mask[0, :] = 255
        Image.fromarray(mask).save(root / "masks" / f"{image_id}.png")
        if i % 2 == 0:
            seeds = np.full((h, w), 255, np.uint8)
            seeds[10, 8:25] = 1
            seeds[25:27, 2:30] = 0
            seeds[24, 40] = 2
            Image.fromarray(seeds).save(root / "scribbles" / f"{image_id}.png")
        (root / "boxes" / f"{image_id}.json").write_text(json.dumps([{"class": 1, "box": [5, 5, 30.5, 20]}]))
        (root / "tags" / f"{image_id}.json").write_text(json.dumps({"present": [0, 2, 1]}))
    (root / "train.txt").write_text("\n".join(ids[:3]) + "\n")
    (root / "test.txt").write_text(ids[3] + "\n")
    return ids


def test_import_export_round_trip(tmp_path):
    src = tmp_path / "src"
    ids = make_dataset(src)
    project, report = import_dataset(src, tmp_path / "proj")
    assert (report.images, report.masks, report.scribbled_images, report.boxes, report.tagged_images) == (4, 4, 2, 4, 4)
    assert report.errors == []
    out = tmp_path / "out"
    export_dataset(project, out)
    ds = DatasetFolder.open(out)
    assert ds.classes == ["background", "cat", "dog"]
    assert ds.splits == {"train": ids[:3], "test": ids[3:]}
    for image_id in ids:
        for sub in ("masks", "scribbles"):
            a = src / sub / f"{image_id}.png"
            b = out / sub / f"{image_id}.png"
            assert a.exists() == b.exists()
            if a.exists():
                np.testing.assert_array_equal(np.array(Image.open(a)), load_index_png(b))
                assert Image.open(b).mode == "P"
                assert Image.open(b).getpalette()[:9] == voc_colormap()[:3].ravel().tolist()
        assert ds.boxes(image_id) == [(1, (5.0, 5.0, 30.5, 20.0))]
        assert ds.tags(image_id) == [0, 1, 2]
        assert (out / "images" / f"{image_id}.png").read_bytes() == (src / "images" / f"{image_id}.png").read_bytes()
    project.close()
    # Our own export imports and exports again to byte-identical files.
    project2, _ = import_dataset(out, tmp_path / "proj2")
    export_dataset(project2, tmp_path / "out2")
    project2.close()
    first = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path / "out2") for p in (tmp_path / "out2").rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert (out / rel).read_bytes() == (tmp_path / "out2" / rel).read_bytes(), rel


def test_bad_files_are_reported_and_the_rest_imported(tmp_path):
    src = tmp_path / "src"
    make_dataset(src)
    (src / "images" / "im1.png").write_bytes(b"")                      # unreadable image
    (src / "boxes" / "im2.json").write_text("[{\"class\": 7, \"box\": [0, 0, 1, 1]}]")  # unknown class
    bad_mask = np.full((32, 48), 9, np.uint8)
    Image.fromarray(bad_mask).save(src / "masks" / "im3.png")        # value 9 is no class
    project, report = import_dataset(src, tmp_path / "proj")
    assert len(report.errors) == 3
    assert any("im1.png" in e for e in report.errors)
    assert any("im2.json" in e and "class" in e for e in report.errors)
    assert any("im3.png" in e and "[9]" in e for e in report.errors)
    assert report.images == 1  # an image comes in whole with its marks, or not at all
    project.close()
    (src / "masks" / "im3.png").unlink()
    (src / "boxes" / "im2.json").write_text("[{\"class\": 1, \"box\": [0, 0, 1, 1]}]")
    project, report = import_dataset(src, tmp_path / "proj")  # fixed: the rerun takes what it refused
    assert report.images == 2 and report.already_imported == 1 and len(report.errors) == 1
    assert len(project.store.images()) == 3
    project.close()


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        DatasetFolder.open(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    with pytest.raises(DatasetError, match="classes.txt"):
        DatasetFolder.open(tmp_path / "d")
    (tmp_path / "d" / "classes.txt").write_text("a\na\n")
    with pytest.raises(DatasetError, match="unique"):
        DatasetFolder.open(tmp_path / "d")
    (tmp_path / "d" / "classes.txt").write_text("a\nb\n")
    with pytest.raises(DatasetError, match="images/"):
        DatasetFolder.open(tmp_path / "d")
    (tmp_path / "d" / "images").mkdir()
    (tmp_path / "d" / "train.txt").write_text("ghost\n")
    with pytest.raises(DatasetError, match="ghost"):
        DatasetFolder.open(tmp_path / "d")


def test_simulated_scribbles_stay_inside_their_region(tmp_path):
    src = tmp_path / "src"
    make_dataset(src)
    for f in (src / "scribbles").iterdir():
        f.unlink()
    project, report = import_dataset(src, tmp_path / "proj", simulate=ScribbleSimulation(ratio=1.0, radius=2.0))
    assert report.simulated_images == 4 and report.strokes > 0
    for rec in project.store.images():
        seeds = project.store.seed_map(rec.id)
        gt = project.store.ground_truth(rec.id)
        labelled = seeds != 255
        assert labelled.any()
        np.testing.assert_array_equal(seeds[labelled], gt[labelled])
    project.close()


@pytest.mark.data
def test_acdc_real_scribbles_round_trip_exactly(shared_data, tmp_path):
    acdc = shared_data / "acdc"
    ds = DatasetFolder.open(acdc)
    subset = tmp_path / "acdc"
    (subset / "images").mkdir(parents=True)
    for sub in ("masks", "scribbles"):
        (subset / sub).mkdir()
    (subset / "classes.txt").write_bytes((acdc / "classes.txt").read_bytes())
    ids = ds.ids("test")[:12]
    for image_id in ids:
        for sub, ext in (("images", ds.images[image_id].suffix), ("masks", ".png"), ("scribbles", ".png")):
            (subset / sub / f"{image_id}{ext}").write_bytes((acdc / sub / f"{image_id}{ext}").read_bytes())
    project, report = import_dataset(subset, tmp_path / "proj")
    assert report.errors == [] and report.scribbled_images == len(ids)
    export_dataset(project, tmp_path / "out")
    for image_id in ids:
        for sub in ("masks", "scribbles"):
            np.testing.assert_array_equal(load_index_png(tmp_path / "out" / sub / f"{image_id}.png"),
                                          np.array(Image.open(acdc / sub / f"{image_id}.png")))
    project.close()


@pytest.mark.parametrize("first_class, boxed", [("background", {1, 2}), ("building", {0, 1, 2})])
def test_simulated_boxes_cover_every_class_when_there_is_no_background(tmp_path, first_class, boxed):
    """Boxes from masks skip the background class; a data set without one (MSRC) gets boxes for every class."""
    src = tmp_path / "src"
    make_dataset(src)
    for sub in ("boxes", "scribbles"):
        for f in (src / sub).iterdir():
            f.unlink()
    (src / "classes.txt").write_text(f"{first_class}\ncat\ndog\n")
    project, report = import_dataset(src, tmp_path / "proj", simulate_boxes=True)
    index = {c.id: c.index for c in project.store.classes()}
    classes = {index[b.class_id] for r in project.store.images() for b in project.store.marks(r.id).boxes}
    assert classes == boxed and report.errors == []
    project.close()
