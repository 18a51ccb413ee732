"""Turning the trainer's previews into what the window shows (overlays) and into editable marks."""
from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg

from engine.annotations.raster import seed_map_to_pens
from engine.annotations.types import UNLABELED, ClassDef, ImageRecord, Stroke
from engine.training.records import Preview
from engine.uncertainty import disagreement, normalized_entropy
from wsv_gui.canvas.layers import colormap_rgba

_HEAT = (pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=False)).astype(np.uint8)


def overlay_rgba(preview: Preview, colors: np.ndarray, heat_class: int | None, network_only: bool = False,
                 measure: str | None = None) -> np.ndarray:
    """The mask in class colours — refined with the image's marks where the preview has one, unless
    ``network_only`` — or the probability of ``heat_class`` as an 'inferno' heat map (0 to 1), or a
    ``measure``: "uncertainty" (the network's normalized entropy as a heat map) or "disagreement" (the refined
    mask's class colours only where it overrules the network's labels; nothing on an image without marks)."""
    if measure == "uncertainty":
        return colormap_rgba(normalized_entropy(preview.probs), _HEAT, 0.0, 1.0)
    if heat_class is not None and heat_class < preview.probs.shape[0]:
        return colormap_rgba(preview.probs[heat_class].astype(np.float32), _HEAT, 0.0, 1.0)
    lut = np.zeros((256, 4), np.uint8)
    n = min(len(colors), 255)
    lut[:n, :3] = colors[:n]
    lut[:n, 3] = 255
    if measure == "disagreement":
        differs = disagreement(preview.labels, preview.refined)
        out = np.zeros((*preview.labels.shape, 4), np.uint8)
        if differs is not None:
            out[differs] = lut[preview.refined[differs]]
        return out
    return lut[shown_labels(preview, network_only)]


def shown_labels(preview: Preview, network_only: bool = False) -> np.ndarray:
    """The labels the overlay shows: the refined mask of a marked image, else the network's argmax."""
    return preview.labels if network_only or preview.refined is None else preview.refined


def prediction_strokes(preview: Preview, rec: ImageRecord, classes: list[ClassDef], marked: np.ndarray | None = None,
                       min_confidence: float = 0.0, network_only: bool = False) -> list[Stroke]:
    """Strokes that paint the labels shown (``shown_labels``; where the network's top probability reaches
    ``min_confidence``) at the image's full size: one exact pixel-run stroke per class region, scaled from
    working resolution. ``marked`` (full size, True where the user's own strokes label a pixel) is left out, with
    a working pixel's margin, so that accepting a prediction never paints over what the user drew."""
    labels = shown_labels(preview, network_only).copy()
    if min_confidence > 0:
        labels[preview.probs.max(0).astype(np.float32) < min_confidence] = UNLABELED
    if marked is not None and marked.any():
        h, w = labels.shape
        touched = cv2.resize(marked.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0
        labels[cv2.dilate(touched.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = UNLABELED
    scale = rec.width / labels.shape[1]
    by_index = {c.index: c.id for c in classes}
    return [Stroke(rec.id, by_index[k], 0.5 * scale, pts * scale)
            for k, _, pts in seed_map_to_pens(labels) if k in by_index]
