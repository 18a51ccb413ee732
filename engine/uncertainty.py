"""How unsure the network is, per pixel, from its class probabilities: what the window's uncertainty views show
and what tells an annotator where another stroke would teach the most.

Both measures run from 0 (certain: one class has all the probability) to 1 (no idea):
* normalized entropy H(p) / log K — every class counts, so a pixel torn between three classes scores higher
  than one torn between two;
* margin 1 − (p₁ − p₂) — only the two most likely classes count: where the decision could flip.
"""
from __future__ import annotations

import numpy as np


def normalized_entropy(probs: np.ndarray) -> np.ndarray:
    """(H, W) entropy of (K, H, W) probabilities divided by log K (K ≥ 2), in [0, 1]."""
    p = np.clip(probs.astype(np.float32), 1e-12, 1.0)
    k = probs.shape[0]
    return np.clip(-(p * np.log(p)).sum(0) / np.log(k), 0.0, 1.0)


def margin_uncertainty(probs: np.ndarray) -> np.ndarray:
    """(H, W) 1 − (largest − second largest probability) of (K, H, W) probabilities, in [0, 1]."""
    top = np.partition(probs.astype(np.float32), probs.shape[0] - 2, axis=0)[-2:]
    return np.clip(1.0 - (top[1] - top[0]), 0.0, 1.0)


def disagreement(network: np.ndarray, refined: np.ndarray | None) -> np.ndarray | None:
    """(H, W) True where a marked image's refined mask overrules the network's own labels; None where the
    image has no refined mask (no marks)."""
    return None if refined is None else network != refined
