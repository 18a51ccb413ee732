"""Saving trained weights so that a crash or a full disk never leaves a model that loads wrong.

Every file is written under a temporary name, flushed to disk and renamed over the old one, so a reader sees the
old file or the new one, never half of one. Weights and the description that says how to build the network
(architecture, classes) belong together, yet two renames cannot happen at once; so the description also travels
inside the weights file (safetensors metadata), and loading takes it from there: the JSON file beside it is the
readable copy, and if a crash fell between the two renames the pair that loads is still the new one.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.errors import UserError
from engine.io.atomic import write_atomic

DESCRIPTION_KEY = "description"
"""Metadata key of the description inside a weights file."""


class WeightsError(UserError):
    """A weights or description file that cannot be read; the message names it."""


def write_json(path: Path, data: object) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def save_weights(state: dict[str, torch.Tensor], weights: Path, description: dict, json_copy: Path) -> None:
    """Write ``state`` with ``description`` inside it, then the description's readable copy ``json_copy``."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    write_atomic(weights, lambda p: save_file(state, str(p), metadata={DESCRIPTION_KEY: json.dumps(description)}))
    write_json(json_copy, description)


def read_description(weights: Path, json_copy: Path) -> dict:
    """The description saved with ``weights`` (from the file's metadata; from ``json_copy`` for weights saved
    without one)."""
    try:
        with safe_open(str(weights), "pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error type for damaged headers
        raise WeightsError(f"cannot read {weights}: {exc} (the file is damaged or incomplete)") from None
    text = meta.get(DESCRIPTION_KEY)
    where = weights
    if text is None:
        where = json_copy
        try:
            text = json_copy.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WeightsError(f"cannot read {json_copy}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{where} holds no valid description: {exc}") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{where} holds no valid description")
    return data


def load_weights(weights: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(weights))
    except Exception as exc:  # a truncated file fails inside safetensors with its own error type
        raise WeightsError(f"cannot read {weights}: {exc} (the file is damaged or incomplete)") from None
