"""Dense CRF loss: the O(N) lattice energy against the O(N²) definition, its gradient, batching and devices."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from engine.losses.dense_crf import (dense_crf_accuracy, dense_crf_energy_bruteforce, dense_crf_gradient,
                                     dense_crf_loss, pixel_features)
from engine.losses.lattice_cpu import (_middle_key, dilate, gather_index, join, line_blur, number_corners, shifted_keys,
                                      window)
from engine.losses.permutohedral import GaussianFilter, _Rows

TOLERANCE = 0.03
SIGMA_XY = (100.0, 5.0)


def synthetic_image(size: int, seed: int, gray: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """(1, C, size, size) image in 0..255: a smooth colour ramp, discs and boxes with sharp edges and a faint
    ramp inside, Gaussian noise (σ = 4); and the region label of every pixel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = rng.uniform(40, 200, 3) + 40 * ((xx / size)[..., None] * rng.uniform(-1, 1, 3)
                                          + (yy / size)[..., None] * rng.uniform(-1, 1, 3))
    labels = np.zeros((size, size), np.int64)
    for k in range(1, 5):
        cx, cy = rng.uniform(0, size, 2)
        r = rng.uniform(size / 8, size / 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2) if k % 2 else (abs(xx - cx) < r) & (abs(yy - cy) < 0.6 * r)
        img[mask] = rng.uniform(0, 255, 3) + 20 * (xx[mask] / size - 0.5)[:, None]
        labels[mask] = k
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.float32)
    if gray:
        img = img.mean(2, keepdims=True)
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous(), labels


def noise_probs(size: int, k: int, temperature: float, seed: int, blur: float = 6.0) -> torch.Tensor:
    """softmax(temperature × blurred unit noise): spatially smooth; near one-hot with sharp, edge-blind
    boundaries at a high temperature."""
    rng = np.random.default_rng(seed)
    z = np.stack([cv2.GaussianBlur(c, (0, 0), blur) for c in rng.standard_normal((k, size, size)).astype(np.float32)])
    return torch.softmax(torch.from_numpy(z / z.std() * temperature), 0)[None]


def label_probs(labels: np.ndarray, k: int, seed: int) -> torch.Tensor:
    """A confident segmentation that follows the image's regions (class = region mod k), with a little noise."""
    onehot = np.eye(k, dtype=np.float32)[labels % k].transpose(2, 0, 1)
    z = 8.0 * onehot + np.random.default_rng(seed).normal(0, 0.5, onehot.shape).astype(np.float32)
    return torch.softmax(torch.from_numpy(z), 0)[None]


def probability_maps(size: int, seed: int, labels: np.ndarray | None) -> dict[str, torch.Tensor]:
    maps = {"smooth K=2": noise_probs(size, 2, 1.0, seed), "smooth K=21": noise_probs(size, 21, 2.0, seed),
            "near-one-hot K=2": noise_probs(size, 2, 30.0, seed, 8.0),
            "near-one-hot K=21": noise_probs(size, 21, 30.0, seed, 8.0)}
    if labels is not None:
        maps["along edges K=2"] = label_probs(labels, 2, seed)
        maps["along edges K=21"] = label_probs(labels, 21, seed)
    return maps


def assert_energy_close(image: torch.Tensor, maps: dict[str, torch.Tensor]) -> None:
    errors = {}
    for sigma_xy in SIGMA_XY:
        for name, probs in maps.items():
            fast = dense_crf_loss(image, probs, 15.0, sigma_xy).item()
            exact = dense_crf_energy_bruteforce(image, probs, 15.0, sigma_xy).item()
            errors[f"σxy={sigma_xy:g} {name}"] = fast / exact - 1
    bad = {k: f"{v:+.2%}" for k, v in errors.items() if abs(v) > TOLERANCE}
    assert not bad, f"relative energy error above {TOLERANCE:.0%}: {bad}"


