"""Losses for box supervision: the tightness prior and per-pixel consistency inside boxes.

A box says three things. Outside every box there is background (those pixels become background seeds for the
partial cross-entropy; see engine.training.targets). Inside a box of class k each pixel is k or something
else boxed there or background — never an unrelated class (``box_consistency_loss``). And the box is tight:
every row and every column crossing it holds some pixels of class k (Hsu et al., NeurIPS 2019; Kervadec et
al., MIDL 2020), which keeps the object from shrinking to nothing (``box_tightness_loss``): each such line is a
positive bag of multiple-instance learning, scored by a smooth maximum of S^k along the line.
"""
from __future__ import annotations

import torch

Boxes = list[torch.Tensor]
"""per image, an (M, 5) float tensor of (class index, x0, y0, x1, y1) in pixel coordinates of the probs"""


def _pixel_bounds(box: torch.Tensor, h: int, w: int) -> tuple[int, int, int, int]:
    """Rows and columns whose pixel centres lie inside the box, clipped to the image: (r0, r1, c0, c1)."""
    _, x0, y0, x1, y1 = (float(v) for v in box)
    c0, c1 = max(0, round(x0)), min(w, round(x1))
    r0, r1 = max(0, round(y0)), min(h, round(y1))
    return r0, r1, c0, c1


def smooth_max(values: torch.Tensor, dim: int, alpha: float) -> torch.Tensor:
    """α-softmax: Σ v e^{αv} / Σ e^{αv}; between the mean (α = 0) and the max (α → ∞), with a gradient to every
    element instead of only the arg-max, which makes the bags train smoothly."""
    weights = torch.softmax(alpha * values, dim=dim)
    return (weights * values).sum(dim)


def box_tightness_loss(probs: torch.Tensor, boxes: Boxes, alpha: float = 4.0, eps: float = 1e-6) -> torch.Tensor:
    """Mean over every row and column crossing every box of −log smoothmax_{p on the line} S_p^k.

    probs: (B, K, H, W) softmax probabilities; boxes: per image (M, 5) (class, x0, y0, x1, y1). Returns a scalar;
    0 (still differentiable) when the batch holds no box.
    """
    _, _, h, w = probs.shape
    terms = []
    for i, image_boxes in enumerate(boxes):
        for box in image_boxes:
            r0, r1, c0, c1 = _pixel_bounds(box, h, w)
            if r1 <= r0 or c1 <= c0:
                continue
            region = probs[i, int(box[0]), r0:r1, c0:c1]
            terms.append(-torch.log(smooth_max(region, 1, alpha) + eps))  # rows
            terms.append(-torch.log(smooth_max(region, 0, alpha) + eps))  # columns
    if not terms:
        return probs.sum() * 0.0
    return torch.cat(terms).mean()


def box_allowed_classes(boxes: torch.Tensor, num_classes: int, h: int, w: int, background: int | None = 0
                        ) -> torch.Tensor:
    """(K, H, W) bool: which classes each pixel of one image may take given its boxes (inside boxes: their
    classes and background; outside all boxes: every class, the pCE seeds already say background there). With
    no background class (``background`` None, every class boxed), a pixel inside boxes is one of their classes."""
    allowed = torch.zeros(num_classes, h, w, dtype=torch.bool, device=boxes.device)
    inside = torch.zeros(h, w, dtype=torch.bool, device=boxes.device)
    for box in boxes:
        r0, r1, c0, c1 = _pixel_bounds(box, h, w)
        allowed[int(box[0]), r0:r1, c0:c1] = True
        inside[r0:r1, c0:c1] = True
    if background is not None:
        allowed[background] |= inside
    allowed[:, ~inside] = True
    return allowed


def box_consistency_loss(probs: torch.Tensor, boxes: Boxes, background: int | None = 0, eps: float = 1e-6
                         ) -> torch.Tensor:
    """Mean over pixels inside boxes of −log Σ_{k allowed} S_p^k (see ``box_allowed_classes``)."""
    b, k, h, w = probs.shape
    terms = []
    for i in range(b):
        if len(boxes[i]) == 0:
            continue
        allowed = box_allowed_classes(boxes[i], k, h, w, background)
        inside = ~allowed.all(0)
        if inside.any():
            mass = (probs[i] * allowed).sum(0)
            terms.append(-torch.log(mass[inside] + eps))
    if not terms:
        return probs.sum() * 0.0
    return torch.cat(terms).mean()
