"""Plain-data results that the sampling service sends to the tab: numbers, strings, dicts and numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class TrainingSet:
    key: dict
    """the data settings it was loaded with (source, image_size, channels, random_crops, seed)"""
    images: np.ndarray
    """(N, C, S, S) float32 in [−1, 1], exactly what the trainer sees"""
    name: str
    warning: str | None


@dataclass(frozen=True)
class ModelInfo:
    folder: str
    kind: str
    config: dict
    steps_done: int
    data_name: str


@dataclass(frozen=True, eq=False)
class SampleGrid:
    grid: np.ndarray
    """(H, W, 3) uint8"""
    description: str


@dataclass(frozen=True, eq=False)
class Interpolation:
    frames: np.ndarray
    """(steps, S, S, 3) uint8: decodes along the line between the two posterior means, ends included"""
    grid: np.ndarray
    """one row: image A, the frames, image B"""
    a: int
    b: int


@dataclass(frozen=True, eq=False)
class ReverseFrame:
    index: int
    """position in the whole run, 0 (pure noise x_T) ... ``total`` (the sample)"""
    total: int
    t: int
    """the diffusion time of ``x``: T for the noise, 0 for the finished sample"""
    x: np.ndarray
    """(H, W, 3) uint8 grid of x_t"""
    x0: np.ndarray
    """(H, W, 3) uint8 grid of x̂_0 predicted from x_t (at t = 0: the sample itself)"""


@dataclass(frozen=True, eq=False)
class RestoreRequest:
    task: str
    """'inpaint' (fill ``hole``) or 'upscale' (2× detail from the image's 2 × 2 means)"""
    image: np.ndarray
    """(C, S, S) float32 in [−1, 1], at the model's size"""
    hole: np.ndarray | None
    """(S, S) bool, True where the model draws (inpaint only)"""
    seed: int
    resample: int
    """RePaint's resampling (inpaint only)"""
