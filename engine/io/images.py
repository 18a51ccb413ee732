"""Reading user images into one predictable form: an 8-bit, C-contiguous H x W x 3 RGB array.

Users point the app at whatever their camera, scanner or microscope wrote, so every source flavour (palette,
alpha, 1-bit, CMYK, 16/32-bit, EXIF-rotated) is normalised here once, and every failure becomes an
``ImageLoadError`` naming the file and the reason in plain words, so the GUI can list bad files instead of crashing.

Pillow's decompression-bomb limit is raised process-wide, once, to ``MAX_PIXELS`` (Pillow then warns above it and
refuses above twice it): its default of 89 megapixels rejects ordinary slide scans. This module checks the exact
limit itself, from the header, before any pixel is decoded.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from engine.errors import UserError

MAX_PIXELS = 1_000_000_000
"""Images with more pixels than this are refused (decompression-bomb guard)."""
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

# EXIF Orientation tag value -> the transpose that shows the image upright (same table as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_HIGH_DEPTH = {"I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}


class ImageLoadError(UserError):
    """An image could not be read; ``str()`` names the file and the reason (shown to users as is)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(os.fspath(path), reason)  # both in args, so the error survives pickling across processes
        self.path, self.reason = os.fspath(path), reason

    def __str__(self) -> str:
        return f"cannot read {self.path}: {self.reason}"


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarrays field-wise is ambiguous; identity is what we want
class LoadedImage:
    """A decoded image. ``pixels`` may be a downscaled working copy; ``original_size`` is always the full
    (width, height) after EXIF orientation, so marks can be mapped back to full resolution via ``scale``."""

    pixels: np.ndarray
    original_size: tuple[int, int]
    is_gray: bool
    bit_depth: int
    path: str

    @property
    def scale(self) -> float:
        """Working-copy width over full width (1.0 when not downscaled)."""
        return self.pixels.shape[1] / self.original_size[0]


@dataclass
class FolderScan:
    """Result of ``scan_folder``: the files that look readable and one error per file that does not."""

    readable: list[Path] = field(default_factory=list)
    errors: list[ImageLoadError] = field(default_factory=list)


@contextmanager
def _reading(path: str):
    """Turn whatever Pillow, OpenCV or the OS raise while reading ``path`` into an ``ImageLoadError``."""
    try:
        yield
    except ImageLoadError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise ImageLoadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a folder, not an image file") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except Image.UnidentifiedImageError:
        raise ImageLoadError(path, "not an image file (or an unsupported format)") from None
    except Image.DecompressionBombError as e:
        m = re.search(r"(\d+) pixels", str(e))
        raise ImageLoadError(path, _too_large(int(m.group(1)) if m else None)) from None
    except MemoryError:
        raise ImageLoadError(path, "not enough memory to decode the image") from None
    except Exception as e:  # decoders raise OSError, SyntaxError, ValueError, zlib/struct errors, cv2.error ...
        if "truncated" in str(e).lower():
            raise ImageLoadError(path, "image data is truncated") from e
        raise ImageLoadError(path, f"image data is corrupt or unsupported ({e})") from e


def _too_large(pixels: int | None) -> str:
    got = f"{pixels / 1e6:.4g} megapixels, " if pixels is not None else ""
    return f"image too large ({got}limit {MAX_PIXELS / 1e6:.4g})"


def _open(path: str) -> Image.Image:
    """Open lazily (header only) after the checks Pillow would report confusingly (missing, folder, empty)."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(path, "is a folder, not an image file")
    if st.st_size == 0:
        raise ImageLoadError(path, "file is empty (0 bytes)")
    im = Image.open(path)
    if im.width * im.height > MAX_PIXELS:
        im.close()
        raise ImageLoadError(path, _too_large(im.width * im.height))
    return im


def _orientation(im: Image.Image) -> int:
    """EXIF orientation from the header. A PNG's eXIf chunk placed after the pixel data is ignored, since
    reading it would decode the image; this keeps ``read_image_size`` and ``load_image`` in agreement."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF is common in the wild and must not make a decodable image unreadable
        return 1


def _oriented_size(im: Image.Image, orientation: int) -> tuple[int, int]:
    return (im.height, im.width) if orientation in (5, 6, 7, 8) else (im.width, im.height)


def _rawmode(im: Image.Image) -> str:
    args = im.tile[0].args if im.tile else None
    return args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")


