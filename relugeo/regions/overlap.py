"""Shared areas of the convex rings of two 2-D partitions, vectorised over ring pairs.

Candidate pairs come from a uniform grid over the domain: every ring's
bounding box is entered in the grid cells it covers, and a pair is reported
once, in the cell holding the lower-left corner of the two boxes' overlap.
Each candidate's shared area is then exact polygon clipping
(Sutherland-Hodgman): ring ``a`` is clipped by the half-planes of ring
``b``'s edges, all pairs one edge at a time, and pairs leave the batch as
soon as they are done.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_pairs", "clip_areas", "ring_boxes"]


def ring_next(off: np.ndarray) -> np.ndarray:
    """Index of the next vertex around each ring of the CSR offsets ``off`` (no ring may be empty)."""
    nxt = np.arange(1, int(off[-1]) + 1)
    nxt[off[1:] - 1] = off[:-1]
    return nxt


def ring_boxes(vertices: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left and upper-right corners of each ring's bounding box, each (R, 2) float64."""
    if len(off) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return np.minimum.reduceat(vertices, off[:-1], axis=0), np.maximum.reduceat(vertices, off[:-1], axis=0)


def _cells(lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, h: float, n: int):
    """The grid cells each box covers: (box, cell id) pairs, each (K,) int64."""
    c0 = np.clip(np.floor((lo - origin) / h).astype(np.int64), 0, n - 1)
    c1 = np.clip(np.floor((hi - origin) / h).astype(np.int64), 0, n - 1)
    nx, ny = c1[:, 0] - c0[:, 0] + 1, c1[:, 1] - c0[:, 1] + 1
    k = nx * ny
    box = np.repeat(np.arange(len(lo)), k)
    rank = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    cx = c0[box, 0] + rank % nx[box]
    cy = c0[box, 1] + rank // nx[box]
    return box, cy * n + cx


def box_pairs(lo_a, hi_a, lo_b, hi_b) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of overlapping boxes (closed), each reported once: (a, b) int64 arrays."""
    if len(lo_a) == 0 or len(lo_b) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    origin = np.minimum(lo_a.min(axis=0), lo_b.min(axis=0))
    span = float(np.max(np.maximum(hi_a.max(axis=0), hi_b.max(axis=0)) - origin))
    n = int(np.clip(np.sqrt(max(len(lo_a), len(lo_b))), 1, 4096))
    h = span / n if span > 0 else 1.0
    box_a, cell_a = _cells(lo_a, hi_a, origin, h, n)
    box_b, cell_b = _cells(lo_b, hi_b, origin, h, n)
    order = np.argsort(cell_b, kind="stable")
    box_b, cell_b = box_b[order], cell_b[order]
    first = np.searchsorted(cell_b, cell_a, side="left")
    count = np.searchsorted(cell_b, cell_a, side="right") - first
    ia = np.repeat(box_a, count)
    cell = np.repeat(cell_a, count)
    ib = box_b[np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))]
    # the boxes overlap, and this cell holds the lower-left corner of their overlap
    keep = np.ones(len(ia), dtype=bool)
    corner = np.zeros(len(ia), dtype=np.int64)
    for axis, stride in ((0, 1), (1, n)):
        la, lb = lo_a[:, axis][ia], lo_b[:, axis][ib]
        lo = np.maximum(la, lb)
        keep &= lo <= np.minimum(hi_a[:, axis][ia], hi_b[:, axis][ib])
        corner += stride * np.clip(((lo - origin[axis]) / h).astype(np.int64), 0, n - 1)
    keep &= corner == cell
    return ia[keep], ib[keep]


def clip_areas(va: np.ndarray, off_a: np.ndarray, vb: np.ndarray, off_b: np.ndarray, ia: np.ndarray,
               ib: np.ndarray) -> np.ndarray:
    """Area of ring ``ia[p]`` of ``(va, off_a)`` intersected with ring ``ib[p]`` of ``(vb, off_b)``.

    Rings are convex and counter-clockwise, in CSR form (vertices (V, 2)
    float64, offsets (R + 1,) int64). Returns (P,) float64.
    """
    P = len(ia)
    out = np.zeros(P)
    if P == 0:
        return out
    na = np.diff(off_a)[ia]
    off = np.r_[0, np.cumsum(na)]
    src = np.arange(off[-1]) + np.repeat(off_a[ia] - off[:-1], na)
    x, y = va[src, 0], va[src, 1]
    alive = np.arange(P)
    nb = np.diff(off_b)[ib]
    # each edge of b as a line: inside (left of a counter-clockwise edge) where ca x + cb y + cc >= 0
    nxt_b = ring_next(off_b)
    ca = vb[:, 1] - vb[nxt_b, 1]
    cb = vb[nxt_b, 0] - vb[:, 0]
    cc = -(ca * vb[:, 0] + cb * vb[:, 1])
    j = 0
    while len(alive):
        per = np.diff(off)
        q = np.repeat(off_b[ib[alive]] + j, per)
        d = ca[q] * x + cb[q] * y + cc[q]
        inside = d >= 0
        nxt = ring_next(off)
        dn = d[nxt]
        cross = inside != (dn >= 0)
        count = inside.astype(np.int64) + cross
        end = np.cumsum(count)
        at = end - count
        nx, ny = np.empty(end[-1]), np.empty(end[-1])
        keep = np.flatnonzero(inside)
        nx[at[keep]], ny[at[keep]] = x[keep], y[keep]
        cut = np.flatnonzero(cross)
        t = d[cut] / (d[cut] - dn[cut])
        ac = at[cut] + inside[cut]
        nx[ac] = x[cut] + t * (x[nxt[cut]] - x[cut])
        ny[ac] = y[cut] + t * (y[nxt[cut]] - y[cut])
        off = np.r_[0, end[off[1:] - 1]]
        x, y = nx, ny
        j += 1
        per = np.diff(off)
        done = (nb[alive] <= j) | (per == 0)
        if done.any():
            fin = np.flatnonzero(done & (per > 0))
            if len(fin):
                idx = np.repeat(off[fin] - np.r_[0, np.cumsum(per[fin])][:-1], per[fin]) + np.arange(per[fin].sum())
                fx, fy = x[idx], y[idx]
                f_off = np.r_[0, np.cumsum(per[fin])]
                f_nxt = ring_next(f_off)
                cross2 = fx * fy[f_nxt] - fx[f_nxt] * fy
                out[alive[fin]] = 0.5 * np.add.reduceat(cross2, f_off[:-1])
            stay = np.flatnonzero(~done)
            idx = np.repeat(off[stay] - np.r_[0, np.cumsum(per[stay])][:-1], per[stay]) + np.arange(per[stay].sum())
            x, y = x[idx], y[idx]
            alive = alive[stay]
            off = np.r_[0, np.cumsum(per[stay])]
    return out