def test_worked_example_two_pixels():
    """Two pixels one apart, colours 10 apart, σ_xy = 1, σ_rgb = 10: w = exp(−1/2 − 1/2) = 1/e, and with
    S_p = (a, 1 − a), S_q = (b, 1 − b): R = (1/2)·2w·(a(1 − b) + (1 − a)b) = (a + b − 2ab)/e."""
    image = torch.tensor([[[[0.0, 10.0]], [[50.0, 50.0]], [[0.0, 0.0]]]])          # (1, 3, 1, 2)
    a, b = 0.8, 0.3
    probs = torch.tensor([[[[a, b]], [[1 - a, 1 - b]]]], dtype=torch.float64)       # (1, 2, 1, 2)
    expected = (a + b - 2 * a * b) / math.e
    assert dense_crf_energy_bruteforce(image, probs, 10.0, 1.0).item() == pytest.approx(expected, rel=1e-12)
    # ∂R/∂S_p^k = (w − 2w S_q^k) / N, for each pixel and class, through autograd of the reference
    p = probs.clone().requires_grad_()
    dense_crf_energy_bruteforce(image, p, 10.0, 1.0).backward()
    w = 1 / math.e
    expected_grad = torch.tensor([[w * (1 - 2 * b), w * (1 - 2 * a)], [w * (1 - 2 * (1 - b)), w * (1 - 2 * (1 - a))]],
                                 dtype=torch.float64)
    torch.testing.assert_close(p.grad[0, :, 0], expected_grad / 2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed,size", [(0, 64), (1, 80)])
def test_energy_synthetic_rgb(seed, size):
    image, labels = synthetic_image(size, seed)
    assert_energy_close(image, probability_maps(size, seed, labels))


@pytest.mark.parametrize("seed,size", [(2, 64), (3, 80)])
def test_energy_synthetic_grayscale(seed, size):
    image, labels = synthetic_image(size, seed, gray=True)
    assert_energy_close(image, probability_maps(size, seed, labels))


@pytest.fixture
def horse_photos(shared_data) -> list[np.ndarray]:
    """Three Weizmann horse photos, spread over the folder."""
    folder = shared_data / "horses" / "images"
    files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if not files:
        pytest.skip(f"horse photos not found at {folder}")
    return [cv2.cvtColor(cv2.imread(str(files[i * len(files) // 3])), cv2.COLOR_BGR2RGB) for i in range(3)]


@pytest.mark.data
@pytest.mark.parametrize("index,size", [(0, 64), (1, 80), (2, 96)])
def test_energy_photo_crops(horse_photos, index, size):
    photo = horse_photos[index]
    rng = np.random.default_rng(index)
    y, x = rng.integers(0, photo.shape[0] - size), rng.integers(0, photo.shape[1] - size)
    image = torch.from_numpy(photo[y:y + size, x:x + size].astype(np.float32)).permute(2, 0, 1)[None]
    maps = probability_maps(size, index, None)
    assert_energy_close(image, maps)
    assert_energy_close(image.mean(1, keepdim=True), {k: v for k, v in maps.items() if "K=2" in k})


def test_per_pixel_filter_errors():
    """Per pixel, the lattice's D'_p = Σ_{q≠p} w_pq and (W'S)_p are close to exact, not only their sums."""
    image, _ = synthetic_image(64, 4)
    for sigma_xy in SIGMA_XY:
        acc = dense_crf_accuracy(image, noise_probs(64, 5, 2.0, 4), 15.0, sigma_xy)
        assert acc["degree_err_median"] < 0.03 and acc["degree_err_p95"] < 0.08, acc
        assert acc["filter_err_median"] < 0.01 and acc["filter_err_p95"] < 0.03, acc
        assert abs(acc["rel_error"]) < TOLERANCE, acc


@pytest.mark.parametrize("sigma_xy", SIGMA_XY)
def test_gradcheck(sigma_xy):
    """The returned gradient is the gradient of the returned energy (float64; the lattice is then a fixed
    symmetric linear operator), also for probabilities that do not sum to one."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 5, 6, dtype=torch.float64) * 255
    probs = torch.softmax(torch.randn(1, 3, 5, 6, dtype=torch.float64), 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: dense_crf_loss(image, s, 15.0, sigma_xy), (probs,))
    loose = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: dense_crf_loss(image[:, :1], s, 15.0, sigma_xy), (loose,))


def test_gradient_map_equals_autograd():
    image, _ = synthetic_image(40, 5)
    probs = noise_probs(40, 4, 2.0, 5).repeat(2, 1, 1, 1).requires_grad_()
    images = torch.cat([image, image.flip(-1)])
    dense_crf_loss(images, probs).backward()
    torch.testing.assert_close(dense_crf_gradient(images, probs.detach()), probs.grad, rtol=1e-5, atol=1e-9)


def test_batch_is_mean_of_images():
    (a, _), (b, _) = synthetic_image(48, 6), synthetic_image(48, 7)
    pa, pb = noise_probs(48, 3, 2.0, 6), noise_probs(48, 3, 30.0, 7)
    batch = dense_crf_loss(torch.cat([a, b]), torch.cat([pa, pb]))
    expected = (dense_crf_loss(a, pa) + dense_crf_loss(b, pb)) / 2
    assert batch.item() == pytest.approx(expected.item(), rel=1e-6)


def test_energy_is_non_negative():
    image, labels = synthetic_image(48, 8)
    cases = [noise_probs(48, 2, 1.0, 8), noise_probs(48, 21, 30.0, 8), label_probs(labels, 5, 8),
             torch.full((1, 4, 48, 48), 0.25), torch.nn.functional.one_hot(torch.from_numpy(labels % 3), 3)
             .permute(2, 0, 1)[None].float()]
    for sigma_xy in SIGMA_XY:
        for probs in cases:
            assert dense_crf_loss(image, probs, 15.0, sigma_xy).item() >= 0.0
    # a constant labelling has no pair with different labels: zero up to rounding
    assert dense_crf_loss(image, torch.ones(1, 1, 48, 48)).item() < 1e-4


def test_float32_agrees_with_float64():
    image, _ = synthetic_image(48, 9)
    probs = noise_probs(48, 6, 2.0, 9)
    e32 = dense_crf_loss(image, probs.float()).item()
    e64 = dense_crf_loss(image.double(), probs.double()).item()
    assert e32 == pytest.approx(e64, rel=1e-4)


def test_lattice_filter_is_symmetric_and_loses_no_mass():
    """u·Wv = v·Wu; an isolated point keeps exactly its own weight W_pp (nothing leaks off the occupied
    vertices), and far-apart points do not interact."""
    torch.manual_seed(1)
    f = torch.rand(500, 5, dtype=torch.float64) * 6
    filt = GaussianFilter(f)
    u, v = torch.randn(500, 3, dtype=torch.float64), torch.randn(500, 3, dtype=torch.float64)
    assert (u * filt(v)).sum().item() == pytest.approx((v * filt(u)).sum().item(), rel=1e-12)
    pair = torch.tensor([[0.3, 0.1, 0.7, 0.2, 0.5], [40.3, 0.1, 0.7, 0.2, 0.5]], dtype=torch.float64)
    filt = GaussianFilter(pair)
    out = filt(torch.eye(2, dtype=torch.float64))
    torch.testing.assert_close(out, torch.diag(filt.self_weight), rtol=1e-12, atol=1e-300)
    assert 0.9 < filt.self_weight.min().item() and filt.self_weight.max().item() < 1.1


@pytest.mark.parametrize("gray, dtype", [(False, torch.float32), (True, torch.float32), (False, torch.float64)])
def test_compiled_lattice_is_the_torch_lattice(gray, dtype):
    """The CPU build (compiled kernels) and the torch build (what CUDA runs) make the same operator: the same
    vertex sets at every blur step and the same filtered values, also where many pixels share a vertex (a flat
    band) and at both bandwidths."""
    image, _ = synthetic_image(64, 11, gray)
    image[..., :10, :] = image[..., :1, :1]
    for sigma_xy in SIGMA_XY:
        f = pixel_features(image[0].to(dtype), 15.0, sigma_xy)
        values = torch.rand(len(f), 4, dtype=dtype, generator=torch.Generator().manual_seed(3))
        compiled, plain = GaussianFilter(f), GaussianFilter(f, compiled=False)
        assert isinstance(compiled._splat, _Rows) == (sigma_xy == 5.0 and not gray)  # else numbered by hashing
        assert compiled.blur_sizes == plain.blur_sizes
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(compiled(values), plain(values), rtol=tol, atol=tol)
        torch.testing.assert_close(compiled.self_weight, plain.self_weight)


def test_compiled_lattice_sorts_where_hashing_does_not_pay():
    """Scattered points, about one vertex per corner, have their vertices numbered by sorting the corner keys
    instead of hashing them (the splat then reads rows); that build, too, makes the torch build's operator."""
    g = torch.Generator().manual_seed(4)
    f = torch.rand(20000, 5, dtype=torch.float64, generator=g) * 20
    values = torch.rand(len(f), 3, dtype=torch.float64, generator=g)
    compiled, plain = GaussianFilter(f), GaussianFilter(f, compiled=False)
    assert isinstance(compiled._splat, _Rows)
    assert compiled.blur_sizes == plain.blur_sizes
    torch.testing.assert_close(compiled(values), plain(values), rtol=1e-12, atol=1e-12)


def test_vertices_numbered_by_hashing():
    """``number_corners`` and ``join`` give every corner the number of its code among the sorted distinct codes,
    as sorting would, through several growths of the table; points with a vertex of their own at nearly every
    corner are left to the sort (None)."""
    rng = np.random.default_rng(5)
    n, steps = 1_000_000, np.array([-1, 7])  # d = 1: a point's second corner is its first one's code − 1 or + 7
    base = rng.integers(1, 100_000, n // 16).repeat(16)[None]  # runs of equal points, as in flat image regions
    order = rng.integers(0, 2, (1, n))
    codes = np.stack([base[0], base[0] + steps[order[0]]], 1).ravel()
    vertex = np.empty(2 * n, np.int32)
    low, strides = np.zeros(1, np.int64), np.ones(1, np.int64)
    first = number_corners(base, order, low, strides, steps, vertex, 0, n // 2)
    second = number_corners(base, order, low, strides, steps, vertex, n // 2, n)
    assert first.bits > 15 and second.bits > 15  # grown
    occupied = join(first, second, vertex, n, lambda f, g: (f(), g()))
    np.testing.assert_array_equal(occupied, np.unique(codes))
    np.testing.assert_array_equal(occupied[vertex], codes)
    scattered = rng.permutation(n)[None] + 1
    assert number_corners(scattered, order, low, strides, steps, vertex, 0, n) is None


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_compiled_lattice_of_a_few_points(n):
    """A handful of points (one half of the points empty, or one point) builds and filters as torch does."""
    f = torch.rand(n, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) * 2
    values = torch.rand(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(n + 1))
    torch.testing.assert_close(GaussianFilter(f)(values), GaussianFilter(f, compiled=False)(values))


def test_middle_key_of_two_sorted_arrays():
    """The key that splits the corner merge into two halves, against sorting everything."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        n1, n2 = rng.integers(0, 20, 2)
        if n1 + n2:
            keys = rng.choice(1000, n1 + n2, replace=False).astype(np.int64)
            first, second = np.sort(keys[:n1]), np.sort(keys[n1:])
            assert _middle_key(first, second) == np.sort(keys)[(n1 + n2) // 2]


@pytest.mark.parametrize("seed", range(4))
def test_line_steps_against_brute_force(seed):
    """A spread step (``dilate`` + ``line_blur``) and the window step over its new vertices (found from the
    step's keys, not listed), on random sorted codes, against sums over every pair: the blur weighs code distances
    within ±reach by their taps and ignores the rest, whatever order the sources come in and whichever half of the
    line blur runs first."""
    rng = np.random.default_rng(seed)
    reach, taps = 3, rng.random(7)
    codes = np.sort(rng.choice(np.arange(10, 400), int(rng.integers(1, 60)), replace=False)).astype(np.int64)
    order = rng.permutation(codes.size)  # the sources' own order, which the keys carry
    bits = 8
    keys = codes << bits | order
    count, new, at, source = dilate(keys, bits, reach)
    assert count == new.size
    np.testing.assert_array_equal(new, np.unique((codes[:, None] + np.arange(-reach, reach + 1)).ravel()))
    np.testing.assert_array_equal(new[at], codes)
    np.testing.assert_array_equal(source, order)
    for channels in (2, 3):  # two are written out by hand
        x = rng.random((codes.size, channels))
        expected = np.zeros((new.size, channels))
        for i, c in enumerate(codes):
            for t, code in enumerate(new):
                if abs(code - c) <= reach:
                    expected[t] += taps[code - c + reach] * x[order[i]]
        for beside in (lambda f, g: (f(), g()), lambda f, g: (g(), f())):
            out = np.full((new.size, channels), np.nan)
            line_blur(x, at, source, taps, reach, out, beside)
            np.testing.assert_allclose(out, expected, rtol=1e-12)

    count, unlisted, at_only, _ = dilate(keys, bits, reach, listed=False)
    assert count == new.size and unlisted is None
    np.testing.assert_array_equal(at_only, at)

    targets = np.sort(rng.choice(np.arange(0, 400), 50, replace=False)).astype(np.int64)
    step = int(rng.integers(1, 9))
    offsets, index, weight = window(keys, bits, at, targets, step, reach, taps, lambda f, g: (f(), g()))
    for r, x0 in enumerate(targets):
        row = {int(i): w for i, w in zip(index[offsets[r]:offsets[r + 1]], weight[offsets[r]:offsets[r + 1]])}
        want = {int(np.searchsorted(new, x0 + e * step)): taps[e + reach] for e in range(-reach, reach + 1)
                if x0 + e * step in set(new.tolist())}
        assert row == want


@pytest.mark.parametrize("seed", range(3))
def test_gather_index_of_two_sorted_halves(seed):
    """The gather step's keys sorted as two halves (one per thread) and merged give the same codes and rows as
    the keys sorted whole: every shifted code, once, and each source's tap pointing at its own."""
    rng = np.random.default_rng(seed)
    reach, step = 3, int(rng.integers(1, 50)) * (-1) ** seed  # a step along u_d lowers every code
    codes = np.sort(rng.choice(np.arange(200, 5000), int(rng.integers(2, 300)), replace=False)).astype(np.int64)
    keys = shifted_keys(codes, step, reach)
    whole = np.sort(keys)
    split = codes.size // 2 * (2 * reach + 1)
    halves = np.concatenate([np.sort(keys[:split]), np.sort(keys[split:])])
    new, inverse = gather_index(halves, 2 * reach + 1, split)
    expected_new, expected_inverse = gather_index(whole, 2 * reach + 1)
    np.testing.assert_array_equal(new, expected_new)
    np.testing.assert_array_equal(inverse, expected_inverse)
    np.testing.assert_array_equal(new, np.unique((codes[:, None] + np.arange(-reach, reach + 1) * step).ravel()))
    np.testing.assert_array_equal(new[inverse], (codes[:, None] + np.arange(-reach, reach + 1) * step).ravel())


def test_lattice_too_wide_to_pack_falls_back_to_torch():
    """Points so far apart that their codes and payloads do not fit one int64 are built by torch: still
    exact for isolated points (each keeps its own weight)."""
    f = torch.cat([torch.zeros(1, 5), torch.eye(5) * 2000]).double()
    filt = GaussianFilter(f)
    torch.testing.assert_close(filt(torch.eye(6, dtype=torch.float64)), torch.diag(filt.self_weight))


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        dense_crf_loss(torch.zeros(1, 3, 8, 8), torch.ones(1, 2, 8, 9) / 2)
    with pytest.raises(ValueError):
        dense_crf_loss(torch.zeros(1, 2, 8, 8), torch.ones(1, 2, 8, 8) / 2)
    with pytest.raises(ValueError):
        dense_crf_loss(torch.zeros(1, 3, 8, 8), torch.ones(1, 2, 8, 8) / 2, sigma_xy=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    image, _ = synthetic_image(64, 10)
    probs = noise_probs(64, 21, 2.0, 10)
    cpu = dense_crf_loss(image, probs)
    p = probs.cuda().requires_grad_()
    gpu = dense_crf_loss(image.cuda(), p)
    gpu.backward()
    assert gpu.device.type == "cuda" and p.grad.device.type == "cuda"
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-4)
    torch.testing.assert_close(p.grad.cpu(), dense_crf_gradient(image, probs), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_terms_are_the_torch_terms(dtype):
    """The CPU's compiled input layout, gradient and energy match the torch arithmetic used on other devices,
    with the degree filtered as its own channel or taken as the sum of the classes'."""
    from engine.losses import dense_crf_cpu
    from engine.losses.dense_crf import _terms

    g = torch.Generator().manual_seed(0)
    k, n = 3, 1000
    s = torch.softmax(torch.randn(k, n, generator=g, dtype=dtype), 0)
    vals = torch.empty(n, k, dtype=dtype)
    assert dense_crf_cpu.values(s.numpy(), vals.numpy(), 0, n) < 1e-6
    torch.testing.assert_close(vals, s.T, rtol=0, atol=0)
    assert dense_crf_cpu.values((s * 1.5).numpy(), vals.numpy(), 0, n) == pytest.approx(0.5, rel=1e-6)
    for width in (k, k + 1):
        filtered = torch.rand(n, width, generator=g, dtype=dtype) * 5 + 1
        grad = torch.empty_like(s)
        twice = (dense_crf_cpu.terms(filtered.numpy(), s.numpy(), 1.02, grad.numpy(), 0, n // 3)
                 + dense_crf_cpu.terms(filtered.numpy(), s.numpy(), 1.02, grad.numpy(), n // 3, n))
        twice_ref, grad_ref = _terms(filtered, s, torch.tensor(1.02, dtype=dtype))
        torch.testing.assert_close(grad, grad_ref)
        assert twice == pytest.approx(twice_ref.item(), rel=1e-5 if dtype == torch.float32 else 1e-12)