def _to_uint8(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly onto 0..255 (round half up; constant data -> zeros), in row blocks to bound memory.
    Multiplying before dividing makes exact .5 cases exact, so results equal integer arithmetic."""
    out = np.zeros(arr.shape, np.uint8)
    if not hi > lo:
        return out
    for r in range(0, arr.shape[0], 1024):
        v = (arr[r:r + 1024].astype(np.float64) - lo) * 255.0
        v /= hi - lo
        out[r:r + 1024] = np.nan_to_num(np.clip(np.floor(v + 0.5), 0, 255))
    return out


def _data_range(im: Image.Image) -> tuple[float, float]:
    """Min and max of the finite values. NumPy, not ``getextrema``: that returns NaN for float images with any
    NaN and rejects 'I;16B' (whose ``convert("I;16")`` clips to 255 in Pillow 13)."""
    a = np.asarray(im)
    if a.dtype.kind == "f":
        a = a[np.isfinite(a)]
    return (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)


def _target_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int] | None:
    """Size whose longer side is ``max_side`` with the aspect of ``size``; None when no downscale is needed."""
    w, h = size
    if max_side is None or max(w, h) <= max_side:
        return None
    k = max_side / max(w, h)
    return (max_side, max(1, round(h * k))) if w >= h else (max(1, round(w * k)), max_side)


def _decode_deep_color(path: str) -> tuple[Image.Image, bool]:
    """16-bit-per-channel colour (48/64-bit PNG or TIFF): Pillow 13 keeps only each sample's high byte, so
    OpenCV decodes the full data; colour is min-max scaled over the whole image (one range for all channels keeps
    the colour balance), alpha (fixed 0..65535 range) is kept as is for compositing."""
    a = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)  # fromfile: cv2.imread fails on non-ASCII
    if a is None:
        raise ImageLoadError(path, "image data is corrupt or unsupported (OpenCV could not decode it)")
    if a.ndim == 2:
        a = a[:, :, None]
    colour = a[:, :, :3] if a.shape[2] >= 3 else a[:, :, :1]
    rgb = _to_uint8(colour, float(colour.min()), float(colour.max()))
    rgb = np.ascontiguousarray(rgb[:, :, ::-1]) if rgb.shape[2] == 3 else np.repeat(rgb, 3, axis=2)  # cv2 is BGR
    if a.shape[2] in (2, 4):
        alpha = _to_uint8(a[:, :, -1], 0.0, 65535.0) if a.dtype == np.uint16 else a[:, :, -1]
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), True
    return Image.fromarray(rgb, "RGB"), False


def load_image(path: str | os.PathLike, max_side: int | None = 4096) -> LoadedImage:
    """Decode ``path`` to 8-bit RGB, upright per EXIF, downscaled (area averaging) so its longer side is at most
    ``max_side`` (None: never). JPEGs are reduced by the decoder itself (DCT scaling via ``Image.draft``), so a
    huge photo never exists at full size in memory.

    Alpha is composited over white: colour under full transparency is arbitrary (often black or garbage), and
    white is what viewers show. 16/32-bit data is min-max scaled over its actual range, not its type's range,
    so a 12-bit scan stored in 16 bits (values 0..4095) stays visible instead of nearly black.
    """
    path = os.fspath(path)
    with _reading(path), _open(path) as im:
        orientation = _orientation(im)
        full = _oriented_size(im, orientation)
        target = _target_size(im.size, max_side)  # in stored (unrotated) coordinates
        bit_depth = 1 if im.mode == "1" else _HIGH_DEPTH.get(im.mode, 8)
        is_gray = im.mode in ("1", "L", "LA", "La") or im.mode in _HIGH_DEPTH
        rawmode = _rawmode(im)
        if im.mode in ("RGB", "RGBA", "LA") and ";16" in rawmode:
            img, has_alpha = _decode_deep_color(path)
            bit_depth, is_gray = 16, rawmode.startswith("LA")
        else:
            if target is not None:
                im.draft(im.mode, target)  # only JPEG implements it; a no-op elsewhere
            im.load()
            img, has_alpha = im, im.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in im.info
        if img.mode in _HIGH_DEPTH:
            lo, hi = _data_range(img)  # range of the full-resolution data; area averaging stays within it
            if target is not None:
                img = img.resize(target, Image.Resampling.BOX)
            img = Image.fromarray(_to_uint8(np.asarray(img), lo, hi), "L")
        else:
            if has_alpha:
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            if img.mode not in ("L", "RGB"):
                img = img.convert("L" if img.mode == "1" else "RGB")
            if target is not None:
                img = img.resize(target, Image.Resampling.BOX)
        if orientation in _ORIENTATION:
            img = img.transpose(_ORIENTATION[orientation])
        pixels = np.array(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)  # own, C-ordered copy
    return LoadedImage(pixels=pixels, original_size=full, is_gray=is_gray, bit_depth=bit_depth, path=path)


def _check(path: str, verify: bool) -> tuple[int, int]:
    with _reading(path), _open(path) as im:
        size = _oriented_size(im, _orientation(im))
        if verify:
            im.verify()
    return size


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header only, for listing large folders quickly."""
    return _check(os.fspath(path), verify=False)


def _natural_key(name: str) -> tuple:
    parts = re.split(r"(\d+)", name.casefold())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def list_images(folder: str | os.PathLike, problems: list[ImageLoadError] | None = None) -> list[Path]:
    """Image files directly in ``folder`` (not recursive), by extension in any case, hidden files skipped
    (this also drops macOS ``._*`` resource forks), in natural order so ``img2`` comes before ``img10``. Names
    with an image extension that are no readable file (a link to nothing) go to ``problems`` where given, so
    callers can say what they skipped."""
    files = []
    for p in Path(folder).iterdir():
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if p.is_file():
            files.append(p)
        elif problems is not None and not p.is_dir():
            problems.append(ImageLoadError(p, "a link to a file that does not exist" if p.is_symlink()
                                           else "not a regular file"))
    return sorted(files, key=lambda p: _natural_key(p.name))


def scan_folder(folder: str | os.PathLike) -> FolderScan:
    """Check every image of ``folder`` cheaply (header, plus ``verify()``, which catches e.g. a truncated PNG
    without decoding) so one bad file is reported instead of stopping the folder. Some damage (a truncated
    JPEG) only shows when decoding; ``load_image`` still raises ``ImageLoadError`` then."""
    scan = FolderScan()
    for p in list_images(folder):
        try:
            _check(str(p), verify=True)
            scan.readable.append(p)
        except ImageLoadError as e:
            scan.errors.append(e)
    return scan


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks so large images are hashed in constant memory."""
    path = os.fspath(path)
    h = hashlib.sha256()
    with _reading(path), open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
