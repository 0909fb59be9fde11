"""Kernels of ``Partition.verify``: one pass over a layer's pre-activations at the certificates.

CPU only: verification forwards the certificates with numpy and checks them
here, whatever device built the partition.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def check_two_slope_layer(z, bias, patterns, bit_start, slopes, margin, failed, ambiguous):
    """Add the bias, compare the signs with the packed patterns, and activate, row by row, in place.

    ``z`` (n, w) float64 holds ``x @ W.T`` of one two-slope layer at n
    certificates; on return it holds the layer's outputs (the next layer's
    inputs), so that one pass over the block does all three. ``bias`` (w,);
    ``patterns`` (n, words) uint64 the regions' packed patterns, whose bits
    ``bit_start .. bit_start + w - 1`` belong to this layer; ``slopes`` (w,).
    Neuron i's bit is ``z_i > 0`` (always 0 for a pass-through neuron, slope
    1). A mismatch at a neuron with ``|z_i| <= margin * max_j |z_j|`` is
    ambiguous (the certificate lies on that neuron's plane up to rounding),
    any other mismatch fails the row: ``failed[r]`` and ``ambiguous[r]`` are
    OR-ed in place.
    """
    n, w = z.shape
    for r in prange(n):
        scale = 1e-300
        for i in range(w):
            v = z[r, i] + bias[i]
            z[r, i] = v
            scale = max(scale, abs(v))
        scale *= margin
        for i in range(w):
            g = bit_start + i
            want = (patterns[r, g >> 6] >> np.uint64(g & 63)) & np.uint64(1)
            v = z[r, i]
            have = v > 0.0 and slopes[i] != 1.0
            if have != (want == np.uint64(1)):
                if abs(v) <= scale:
                    ambiguous[r] = True
                else:
                    failed[r] = True
            if not v > 0.0:
                z[r, i] = slopes[i] * v


@njit(cache=True, nogil=True)
def eval_group_maps(u, group, maps, out):
    """Each certificate's value under its group's affine map: ``out[r] = maps[g, k] + u[r] @ maps[g, :k]``
    with ``g = group[r]``.

    ``u`` (n, k) slice coordinates, ``group`` (n,) int64, ``maps`` (G, k + 1,
    m) float64 (the constant row last), ``out`` (n, m) written.
    """
    n, k = u.shape
    m = maps.shape[2]
    for r in range(n):
        g = group[r]
        for o in range(m):
            v = maps[g, k, o]
            for c in range(k):
                v += u[r, c] * maps[g, c, o]
            out[r, o] = v


@njit(cache=True, nogil=True)
def _sweep_overlaps(order, starts, forward, lo, hi, tol, out_e, out_f, out_lo, out_hi, fill):
    """The overlaps of :func:`edge_overlaps`: counted when ``fill`` is False, written when True."""
    n_out = 0
    n = order.shape[0]
    plus = np.empty(n, dtype=np.int64)
    minus = np.empty(n, dtype=np.int64)
    for g in range(starts.shape[0] - 1):
        n_plus = 0
        n_minus = 0
        for q in range(starts[g], starts[g + 1]):
            e = order[q]
            if forward[e]:
                plus[n_plus] = e
                n_plus += 1
            else:
                minus[n_minus] = e
                n_minus += 1
        j = 0
        for p in range(n_plus):
            e = plus[p]
            while j < n_minus and hi[minus[j]] <= lo[e] + tol:
                j += 1
            k = j
            while k < n_minus and lo[minus[k]] < hi[e] - tol:
                f = minus[k]
                m0 = max(lo[e], lo[f])
                m1 = min(hi[e], hi[f])
                if m1 - m0 > tol:
                    if fill:
                        out_e[n_out] = e
                        out_f[n_out] = f
                        out_lo[n_out] = m0
                        out_hi[n_out] = m1
                    n_out += 1
                k += 1
    return n_out


def edge_overlaps(order: np.ndarray, starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, forward: np.ndarray,
                  tol: float):
    """Pairs of edges on one line that overlap from opposite sides.

    Edges in the ``order, starts`` of :func:`key_order` (by line, then by ``lo``); ``lo <= hi`` (n,)
    float64 are each edge's ends along its line and ``forward`` (n,) bool its
    direction (the side its region lies on). Returns ``(e, f, m0, m1)``: for
    every pair of a forward edge ``e`` and a backward edge ``f`` of one line
    that share more than ``tol`` of it, their indices (int64) and the shared
    piece ``[m0, m1]`` (float64).
    """
    args = (order, starts, np.ascontiguousarray(forward, dtype=np.bool_),
            np.ascontiguousarray(lo, dtype=np.float64), np.ascontiguousarray(hi, dtype=np.float64), float(tol))
    n = _sweep_overlaps(*args, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0), False)
    e, f, m0, m1 = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n), np.empty(n)
    _sweep_overlaps(*args, e, f, m0, m1, True)
    return e, f, m0, m1


@njit(cache=True, nogil=True)
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def _cluster_sorted(x, y, order, tol):
    """Union-find over points ``order``-sorted by x: two within ``tol`` (Euclidean) join."""
    n = x.shape[0]
    parent = np.arange(n)
    t2 = tol * tol
    for p in range(n):
        i = order[p]
        for q in range(p + 1, n):
            j = order[q]
            if x[j] - x[i] > tol:
                break
            dx = x[j] - x[i]
            dy = y[j] - y[i]
            if dx * dx + dy * dy <= t2:
                ri = _root(parent, i)
                rj = _root(parent, j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    label = np.empty(n, dtype=np.int64)
    for i in range(n):
        label[i] = _root(parent, i)
    return label


def point_clusters(points: np.ndarray, tol: float) -> np.ndarray:
    """Points (n, 2) within ``tol`` of each other, transitively, as one: the smallest index of
    each point's cluster (n,) int64."""
    x = np.ascontiguousarray(points[:, 0], dtype=np.float64)
    y = np.ascontiguousarray(points[:, 1], dtype=np.float64)
    return _cluster_sorted(x, y, np.argsort(x, kind="stable"), float(tol))


@njit(cache=True, nogil=True)
def _last_at_or_before(keys, n, x):
    """The index of the last of ``keys[:n]`` (ascending) that is <= x, or -1."""
    a = 0
    b = n
    while a < b:
        m = (a + b) // 2
        if keys[m] <= x:
            a = m + 1
        else:
            b = m
    return a - 1


@njit(cache=True, nogil=True)
def _through_hits(order, starts, forward, lo, hi, ca, cb, rx, ry, dx, dy, tol):
    n = order.shape[0]
    out_c = np.empty(4 * n + 1, dtype=np.int64)
    out_e = np.empty(4 * n + 1, dtype=np.int64)
    n_out = 0
    ends = np.empty(2 * n + 1, dtype=np.int64)
    side_e = np.empty((2, n + 1), dtype=np.int64)
    side_lo = np.empty((2, n + 1))
    for g in range(starts.shape[0] - 1):
        if starts[g] == starts[g + 1]:
            continue
        m = 0
        counts = np.zeros(2, dtype=np.int64)
        for q in range(starts[g], starts[g + 1]):
            e = order[q]
            ends[m] = ca[e]
            ends[m + 1] = cb[e]
            m += 2
            s = 1 if forward[e] else 0
            side_e[s, counts[s]] = e
            side_lo[s, counts[s]] = lo[e]
            counts[s] += 1
        cl = np.sort(ends[:m])
        e0 = order[starts[g]]
        for i in range(m):
            if i > 0 and cl[i] == cl[i - 1]:
                continue
            c = cl[i]
            at = rx[c] * dx[e0] + ry[c] * dy[e0]
            for s in range(2):
                j = _last_at_or_before(side_lo[s], counts[s], at - tol)
                if j >= 0 and hi[side_e[s, j]] > at + tol:
                    out_c[n_out] = c
                    out_e[n_out] = side_e[s, j]
                    n_out += 1
    return out_c[:n_out], out_e[:n_out]


def through_hits(order: np.ndarray, starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, forward: np.ndarray,
                 end_a: np.ndarray, end_b: np.ndarray, points: np.ndarray, direction: np.ndarray, tol: float):
    """Edges that pass through a point at which another edge of their line ends.

    Edges as in :func:`edge_overlaps`, with the point labels of their two ends
    ``end_a, end_b`` (n,) int64 into ``points`` (P, 2) and their line's
    ``direction`` (n, 2). For every point that ends some edge of a line, each
    side's edge of that line whose span holds the point's position by more
    than ``tol`` on both ends (per line and side the edges do not overlap).
    Returns ``(point, edge)`` int64 arrays.
    """
    f64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)
    return _through_hits(order, starts, np.ascontiguousarray(forward, dtype=np.bool_), f64(lo), f64(hi),
                         np.ascontiguousarray(end_a, dtype=np.int64), np.ascontiguousarray(end_b, dtype=np.int64),
                         f64(points[:, 0]), f64(points[:, 1]), f64(direction[:, 0]), f64(direction[:, 1]),
                         float(tol))


