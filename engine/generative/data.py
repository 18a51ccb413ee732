"""Training images for the generative models: small square copies of a project's images, or a built-in
offline digits set, as one (N, C, S, S) float tensor in [−1, 1] (the range tanh outputs and DDPM assumes)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.annotations.types import background_index
from engine.io.images import ImageLoadError
from engine.project import Project

SIZES = (16, 32, 64)
"""16 px is for tests and very quick experiments; the models' up/down-sampling stacks adapt to each"""
MIN_IMAGES = 64
"""below this, every model mostly memorises: the caller is told so"""
LARGE_FACTOR = 4
"""an image whose shorter side is at least this many times the target size also gives random crops"""
BUILTIN = ("digits",)

# 5 x 7 bitmap glyphs for 0-9 (rows top to bottom, '#' = ink): the built-in set needs no download and no sklearn.
_FONT = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}


@dataclass(frozen=True, eq=False)
class TrainingImages:
    images: torch.Tensor
    """(N, C, S, S) float32 in [−1, 1]"""
    name: str
    """where the images came from, in words (shown with results)"""
    warning: str | None = None
    """something the user should know (too few images, unreadable files), or None"""
    labels: torch.Tensor | None = None
    """(N,) int64 class index of each image, where the set has classes (digits, boxed objects)"""
    classes: tuple[str, ...] = ()
    """the class names the labels index"""

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]


def _check(size: int, channels: int) -> None:
    if size not in SIZES:
        raise ValueError(f"image size must be one of {SIZES}, got {size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (colour), got {channels}")


def _few_warning(n: int) -> str | None:
    if n >= MIN_IMAGES:
        return None
    return (f"only {n} training image{'s' * (n != 1)}: with fewer than {MIN_IMAGES} a generative model mostly "
            f"memorises them (check the memorisation figure), so add images or use random crops")


def _notes(count: int, failed: int, *more: str | None) -> str | None:
    """The warnings of a loaded set: too few images, unreadable files, and any others."""
    unread = f"{failed} image{'s' * (failed != 1)} could not be read" if failed else None
    return "; ".join(n for n in (_few_warning(count), *more, unread) if n) or None


