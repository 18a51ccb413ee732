"""Image batches in [−1, 1] as uint8 grids, PNG files and GIF animations (Pillow only)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, S, S) in [−1, 1] → (N, S, S, 3) uint8 RGB (grayscale replicated, so every consumer sees RGB)."""
    u = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if u.shape[1] == 1:
        u = u.expand(-1, 3, -1, -1)
    return u.permute(0, 2, 3, 1).contiguous().numpy()


def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(H, W, 3) uint8: the batch laid out row by row, ``nrow`` per row (default: as square as possible), on a
    mid-grey background so that black and white images both stand out from it."""
    images = to_uint8(x)
    n, s = len(images), images.shape[1]
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (s + pad) + pad, nrow * (s + pad) + pad, 3), 128, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, nrow)
        grid[pad + r * (s + pad):pad + r * (s + pad) + s, pad + c * (s + pad):pad + c * (s + pad) + s] = im
    return grid


def _upscaled(grid: np.ndarray, scale: int) -> Image.Image:
    im = Image.fromarray(grid)
    return im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) if scale > 1 else im


def save_png(grid: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write a grid, optionally enlarged by pixel replication (small images stay crisp)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _upscaled(grid, scale).save(path)
    return path


def save_gif(frames: Sequence[np.ndarray], path: str | Path, frame_ms: int = 80, hold_last_ms: int = 1500,
             scale: int = 1) -> Path:
    """An animation of same-sized grids, looping, with the last frame held so the result can be seen."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [_upscaled(f, scale) for f in frames]
    durations = [frame_ms] * (len(images) - 1) + [hold_last_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, disposal=1)
    return path