@njit(cache=True, nogil=True)
def differ_in_only(patterns, left, right, bit):
    """Whether rows ``left[i]`` and ``right[i]`` of ``patterns`` (R, words) uint64 differ in
    exactly the one bit ``bit[i]`` (False where ``bit[i] < 0``): (n,) bool."""
    n = left.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        g = bit[i]
        if g < 0:
            continue
        ok = True
        for w in range(patterns.shape[1]):
            x = patterns[left[i], w] ^ patterns[right[i], w]
            want = np.uint64(1) << np.uint64(g & 63) if w == (g >> 6) else np.uint64(0)
            if x != want:
                ok = False
                break
        out[i] = ok
    return out


@njit(cache=True, nogil=True)
def longest_of_group(group, length, n_groups):
    """The index of the longest edge of each group (the last of equal ones): (n_groups,) int64."""
    best = np.full(n_groups, -1, dtype=np.int64)
    for e in range(group.shape[0]):
        g = group[e]
        if best[g] < 0 or length[e] >= length[best[g]]:
            best[g] = e
    return best


@njit(cache=True, nogil=True)
def _counting_sort(key, by_val, n_keys):
    count = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(key.shape[0]):
        count[key[i] + 1] += 1
    for k in range(n_keys):
        count[k + 1] += count[k]
    starts = count.copy()
    out = np.empty(key.shape[0], dtype=np.int64)
    for q in range(by_val.shape[0]):
        i = by_val[q]
        out[count[key[i]]] = i
        count[key[i]] += 1
    return out, starts


def key_order(key: np.ndarray, vals: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.lexsort((vals, key))`` for integer keys in ``0 .. n_keys - 1``, and where each key's run
    starts in it (n_keys + 1,) int64: a stable sort by ``vals``, then a counting sort by key."""
    by_val = np.argsort(vals, kind="stable").astype(np.int64)
    return _counting_sort(np.ascontiguousarray(key, dtype=np.int64), by_val, int(n_keys))


@njit(cache=True, nogil=True)
def relabel_roots(label):
    """Union-find roots (each the smallest index of its cluster) as ids 0, 1, ... in order of
    that index: the id of each point (n,) and the root of each id (n_ids,), int64."""
    n = label.shape[0]
    ids = np.empty(n, dtype=np.int64)
    roots = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        if label[i] == i:
            ids[i] = m
            roots[m] = i
            m += 1
    for i in range(n):
        ids[i] = ids[label[i]]
    return ids, roots[:m]
