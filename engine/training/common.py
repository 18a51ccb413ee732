"""What the segmentation, detection and generative trainers share: their error type, the device choice, the
learning-rate schedule and the check that the project's classes stayed put while a network trains on them."""
from __future__ import annotations

import math

import torch

from engine.errors import UserError


class TrainingError(UserError):
    """Training cannot go on (no marks, non-finite loss, ...); the message says what to do."""


def lr_factor(step: int, progress: float, warmup: int = 30) -> float:
    """Linear warm-up over the first steps (a fresh head on a pretrained encoder diverges with a full learning
    rate at once), then cosine decay to 5% as ``progress`` (0..1 of the run) reaches 1."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def devices() -> tuple[str, ...]:
    """The device choices on this machine, as the settings forms offer them."""
    return ("auto", "cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count())))


def pick_device(choice: str) -> torch.device:
    """'auto' (CUDA where there is one, else the CPU), 'cpu', 'cuda' or 'cuda:N', checked against this machine."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("CUDA was requested but no CUDA device is available")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise TrainingError(f"unknown device {choice!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise TrainingError(f"there is no {choice}: this machine has {torch.cuda.device_count()} CUDA devices")
    return device


def current_classes(store, class_ids: list[int], names: list[str]) -> list[str]:
    """The project's class names now. A network's outputs are tied to the classes it started with, so a class
    added, deleted or moved while it trains (the class panel stays live) stops the run with advice instead of
    feeding it labels it has no output for; a renamed class keeps its output and its new name."""
    classes = store.classes()
    if [c.id for c in classes] != class_ids:
        raise TrainingError(f"the classes changed while training ({', '.join(names)} → "
                            f"{', '.join(c.name for c in classes)}): start training again with the new classes")
    return [c.name for c in classes]

