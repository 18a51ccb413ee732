"""``wsv bench scribbles``: how the simulated strokes compare with a data set's real human scribbles.

The quality benchmark simulates scribbles where a data set has none, and what it reports depends on how much
the simulated strokes draw. This measures that against people: on every image with both real scribbles and a
mask, for each class covering at least ``MIN_AREA`` of its pixels (a "region" in the records: one class in one
image), it compares

- the strokes' length: the pixel count of the thinned (Zhang & Suen) human strokes of that class over the same
  count for the simulated strokes — one estimator on both sides, so its bias on diagonals cancels;
- the share of the class's pixels each one labels.

A length ratio above 1 says people drew more of each region than the simulator does, and the simulated
benchmark is harsher than real annotation; below 1, kinder.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from engine.datasets.folder import DatasetFolder
from engine.datasets.importer import ScribbleSimulation
from engine.annotations.types import background_index
from engine.datasets.simulate import MIN_AREA, rasterize_scribbles, zhang_suen_thinning
from engine.io.images import load_image


def compare_scribbles(ds: DatasetFolder, simulation: ScribbleSimulation, split: str = "train",
                      log: Callable[[str], None] = print) -> list[dict]:
    """One record per class: the median and quartiles of the per-region length ratio (human / simulated), and
    the median share of each region's pixels that each labels; one more record for the share of all pixels."""
    if not ds.has("scribbles") or not ds.has("masks"):
        raise ValueError(f"{ds.root} needs both scribbles/ and masks/ to compare simulated strokes with real ones")
    k = len(ds.classes)
    ratios: list[list[float]] = [[] for _ in range(k)]
    human_share: list[list[float]] = [[] for _ in range(k)]
    sim_share: list[list[float]] = [[] for _ in range(k)]
    human_total = sim_total = pixels = images = 0
    for image_id in ds.ids(split):
        size = load_image(ds.images[image_id], max_side=None).original_size
        mask, human = ds.mask(image_id, size), ds.scribbles(image_id, size)
        if mask is None or human is None or not (human != 255).any():
            continue
        simulated = rasterize_scribbles(mask.shape, simulation.draw(mask, background_index(ds.classes)))
        images += 1
        pixels += mask.size
        human_total += int((human != 255).sum())
        sim_total += int((simulated != 255).sum())
        for c in range(k):
            area = int((mask == c).sum())
            if area < MIN_AREA:
                continue
            human_share[c].append((human == c).sum() / area)
            sim_share[c].append((simulated == c).sum() / area)
            sim_length = int(zhang_suen_thinning(simulated == c).sum())
            if sim_length:
                ratios[c].append(zhang_suen_thinning(human == c).sum() / sim_length)
    if not images:
        raise ValueError(f"{ds.root}: no {split} image has both a mask and a non-empty scribble file")
    log(f"{ds.root.name}: {images} {split} images with scribbles and masks")
    settings = {"bench": "scribbles", "dataset": ds.root.name, "split": split, "style": simulation.style,
                "ratio": simulation.ratio, "radius": simulation.brush}
    records = [{**settings, "class": "all pixels", "images": images,
                "human_share": round(human_total / pixels, 4), "simulated_share": round(sim_total / pixels, 4)}]
    for c, name in enumerate(ds.classes):
        if not ratios[c]:
            continue
        q25, median, q75 = np.percentile(ratios[c], [25, 50, 75])
        records.append({**settings, "class": name, "regions": len(ratios[c]),
                        "length_ratio_median": round(float(median), 2), "length_ratio_q25": round(float(q25), 2),
                        "length_ratio_q75": round(float(q75), 2),
                        "human_share": round(float(np.median(human_share[c])), 4),
                        "simulated_share": round(float(np.median(sim_share[c])), 4)})
    return records
