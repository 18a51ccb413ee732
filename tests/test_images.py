"""Tests of engine.io.images. Every image is generated here, with Pillow, NumPy or OpenCV."""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, features

from engine.io import images
from engine.io.images import (
    IMAGE_EXTENSIONS, MAX_PIXELS, FolderScan, ImageLoadError, LoadedImage, list_images, load_image,
    read_image_size, scan_folder, sha256_file,
)

RNG = np.random.default_rng(1234)


def _rgb(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _minmax_ref(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Reference scaling in exact integer arithmetic: round((a - lo) * 255 / (hi - lo)), halves up."""
    a = a.astype(np.int64)
    return ((2 * (a - lo) * 255 + (hi - lo)) // (2 * (hi - lo))).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png(path, width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> None:
    """Hand-made PNG, for what neither Pillow nor OpenCV writes (16-bit gray+alpha, absurd header sizes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw))
                     + _png_chunk(b"IEND", b""))


def _write_big_endian_tiff(path, gray16: np.ndarray) -> None:
    """Hand-made Motorola-order 16-bit gray TIFF (Pillow opens it as 'I;16B'; neither library writes one)."""
    h, w = gray16.shape
    data = gray16.astype(">u2").tobytes()
    tags = [(256, 3, w), (257, 3, h), (258, 3, 16), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
            (278, 3, h), (279, 4, len(data))]
    ifd = struct.pack(">H", len(tags)) + b"".join(
        struct.pack(">HHI", tag, kind, 1) + (struct.pack(">HH", v, 0) if kind == 3 else struct.pack(">I", v))
        for tag, kind, v in tags) + struct.pack(">I", 0)
    path.write_bytes(b"MM\0*" + struct.pack(">I", 8 + len(data)) + data + ifd)


def _mode(path) -> str:
    with Image.open(path) as im:
        return im.mode


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _check_form(img: LoadedImage, h: int, w: int) -> None:
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (h, w, 3)
    assert img.pixels.flags.c_contiguous


# ----------------------------------------------------------------------------------------------- 8-bit formats

@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff"])
def test_rgb_round_trip_is_exact(tmp_path, ext):
    a = _rgb(37, 53)
    p = tmp_path / f"a{ext}"
    Image.fromarray(a).save(p)
    img = load_image(p)
    _check_form(img, 37, 53)
    np.testing.assert_array_equal(img.pixels, a)
    assert img.original_size == (53, 37) and img.scale == 1.0
    assert not img.is_gray and img.bit_depth == 8 and img.path == str(p)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_lossless_webp_round_trip(tmp_path):
    a = _rgb(20, 30)
    Image.fromarray(a).save(tmp_path / "a.webp", lossless=True)
    np.testing.assert_array_equal(load_image(tmp_path / "a.webp").pixels, a)


def test_gray_is_replicated_to_three_channels(tmp_path):
    g = RNG.integers(0, 256, (25, 40), dtype=np.uint8)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    _check_form(img, 25, 40)
    for c in range(3):
        np.testing.assert_array_equal(img.pixels[:, :, c], g)
    assert img.is_gray and img.bit_depth == 8


def test_one_bit_image(tmp_path):
    b = np.zeros((10, 16), bool)
    b[:, 8:] = True
    Image.fromarray(b).convert("1").save(tmp_path / "b.png")
    img = load_image(tmp_path / "b.png")
    assert _mode(tmp_path / "b.png") == "1"
    np.testing.assert_array_equal(img.pixels, np.repeat((b * 255).astype(np.uint8)[:, :, None], 3, axis=2))
    assert img.is_gray and img.bit_depth == 1


def test_cmyk_jpeg_loads_as_rgb(tmp_path):
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # pure red in CMYK
    assert _mode(tmp_path / "c.jpg") == "CMYK"
    img = load_image(tmp_path / "c.jpg")
    _check_form(img, 24, 32)
    r, g, b = img.pixels.reshape(-1, 3).mean(axis=0)
    assert r > 240 and g < 15 and b < 15 and not img.is_gray


def test_gray_jpeg(tmp_path):
    Image.new("L", (16, 8), 77).save(tmp_path / "g.jpg", quality=100)
    img = load_image(tmp_path / "g.jpg")
    assert img.is_gray and np.abs(img.pixels.astype(int) - 77).max() <= 1


# ------------------------------------------------------------------------------------------------------- alpha

def test_rgba_is_composited_over_white(tmp_path):
    a = np.zeros((3, 4, 4), np.uint8)
    a[..., :3] = (200, 40, 10)
    a[0, :, 3] = 0
    a[1, :, 3] = 255
    a[2, :, 3] = 128
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    px = load_image(tmp_path / "a.png").pixels.astype(int)
    assert (px[0] == 255).all()
    assert (px[1] == (200, 40, 10)).all()
    expected = np.array([200, 40, 10]) * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(px[2] - expected).max() <= 1


