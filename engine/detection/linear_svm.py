"""A linear support vector machine, trained in the primal: minimise
    ½‖w‖² + C Σ_i c_i max(0, 1 − y_i (w·x_i + b))²
(the squared-hinge "L2-loss SVM", liblinear's default), bias not regularised, with class weights c_i that give
both classes the same total weight, since detector training sees far more negatives than positives.

Written here because the OpenCV wheels we depend on (5.x) no longer ship cv2.ml. The squared hinge is smooth
enough for L-BFGS, which solves the few thousand HOG vectors of a detector in well under a second.
"""
from __future__ import annotations

import numpy as np
import torch


def svm_objective(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor,
                  c: float) -> torch.Tensor:
    margin = torch.clamp(1.0 - y * (x @ w + b), min=0.0)
    return 0.5 * (w @ w) + c * torch.sum(weight * margin * margin)


def class_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights N / (2 N_class): each class weighs N / 2 in total, whatever the imbalance."""
    y = np.asarray(y)
    pos, neg = int(np.sum(y > 0)), int(np.sum(y < 0))
    if not pos or not neg:
        raise ValueError(f"an SVM needs samples of both classes, got {pos} positive and {neg} negative")
    return np.where(y > 0, len(y) / (2.0 * pos), len(y) / (2.0 * neg))


def train_linear_svm(x: np.ndarray, y: np.ndarray, c: float = 0.01, max_iter: int = 500) -> tuple[np.ndarray, float]:
    """(w, b) with decision value w·x + b, positive for label +1; ``y`` holds +1 and -1."""
    xt = torch.from_numpy(np.asarray(x, np.float64))
    yt = torch.from_numpy(np.asarray(y, np.float64))
    weight = torch.from_numpy(class_weights(y))
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = svm_objective(w, b, xt, yt, weight, c)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().astype(np.float32), float(b.detach())
