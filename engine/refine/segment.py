"""The mask of an image someone marked: the network's probabilities, the image's own colours and edges, and the
marks as hard constraints, optimised together for that one image (interactive low-level segmentation on top of
the CNN).

The network generalises from every mark in the project; on a marked image it is only a prior. There the marks are
certain, and the image itself says a great deal: each class's colours (a per-image Gaussian mixture, GrabCut's
regional term) and where its edges are (contrast-sensitive Potts). So the refined labelling minimises

    E(L) = Σ_p [ −log P̃_net(L_p | p) − λ_col log p(I_p | θ_{L_p}) ] + Σ_{p,q} w_pq [L_p ≠ L_q],
    P̃_net = (1 − ε) P_net + ε / K,

over the labels each pixel may take — a stroke's pixels only its class; where a background class exists, a
boxed class nowhere outside its boxes; a class the image's tags say is absent nowhere — with graph cuts
(engine.refine.graphcut). As in GrabCut the colour models and the labelling are estimated in turn: the first
models are fitted to the network's belief (each pixel weighted by its probability, stroke pixels certain), the
next ones to the labelling just found.

ε is the chance that the network is simply wrong about a pixel. It bounds how much the network can say
against the image: with ε = 0.3 and two classes, at most log(0.85 / 0.15) ≈ 1.7 nats per pixel, less than a
clear colour difference says, more than an ambiguous one. A network trained from a handful of short strokes on
photos of different objects paints blobs that spill over its object's edges, and a network that is trusted
fully carries that spill into the mask (the colour models then learn the spilled background as object); one that
is trusted this much decides only where colours and edges do not.

The iterations run at most at ``coarse_pixels`` (the colour models need no more), then one last cut at the size
the image was given, with the last colour models, puts the boundary on its full-resolution edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.annotations.types import UNLABELED
from engine.refine.colour import GaussianMixture, fit_mixture
from engine.refine.graphcut import FORBIDDEN, alpha_expansion, contrast_weights


@dataclass(frozen=True)
class RefineSettings:
    network_error: float = 0.3
    """ε: how often the network is taken to be wrong about a pixel (0: trusted fully)"""
    colour_weight: float = 1.0
    """λ_col: weight of the per-image colour models' −log density"""
    smoothness: float = 25.0
    """γ of the contrast-sensitive Potts term (GrabCut uses 50; with the network as a second data term less
    smoothing keeps thin parts)"""
    components: int = 5
    """Gaussians per class colour model"""
    iterations: int = 3
    """rounds of fitting the colour models and cutting"""
    coarse_pixels: int = 100_000
    """the rounds run on the image shrunk to at most this many pixels"""
    max_pixels: int = 300_000
    """the final cut's size at most: callers refine larger images at this size and scale the labels up"""
    connected: bool = True
    """keep each object class only where it is connected to its strokes (or, boxed, the largest region in each
    of its boxes): a person draws one stroke through the object they mean"""

    def __post_init__(self) -> None:
        if not 0 <= self.network_error <= 1:
            raise ValueError(f"network_error must be in [0, 1], got {self.network_error}")
        if self.colour_weight < 0 or self.smoothness < 0:
            raise ValueError("refinement weights must not be negative")
        if self.components < 1 or self.iterations < 1 or self.coarse_pixels < 64 or self.max_pixels < 64:
            raise ValueError("components and iterations must be >= 1, coarse_pixels and max_pixels >= 64")


def allowed_labels(shape: tuple[int, int], num_classes: int, seeds: np.ndarray | None, boxes: np.ndarray | None,
                   present: np.ndarray | None, background: int | None) -> np.ndarray:
    """(K, H, W) bool: which labels each pixel may take, given the marks at this size.

    ``seeds`` (H, W) class index or UNLABELED; ``boxes`` (M, 5) (class, x0, y0, x1, y1) in pixels; ``present``
    (K,) bool tags or None. A stroke's pixels may take only its class. Where a background class exists, a class
    with boxes is allowed only inside its boxes, and on a boxed image a class with neither boxes, strokes nor a tag
    is not allowed at all (the user boxed what is there). Tags rule out the classes they say are absent (never the
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
            elif k not in stroked and (present is None or not present[k]):
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
    if probs.shape[1:] != (h, w):
        raise ValueError(f"probabilities {probs.shape[1:]} and image {(h, w)} differ in size")
    if seeds is not None and seeds.shape != (h, w):
        raise ValueError(f"seeds {seeds.shape} and image {(h, w)} differ in size")
    img = image.reshape(h, w, -1)
    allowed = allowed_labels((h, w), probs.shape[0], seeds, boxes, present, background)
    active = [c for c in range(probs.shape[0]) if allowed[c].any()]
    if len(active) == 1:
        return np.full((h, w), active[0], np.uint8)
    scale = min(1.0, float(np.sqrt(settings.coarse_pixels / (h * w))))
    if scale < 1.0:
        small = (max(1, round(w * scale)), max(1, round(h * scale)))
        coarse = _Problem(cv2.resize(img, small, interpolation=cv2.INTER_AREA).reshape(small[1], small[0], -1),
                          np.stack([cv2.resize(p, small, interpolation=cv2.INTER_LINEAR) for p in probs[active]]),
                          _shrink(allowed[active], small), _boxes_of(boxes, active, scale),
                          _index(background, active), settings)
    full = _Problem(img, probs[active], allowed[active], _boxes_of(boxes, active, 1.0), _index(background, active),
                    settings)
    problem = coarse if scale < 1.0 else full
    models, labels = None, None
    for _ in range(settings.iterations):
        models = problem.colour_models(problem.belief if labels is None else labels)
        new = problem.solve(models, labels)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
    if scale < 1.0:
        start = cv2.resize(labels.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int64)
        labels = full.solve(models, full.feasible(start))
    return np.asarray(active, np.uint8)[labels]


def _shrink(allowed: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Allowed labels at a smaller (width, height): what every pixel a small pixel covers allows (so a stroke
    thinner than a small pixel still binds it), or, where they allow nothing in common, what any of them does."""
    share = np.stack([cv2.resize(a.astype(np.float32), size, interpolation=cv2.INTER_AREA) for a in allowed])
    every, some = share > 0.999, share > 0
    return np.where(every.any(0), every, some)