def test_la_is_composited_and_gray(tmp_path):
    a = np.zeros((2, 3, 2), np.uint8)
    a[..., 0] = 50
    a[0, :, 1] = 0
    a[1, :, 1] = 255
    Image.fromarray(a, "LA").save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    assert (img.pixels[0] == 255).all() and (img.pixels[1] == 50).all() and img.is_gray


def test_palette_with_and_without_transparency(tmp_path):
    idx = np.array([[0, 1, 2, 1]], np.uint8)
    pal = [10, 20, 30, 200, 100, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    im = Image.frombytes("P", (4, 1), idx.tobytes())
    im.putpalette(pal)
    im.save(tmp_path / "t.png", transparency=2)
    im.save(tmp_path / "o.png")
    px = load_image(tmp_path / "t.png").pixels
    np.testing.assert_array_equal(px[0], [[10, 20, 30], [200, 100, 0], [255, 255, 255], [200, 100, 0]])
    px = load_image(tmp_path / "o.png").pixels
    np.testing.assert_array_equal(px[0, 2], [0, 0, 255])


# ----------------------------------------------------------------------------------------------- deep images

RAMP = (np.arange(24 * 40).reshape(24, 40) * 4000 // (24 * 40 - 1) + 1000).astype(np.uint16)  # 1000..5000


@pytest.mark.parametrize("writer", ["pil-png", "pil-tif", "cv2-png", "cv2-tif", "pil-tif-bigendian"])
def test_16bit_gray_is_minmax_scaled(tmp_path, writer):
    p = tmp_path / ("g.png" if writer.endswith("png") else "g.tif")
    if writer.startswith("cv2"):
        assert cv2.imwrite(str(p), RAMP)
    elif writer.endswith("bigendian"):
        _write_big_endian_tiff(p, RAMP)
    else:
        Image.fromarray(RAMP).save(p)
    assert _mode(p) == ("I;16B" if writer.endswith("bigendian") else "I;16")
    img = load_image(p)
    assert RAMP.min() == 1000 and RAMP.max() == 5000
    expected = _minmax_ref(RAMP, 1000, 5000)
    assert expected.min() == 0 and expected.max() == 255
    for c in range(3):
        np.testing.assert_array_equal(img.pixels[:, :, c], expected)
    assert img.is_gray and img.bit_depth == 16 and img.original_size == (40, 24)


def test_constant_16bit_gives_zeros(tmp_path):
    Image.fromarray(np.full((5, 6), 3000, np.uint16)).save(tmp_path / "c.png")
    img = load_image(tmp_path / "c.png")
    assert (img.pixels == 0).all() and img.bit_depth == 16


def test_32bit_int_and_float_tiff(tmp_path):
    a = np.array([[-70000, 0, 130000]], np.int32)
    Image.fromarray(a).save(tmp_path / "i.tif")
    img = load_image(tmp_path / "i.tif")
    np.testing.assert_array_equal(img.pixels[0, :, 0], _minmax_ref(a[0], -70000, 130000))
    assert img.bit_depth == 32 and img.is_gray
    f = np.array([[0.25, np.nan, 0.75, 0.5]], np.float32)
    Image.fromarray(f).save(tmp_path / "f.tif")
    img = load_image(tmp_path / "f.tif")
    np.testing.assert_array_equal(img.pixels[0, :, 1], [0, 0, 255, 128])  # NaN is ignored for the range, shown 0
    assert img.bit_depth == 32


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_48bit_rgb_keeps_full_precision_and_channel_order(tmp_path, ext):
    rgb = np.zeros((6, 7, 3), np.uint16)
    rgb[..., 0] = 1000 + np.arange(7) * 10  # red: a low, narrow ramp that only its low byte distinguishes
    rgb[..., 1] = 2000
    rgb[..., 2] = 3000
    p = tmp_path / f"c{ext}"
    assert cv2.imwrite(str(p), rgb[..., ::-1])  # OpenCV writes BGR
    img = load_image(p)
    np.testing.assert_array_equal(img.pixels, _minmax_ref(rgb, 1000, 3000))
    assert img.pixels[0, 0, 0] == 0 and img.pixels[0, 0, 2] == 255 and len(set(img.pixels[0, :, 0])) == 7
    assert not img.is_gray and img.bit_depth == 16 and img.original_size == (7, 6)


def test_48bit_rgb_downscale(tmp_path):
    bgr = np.zeros((100, 300, 3), np.uint16)
    bgr[:, :150] = (0, 0, 4000)  # left half red
    bgr[:, 150:] = (8000, 0, 0)  # right half blue
    assert cv2.imwrite(str(tmp_path / "c.png"), bgr)
    img = load_image(tmp_path / "c.png", max_side=60)
    _check_form(img, 20, 60)
    assert img.original_size == (300, 100) and img.scale == pytest.approx(0.2)
    assert (img.pixels[:, :30] == (128, 0, 0)).all() and (img.pixels[:, 30:] == (0, 0, 255)).all()


def test_64bit_rgba_and_32bit_gray_alpha(tmp_path):
    bgra = np.zeros((2, 3, 4), np.uint16)
    bgra[..., :3] = (3000, 2000, 1000)  # B, G, R
    bgra[0, :, 3] = 0
    bgra[1, :, 3] = 65535
    assert cv2.imwrite(str(tmp_path / "c.png"), bgra)
    px = load_image(tmp_path / "c.png").pixels
    assert (px[0] == 255).all() and (px[1] == (0, 128, 255)).all()

    la = np.zeros((2, 3, 2), ">u2")
    la[..., 0] = [[100, 200, 300], [400, 500, 600]]
    la[..., 1] = 65535
    _write_png(tmp_path / "la.png", 3, 2, 16, 4, b"".join(b"\0" + row.tobytes() for row in la))
    img = load_image(tmp_path / "la.png")
    np.testing.assert_array_equal(img.pixels[..., 0], _minmax_ref(la[..., 0], 100, 600))
    assert img.is_gray and img.bit_depth == 16


# ------------------------------------------------------------------------------------------------ orientation

def test_exif_orientation_6_jpeg(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    a[:5, :5] = (255, 0, 0)  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    p = tmp_path / "r.jpg"
    Image.fromarray(a).save(p, exif=exif, quality=95)
    img = load_image(p)
    assert img.original_size == (20, 40) and read_image_size(p) == (20, 40)
    _check_form(img, 40, 20)
    assert img.pixels[:5, -5:, 0].mean() > 200 and img.pixels[:5, :5, 0].mean() < 30  # now top-right


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_exif_transpose(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / "o.png"
    Image.fromarray(_rgb(5, 9)).save(p, exif=exif)
    with Image.open(p) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    img = load_image(p)
    np.testing.assert_array_equal(img.pixels, expected)
    assert img.original_size == read_image_size(p) == (expected.shape[1], expected.shape[0])


# ----------------------------------------------------------------------------------------------- downscaling

def test_wide_png_is_downscaled(tmp_path):
    a = np.zeros((500, 6000, 3), np.uint8)
    a[:, :3000] = (255, 0, 0)
    a[:, 3000:] = (0, 0, 255)
    Image.fromarray(a).save(tmp_path / "w.png")
    img = load_image(tmp_path / "w.png", max_side=1024)
    _check_form(img, round(500 * 1024 / 6000), 1024)
    assert img.original_size == (6000, 500) and img.scale == pytest.approx(1024 / 6000)
    np.testing.assert_allclose(img.pixels[:, :510].reshape(-1, 3).mean(axis=0), (255, 0, 0), atol=1)
    np.testing.assert_allclose(img.pixels[:, 514:].reshape(-1, 3).mean(axis=0), (0, 0, 255), atol=1)
    assert load_image(tmp_path / "w.png", max_side=None).pixels.shape == (500, 6000, 3)
    assert load_image(tmp_path / "w.png", max_side=6000).scale == 1.0


def test_large_jpeg_is_reduced_by_the_decoder(tmp_path, monkeypatch):
    a = np.zeros((4000, 5000, 3), np.uint8)
    a[:2000] = (0, 200, 0)
    a[2000:] = (200, 200, 200)
    Image.fromarray(a).save(tmp_path / "big.jpg", quality=90)
    drafted = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    img = load_image(tmp_path / "big.jpg", max_side=1024)
    assert drafted == [(1250, 1000)]  # decoded at 1/4 scale, the smallest that is still >= the target
    _check_form(img, 819, 1024)
    assert img.original_size == (5000, 4000) and img.scale == pytest.approx(1024 / 5000)
    np.testing.assert_allclose(img.pixels[:400].reshape(-1, 3).mean(axis=0), (0, 200, 0), atol=3)
    np.testing.assert_allclose(img.pixels[420:].reshape(-1, 3).mean(axis=0), (200, 200, 200), atol=3)


def test_downscale_with_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.new("RGB", (3000, 1000), (9, 99, 199)).save(tmp_path / "p.jpg", exif=exif)
    img = load_image(tmp_path / "p.jpg", max_side=600)
    _check_form(img, 600, 200)
    assert img.original_size == (1000, 3000) and img.scale == pytest.approx(0.2)


@pytest.mark.parametrize("name", ["d.png", "d.tif"])
def test_16bit_downscale_uses_full_range(tmp_path, name):
    a = np.full((100, 2000), 1000, np.uint16)
    a[:, 1000:] = 5000
    a[0, 0] = 0  # one dark pixel that averaging removes, but which still defines the range
    if name.endswith(".png"):
        Image.fromarray(a).save(tmp_path / name)
    else:
        _write_big_endian_tiff(tmp_path / name, a)
    img = load_image(tmp_path / name, max_side=200)
    _check_form(img, 10, 200)
    assert abs(int(img.pixels[5, 50, 0]) - round(1000 * 255 / 5000)) <= 1
    assert img.pixels[5, 150, 0] == 255


# ------------------------------------------------------------------------------------------------------ errors

def _raises(fn, path, *reason: str) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        fn(path)
    message = str(info.value)
    assert message.startswith(f"cannot read {path}")
    for r in reason:
        assert r in message
    return info.value


@pytest.mark.parametrize("fn", [load_image, read_image_size])
def test_unreadable_files(tmp_path, fn):
    (tmp_path / "empty.png").write_bytes(b"")
    _raises(fn, tmp_path / "empty.png", "file is empty (0 bytes)")
    _raises(fn, tmp_path / "missing.png", "file not found")
    _raises(fn, tmp_path / "no" / "x.png", "file not found")
    (tmp_path / "dir.png").mkdir()
    _raises(fn, tmp_path / "dir.png", "is a folder")
    (tmp_path / "text.png").write_text("this is not a picture\n")
    _raises(fn, tmp_path / "text.png", "not an image file")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif"])
def test_truncated_files_raise(tmp_path, ext):
    p = tmp_path / f"cut{ext}"
    Image.fromarray(_rgb(200, 300)).save(p)
    _truncate(p)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    err = _raises(load_image, p, "truncated")
    assert err.path == str(p) and err.reason == "image data is truncated"


def test_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch):
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS == 1_000_000_000
    p = tmp_path / "bomb.png"
    _write_png(p, 50_000, 50_000, 8, 2, b"")  # 2500 megapixels: Pillow itself refuses it while opening
    for fn in (load_image, read_image_size):
        _raises(fn, p, "image too large (2500 megapixels, limit 1000)")
    Image.new("RGB", (40, 25)).save(tmp_path / "small.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 999)  # our own check, below Pillow's
    for fn in (load_image, read_image_size):
        _raises(fn, tmp_path / "small.png", "image too large (0.001 megapixels, limit 0.000999)")


def test_error_pickles():
    e = pickle.loads(pickle.dumps(ImageLoadError("/x/a.png", "file not found")))
    assert str(e) == "cannot read /x/a.png: file not found" and e.reason == "file not found"


def test_loaded_image_is_frozen(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    with pytest.raises(dataclasses.FrozenInstanceError):
        img.path = "other"


# ----------------------------------------------------------------------------------------------------- folders

def test_list_images_natural_order_and_filters(tmp_path):
    for name in ["img10.png", "img2.PNG", "img1.JPG", "Img3.jpeg", "a.TIFF", "b.webp", "c.bmp", "d.tif",
                 ".hidden.png", "._img4.png", "notes.txt", "img5.gif"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "sub.png" / "img0.png").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.TIFF", "b.webp", "c.bmp", "d.tif", "img1.JPG", "img2.PNG", "Img3.jpeg", "img10.png"]
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert all(e == e.lower() for e in IMAGE_EXTENSIONS)


def test_scan_folder_reports_each_bad_file(tmp_path):
    Image.fromarray(_rgb(20, 30)).save(tmp_path / "good10.png")
    Image.fromarray(_rgb(20, 30)).save(tmp_path / "good2.jpg")
    Image.fromarray(RAMP).save(tmp_path / "good3.tif")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    Image.fromarray(_rgb(200, 300)).save(tmp_path / "cut.png")
    _truncate(tmp_path / "cut.png")  # the header is intact; verify() finds the missing data
    (tmp_path / "readme.txt").write_text("not listed")
    scan = scan_folder(tmp_path)
    assert isinstance(scan, FolderScan)
    assert [p.name for p in scan.readable] == ["good2.jpg", "good3.tif", "good10.png"]
    assert sorted(e.path.rsplit("/", 1)[-1] for e in scan.errors) == ["cut.png", "empty.png", "text.jpg"]
    assert all(isinstance(e, ImageLoadError) for e in scan.errors)


def test_sha256_file(tmp_path):
    data = RNG.integers(0, 256, 100_003, dtype=np.uint8).tobytes()
    (tmp_path / "f.bin").write_bytes(data)
    assert sha256_file(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()
    assert sha256_file(tmp_path / "f.bin", chunk=4096) == hashlib.sha256(data).hexdigest()
    (tmp_path / "e.bin").write_bytes(b"")
    assert sha256_file(tmp_path / "e.bin") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(ImageLoadError, match="file not found"):
        sha256_file(tmp_path / "missing.bin")

