"""Gaussian filtering of many channels over scattered points in O(N), on a permutohedral lattice, in plain torch.

    out_p = Σ_q exp(−||f_p − f_q||² / 2) · v_q        (f: (N, d) features already divided by their bandwidths)

Method (Adams, Baek & Davis 2010, "Fast high-dimensional filtering using the permutohedral lattice"), with its
two error sources removed:

* Splat / slice: each point lies in one simplex of the lattice A*_d and spreads to its d + 1 corners with its
  barycentric weights; slicing is the transpose, so the filter is symmetric.
* Blur without lost mass: the original blurs only the vertices that points touch and drops whatever would pass
  through the others; image pixels form a 2-D sheet in d dimensions, so most of the sum is lost (measured
  50–70% on photo crops at this lattice scale). Here the blur runs on every vertex it needs: the first half of
  the lattice directions spreads the values outwards from the occupied vertices, the second half gathers them
  back, and the two meet where both reach. The result equals the blur on the infinite lattice read at the
  occupied vertices (the directions commute there).
* A kernel that is a Gaussian, not a lattice artefact: averaged over the lattice's position, barycentric
  interpolation on A*_d is the box spline of the d + 1 directions u_j (variance (d + 1)²/12 per axis, fourth
  cumulant as predicted, checked numerically), so splat + blur + slice is the law of Σ_j X_j u_j with X_j
  independent copies of X = U + U' + B: two uniforms on [−½, ½] and the 1-D blur B, in lattice steps. The kernel
  is as Gaussian as X is. B is [w, 1 − 2w, w] applied a few times (``BLUR_PASSES``, ``BLUR_TAP``); the lattice
  scale α = (d + 1)·√Var X makes the covariance the identity. Averaged over positions, the kernel divided by
  exp(−t²/2) stays within a few % of 1 up to t = 3.5 and falls below it at t = 4, where the Gaussian is below
  0.0004; a single pair's weight varies more with its position in the lattice (docs/benchmarks.md).
* Amplitude per point: on a fixed lattice a pair's weight still depends a few % on where the two points sit
  in their simplices (a point on a vertex sees a narrower, higher kernel than one inside a simplex), and an
  image whose colours fall in a few tight clusters keeps that error instead of averaging it away (up to 3% of
  the dense CRF energy on photo crops). Each point's value is scaled by λ_p = √(m / W_pp) on the way in and
  out (W → ΛWΛ): every self weight becomes m, the lattice's self weight averaged over positions (exact, from the
  Dirichlet moments of uniform barycentric weights), and the position dependence of nearby weights cancels to
  first order (those photo crops: within 0.6%).
* Normalisation from the integrals, not a fitted factor: a unit mass splatted, blurred (unit-sum taps) and
  sliced integrates to (d + 1)^(d − ½) / α^d (volume per lattice vertex), the Gaussian to (2π)^(d/2).

Lattice points are integer codes, so vertex sets are found by sorting (no hash table), and every per-image
operator is stored by rows and applied with ``embedding_bag``: filtering C channels costs eight weighted
row-gathers. Building those rows costs more than filtering with them. On CUDA torch builds them
(``GaussianFilter._build_torch``); on the CPU compiled kernels (``lattice_cpu``, numba) build the same operators
in a few passes over memory, with the points split in two halves and the two halves of the blur built side by
side, one on each thread. There the spread steps need no rows: their vertices are sorted along their direction,
so a vertex's neighbours are the neighbouring entries (``_Line``).
"""
from __future__ import annotations

import copy
import functools
import math
import os
import queue
import threading
from typing import Callable, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

BLUR_PASSES = {5: 3, 3: 4}
"""Passes of the 3-tap blur [w, 1 − 2w, w] along each lattice direction, by feature dimension d (other d: 4); the
blur reaches as many lattice steps as it has passes. More passes make X closer to a Gaussian and the lattice finer
relative to σ: more accurate, and more vertices, which is what the blur's time follows. RGB (d = 5) sums six
directions, Gaussian enough with three passes at the w of ``BLUR_TAP``. Grayscale (d = 3) sums four: with three
passes its kernel's tail falls short beyond 3σ and its energy strays further from brute force, so it keeps four
(docs/benchmarks.md has the kernels' profiles)."""

