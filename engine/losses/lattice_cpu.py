"""The permutohedral lattice's index building on CPU, compiled with numba: the same operators as the torch build
in ``permutohedral.GaussianFilter``, in far fewer passes over memory.

Building the lattice costs more than filtering with it, and in torch it is a chain of a few dozen whole-array
operations (gathers, cumulative sums, shifts, scatters) around each sort. Here each stage is one compiled loop:
the simplex of every point with its weights and corner codes, the runs of equal codes after a sort, the new
vertices of a blur step, the window of the first gather step (a pointer per tap instead of a binary search).
Sorting stays with numpy: every code is packed with its payload (where it came from) into one int64 and the
keys alone are sorted, which numpy's vectorised integer sort does several times faster than an argsort.

The occupied vertices are numbered by hashing the corners' codes (``number_corners``) where many corners share
a vertex, as at the default bandwidths: the table then stays in the caches, and the splat adds each point into
its vertices (``splat``) instead of reading rows grouped by vertex. Where there are about as many vertices as pixels, the corner keys are sorted instead (``corner_rows``).

A spread step sorts its vertices once, into a coder whose stride-1 digit is the step's direction (``recode``);
the step then moves codes by ±reach within that digit, so the new vertices come out in order from one walk
(``dilate``), and their neighbours along the direction are neighbouring entries. Such a step is stored as where
each source lands and applied by a compiled loop (``line_blur``). The other operators are (offsets, index,
weight) rows for ``embedding_bag``, as in the torch build; tests check that the two builds filter alike.

Each kernel runs on the thread that calls it and releases the GIL, so the lattice splits its work between its
own worker thread and the caller (``permutohedral.beside``) instead of starting a numba thread pool beside
torch's, which would compete with it on a busy machine (see ``engine.threads``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit


def _empty(size: int, dtype=np.int64) -> np.ndarray:
    """Output arrays are allocated by numpy, not inside the compiled kernels: numpy asks the kernel for huge
    pages on large arrays, and a build allocates hundreds of MB at small bandwidths, whose first touch in
    4 kB pages would otherwise take as long as the build's own work."""
    return np.empty(size, dtype)


def index_type(count: int) -> type:
    """Row offsets and indices below ``count`` in int32 where they fit: half the memory traffic of int64."""
    return np.int32 if count < 1 << 31 else np.int64


def pack_bits(count: int) -> int:
    """Bits for payloads 0..count − 1."""
    return max(1, (count - 1).bit_length())


def fits(span: int, count: int) -> bool:
    """Whether codes below ``span`` and payloads below ``count`` pack into one non-negative int64."""
    return (span - 1).bit_length() + pack_bits(count) <= 63


