"""The training terms, declared once: each one's loss, its weight (a setting: ``--NAME-weight`` on the command
line, a row in the GUI's form), its gradient map for display, and how its curve is titled and coloured. The
trainer sums whatever terms apply to a batch and reports each by name; the CLI, the GUI's form, its loss curves
and its status line all read this table. Adding a term is a function and one ``TERMS`` entry
(docs/architecture.md, "Add a loss").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from engine.annotations.types import UNLABELED
from engine.losses.box import box_consistency_loss, box_tightness_loss
from engine.losses.colour import colour_consistency_gradient, colour_consistency_loss
from engine.losses.pce import partial_cross_entropy
from engine.losses.tags import absent_suppression_loss, tag_classification_loss, tag_consistency_loss
from engine.training.regularizers import REGULARIZERS

if TYPE_CHECKING:
    from engine.training.config import TrainConfig
    from engine.training.data import Batch


@dataclass(frozen=True)
class StepInputs:
    """What a term sees of one training step."""

    logits: torch.Tensor
    """(B, K, H, W) float32"""
    probs: torch.Tensor
    """softmax of the logits"""
    batch: Batch
    config: TrainConfig
    background: int | None
    """index of the class named background, None where there is none"""
    step: int
    """0-based index of this step"""


@dataclass(frozen=True)
class Term:
    title: str
    """its name on the loss curves and in the status line"""
    loss: Callable[[StepInputs], torch.Tensor | None]
    """the term's value on a batch (a scalar tensor), None where it does not apply to it"""
    weight: float | None = None
    """default weight in the total loss, a setting; None: the term is always counted once (its own settings
    weigh its parts, as the regularizer's do)"""
    help: str = ""
    """what the weight does, for the CLI's help and the form's tooltip"""
    gradient: Callable[[torch.Tensor, torch.Tensor, TrainConfig], torch.Tensor | None] | None = None
    """(image (1, C, H, W) in 0..255, probs (1, K, H, W), config) -> weighted ∂term/∂S (1, K, H, W) for display,
    None where it has none for this configuration"""
    colour: tuple[int, int, int] = (200, 200, 200)
    """its curve's colour"""


# ---- partial cross-entropy ----------------------------------------------------------------------------------
def pce_loss(logits: torch.Tensor, batch: Batch, balanced: bool) -> torch.Tensor:
    """The partial cross-entropy: class-balanced over the seeds the user drew when ``balanced``, and the plain
    mean over seeds derived from masks or boxes (they label every pixel, or GrabCut chose them, so the length of
    a stroke says nothing there); the mean of the two where a batch holds both kinds."""
    if not balanced:
        return partial_cross_entropy(logits, batch.seeds)
    seeded = batch.seeds != UNLABELED
    terms = [partial_cross_entropy(logits, batch.seeds.masked_fill(~kind, UNLABELED), balanced=b)
             for kind, b in ((batch.drawn, True), (seeded & ~batch.drawn, False)) if kind.any()]
    return sum(terms) / len(terms) if terms else partial_cross_entropy(logits, batch.seeds)


# ---- the regularizer ----------------------------------------------------------------------------------------
def with_colour(config: TrainConfig, image: torch.Tensor) -> bool:
    """Whether the regional colour term comes with the regularizer for this image: with a pairwise one, at a
    weight, on colour images. A grayscale image (one channel here) goes without it: where classes share
    intensities, as the heart's structures do in MRI, a per-image intensity model pulls them into one."""
    return REGULARIZERS[config.regularizer].pairwise and bool(config.colour_weight) and image.shape[1] == 3


def regularizer_loss(config: TrainConfig, image: torch.Tensor, probs: torch.Tensor,
                     weights: list[float] | None = None) -> torch.Tensor:
    """The weighted regularizer's batch mean — the chosen term and the regional colour term that comes with a
    pairwise one — each image's term times its entry in ``weights`` where given."""
    if weights is not None:
        return sum((w * regularizer_loss(config, image[i:i + 1], probs[i:i + 1])
                    for i, w in enumerate(weights) if w), probs.new_zeros(())) / len(weights)
    reg = REGULARIZERS[config.regularizer]
    total = probs.new_zeros(())
    if reg.loss is not None and config.effective_reg_weight:
        total = total + config.effective_reg_weight * reg.loss(image, probs.float(), config)
    if with_colour(config, image):
        total = total + config.colour_weight * colour_consistency_loss(image, probs.float())
    return total


