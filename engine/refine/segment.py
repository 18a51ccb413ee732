"""The mask of an image someone marked: the network's probabilities, the image's own colours and edges, and the
marks as hard constraints, optimised together for that one image (interactive low-level segmentation on top of
the CNN).

The network generalises from every mark in the project; on a marked image it is only a prior. There the marks are
certain, and the image itself says a great deal: each class's colours (a per-image Gaussian mixture, GrabCut's
regional term) and where its edges are (contrast-sensitive Potts). So the refined labelling minimises

    E(L) = Σ_p [ −λ_net log P_net(L_p | p) − λ_col log p(I_p | θ_{L_p}) ] + Σ_{p,q} w_pq [L_p ≠ L_q]

over the labels each pixel may take — a stroke's pixels only its class; where a background class exists, a
boxed class nowhere outside its boxes; a class the image's tags say is absent nowhere — with graph cuts
(engine.refine.graphcut). As in GrabCut the colour models and the labelling are estimated in turn: the first
models are fitted to the network's belief (each pixel weighted by its probability, stroke pixels certain), the
next ones to the labelling just found.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.annotations.types import UNLABELED
from engine.refine.colour import fit_mixture
from engine.refine.graphcut import FORBIDDEN, alpha_expansion, contrast_weights

EPS = 1e-4
"""floor on the network's probabilities: −log 0 would make a pixel's label a certainty the network never has"""


@dataclass(frozen=True)
class RefineSettings:
    net_weight: float = 1.0
    """λ_net: weight of the network's −log probability"""
    colour_weight: float = 1.0
    """λ_col: weight of the per-image colour models' −log density"""
    smoothness: float = 50.0
    """γ of the contrast-sensitive Potts term (GrabCut's 50)"""
    components: int = 5
    """Gaussians per class colour model"""
    iterations: int = 3
    """rounds of fitting the colour models and cutting"""
    max_pixels: int = 600_000
    init: str = "network"
    floor: float = 1e-4
    calibrate: bool = False
    """larger images are refined at a size with this many pixels and the labels scaled back"""

    def __post_init__(self) -> None:
        if self.net_weight < 0 or self.colour_weight < 0 or self.smoothness < 0:
            raise ValueError("refinement weights must not be negative")
        if self.components < 1 or self.iterations < 1 or self.max_pixels < 64:
            raise ValueError("components and iterations must be >= 1, max_pixels >= 64")


def allowed_labels(shape: tuple[int, int], num_classes: int, seeds: np.ndarray | None, boxes: np.ndarray | None,
                   present: np.ndarray | None, background: int | None) -> np.ndarray:
    """(K, H, W) bool: which labels each pixel may take, given the marks at this size.

    ``seeds`` (H, W) class index or UNLABELED; ``boxes`` (M, 5) (class, x0, y0, x1, y1) in pixels; ``present``
    (K,) bool tags or None. A stroke's pixels may take only its class. Where a background class exists, a class
    with boxes is allowed only inside its boxes, and on a boxed image a class with neither boxes nor strokes is
    not allowed at all (the user boxed what is there). Tags rule out the classes they say are absent (never the
    background, nor a class the image has strokes or boxes of)."""
    h, w = shape
    allowed = np.ones((num_classes, h, w), bool)
    stroked = set() if seeds is None else {int(k) for k in np.unique(seeds) if k != UNLABELED}
    boxed = set()
    if boxes is not None and len(boxes) and background is not None:
        inside = np.zeros((num_classes, h, w), bool)
        for k, x0, y0, x1, y1 in boxes:
            k = int(k)
            boxed.add(k)
            inside[k, max(0, int(np.floor(y0))):max(0, int(np.ceil(y1))),
                   max(0, int(np.floor(x0))):max(0, int(np.ceil(x1)))] = True
        for k in range(num_classes):
            if k == background:
                continue
            if k in boxed:
                allowed[k] &= inside[k]
            elif k not in stroked:
                allowed[k] = False
    if present is not None:
        for k in range(num_classes):
            if not present[k] and k != background and k not in stroked and k not in boxed:
                allowed[k] = False
    if seeds is not None:
        marked = seeds != UNLABELED
        allowed[:, marked] = False
        rows, cols = np.nonzero(marked)
        allowed[seeds[marked].astype(np.int64), rows, cols] = True
    return allowed