@njit(cache=True, nogil=True)
def simplices(f: np.ndarray, elevation: np.ndarray, g: np.ndarray, mean_self: float, base: np.ndarray,
              order: np.ndarray, bary: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """For points start..stop of ``f`` (d, N), coordinate-major, elevated by ``elevation`` (d, d + 1), fills in
    the lattice coordinates ``base`` (d, N) of corner 0, the order (d, N) in which later corners step, and
    barycentric weights (N, d + 1) scaled by λ_p = √(m / (A B Aᵀ)_pp); returns the least and greatest coordinates
    (d,). See ``GaussianFilter`` for the method. A range, so that two threads can share the points. Everything is
    held coordinate by coordinate, so that the loops over the points of a block, the innermost, run in vector
    instructions: the remainders are ranked by comparing every pair and put in order by selecting on the ranks
    (no branches, no scattered stores)."""
    dp1 = elevation.shape[1]
    d = dp1 - 1
    low = np.full(d, np.iinfo(np.int64).max)
    high = np.full(d, np.iinfo(np.int64).min)
    block = 256
    y = np.empty((dp1, block), f.dtype)
    rem = np.empty((dp1, block), f.dtype)
    t = np.empty((dp1, block), f.dtype)
    q = np.empty((dp1 + 1, block), np.int64)  # the last row: one coordinate of ``order``'s block
    rank = np.empty((dp1, block), np.int64)
    lam = np.empty(block, f.dtype)
    for s0 in range(start, stop, block):
        nb = min(block, stop - s0)
        for k in range(d):  # the block's features first, so that the loops below see no other array
            for j in range(nb):
                y[k, j] = f[k, s0 + j]
        for i in range(dp1):
            for j in range(nb):
                t[i, j] = 0
            for k in range(d):
                e = elevation[k, i]
                for j in range(nb):
                    t[i, j] += y[k, j] * e
        for i in range(dp1):
            for j in range(nb):
                v = t[i, j]
                r = np.rint(v)
                q[i, j] = np.int64(r)
                rem[i, j] = v - r
                rank[i, j] = 0
        for i in range(dp1):
            for k in range(i + 1, dp1):
                for j in range(nb):
                    later = np.int64(rem[k, j] < rem[i, j])
                    rank[i, j] += later
                    rank[k, j] += 1 - later
        for r in range(dp1):
            for j in range(nb):
                t[r, j] = 0
            for i in range(dp1):
                for j in range(nb):
                    t[r, j] += rem[i, j] * (rank[i, j] == r)
        for r in range(d):
            for j in range(nb):
                q[dp1, j] = 0
            for i in range(1, dp1):
                for j in range(nb):
                    q[dp1, j] += i * (rank[i, j] == r)
            for j in range(nb):
                order[r, s0 + j] = q[dp1, j]
        for i in range(d):
            lo, hi = low[i], high[i]
            for j in range(nb):
                b = q[i, j] - q[d, j]
                base[i, s0 + j] = b
                lo = min(lo, b)
                hi = max(hi, b)
            low[i], high[i] = lo, hi
        for j in range(nb):  # the block's weights replace its remainders
            rem[0, j] = 1 - (t[d, j] - t[0, j])
        for s in range(1, dp1):
            for j in range(nb):
                rem[s, j] = t[s, j] - t[s - 1, j]
        for j in range(nb):
            lam[j] = 0
        for a in range(dp1):
            for c in range(dp1):
                gac = g[a, c]
                for j in range(nb):
                    lam[j] += gac * rem[a, j] * rem[c, j]
        for j in range(nb):
            lam[j] = np.sqrt(mean_self / lam[j])
        for s in range(dp1):
            for j in range(nb):
                bary[s0 + j, s] = rem[s, j] * lam[j]
    return low, high


@njit(cache=True, nogil=True)
def _first_codes(base, low, strides, p0, nb, c) -> None:
    """The codes of corner 0 of points p0..p0 + nb into c, a coordinate at a time (in vector instructions)."""
    for j in range(nb):
        c[j] = 0
    for i in range(base.shape[0]):
        for j in range(nb):
            c[j] += (base[i, p0 + j] - low[i]) * strides[i]


@njit(cache=True, nogil=True)
def corner_keys(base: np.ndarray, order: np.ndarray, low: np.ndarray, strides: np.ndarray,
                corner_step: np.ndarray, bits: int, sbits: int, keys: np.ndarray, start: int, stop: int) -> None:
    """Fills in the packed keys code << bits | p << sbits | s of corner s of the points p in start..stop, at
    p·(d + 1) + s (``sbits``: ``pack_bits(d + 1)``, the bits of a corner's number); ``base`` and ``order`` as
    ``simplices`` leaves them, (d, N)."""
    d = base.shape[0]
    dp1 = d + 1
    block = 256
    c = np.empty(block, np.int64)
    for p0 in range(start, stop, block):
        nb = min(block, stop - p0)
        _first_codes(base, low, strides, p0, nb, c)
        for j in range(nb):
            p = p0 + j
            code, payload = c[j], p << sbits
            keys[p * dp1] = code << bits | payload
            for s in range(1, dp1):
                code += corner_step[order[s - 1, p]]
                keys[p * dp1 + s] = code << bits | payload | s


HASH_RATIO = 12
"""Corners per vertex below which numbering the vertices by hashing costs about as much as sorting the corner keys
or more (small bandwidths: the lattice then has about as many vertices as pixels, and the table outgrows the
caches)."""
HASH_START = 1024
"""Vertices a half of the points may have before ``HASH_RATIO`` applies (an image's first rows meet new vertices
faster than the rest)."""


class VertexTable:
    """Lattice vertices numbered in the order their codes are first met, in an open-addressing hash table with
    linear probing (empty slots hold −1; codes are never negative). Kept at most half full: ``grown`` doubles it."""

    def __init__(self, bits: int = 15):
        self.bits, self.count = bits, 0
        self.slots, self.ids, self.codes = (np.full(1 << bits, -1, np.int64), _empty(1 << bits, np.int32),
                                            _empty(1 << (bits - 1)))

    def grown(self) -> VertexTable:
        table = VertexTable(self.bits + 1)
        table.codes[:self.count] = self.codes[:self.count]
        table.count = self.count
        _rehash(table.codes, table.count, table.slots, table.ids, np.uint64(64 - table.bits))
        return table


def number_corners(base: np.ndarray, order: np.ndarray, low: np.ndarray, strides: np.ndarray,
                   corner_step: np.ndarray, vertex: np.ndarray, start: int, stop: int) -> VertexTable | None:
    """Numbers the vertices at the corners of points start..stop by hashing their codes, and writes the number
    of corner s of point p at vertex[p·(d + 1) + s] (``base``, ``order`` as ``simplices`` leaves them). None
    where the vertices are too many for the table to pay (``HASH_RATIO``): the keys are then sorted instead.
    Every corner is looked up: skipping those that are the previous point's own was slower, as that test
    cannot be predicted (a third of them are)."""
    table, at = VertexTable(), start
    while at != stop:
        table.count, at = _number_corners(base, order, low, strides, corner_step, start, at, stop, table.slots,
                                          table.ids, table.codes, table.count, np.uint64(64 - table.bits), vertex)
        if at < 0:
            return None
        if at != stop:
            table = table.grown()
    return table


def join(first: VertexTable, second: VertexTable, vertex: np.ndarray, start: int, beside: Callable) -> np.ndarray:
    """The sorted codes of the vertices of two halves of the points (the blur's construction needs them in order),
    renumbering vertex[:start], the first half's corners, and vertex[start:], the second's, to match (``beside``
    runs two functions side by side)."""
    while first.count + second.count > first.slots.size // 2:
        first = first.grown()
    numbers = _empty(second.count, np.int32)
    first.count = _insert(second.codes, second.count, first.slots, first.ids, first.codes, first.count,
                          np.uint64(64 - first.bits), numbers)
    codes = first.codes[:first.count]
    order = np.argsort(codes)
    rank = _empty(codes.size, np.int32)
    rank[order] = np.arange(codes.size, dtype=np.int32)
    beside(lambda: _renumber(vertex, rank, 0, start), lambda: _renumber(vertex, rank[numbers], start, vertex.size))
    return codes[order]


@njit(cache=True, nogil=True)
def _slot(code, shift):
    """The home slot of a code: Fibonacci hashing, the top bits of the code times 2⁶⁴/φ."""
    return np.int64((np.uint64(code) * np.uint64(0x9E3779B97F4A7C15)) >> shift)


@njit(cache=True, nogil=True)
def _number(code, slots, ids, codes, count, shift):
    """The number of ``code`` in the table, adding it as number ``count`` where it is new; and the count after."""
    mask = slots.size - 1
    h = _slot(code, shift)
    while slots[h] != code and slots[h] != -1:
        h = (h + 1) & mask
    if slots[h] == -1:
        slots[h], ids[h], codes[count] = code, count, code
        count += 1
    return ids[h], count


@njit(cache=True, nogil=True)
def _number_corners(base, order, low, strides, corner_step, first, start, stop, slots, ids, codes, count, shift,
                    vertex):
    """From point ``start`` on: returns the vertex count and where it stopped: ``stop`` when done, a block's first
    point where the table must grow first, −1 where there are too many vertices (``HASH_RATIO``)."""
    d = base.shape[0]
    dp1 = d + 1
    block = 256
    c = np.empty(block, np.int64)
    for p0 in range(start, stop, block):
        nb = min(block, stop - p0)
        if count > HASH_START + (p0 - first) * dp1 // HASH_RATIO:
            return count, -1
        if count + nb * dp1 > slots.size // 2:
            return count, p0
        _first_codes(base, low, strides, p0, nb, c)
        for j in range(nb):
            p = p0 + j
            code = c[j]
            for s in range(dp1):
                if s:
                    code += corner_step[order[s - 1, p]]
                h = _slot(code, shift)  # ``_number`` written out: called here, it took ten times as long
                while slots[h] != code and slots[h] != -1:
                    h = (h + 1) & (slots.size - 1)
                if slots[h] == -1:
                    slots[h], ids[h], codes[count] = code, count, code
                    count += 1
                vertex[p * dp1 + s] = ids[h]
    return count, stop


@njit(cache=True, nogil=True)
def _rehash(codes, count, slots, ids, shift) -> None:
    mask = slots.size - 1
    for i in range(count):
        h = _slot(codes[i], shift)
        while slots[h] != -1:
            h = (h + 1) & mask
        slots[h], ids[h] = codes[i], i


@njit(cache=True, nogil=True)
def _insert(new, m, slots, ids, codes, count, shift, number) -> int:
    """Looks up or adds new[:m], writing each one's number; returns the count."""
    for i in range(m):
        number[i], count = _number(new[i], slots, ids, codes, count, shift)
    return count


@njit(cache=True, nogil=True)
def _renumber(vertex, number, start, stop) -> None:
    for i in range(start, stop):
        vertex[i] = number[vertex[i]]


@njit(cache=True, nogil=True)
def splat(values: np.ndarray, bary: np.ndarray, vertex: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
    """Adds the values (N, C) of points start..stop, times their weights (N, d + 1), into the rows of ``out`` of
    their corners' vertices (vertex[p·(d + 1) + s]). Two channels (two classes, the common case) are written out
    by hand: numba keeps the loop over them, which then costs more than the arithmetic."""
    dp1, c = bary.shape[1], values.shape[1]
    if c == 2:
        for p in range(start, stop):
            a, b = values[p, 0], values[p, 1]
            for s in range(dp1):
                v, w = vertex[p * dp1 + s], bary[p, s]
                out[v, 0] += w * a
                out[v, 1] += w * b
        return
    for p in range(start, stop):
        for s in range(dp1):
            v, w = vertex[p * dp1 + s], bary[p, s]
            for k in range(c):
                out[v, k] += w * values[p, k]


TAP_BITS = 4
"""Payload bits of a shifted code: its tap, −reach..reach."""


def shifted_keys(codes: np.ndarray, step: int, reach: int) -> np.ndarray:
    """Packed keys (code + e·step) << TAP_BITS | (e + reach) of every code and e = −reach..reach, in the
    order code-major."""
    keys = np.empty(codes.size * (2 * reach + 1), np.int64)
    _shifted_keys(codes, step, reach, keys)
    return keys


@njit(cache=True, nogil=True)
def _shifted_keys(codes: np.ndarray, step: int, reach: int, keys: np.ndarray) -> None:
    taps = 2 * reach + 1
    for i in range(codes.size):
        for t in range(taps):
            keys[i * taps + t] = (codes[i] + (t - reach) * step) << TAP_BITS | t


def recode(codes: np.ndarray, source: tuple[np.ndarray, np.ndarray], target: tuple[np.ndarray, np.ndarray],
           bits: int) -> np.ndarray:
    """Packed keys code' << bits | i of ``codes``, each converted from the bit fields ``source`` to ``target``
    (shifts and masks of the same coordinates, ``_Coder.fields``) and carrying its index i."""
    keys = _empty(codes.size)
    _recode(codes, source[0], target[0], source[1], bits, keys)
    return keys


@njit(cache=True, nogil=True)
def _recode(codes, source_shift, target_shift, mask, bits, keys) -> None:
    for i in range(codes.size):
        c, v = codes[i], np.int64(0)
        for f in range(mask.size):
            v |= ((c >> source_shift[f]) & mask[f]) << target_shift[f]
        keys[i] = v << bits | i


def dilate(keys: np.ndarray, bits: int, reach: int, listed: bool = True
           ) -> tuple[int, np.ndarray | None, np.ndarray, np.ndarray]:
    """One blur step outwards along the coder's stride-1 digit, from sorted keys code << bits | source index:
    the number of codes within ±reach of a source and those codes in order; and for each key in order, the
    position of its code among them and its source index. A digit's margins keep a step from carrying into the
    next digit, so this is one walk along the keys. With ``listed=False`` the codes are not written (None), where
    no later step needs them (``window`` finds them from the keys)."""
    size = keys.size * (2 * reach + 1)
    new, at = _empty(size if listed else 0), _empty(keys.size, index_type(size))
    runs = _dilate(keys, bits, reach, new, at, listed)
    return runs, new[:runs] if listed else None, at, (keys & ((1 << bits) - 1)).astype(index_type(keys.size))


@njit(cache=True, nogil=True)
def _dilate(keys, bits, reach, codes, at, write) -> int:
    r, after = 0, np.iinfo(np.int64).min
    for i in range(keys.size):
        c = keys[i] >> bits
        first = max(after, c - reach)
        if write:
            for x in range(first, c + reach + 1):
                codes[r + x - first] = x
        r += c + reach + 1 - first
        after = c + reach + 1
        at[i] = r - 1 - reach  # c + reach is at r − 1 and every code down to c is present
    return r


def line_blur(x: np.ndarray, at: np.ndarray, source: np.ndarray, taps: np.ndarray, reach: int, out: np.ndarray,
              beside: Callable) -> None:
    """The blur step of ``dilate``: every source x[source[i]] adds taps[e + reach] times itself to the vertex
    at[i] + e, e = −reach..reach. All of those are present and neighbours along the line, so no rows are
    stored. The sources are split in two where their reaches do not overlap, and the halves are done side by
    side (``beside(first, second)``); one after the other where no such place lies near the middle."""
    m = at.size
    split = _gap_near(at, m // 2, 2 * reach + 1)
    if split <= 0 or split >= m:
        _line_blur(x, at, source, taps, reach, out, 0, m)
        return
    beside(lambda: _line_blur(x, at, source, taps, reach, out, 0, split),
           lambda: _line_blur(x, at, source, taps, reach, out, split, m))


@njit(cache=True, nogil=True)
def _gap_near(at, middle, gap) -> int:
    """The i nearest ``middle`` (within a quarter of the sources) with at[i] − at[i − 1] ≥ gap, else −1."""
    for d in range(at.size // 4):
        for i in (middle - d, middle + d):
            if 0 < i < at.size and at[i] - at[i - 1] >= gap:
                return i
    return -1


@njit(cache=True, nogil=True)
def _line_blur(x, at, source, taps, reach, out, start, stop) -> None:
    channels = x.shape[1]
    if start < stop:
        out[at[start] - reach:at[stop - 1] + reach + 1] = 0
    if channels == 2:  # written out, as in ``splat``
        for i in range(start, stop):
            s, p = source[i], at[i] - reach
            a, b = x[s, 0], x[s, 1]
            for e in range(2 * reach + 1):
                w = taps[e]
                out[p + e, 0] += w * a
                out[p + e, 1] += w * b
        return
    for i in range(start, stop):
        s, p = source[i], at[i] - reach
        for e in range(2 * reach + 1):
            w = taps[e]
            for c in range(channels):
                out[p + e, c] += w * x[s, c]


@njit(cache=True, nogil=True)
def _next_key(keys, a, a_end, b, b_end) -> tuple[np.int64, int, int]:
    """The next key of the merge of the sorted keys[a:a_end] and keys[b:b_end] (one of them not exhausted), and
    the two positions after taking it."""
    if b == b_end or (a < a_end and keys[a] < keys[b]):
        return keys[a], a + 1, b
    return keys[b], a, b + 1


def gather_index(keys: np.ndarray, taps: int, split: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """From the sorted keys of ``shifted_keys``: the distinct shifted codes, and for source i and tap t, at
    i·taps + t, the index of its shifted code among them. The payload holds the tap alone: for one tap the
    shifted codes increase with i, so they come out of the sort in the order of i, and a counter per tap
    recovers it. With ``split``, keys[:split] and keys[split:] are sorted each on its own and merged here."""
    codes, inverse = _empty(keys.size), _empty(keys.size, index_type(keys.size))
    r = _gather_index(keys, keys.size if split is None else split, taps, codes, inverse)
    return codes[:r], inverse


@njit(cache=True, nogil=True)
def _gather_index(keys, split, taps, codes, inverse) -> int:
    mask = (np.int64(1) << TAP_BITS) - 1
    seen = np.zeros(taps, np.int64)
    r, prev = -1, np.int64(-1)
    i, j, n = 0, split, keys.size
    while i < split or j < n:
        if j == n or (i < split and keys[i] <= keys[j]):
            key = keys[i]
            i += 1
        else:
            key = keys[j]
            j += 1
        c = key >> TAP_BITS
        if c != prev:
            r += 1
            codes[r] = c
            prev = c
        t = key & mask
        inverse[seen[t] * taps + t] = r
        seen[t] += 1
    return r + 1


def corner_rows(keys: np.ndarray, split: int, bits: int, bary: np.ndarray, beside: Callable
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From the keys of ``corner_keys``, sorted in two parts (before and after ``split``, merged here), and the
    weights (N, d + 1): the occupied vertices' codes, the splat's rows (offsets with the total at the end,
    point index, weight) summing into each vertex the points that touch it, and for each corner p·(d + 1) + s
    the index of its vertex (the slice reads it).

    The merge runs as two pieces side by side (``beside(first, second)`` runs both): the codes below a pivot
    that halves the keys, and the rest. The second piece numbers its vertices after the first one's, so their
    count is found first, by a pass that only reads the keys."""
    m = keys.size
    index = index_type(m)
    codes, starts, point, weight, vertex = (_empty(m), _empty(m + 1, index), _empty(m, index), _empty(m, bary.dtype),
                                            _empty(m, index))
    low, high = _pieces(keys, split, bits)
    first_runs = _count_runs(keys, *low, bits)

    def piece(ranges: tuple[int, int, int, int], k: int, r: int) -> int:
        return _corner_rows(keys, *ranges, k, r, bits, pack_bits(bary.shape[1]), bary, codes, starts, point,
                            weight, vertex)

    runs, _ = beside(lambda: piece(high, low[1] + low[3] - split, first_runs), lambda: piece(low, 0, 0))
    starts[runs] = m
    return codes[:runs], starts[:runs + 1], point, weight, vertex


def _pieces(keys: np.ndarray, split: int, bits: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Two pieces of a merge of the sorted keys[:split] and keys[split:], each as its ranges (start and end in
    the first part, start and end in the second): the codes below a pivot that halves the keys, and the rest
    (all keys of one code go to the same piece)."""
    first, second = keys[:split], keys[split:]
    pivot = _middle_key(first, second) >> bits << bits
    a, b = int(np.searchsorted(first, pivot)), split + int(np.searchsorted(second, pivot))
    return (0, a, split, b), (a, split, b, keys.size)


@njit(cache=True, nogil=True)
def _middle_key(first: np.ndarray, second: np.ndarray) -> np.int64:
    """The key of rank ⌊m / 2⌋ among the m keys of two sorted arrays of distinct keys, by bisection over how
    many of the smaller keys come from the first array."""
    target = (first.size + second.size) // 2
    lo, hi = max(0, target - second.size), min(first.size, target)
    while lo < hi:
        i = (lo + hi) // 2
        if first[i] < second[target - i - 1]:  # first[i] is among the smaller keys: take more from first
            lo = i + 1
        else:
            hi = i
    j = target - lo
    if lo == first.size:
        return second[j]
    if j == second.size:
        return first[lo]
    return min(first[lo], second[j])


@njit(cache=True, nogil=True)
def _count_runs(keys, a, a_end, b, b_end, bits) -> int:
    """The number of distinct codes among keys[a:a_end] and keys[b:b_end] (both sorted)."""
    r, prev = 0, np.int64(-1)
    while a < a_end or b < b_end:
        key, a, b = _next_key(keys, a, a_end, b, b_end)
        if key >> bits != prev:
            r += 1
            prev = key >> bits
    return r


@njit(cache=True, nogil=True)
def _corner_rows(keys, a, a_end, b, b_end, k, r, bits, sbits, bary, codes, starts, point, weight, vertex) -> int:
    """Merges keys[a:a_end] and keys[b:b_end] into the rows from entry k and vertex r on; returns the vertex
    count after them."""
    dp1 = bary.shape[1]
    mask, smask = (np.int64(1) << bits) - 1, (np.int64(1) << sbits) - 1
    prev = np.int64(-1)
    r -= 1
    while a < a_end or b < b_end:
        key, a, b = _next_key(keys, a, a_end, b, b_end)
        c = key >> bits
        if c != prev:
            r += 1
            codes[r] = c
            starts[r] = k
            prev = c
        p, s = (key & mask) >> sbits, key & smask  # shifts: a division by d + 1 would cost more than the rest
        point[k] = p
        weight[k] = bary[p, s]
        vertex[p * dp1 + s] = r
        k += 1
    return r + 1


def window(keys: np.ndarray, bits: int, at: np.ndarray, codes: np.ndarray, step: int, reach: int, taps: np.ndarray,
           beside: Callable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows reading, for each of the sorted ``codes`` x, the vertices x + e·step (e = −reach..reach) of the last
    spread step's set, weighted by the tap of e. That set is not listed: its vertices are the codes within
    ±reach, along the coder's stride-1 digit, of the step's sorted source ``keys`` (code << bits | payload),
    and the one at c + δ is at position at[i] + δ for the source c = keys[i] >> bits (``dilate``). So the search
    runs over the sources, a few times fewer than the vertices. The two halves of the codes are done side by
    side (``beside(first, second)`` runs both); the second half's rows are then moved up behind the first's."""
    n, size = codes.size, codes.size * (2 * reach + 1)
    kind = index_type(size)
    offsets, index, weight = _empty(n + 1, kind), _empty(size, kind), _empty(size, taps.dtype)
    h = n // 2
    tail = size - h * (2 * reach + 1)
    rest = _empty(n - h + 1, kind), _empty(tail, kind), _empty(tail, taps.dtype)
    first, second = beside(lambda: _window(keys, bits, at, codes, 0, h, step, reach, taps, offsets, index, weight),
                           lambda: _window(keys, bits, at, codes, h, n, step, reach, taps, *rest))
    index[first:first + second] = rest[1][:second]
    weight[first:first + second] = rest[2][:second]
    offsets[h:] = rest[0] + first
    return offsets, index[:first + second], weight[:first + second]


@njit(cache=True, nogil=True)
def _window(keys, bits, at, codes, start, stop, step, reach, taps, offsets, index, weight) -> int:
    """The rows of codes[start:stop] (offsets from 0, with their total at the end): one pointer into the
    sources per tap, each moving forward only as x grows to the first source at or above x + e·step − reach,
    which covers x + e·step if it lies within reach of it."""
    m = keys.size
    ptr = np.empty(2 * reach + 1, np.int64)
    if stop > start:
        for t in range(2 * reach + 1):
            ptr[t] = np.searchsorted(keys, (codes[start] + (t - reach) * step - reach) << bits)
    k = 0
    for r in range(start, stop):
        offsets[r - start] = k
        for t in range(2 * reach + 1):
            want = codes[r] + (t - reach) * step
            i = ptr[t]
            while i < m and (keys[i] >> bits) < want - reach:
                i += 1
            ptr[t] = i
            if i < m and (keys[i] >> bits) <= want + reach:
                index[k] = at[i] + want - (keys[i] >> bits)
                weight[k] = taps[t]
                k += 1
    offsets[stop - start] = k
    return k