BLUR_TAP = {5: 0.185}
"""w by feature dimension d. For RGB, the w whose kernel, averaged over the lattice's position, deviates least
from the Gaussian at distances up to 3.5σ (measured over random point pairs; docs/benchmarks.md). Other d take
the root near 1/6 of κ₄(X) = −1/60 + p(2w − 12w²) = 0, which gives X the Gaussian's zero fourth cumulant. With the
per-point amplitude λ_p (below) the two criteria part ways: for RGB at three passes the κ₄ root makes a kernel
that is too high near t = 0."""


def _blur_taps(d: int) -> tuple[int, float]:
    """Passes and w of the blur for features of dimension d."""
    passes = BLUR_PASSES.get(d, 4)
    return passes, BLUR_TAP.get(d, (1 + math.sqrt(1 - 1 / (5 * passes))) / 12)


@functools.lru_cache(maxsize=None)
def _blur_kernel(passes: int, w: float) -> tuple[tuple[float, ...], float]:
    """The 1-D blur taps for offsets −passes..passes (sum 1), and the lattice scale √Var X in lattice steps:
    elevated coordinates are features × (d + 1) × scale."""
    k = torch.ones(1, dtype=torch.float64)
    for _ in range(passes):
        k = F.conv1d(k.view(1, 1, -1), torch.tensor([[[w, 1 - 2 * w, w]]], dtype=torch.float64), padding=2).view(-1)
    return tuple(k.tolist()), math.sqrt(1 / 6 + (k * torch.arange(-passes, passes + 1) ** 2).sum().item())


_DIRECTION_ORDER = {5: (1, 0, 3, 4, 5, 2), 3: (0, 1, 2, 3)}
"""Order of the blur directions for RGB (d = 5) and grayscale (d = 3) images; other d use d, 0, 1, …, d − 1.
Lattice coordinates 0–2 carry the pixel grid (x and y), so the image sheet extends along u_0..u_2 and the
vertex sets grow least along them, which makes the blur cheaper at small σ_xy. A step along u_d moves every
lattice coordinate, every other step one: the direction right after the first half must not be u_d (see
``GaussianFilter._blur``), and the compiled build wants none of the first half either (where one is, torch
builds the lattice). The result does not depend on the order."""

_MAX_CODE = 1 << 62

A, B = TypeVar("A"), TypeVar("B")


