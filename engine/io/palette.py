"""The PASCAL VOC colour map, and indexed PNG masks that other tools show in colour.

Masks are written as 8-bit palette PNGs whose pixel values are class indices: every segmentation tool that
reads VOC-style masks (and every image viewer) then shows colours instead of a black image, while the values
stay exact class indices for training and evaluation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def voc_colormap(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 VOC colour map: class k gets the bit-interleaved colour of k; 255 (void) is (224, 224, 192)."""
    cmap = np.zeros((n, 3), np.uint8)
    for k in range(n):
        r = g = b = 0
        c = k
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[k] = (r, g, b)
    return cmap


CLASS_COLORS = np.array([
    (40, 150, 255), (255, 40, 170), (255, 214, 0), (0, 230, 118), (255, 120, 0), (170, 90, 255),
    (0, 229, 255), (255, 64, 64), (190, 255, 60), (255, 160, 200), (120, 70, 20), (0, 140, 110),
], np.uint8)
"""Default display colours of new classes: saturated and far apart, so marks stand out on natural images
(the VOC map starts with black and dark red, which vanish on dark or red scenes). Masks keep the VOC map."""


def class_color(index: int) -> tuple[int, int, int]:
    """Default colour of the class at ``index``: CLASS_COLORS, then the VOC map beyond it."""
    rgb = CLASS_COLORS[index] if index < len(CLASS_COLORS) else voc_colormap()[index % 256]
    return tuple(int(v) for v in rgb)


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def parse_color(text: str) -> tuple[int, int, int]:
    """'#rrggbb' to an (r, g, b) tuple, with a clear error for anything else."""
    t = text.strip()
    if len(t) != 7 or t[0] != "#":
        raise ValueError(f"colour must look like #rrggbb, got {text!r}")
    try:
        return (int(t[1:3], 16), int(t[3:5], 16), int(t[5:7], 16))
    except ValueError:
        raise ValueError(f"colour must look like #rrggbb, got {text!r}") from None


def save_index_png(path: str | Path, labels: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write a class-index mask as an 8-bit palette PNG (VOC colours unless ``palette`` is given)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"a mask must be a 2-D uint8 array, got {labels.dtype} {labels.shape}")
    img = Image.fromarray(labels)  # mode L; attaching a palette turns it into P with the same values
    img.putpalette((voc_colormap() if palette is None else palette).astype(np.uint8).tobytes())
    img.save(path, format="PNG", optimize=False)


def load_index_png(path: str | Path) -> np.ndarray:
    """Read a mask PNG as class indices: palette PNGs give their indices (not colours), 8-bit grayscale PNGs
    their values. Anything else (RGB masks, 16-bit) is rejected with a message, since guessing would silently
    corrupt labels."""
    with Image.open(path) as img:
        if img.mode in ("P", "L"):
            return np.array(img, dtype=np.uint8)
        raise ValueError(f"{path}: a mask must be an 8-bit grayscale or palette PNG of class indices, "
                         f"got image mode {img.mode}")
