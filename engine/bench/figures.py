"""Side-by-side figures of predictions on held-out images, so benchmark tables come with what they measure:
one row per image — the photo, the prediction blended over it, the ground truth — in class colours."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine.io.palette import voc_colormap

ROW_HEIGHT = 160
"""pixels per row of a figure"""


def blend(image: np.ndarray, labels: np.ndarray, colors: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Class colours over the photo; ignore pixels (255) show the photo alone."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)
    out = rgb.astype(np.float32)
    valid = labels != 255
    out[valid] = (1 - alpha) * out[valid] + alpha * colors[labels[valid]]
    return out.astype(np.uint8)


def prediction_figure(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path,
                      colors: np.ndarray | None = None) -> None:
    """Write a PNG of (image, prediction, ground truth) rows, each at ROW_HEIGHT pixels, 4-pixel gutters."""
    colors = voc_colormap() if colors is None else colors
    lines = []
    for image, pred, truth in rows:
        h, w = pred.shape
        size = (max(1, round(w * ROW_HEIGHT / h)), ROW_HEIGHT)
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)
        tiles = [cv2.resize(t, size, interpolation=cv2.INTER_AREA if t is rgb else cv2.INTER_NEAREST)
                 for t in (rgb, blend(rgb, pred, colors), blend(rgb, truth, colors))]
        gutter = np.full((ROW_HEIGHT, 4, 3), 255, np.uint8)
        lines.append(np.concatenate([tiles[0], gutter, tiles[1], gutter, tiles[2]], 1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(lines, 0), cv2.COLOR_RGB2BGR))
