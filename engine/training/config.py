"""Training settings, with defaults chosen so that a new user just presses Train. Each is declared once here
(engine.settings): ``wsv train`` and ``wsv bench quality`` take their options from these declarations, the GUI's
form its rows, and ``check`` its validation. The measurements behind the defaults are in docs/benchmarks.md."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from engine.models.registry import MODEL_NAMES, default_model_name
from engine.settings import Setting, SettingError, Spec, check, setting
from engine.training.common import devices
from engine.training.regularizers import REGULARIZERS as TABLE
from engine.training.targets import SUPERVISION
from engine.training.terms import TERMS

PCE_MODES = ("balanced", "mean")
"""how the pCE weighs drawn strokes: each class the same, or each pixel (TrainConfig.balanced_pce)"""

REGULARIZERS = tuple(TABLE)
DEFAULT_REG_WEIGHT = {name: r.weight for name, r in TABLE.items()}
"""the regularizers' names and default weights (engine.training.regularizers declares them)"""


@dataclass
class TrainConfig:
    supervision: str = setting(
        "scribbles", choices=SUPERVISION,
        help="what to learn from: the strokes, boxes or tags, the full masks (the upper bound), boxes-grabcut "
             "(the naive baseline: GrabCut inside boxes as masks) or marks (every kind an image has, as the GUI "
             "trains)")
    regularizer: str = setting(
        "dense", choices=REGULARIZERS, label="Regularizer",
        help="loss on all pixels: 'dense' CRF follows colour edges across the whole image, 'grid' between "
             "neighbouring pixels, 'ncut' is the normalized cut, 'colour' the regional colour term alone, 'none' "
             "trains on the marks alone")
    reg_weight: float | None = setting(
        None, low=0, label="Weight", follows=("regularizer", DEFAULT_REG_WEIGHT),
        help="regularizer weight (default: the regularizer's own, engine.training.regularizers)")
    sigma_rgb: float = setting(15.0, positive=True, label="σ rgb", decimals=1, step=1,
                               help="colour bandwidth of the dense CRF kernel (0..255 units)")
    sigma_xy: float = setting(
        100.0, positive=True, label="σ xy", decimals=1, step=5,
        help="spatial bandwidth of the dense CRF kernel, in working-size pixels")
    """A long reach ties the parts of an image no stroke came near to the strokes of the same colour: on ACDC's
    real scribbles, where only a loop around the heart marks the background, a shorter one left the rest of the
    body unclaimed, and on a bad seed the net labelled it myocardium (docs/benchmarks.md, "The kernel's reach")."""
    colour_weight: float = setting(
        1.0, low=0, label="Colour weight", decimals=2, step=0.25,
        help="weight of the regional colour term that comes with grid, dense and ncut on colour images (0: the "
             "pairwise term alone); it keeps each class's colours together, so a short stroke's object does not "
             "shrink to it")
    """Why: the dense CRF loss is a relaxed Potts cut, cheapest when a segment is small. With one short stroke
    through each object on photos of different objects (people's marks), little but the stroke holds most of the
    object, and the cut gives it to the background: the object shrinks toward its stroke. The regional term has no
    such bias — it asks each class's colours in an image to be compact, whatever the class's size — and holds the
    object's colours together. Grayscale images go without it (engine.training.terms.with_colour): where classes
    share intensities, as in cardiac MRI, an intensity model merges them."""
    balanced_pce: bool = setting(
        True, words=PCE_MODES, flag="pce", label="pCE",
        help="partial cross-entropy over the brush strokes: 'balanced' weighs each class the same however long "
             "its strokes, 'mean' weighs each stroked pixel the same (seeds that boxes or masks give always take "
             "the mean)")
    """On ACDC's real scribbles — a long loop around the heart, short strokes inside the thin myocardium and right
    ventricle — the plain mean let the dense CRF shrink those classes into the background; balancing box-derived
    seeds cost the horses' box rows (docs/benchmarks.md, ACDC)."""
    reg_ramp_steps: int = setting(
        100, low=0, help="the regularizer's weight rises linearly from 0 over these first steps")
    """a strong CRF term from step one pulls a net that has not yet learnt the classes from the marks toward one
    constant label"""
    grid_sigma: float | None = setting(None, positive=True,
                                       help="the grid CRF's colour bandwidth (default: estimated per image)")
    boxed_reg_factor: float = setting(
        0.25, low=0, help="factor on the regularizer weight for boxed images where no class is named background "
                          "(every class boxed)")
    """There every class is boxed and the consistency loss already pins most boxed pixels, while the colour kernel
    spreads whichever of many classes dominates a colour: on MSRC the full weight cost the box losses, a quarter
    made them beat GrabCut's proposals. Projects with a background keep the full weight (docs/benchmarks.md,
    MSRC)."""
    weights: dict[str, float] = field(default_factory=lambda: {n: t.weight for n, t in TERMS.items()
                                                               if t.weight is not None})
    """each weighted training term's weight (engine.training.terms declares the terms and their defaults)"""
    model: str = setting(default_factory=default_model_name, choices=MODEL_NAMES, label="Model",
                         help="network architecture (efficientnet-lite0-unet where its weights are installed)")
    lr: float = setting(1e-3, positive=True, label="Learning rate", decimals=5, step=1e-4,
                        help="learning rate of the pretrained encoder (of the whole network when nothing in it is "
                             "pretrained)")
    new_layer_lr_mult: float = setting(
        2.0, positive=True, help="learning-rate factor for the decoder and head beside a pretrained encoder")
    """The layers that start from random weights must grow from nothing while the encoder only adapts: with one
    rate for all, a 23-class head could not fit even 16 MSRC images in 200 steps, and a much larger factor lets the
    head memorise the seeds (docs/benchmarks.md, MSRC and horses)."""
    steps: int = setting(1500, low=1, help="training steps")
    max_minutes: float | None = setting(None, positive=True,
                                        help="stop after this many minutes of training (not counting pauses)")
    batch_size: int = setting(4, low=1, help="images per step")
    crop_size: int = setting(256, low=16, help="side of the random crops trained on, in working-size pixels")
    working_size: int = setting(320, low=32, high=4096, label="Working size", step=32,
                                help="longer image side the network sees, in pixels (images are never upscaled)")
    init_from: str | None = None
    """a saved model folder (a run of wsv train, the GUI's last model) whose weights the network starts from, to
    continue a stopped training; its architecture and classes must be this run's. None: ImageNet (or random)"""
    device: str = setting("auto", suggestions=devices, label="Device",
                          help="auto (CUDA where there is one, else the CPU), cpu or cuda:N")
    threads: int | None = setting(None, low=1, help="CPU threads for torch (default: torch's)")
    workers: int | None = setting(
        None, low=0, help="processes that read and augment the training images while the network trains (default: "
                          "none on the CPU, whose cores are busy training; up to 4 beside a GPU)")
    cache_mb: int = setting(
        1024, low=0, help="memory for decoded training images and their targets, in MiB, shared by the reading "
                          "processes; images beyond it are read from disk again when drawn")
    """The trainer keeps only an index of the marked images (engine.training.data), so a project of any size
    trains in this much memory; a project whose working-size images fit in it reads each image once."""
    seed: int = setting(0, help="seed of sampling, augmentation and initial weights")
    preview_interval_s: float = 0.5
    refine_interval_s: float = 3.0
    """the preview's refined mask of a marked image is recomputed at most this often while its marks stay the
    same (refining takes a good part of a training step on a CPU)"""
    eval_interval_s: float = 10.0
    score_interval_s: float = 0.0
    """how often the trainer scores a few of the project's images by how much they need marks (engine.suggest),
    in turn, for the window's suggestions; 0: never (the command line has no use for them)"""
    score_images: int = 2
    """images scored each time: each costs one forward pass at working size"""
    allow_download: bool = setting(False, help="let torchvision download ImageNet backbone weights that are not "
                                               "in the torch cache")

    @staticmethod
    def extra_settings() -> list[Setting]:
        """The weighted training terms' weights, as settings named NAME_weight."""
        return [Setting("weights", float, False, t.weight, Spec(t.help, label=f"{t.title} weight", low=0,
                                                                  flag=f"{n}_weight", decimals=3, step=0.25), key=n)
                for n, t in TERMS.items() if t.weight is not None]

    def __post_init__(self) -> None:
        check(self)
        unknown = set(self.weights) - {n for n, t in TERMS.items() if t.weight is not None}
        if unknown:
            raise SettingError(f"no weighted training term is called {', '.join(sorted(unknown))}")

    @property
    def effective_reg_weight(self) -> float:
        if self.regularizer == "none":
            return 0.0
        return DEFAULT_REG_WEIGHT[self.regularizer] if self.reg_weight is None else self.reg_weight

    def as_dict(self) -> dict:
        return asdict(self)