def _to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 (S, S, C) arrays to one float tensor in [−1, 1]."""
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def _square(im: Image.Image, size: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The given square (default: the centred one) resized to ``size``, with an antialiasing filter so that
    downscaling large photos does not alias."""
    w, h = im.size
    if box is None:
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    out = np.asarray(im.crop(box).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


def image_tensor(path: str | Path, size: int, channels: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """One image file as the models see their training images: the centred square, resized to ``size``, as a
    (1, C, size, size) tensor in [−1, 1]; with the square's (left, top, side) in the file's pixels. Raises
    ImageLoadError."""
    from engine.io.images import load_image

    loaded = load_image(path)
    im = Image.fromarray(loaded.pixels).convert("L" if channels == 1 else "RGB")
    w, h = im.size
    side = min(w, h)
    return _to_tensor([_square(im, size)]), ((w - side) // 2, (h - side) // 2, side)


def project_images(root: str | Path, size: int = 32, channels: int = 3, random_crops: int = 0,
                   seed: int = 0) -> TrainingImages:
    """Every readable image of a project, centre-cropped to a square and resized; an image whose shorter side is
    at least LARGE_FACTOR × ``size`` also gives ``random_crops`` random squares of half its shorter side, which
    multiplies a small set of large photos into more (overlapping) training images."""
    _check(size, channels)
    rng = np.random.default_rng(seed)
    arrays: list[np.ndarray] = []
    failed = 0
    with Project.open(root) as project:
        records = project.store.images()
        for rec in records:
            try:
                loaded = project.load_image(rec, max_side=max(1024, size * LARGE_FACTOR * 4))
            except ImageLoadError:
                failed += 1
                continue
            im = Image.fromarray(loaded.pixels).convert("L" if channels == 1 else "RGB")
            arrays.append(_square(im, size))
            w, h = im.size
            if random_crops and min(w, h) >= LARGE_FACTOR * size:
                side = min(w, h) // 2
                for _ in range(random_crops):
                    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
                    arrays.append(_square(im, size, (x, y, x + side, y + side)))
    if not arrays:
        raise ValueError(f"the project at {root} has no readable images" + (f" ({failed} could not be read)" if failed else ""))
    crops = " + random crops" if len(arrays) > len(records) - failed else ""
    return TrainingImages(_to_tensor(arrays), f"project {Path(root).name} ({len(records) - failed} images{crops}, {size} px)",
                          _notes(len(arrays), failed))


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-learn's 1797 8 x 8 digits in 0..1 and their labels where scikit-learn is installed (they ship inside
    the package)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    digits = load_digits()
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)


def _rendered_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 10 x 10 digit images in 0..1 from the 5 x 7 font, and their digits: random digit, stroke thickness (1
    or 2 font pixels dilated), shift and per-pixel noise, so that the set has variety within each class as
    handwriting does."""
    glyphs = np.array([[[c == "#" for c in row] for row in _FONT[str(d)]] for d in range(10)], np.float32)
    out = np.zeros((n, 10, 10), np.float32)
    labels = np.zeros(n, np.int64)
    for k in range(n):
        labels[k] = rng.integers(10)
        g = glyphs[labels[k]]
        if rng.random() < 0.5:  # a bolder stroke: dilate to the right
            g = np.maximum(g, np.pad(g, ((0, 0), (1, 0)))[:, :5])
        y, x = rng.integers(0, 10 - 7 + 1), rng.integers(0, 10 - 5 + 1)
        out[k, y:y + 7, x:x + 5] = g * rng.uniform(0.7, 1.0)
    out += rng.normal(0, 0.05, out.shape).astype(np.float32)
    return out.clip(0, 1), labels.astype(np.int64)


def builtin_digits(size: int = 32, channels: int = 1, n: int = 2000, seed: int = 0) -> TrainingImages:
    """An offline set of small white-on-black digits: scikit-learn's digits where it is installed, else digits
    rendered from a built-in bitmap font. Colour (channels = 3) gives each digit a random bright colour."""
    _check(size, channels)
    rng = np.random.default_rng(seed)
    digits = _sklearn_digits()
    if digits is not None:
        order = rng.permutation(len(digits[0]))[:n]
        small, labels, name = digits[0][order], digits[1][order], "scikit-learn digits (8x8, upsampled)"
    else:
        (small, labels), name = _rendered_digits(n, rng), "built-in digits (rendered)"
    x = torch.from_numpy(small)[:, None]
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    if channels == 3:
        colours = torch.from_numpy(rng.uniform(0.3, 1.0, (len(x), 3, 1, 1)).astype(np.float32))
        x = x * colours
    return TrainingImages(x * 2 - 1, f"{name}, {len(x)} images at {size} px", _few_warning(len(x)),
                          torch.from_numpy(labels), tuple(str(d) for d in range(10)))


BOX_MARGIN = 0.1
"""context kept around a boxed object, as a share of its box's longer side on each side"""


def _labelled(root: str | Path, arrays: list[np.ndarray], labels: list[int], used: list[int], classes: list,
              what: str, size: int, warning: str | None) -> TrainingImages:
    """A project's labelled set: ``labels`` index ``used`` (class ids, in class order), named from ``classes``."""
    names = {c.id: c.name for c in classes}
    return TrainingImages(_to_tensor(arrays), f"project {Path(root).name} ({len(arrays)} {what}, {size} px)", warning,
                          torch.tensor(labels, dtype=torch.int64), tuple(names[i] for i in used))


def project_objects(root: str | Path, size: int = 32, channels: int = 3) -> TrainingImages:
    """The project's boxed objects, labelled with their boxes' classes: each box widened to a square around its
    centre with ``BOX_MARGIN`` of context (cut where the image ends), resized to ``size``. The classes are those
    that have boxes, in class order."""
    _check(size, channels)
    arrays, labels, failed = [], [], 0
    with Project.open(root) as project:
        store = project.store
        classes = store.classes()
        boxed = [(rec, store.boxes(rec.id)) for rec in store.images()]
        used = sorted({b.class_id for _, boxes in boxed for b in boxes}, key=[c.id for c in classes].index)
        index = {class_id: i for i, class_id in enumerate(used)}
        for rec, boxes in boxed:
            if not boxes:
                continue
            try:
                loaded = project.load_image(rec)
            except ImageLoadError:
                failed += 1
                continue
            im = Image.fromarray(loaded.pixels).convert("L" if channels == 1 else "RGB")
            f = loaded.scale  # boxes are in full-resolution pixels, a very large image is read smaller
            for b in boxes:
                side = max(b.x1 - b.x0, b.y1 - b.y0) * (1 + 2 * BOX_MARGIN) * f
                cx, cy = (b.x0 + b.x1) / 2 * f, (b.y0 + b.y1) / 2 * f
                box = (max(0, round(cx - side / 2)), max(0, round(cy - side / 2)),
                       min(im.width, round(cx + side / 2)), min(im.height, round(cy + side / 2)))
                if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                    continue
                arrays.append(np.asarray(im.crop(box).resize((size, size), Image.Resampling.LANCZOS), np.uint8)
                              .reshape(size, size, channels))
                labels.append(index[b.class_id])
    if not arrays:
        raise ValueError(f"the project at {root} has no boxed objects to learn classes from: draw boxes, or train "
                         "without --conditional on its whole images")
    return _labelled(root, arrays, labels, used, classes, "boxed objects", size, _notes(len(arrays), failed))


def project_tagged(root: str | Path, size: int = 32, channels: int = 3) -> TrainingImages:
    """The project's whole images (centred squares) that are tagged with exactly one class other than the
    background, labelled with it. Images tagged with several such classes are left out: their label would be
    ambiguous. The classes are those that label an image, in class order."""
    _check(size, channels)
    arrays, labels, failed, several = [], [], 0, 0
    with Project.open(root) as project:
        store = project.store
        classes = store.classes()
        background = background_index([c.name for c in classes])
        objects = {c.id for c in classes if c.index != background}
        tagged = []
        for rec in store.images():
            tags = store.tags(rec.id)
            present = sorted(tags.class_ids & objects) if tags is not None else []
            several += len(present) > 1
            if len(present) == 1:
                tagged.append((rec, present[0]))
        used = sorted({class_id for _, class_id in tagged}, key=[c.id for c in classes].index)
        index = {class_id: i for i, class_id in enumerate(used)}
        for rec, class_id in tagged:
            try:
                loaded = project.load_image(rec, max_side=max(1024, size * LARGE_FACTOR * 4))
            except ImageLoadError:
                failed += 1
                continue
            arrays.append(_square(Image.fromarray(loaded.pixels).convert("L" if channels == 1 else "RGB"), size))
            labels.append(index[class_id])
    if not arrays:
        raise ValueError(f"the project at {root} has no image tagged with exactly one class (other than the "
                         "background) to learn classes from: tag images, or learn from the boxes")
    left_out = f"{several} image{'s' * (several != 1)} tagged with several classes left out" if several else None
    return _labelled(root, arrays, labels, used, classes, "tagged images", size, _notes(len(arrays), failed, left_out))


CLASS_SOURCES = ("boxes", "tags")
"""where a project's conditional models find their classes: boxed objects (project_objects) or tagged whole
images (project_tagged)"""


def load_training_images(source: str, size: int = 32, channels: int = 1, random_crops: int = 0,
                         seed: int = 0, classes: str | None = None) -> TrainingImages:
    """``source``: 'builtin:digits' (labelled with their digits) or a project folder: its whole images, or with
    ``classes`` (one of CLASS_SOURCES) its labelled boxed objects or tagged images."""
    if source.startswith("builtin:"):
        name = source.split(":", 1)[1]
        if name not in BUILTIN:
            raise ValueError(f"unknown built-in set {name!r}; choose one of {', '.join(BUILTIN)}")
        return builtin_digits(size, channels, seed=seed)
    if classes == "boxes":
        return project_objects(source, size, channels)
    if classes == "tags":
        return project_tagged(source, size, channels)
    if classes is not None:
        raise ValueError(f"classes come from {' or '.join(CLASS_SOURCES)}, not {classes!r}")
    return project_images(source, size, channels, random_crops, seed)