def refine_labels(image: np.ndarray, probs: np.ndarray, *, seeds: np.ndarray | None = None,
                  boxes: np.ndarray | None = None, present: np.ndarray | None = None,
                  background: int | None = None, settings: RefineSettings = RefineSettings()) -> np.ndarray:
    """(H, W) uint8 labels for an (H, W, C) uint8 image (C = 3 or 1) and the network's (K, H, W) probabilities at
    the same size, with the marks at that size (see ``allowed_labels``)."""
    h, w = image.shape[:2]
    k = probs.shape[0]
    if probs.shape[1:] != (h, w):
        raise ValueError(f"probabilities {probs.shape[1:]} and image {(h, w)} differ in size")
    scale = min(1.0, float(np.sqrt(settings.max_pixels / (h * w))))
    if scale < 1.0:
        small = (max(1, round(w * scale)), max(1, round(h * scale)))
        img_s = cv2.resize(image, small, interpolation=cv2.INTER_AREA).reshape(small[1], small[0], -1)
        probs_s = np.stack([cv2.resize(p, small, interpolation=cv2.INTER_LINEAR) for p in probs])
        seeds_s = None if seeds is None else cv2.resize(seeds, small, interpolation=cv2.INTER_NEAREST)
        boxes_s = None if boxes is None else np.asarray(boxes, np.float32) * np.float32([1, *[scale] * 4])
        labels = refine_labels(img_s, probs_s, seeds=seeds_s, boxes=boxes_s, present=present,
                               background=background, settings=settings)
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        if seeds is not None:  # strokes thinner than a pixel of the smaller size still hold at full size
            marked = seeds != UNLABELED
            labels[marked] = seeds[marked]
        return labels
    img = image.reshape(h, w, -1)
    allowed = allowed_labels((h, w), k, seeds, boxes, present, background)
    active = [c for c in range(k) if allowed[c].any()]
    if len(active) == 1:
        return np.full((h, w), active[0], np.uint8)
    net = -np.log(np.clip(probs[active], settings.floor, 1.0)).astype(np.float32)
    belief = np.where(allowed[active], np.clip(probs[active], EPS, 1.0), 0.0)
    belief /= belief.sum(0, keepdims=True)
    if settings.init == "strokes" and seeds is not None:
        marked = seeds != UNLABELED
        belief = np.zeros_like(belief)
        for j, c in enumerate(active):
            if c == background:
                belief[j] = ~((seeds != UNLABELED) & (seeds != c))
            else:
                belief[j] = seeds == c
    colours = img.reshape(-1, img.shape[2]).astype(np.float32)
    weights = contrast_weights(img, settings.smoothness)
    labels = None
    for it in range(settings.iterations):
        if it:
            belief = (labels[None] == np.arange(len(active))[:, None, None]).astype(np.float64)
        if settings.calibrate:
            unary = np.zeros_like(net) if labels is None else settings.net_weight * _calibrated(net, labels)
        else:
            unary = settings.net_weight * net
        if settings.colour_weight:
            unary = unary + settings.colour_weight * _colour_costs(colours, belief, settings.components, (h, w))
        unary = np.where(allowed[active], unary, FORBIDDEN)
        new = alpha_expansion(unary, weights, labels)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
    return np.asarray(active, np.uint8)[labels]


def _colour_costs(colours: np.ndarray, belief: np.ndarray, components: int, shape: tuple[int, int]) -> np.ndarray:
    """(K', H, W) −log p(I_p | θ_k), each class's mixture fitted to the pixels weighted by ``belief``; a class
    with no pixel believed gets the mean cost of the others (its colour says nothing either way)."""
    out = np.zeros(belief.shape, np.float32)
    fitted = np.zeros(len(belief), bool)
    for j, b in enumerate(belief):
        wgt = b.ravel()
        if wgt.sum() < 1:
            continue
        model = fit_mixture(colours, wgt, components)
        out[j] = -model.log_density(colours).reshape(shape)
        fitted[j] = True
    if fitted.any() and not fitted.all():
        out[~fitted] = out[fitted].mean(0)
    return out


def _calibrated(net: np.ndarray, labels: np.ndarray, samples: int = 20000) -> np.ndarray:
    """−log softmax_k(a · log P_net(k) + b_k) with the temperature a >= 0 and biases b fitted to ``labels``."""
    import torch
    logp = torch.from_numpy(-net.reshape(net.shape[0], -1).T.astype(np.float64))   # (N, K)
    y = torch.from_numpy(labels.reshape(-1).astype(np.int64))
    pick = torch.from_numpy(np.random.default_rng(0).choice(len(y), min(samples, len(y)), replace=False))
    a = torch.ones(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(net.shape[0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(a.abs() * logp[pick] + b, y[pick])
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        z = torch.log_softmax(a.abs() * logp + b, 1)
    return (-z.T.reshape(net.shape)).numpy().astype(np.float32)