def _index(background: int | None, active: list[int]) -> int | None:
    return active.index(background) if background in active else None


def _boxes_of(boxes: np.ndarray | None, active: list[int], scale: float) -> list[np.ndarray]:
    """Per active class, its boxes (M, 4) x0, y0, x1, y1 scaled by ``scale``."""
    out = [np.zeros((0, 4), np.float32) for _ in active]
    for k, *xyxy in (() if boxes is None else boxes):
        if int(k) in active:
            j = active.index(int(k))
            out[j] = np.vstack([out[j], np.float32(xyxy) * scale])
    return out


class _Problem:
    """One image at one size: its colours, the network's costs, the allowed labels and the edge weights."""

    def __init__(self, image: np.ndarray, probs: np.ndarray, allowed: np.ndarray, boxes: list[np.ndarray],
                 background: int | None, settings: RefineSettings):
        k, h, w = probs.shape
        self.shape, self.allowed, self.boxes, self.background, self.settings = (h, w), allowed.copy(), boxes, \
            background, settings
        self.anchors = allowed & (allowed.sum(0) == 1)
        """each class's stroke pixels (where it is the only label allowed)"""
        p = np.where(allowed, np.clip(probs, 0.0, 1.0), 0.0)
        total = p.sum(0, keepdims=True)
        self.belief = np.where(total > 0, p / np.maximum(total, 1e-12), allowed / allowed.sum(0, keepdims=True))
        eps = settings.network_error
        self.net = -np.log((1 - eps) * self.belief + eps / k + 1e-12).astype(np.float32)
        self.colours = image.reshape(-1, image.shape[2]).astype(np.float32)
        self.weights = contrast_weights(image, settings.smoothness)

    def colour_models(self, belief: np.ndarray) -> list[GaussianMixture | None]:
        """A mixture per class fitted to the pixels weighted by ``belief`` (K', H, W), or by a labelling (H, W);
        None for a class no pixel is believed to be."""
        if belief.ndim == 2:
            belief = belief[None] == np.arange(len(self.allowed))[:, None, None]
        models = []
        for b in belief:
            wgt = b.ravel().astype(np.float64)
            models.append(fit_mixture(self.colours, wgt, self.settings.components) if wgt.sum() >= 1 else None)
        return models

    def unary(self, models: list[GaussianMixture | None]) -> np.ndarray:
        unary = self.net.copy()
        if self.settings.colour_weight:
            unary += self.settings.colour_weight * _colour_costs(self.colours, models, self.shape)
        return np.where(self.allowed, unary, FORBIDDEN)

    def feasible(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` where allowed, the network's most likely allowed label elsewhere."""
        ok = np.take_along_axis(self.allowed, labels[None], 0)[0]
        return np.where(ok, labels, np.where(self.allowed, self.belief, -1).argmax(0))

    def solve(self, models: list[GaussianMixture | None], labels: np.ndarray | None) -> np.ndarray:
        """The best labelling for these colour models (from ``labels``), each object class then kept only where
        it is connected to what the user marked (``settings.connected``): its regions that touch one of its
        strokes, or, for a class with boxes and no strokes, the largest region in each of its boxes. The regions
        dropped are forbidden to that class from now on, and the rest cut again."""
        unary = self.unary(models)
        labels = alpha_expansion(unary, self.weights, labels)
        if not self.settings.connected:
            return labels
        dropped = False
        for j in range(len(self.allowed)):
            if j == self.background or not (labels == j).any():
                continue
            if self.anchors[j].any():
                _, comp = cv2.connectedComponents((labels == j).astype(np.uint8), connectivity=8)
                keep = np.unique(comp[self.anchors[j]])
            elif len(self.boxes[j]):
                _, comp = cv2.connectedComponents((labels == j).astype(np.uint8), connectivity=8)
                keep = [_largest_in(comp, x0, y0, x1, y1) for x0, y0, x1, y1 in self.boxes[j]]
            else:
                continue
            drop = (comp > 0) & ~np.isin(comp, keep)
            if drop.any():
                self.allowed[j] &= ~drop
                unary[j][drop] = FORBIDDEN
                dropped = True
        return alpha_expansion(unary, self.weights, self.feasible(labels)) if dropped else labels


def _largest_in(comp: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> int:
    """The label of the largest component inside a box (0 where none is)."""
    h, w = comp.shape
    inside = comp[max(0, int(y0)):min(h, int(np.ceil(y1))), max(0, int(x0)):min(w, int(np.ceil(x1)))]
    counts = np.bincount(inside.ravel())
    counts[0] = 0
    return int(counts.argmax()) if counts.any() else 0


def _colour_costs(colours: np.ndarray, models: list[GaussianMixture | None], shape: tuple[int, int]) -> np.ndarray:
    """(K', H, W) −log p(I_p | θ_k); a class without a model gets the mean cost of the others (its colour says
    nothing either way)."""
    out = np.zeros((len(models), *shape), np.float32)
    fitted = np.array([m is not None for m in models])
    for j, m in enumerate(models):
        if m is not None:
            out[j] = -m.log_density(colours).reshape(shape)
    if fitted.any() and not fitted.all():
        out[~fitted] = out[fitted].mean(0)
    return out