def _elevation(d: int, scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(d, d + 1) map (right-multiplied) from feature space onto the plane Σx = 0 of R^(d+1): an orthonormal basis
    of that plane, times ``scale``."""
    e = torch.zeros(d, d + 1, dtype=torch.float64)
    for i in range(d):
        e[i, : i + 1] = 1.0
        e[i, i + 1] = -(i + 1.0)
        e[i] /= math.sqrt((i + 1) * (i + 2))
    return (e * scale).to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=None)
def _simplex_blur(d: int) -> torch.Tensor:
    """(d + 1, d + 1) infinite-lattice blur between the corners of one simplex (float64, CPU): the same for
    every simplex by the lattice's symmetry, and circulant in the corners' cyclic order. The steps e_j along the
    u_j with Σ e_j u_j = x_b − x_a are e⁰ + t·(1, …, 1) for one solution e⁰ and any integer t (Σ u_j = 0)."""
    dp1, (p, w) = d + 1, _blur_taps(d)
    taps = _blur_kernel(p, w)[0]
    corners = [[r - dp1 * (j > d - r) for j in range(dp1)] for r in range(dp1)]
    g = torch.zeros(dp1, dp1, dtype=torch.float64)
    for a in range(dp1):
        for b in range(dp1):
            shift = (a - b) % dp1
            e0 = [(xb - xa + shift) // dp1 for xa, xb in zip(corners[a], corners[b])]
            for t in range(-2 * p - 1, 2 * p + 2):
                if all(abs(e + t) <= p for e in e0):
                    g[a, b] += math.prod(taps[e + t + p] for e in e0)
    return g


class _Coder:
    """Mixed-radix codes of integer vectors within [low, high], so that adding a fixed vector adds a constant
    to the code: shifted copies of a sorted code array stay sorted and need no decoding. The digits go from
    the least significant in the order of ``first`` (the coordinates it names), then the others; the first is
    the stride-1 digit. int32 where the codes fit (sorting them is twice as fast), else int64. With ``fields``
    every digit is a bit field (its width rounded up to a power of two), so that codes convert between coders
    of other digit orders with shifts and masks (``refined``)."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor, first: tuple[int, ...], fields: bool = False):
        self.low, span = [int(v) for v in low.tolist()], 1
        self.widths = [int(h) - lo + 1 for h, lo in zip(high.tolist(), self.low)]
        if fields:
            self.widths = [1 << (w - 1).bit_length() for w in self.widths]
        self.order = list(first) + [i for i in range(len(self.low)) if i not in first]
        self.strides = [0] * len(self.low)
        for i in self.order:
            self.strides[i] = span
            span *= self.widths[i]
        if span >= _MAX_CODE:
            raise ValueError("features span too many lattice cells for 64-bit codes: increase the bandwidths "
                             "or downsample the image")
        self.span = span
        self.dtype = torch.int32 if span < (1 << 31) else torch.int64

    def refined(self, fine: int) -> _Coder:
        """The same bit fields with coordinate ``fine`` moved to the least significant digit."""
        other = copy.copy(self)
        other.order, other.strides, span = [fine] + [i for i in self.order if i != fine], [0] * len(self.low), 1
        for i in other.order:
            other.strides[i] = span
            span *= self.widths[i]
        return other

    def fields(self) -> tuple[np.ndarray, np.ndarray]:
        """Each coordinate's bit shift and mask (a coder made with ``fields``)."""
        return (np.array([s.bit_length() - 1 for s in self.strides]), np.array([w - 1 for w in self.widths]))

    def encode(self, pts: torch.Tensor) -> torch.Tensor:
        code = torch.zeros(pts.shape[:-1], dtype=torch.long, device=pts.device)
        for i, (lo, stride) in enumerate(zip(self.low, self.strides)):
            code += (pts[..., i] - lo) * stride
        return code.to(self.dtype)


def beside(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """first() on the lattice's own thread while second() runs on this one, where torch has a second thread
    (the compiled kernels and numpy's sort release the GIL); one after the other where it has one. The losses'
    own compiled loops around the filtering share the thread the same way."""
    if torch.get_num_threads() < 2:
        return first(), second()
    done = queue.SimpleQueue()
    _worker(os.getpid()).put((first, done))
    try:
        other = second()
    finally:
        ok, value = done.get()  # always: first() must be finished before anything it uses is released
    if not ok:
        raise value
    return value, other


@functools.lru_cache(maxsize=None)
def _worker(pid: int) -> queue.SimpleQueue:
    """The lattice's worker thread, one per process (a forked child has none of its parent's threads), fed
    through a queue: a handover costs less than through an executor, and a build makes about ten."""
    tasks: queue.SimpleQueue = queue.SimpleQueue()

    def run() -> None:
        while True:
            task, done = tasks.get()
            try:
                done.put((True, task()))
            except BaseException as error:  # handed to the caller, raised there
                done.put((False, error))

    threading.Thread(target=run, name="lattice", daemon=True).start()
    return tasks


class _Lattice:
    """What both builds of a ``GaussianFilter`` share: d + 1, the blur reach and taps, the order of the blur
    directions, the simplex blur g with the mean self weight m over positions (see ``_simplex_blur``), and the
    normalisation from the integrals."""

    def __init__(self, dp1: int, reach: int, directions: tuple[int, ...], g: torch.Tensor, norm: float,
                 taps: torch.Tensor):
        self.dp1, self.reach, self.directions, self.g, self.norm, self.taps = dp1, reach, directions, g, norm, taps
        self.mean_self = (g.diagonal().sum() + g.sum()).item() / (dp1 * (dp1 + 1))
        self.unit = [[int(i == j) for i in range(dp1 - 1)] for j in range(dp1 - 1)] + [[-1] * (dp1 - 1)]

    def coder(self, low: torch.Tensor, high: torch.Tensor, compiled: bool = False) -> _Coder:
        """Codes for corner-0 lattice coordinates within [low, high], with room for the corners (each moves
        n_i by 1) and the blur (a half moves ±R along u_i and ±R along u_d). The torch build's stride-1 digit
        is the direction of the first gather step; the compiled build's is the last spread step's, with the
        first gather step's next, and its digits are bit fields."""
        margin, half = 2 * self.reach + 2, (self.dp1 + 1) // 2
        first = self.directions[half - 1:half + 1] if compiled else self.directions[half:half + 1]
        return _Coder(low - margin, high + margin, first, fields=compiled)

    @staticmethod
    def corner_steps(coder: _Coder) -> list[int]:
        """Code change from one corner to the next when coordinate r of the elevated point is the one that
        drops: −stride_r for r < d, +Σ strides for r = d."""
        return [-s for s in coder.strides] + [sum(coder.strides)]

    def step(self, coder: _Coder, j: int) -> int:
        """Code change of one step along u_j."""
        return sum(v * s for v, s in zip(self.unit[j], coder.strides))


@functools.lru_cache(maxsize=None)
def _lattice(d: int, dtype: torch.dtype, device: torch.device) -> tuple[_Lattice, torch.Tensor]:
    """The lattice for features of dimension d, and the elevation onto it (cached: every training step builds a
    filter, and these are the same each time)."""
    dp1, (reach, w) = d + 1, _blur_taps(d)
    taps, scale = _blur_kernel(reach, w)
    scale *= dp1
    # W = norm · Λ A B Aᵀ Λ: A the barycentric weights, B the blur, λ_p = √(m / (A B Aᵀ)_pp) with m its
    # mean over positions, E[b_r b_s] = (1 + [r = s]) / ((d + 1)(d + 2)) for a uniform point in a simplex.
    lattice = _Lattice(dp1, reach, _DIRECTION_ORDER.get(d, (d,) + tuple(range(d))), _simplex_blur(d),
                       (2 * math.pi) ** (d / 2) * scale ** d / dp1 ** (d - 0.5),
                       torch.tensor(taps, dtype=dtype, device=device))
    return lattice, _elevation(d, scale / dp1, dtype, device)


class _Rows:
    """A sparse matrix kept by rows: row r is Σ_i weight[i] · x[index[i]] over offsets[r] ≤ i < offsets[r + 1].
    Applied with ``embedding_bag`` (weighted sum of gathered rows), which on CPU is 2–3× faster than a CSR
    sparse × dense product and writes no zero-filled output first."""

    def __init__(self, offsets: torch.Tensor, index: torch.Tensor, weight: torch.Tensor):
        if offsets.dtype != torch.int32 or index.dtype != torch.int32:  # embedding_bag takes both int32 or int64
            offsets, index = offsets.long(), index.long()
        self.offsets, self.index, self.weight = offsets, index, weight

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding_bag(self.index, x, self.offsets, mode="sum", per_sample_weights=self.weight,
                               include_last_offset=True)


class _Splat:
    """The compiled build's splat where its vertices were numbered by hashing, with no rows grouped by vertex:
    each point adds its weighted values into its corners' vertices (``lattice_cpu.splat``), the two halves of the
    points side by side into buffers of their own, which are then summed. No autograd."""

    def __init__(self, vertex: np.ndarray, bary: np.ndarray, size: int, split: int):
        self.vertex, self.bary, self.size, self.split = vertex, bary, size, split

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        from engine.losses import lattice_cpu as lc

        x = x.detach().contiguous()
        a, b = (x.new_zeros(self.size, x.shape[1]) for _ in range(2))
        beside(lambda: lc.splat(x.numpy(), self.bary, self.vertex, a.numpy(), 0, self.split),
               lambda: lc.splat(x.numpy(), self.bary, self.vertex, b.numpy(), self.split, len(x)))
        return a.add_(b)


class _Line:
    """A blur step outwards along one lattice direction, as the compiled build stores it: the count of new
    vertices, and for each source its index and the position of its own vertex among the new ones, whose
    neighbours along the direction are the neighbouring positions (see ``lattice_cpu.dilate``). Applied by a
    compiled loop; no autograd."""

    def __init__(self, size: int, at: np.ndarray, source: np.ndarray, taps: np.ndarray, reach: int):
        self.size, self.at, self.source, self.taps, self.reach = size, at, source, taps, reach

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        from engine.losses import lattice_cpu as lc

        x = x.detach().contiguous()
        out = x.new_empty(self.size, x.shape[1])
        lc.line_blur(x.numpy(), self.at, self.source, self.taps, self.reach, out.numpy(), beside)
        return out


def _runs(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort codes; return the sort permutation, a mask of where each run of equal codes starts, and the
    sorted codes."""
    sorted_codes, perm = torch.sort(codes)
    first = torch.ones_like(sorted_codes, dtype=torch.bool)
    torch.ne(sorted_codes[1:], sorted_codes[:-1], out=first[1:])
    return perm, first, sorted_codes


def _inverse(perm: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Index of each input's code among the distinct sorted codes."""
    return torch.empty_like(perm).scatter_(0, perm, first.cumsum(0) - 1)


class GaussianFilter:
    """out = W v with W_pq ≈ exp(−||f_p − f_q||²/2) for points f (N, d), built once, applied to any channels.

    ``filt = GaussianFilter(features)`` sorts the points into the lattice; ``filt(values)``, values (N, C),
    returns (N, C). Weights live in ``features.dtype`` (float64 for gradient checks), on ``features.device``.
    W is symmetric with non-negative entries. ``self_weight`` (N,) is its diagonal W_pp, the same for every
    point (1.02 for d = 5 and d = 3, where the Gaussian has 1), so that a caller can drop the p = q terms
    exactly. ``blur_sizes`` lists the vertex counts the blur steps visit (the first: the occupied vertices).
    ``compiled=False`` builds with torch on the CPU too, as on CUDA: the same operator, for the tests to compare.
    Filtering records no autograd graph: the losses that use it define their own backward.
    """

    def __init__(self, features: torch.Tensor, compiled: bool = True):
        if features.dim() != 2 or not features.is_floating_point():
            raise ValueError("features must be a floating (N, d) tensor")
        n, d = features.shape
        dev, dt = features.device, features.dtype
        lattice, elevation = _lattice(d, dt, dev)
        # Enclosing simplex (Conway & Sloane; Adams et al. 3.1): round y / (d + 1) to q and sort the remainders
        # t; corner 0 is (d + 1) q, corner s adds 1 to every coordinate of corner s − 1 and subtracts d + 1
        # from the one with the s-th smallest t, and the barycentric weights are the gaps between sorted t.
        # Adams et al. then move the corners along (1, …, 1) onto the plane Σx = 0; the codes ignore that
        # direction, so the step is not needed.
        features = features.detach()
        self.self_weight = torch.full((n,), lattice.mean_self * lattice.norm, dtype=dt, device=dev)
        built = compiled and dev.type == "cpu" and self._build_compiled(features, elevation, lattice)
        if not built:
            self._build_torch(features @ elevation, lattice)

    def _build_torch(self, y: torch.Tensor, lat: _Lattice) -> None:
        """The lattice with torch operations, on any device."""
        n, dp1 = y.shape
        d, dev, dt = dp1 - 1, y.device, y.dtype
        q = torch.round(y)
        t, order = torch.sort(y - q, dim=1)
        gaps = t[:, 1:] - t[:, :-1]
        bary = torch.cat([1 - gaps.sum(1, keepdim=True), gaps], 1)                         # (N, d + 1)

        # Lattice points are coded by their coordinates n in the basis u_0..u_{d-1} (u_j = (d + 1) e_j − 1):
        # x_i − x_d = (d + 1) n_i. A step along u_j adds e_j to n (along u_d = −Σ u_j, −1 to every n_i), so
        # every corner and blur step adds a constant to the code.
        base = (q[:, :d] - q[:, d:]).long()
        coder = lat.coder(base.amin(0), base.amax(0))
        corner_step = torch.tensor(lat.corner_steps(coder), dtype=coder.dtype, device=dev)
        codes = coder.encode(base)[:, None].repeat(1, dp1)
        steps = torch.gather(corner_step.expand(n, dp1), 1, order[:, :d])
        codes[:, 1:] += torch.cumsum(steps, 1, dtype=coder.dtype)
        perm, first, sorted_codes = _runs(codes.view(-1))
        occupied = sorted_codes[first]

        self_weight = ((bary @ lat.g.to(dtype=dt, device=dev)) * bary).sum(1)              # (A B Aᵀ)_pp
        bary = bary * (lat.mean_self / self_weight).sqrt()[:, None]
        flat_bary = bary.reshape(-1)
        starts = torch.nonzero(first).squeeze(1)
        self._splat = _Rows(torch.cat([starts, starts.new_tensor([n * dp1])]),
                            torch.div(perm, dp1, rounding_mode="floor"), flat_bary.index_select(0, perm))
        self._slice = _Rows(torch.arange(0, n * dp1 + 1, dp1, device=dev), _inverse(perm, first),
                            flat_bary * lat.norm)
        self._steps, self.blur_sizes = self._blur(occupied, coder, lat)

    def _build_compiled(self, features: torch.Tensor, elevation: torch.Tensor, lat: _Lattice) -> bool:
        """The same lattice with the compiled CPU kernels of ``lattice_cpu``; False (nothing built) where the
        codes are too wide to pack with their payloads, as for very large images at small bandwidths. Each
        half of the points is placed in its simplices on its own thread, and its corners' vertices numbered by
        hashing their codes (``lattice_cpu.number_corners``); where the points have too many vertices for that
        to pay, each half's corner keys are sorted instead, and the merge of the two sorted halves finds the
        occupied vertices."""
        from engine.losses import lattice_cpu as lc  # numba loads when a CPU lattice is first built

        n, dp1 = features.shape[0], lat.dp1
        half_n = n // 2
        part = ((0, half_n), (half_n, n))
        f, g = features.T.contiguous().numpy(), lat.g.to(features.dtype).numpy()
        base, order = np.empty((dp1 - 1, n), np.int64), np.empty((dp1 - 1, n), np.int64)
        bary = np.empty((n, dp1), f.dtype)
        (low0, high0), (low1, high1) = beside(*(
            functools.partial(lc.simplices, f, elevation.numpy(), g, lat.mean_self, base, order, bary, *part[i])
            for i in (0, 1)))
        try:
            coder = lat.coder(torch.from_numpy(np.minimum(low0, low1)), torch.from_numpy(np.maximum(high0, high1)),
                              compiled=True)
        except ValueError:  # too wide with the digits rounded to bit fields: the torch build may still fit
            return False
        half = (dp1 + 1) // 2
        payloads = n << lc.pack_bits(dp1)  # corner keys carry their point and corner number
        if dp1 - 1 in lat.directions[:half] or not (lc.fits(coder.span, payloads)
                                                     and lc.fits(coder.span, 1 << lc.TAP_BITS)):
            return False
        low, strides, corner_step = np.array(coder.low), np.array(coder.strides), np.array(lat.corner_steps(coder))
        vertex = np.empty(n * dp1, lc.index_type(n * dp1))
        tables = beside(*(functools.partial(lc.number_corners, base, order, low, strides, corner_step, vertex,
                                            *part[i]) for i in (0, 1)))
        if None not in tables:
            occupied = lc.join(*tables, vertex, half_n * dp1, beside)
            self._splat = _Splat(vertex, bary, occupied.size, half_n)
        else:  # too many vertices to hash: sort the corner keys
            bits = lc.pack_bits(payloads)
            keys = np.empty(n * dp1, np.int64)

            def corner_keys(i: int) -> None:
                lc.corner_keys(base, order, low, strides, corner_step, bits, lc.pack_bits(dp1), keys, *part[i])
                keys[part[i][0] * dp1:part[i][1] * dp1].sort()

            beside(functools.partial(corner_keys, 0), functools.partial(corner_keys, 1))
            occupied, starts, point, weight, vertex = lc.corner_rows(keys, half_n * dp1, bits, bary, beside)
            self._splat = _Rows(*map(torch.from_numpy, (starts, point, weight)))
        vertex = torch.from_numpy(vertex)
        self._slice = _Rows(torch.arange(0, n * dp1 + 1, dp1, dtype=vertex.dtype), vertex,
                            torch.from_numpy(bary).view(-1) * lat.norm)

        ntap, taps, reach = 2 * lat.reach + 1, lat.taps, lat.reach

        def spread() -> tuple[list[_Line], list[int], tuple[np.ndarray, int, np.ndarray]] | None:
            """The spread steps, each in the coder whose stride-1 digit is its direction: the codes re-sorted
            into it, then one walk. The last direction is ``coder``'s own stride-1 digit, so the last set comes
            out in ``coder``'s order; it is not listed, as the window finds its vertices from the last step's
            sorted keys, bits and positions (returned). None where the indices do not fit beside the codes."""
            steps, sizes, codes, layout = [], [], occupied, coder
            for n_step, j in enumerate(lat.directions[:half]):
                target = coder.refined(j)
                if not lc.fits(coder.span, codes.size):
                    return None
                bits = lc.pack_bits(codes.size)
                keys = lc.recode(codes, layout.fields(), target.fields(), bits)
                keys.sort()
                size, codes, at, source = lc.dilate(keys, bits, reach, listed=n_step < half - 1)
                steps.append(_Line(size, at, source, taps.numpy(), reach))
                sizes.append(size)
                layout = target
            return steps, sizes, (keys, bits, at)

        handoff = queue.SimpleQueue()  # the last gather step's second half of keys, for the spread side to sort

        def gather() -> tuple[list[np.ndarray], np.ndarray, int]:
            """The gather sets, outwards. The last one's keys are sorted in two halves: this thread sorts the
            first, and the spread side, done sooner, the second (``handoff``); they are merged afterwards."""
            inverses, codes, handed = [], occupied, False
            gathers = lat.directions[:half:-1]  # at least one where the compiled build runs (d ≥ 3)
            try:
                for n_step, j in enumerate(gathers):
                    if n_step:
                        codes, inverse = lc.gather_index(keys, ntap)
                        inverses.append(inverse)
                    keys = lc.shifted_keys(codes, lat.step(coder, j), reach)
                    split = codes.size // 2 * ntap if n_step == len(gathers) - 1 else keys.size
                    if split < keys.size:
                        handoff.put(keys[split:])
                        handed = True
                    keys[:split].sort()
            finally:
                if not handed:
                    handoff.put(None)
            return inverses, keys, split

        def spread_and_sort() -> tuple[list[_Line], list[int], tuple[np.ndarray, int, np.ndarray]] | None:
            built = spread()
            other = handoff.get()
            if other is not None:
                other.sort()
            return built

        (inverses, keys, split), spread_side = beside(gather, spread_and_sort)
        if spread_side is None:
            return False
        outer, inverse = lc.gather_index(keys, ntap, split)
        inverses.append(inverse)
        steps, sizes, last = spread_side
        window = lc.window(*last, outer, lat.step(coder, lat.directions[half]), reach, taps.numpy(), beside)
        steps.append(_Rows(*map(torch.from_numpy, window)))
        sizes.append(outer.size)
        for inverse in reversed(inverses):
            m = inverse.size // ntap
            inverse = torch.from_numpy(inverse)
            steps.append(_Rows(torch.arange(0, m * ntap + 1, ntap, dtype=inverse.dtype), inverse, taps.repeat(m)))
            sizes.append(m)
        self._steps, self.blur_sizes = steps, [occupied.size] + sizes
        return True

    @staticmethod
    def _blur(occupied: torch.Tensor, coder: _Coder, lat: _Lattice) -> tuple[list[_Rows], list[int]]:
        """Row operators of the blur along every u_j, in order of application, and their vertex counts.

        The first half of the directions spreads outwards: P_{j+1} = P_j ⊕ {−R..R}·u_j, each new vertex
        summing the P_j vertices that reach it. The second half is built from the occupied vertices outwards,
        Q_j = Q_{j+1} ⊕ {−R..R}·u_j, and applied inwards: vertex x ∈ Q_{j+1} reads x + e·u_j. The first gather
        step reads the spread values directly, from the vertices of P it reaches (the others hold no mass): its
        direction is the coder's stride-1 digit, so x − R..x + R are consecutive codes and the ones present in P
        lie in one window of 2R + 1 entries of the sorted P, found with one search per row."""
        dp1, dev, p, taps = lat.dp1, occupied.device, lat.reach, lat.taps
        half = (dp1 + 1) // 2

        def shifts(j: int) -> torch.Tensor:
            return torch.arange(-p, p + 1, device=dev, dtype=coder.dtype) * lat.step(coder, j)

        steps, sizes, codes = [], [occupied.numel()], occupied
        for j in lat.directions[:half]:
            m = codes.numel()
            perm, first, sorted_codes = _runs((codes[None, :] + shifts(j)[:, None]).view(-1))
            starts = torch.nonzero(first).squeeze(1)
            tap = torch.div(perm, m, rounding_mode="floor")
            steps.append(_Rows(torch.cat([starts, starts.new_tensor([perm.numel()])]), perm - tap * m,
                               taps.index_select(0, tap)))
            codes = sorted_codes.index_select(0, starts)
            sizes.append(codes.numel())
        spread, gathers, codes = codes, [], occupied
        for j in reversed(lat.directions[half + 1:]):
            perm, first, sorted_codes = _runs((codes[:, None] + shifts(j)[None, :]).view(-1))
            gathers.append((_inverse(perm, first), taps.repeat(codes.numel()), codes.numel()))
            codes = sorted_codes[first]
        window = (torch.searchsorted(spread, codes - p)[:, None] + torch.arange(2 * p + 1, device=dev)).view(-1)
        inside = window < spread.numel()
        window.clamp_max_(spread.numel() - 1)
        offset = spread.index_select(0, window).view(-1, 2 * p + 1).sub_(codes[:, None]).view(-1)  # e where ≤ p
        weight = taps.index_select(0, offset.add(p).clamp_(0, 2 * p)) * (inside & (offset <= p))
        gathers.append((window, weight, codes.numel()))
        for index, weight, m in reversed(gathers):
            steps.append(_Rows(torch.arange(0, index.numel() + 1, 2 * p + 1, device=dev), index, weight))
            sizes.append(m)
        return steps, sizes

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """Filter values (N, C); returns (N, C) in the filter's dtype."""
        x = self._splat @ values.to(self.self_weight.dtype)
        for step in self._steps:
            x = step @ x
        return self._slice @ x


def gaussian_filter_exact(features: torch.Tensor, values: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """The same sum by brute force, O(N²) time and O(chunk · N) memory: the reference for tests and benchmarks."""
    out = torch.empty(values.shape, dtype=features.dtype, device=features.device)
    values = values.to(features.dtype)
    for s in range(0, features.shape[0], chunk):
        out[s:s + chunk] = torch.exp(-0.5 * torch.cdist(features[s:s + chunk], features).square_()) @ values
    return out