def regularizer_gradient(image: torch.Tensor, probs: torch.Tensor, config: TrainConfig) -> torch.Tensor | None:
    """∂/∂S of the weighted regularizer, for display; None without one."""
    reg = REGULARIZERS[config.regularizer]
    if reg.gradient is None:
        return None
    grad = config.effective_reg_weight * reg.gradient(image, probs, config)
    if with_colour(config, image):
        grad = grad + config.colour_weight * colour_consistency_gradient(image, probs)
    return grad


def crf_image(batch: Batch) -> torch.Tensor:
    """Grayscale images enter the CRF kernels with their one channel, so σ_rgb means the same as for colour."""
    return batch.images[:, :1] if batch.gray else batch.images


def reg_image_weights(config: TrainConfig, background: int | None, batch: Batch) -> list[float] | None:
    """Per-image factors on the regularizer (TrainConfig.boxed_reg_factor on boxed images in a project with no
    background class), or None where every image takes the full weight."""
    factor = config.boxed_reg_factor
    if background is not None or factor == 1 or not bool(batch.boxed.any()):
        return None
    return [factor if boxed else 1.0 for boxed in batch.boxed.tolist()]


def _regularizer_term(s: StepInputs) -> torch.Tensor | None:
    c = s.config
    if c.regularizer == "none":
        return None
    ramp = min(1.0, (s.step + 1) / c.reg_ramp_steps) if c.reg_ramp_steps else 1.0
    return ramp * regularizer_loss(c, crf_image(s.batch), s.probs, reg_image_weights(c, s.background, s.batch))


# ---- boxes and tags -----------------------------------------------------------------------------------------
def _box_term(s: StepInputs) -> torch.Tensor | None:
    if not any(len(b) for b in s.batch.boxes):
        return None
    return box_tightness_loss(s.probs, s.batch.boxes) + box_consistency_loss(s.probs, s.batch.boxes, s.background)


def _tags_term(s: StepInputs) -> torch.Tensor | None:
    tagged = s.batch.tagged
    if not bool(tagged.any()):
        return None
    p, present = s.probs[tagged], s.batch.present[tagged]
    return tag_consistency_loss(p, present) + tag_classification_loss(p, present) + absent_suppression_loss(p, present)


TERMS: dict[str, Term] = {
    "pce": Term("pCE", lambda s: pce_loss(s.logits, s.batch, s.config.balanced_pce), colour=(80, 170, 255)),
    "reg": Term("regularizer", _regularizer_term, gradient=regularizer_gradient, colour=(255, 140, 60)),
    "box": Term("box", _box_term, weight=1.0, colour=(220, 90, 200),
                help="weight of the box losses (tightness prior and consistency inside boxes)"),
    "tags": Term("tags", _tags_term, weight=1.0, colour=(120, 220, 120),
                 help="weight of the tag losses (consistency, image-level classification, absent-class "
                      "suppression)"),
}
"""The terms in the order the curves and the status line list them; the record's 'total' is their sum."""

TOTAL = Term("total", lambda s: None, colour=(240, 240, 240))
"""the sum, as the curves and the status line show it"""


def weighted_terms(inputs: StepInputs) -> dict[str, torch.Tensor]:
    """Every term that applies to this batch, at its weight (zero-weight terms are skipped)."""
    out = {}
    for name, term in TERMS.items():
        weight = 1.0 if term.weight is None else inputs.config.weights.get(name, term.weight)
        if not weight:
            continue
        value = term.loss(inputs)
        if value is not None:
            out[name] = weight * value
    return out


def display_gradient(image: torch.Tensor, probs: torch.Tensor, config: TrainConfig) -> torch.Tensor | None:
    """The sum of the terms' gradient maps for one image (what the gradient view shows), None where no term
    has one."""
    maps = []
    for name, term in TERMS.items():
        weight = 1.0 if term.weight is None else config.weights.get(name, term.weight)
        g = term.gradient(image, probs, config) if term.gradient is not None and weight else None
        if g is not None:
            maps.append(weight * g)
    return sum(maps) if maps else None


def title(name: str) -> str:
    """A reported term's title ('total' included; a name no term declares is shown as it is)."""
    return TOTAL.title if name == "total" else TERMS[name].title if name in TERMS else name
