"""Dense grid sampling, the baseline every exact count is compared with.

A sampler forwards points of the domain and keeps the distinct activation
patterns it sees; it can only miss regions (those no sample falls in), never
invent one. Patterns follow the PWANet convention (``AffineLayer.pattern_bits``
per hidden layer, packed little-endian into uint64 words), so they compare
directly with ``Partition.patterns``. Pure NumPy: nothing here compiles, and
only the public layer methods of :class:`~relugeo.PWANet` are used.
"""

from __future__ import annotations

import numpy as np

from ..nets.pwanet import PWANet
from ..regions.complexity import cross_polytope, frame
from ..regions.slices import Slice


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack boolean rows (N, H) into uint64 words (N, ceil(H / 64)), bit j in word j // 64."""
    n, h = bits.shape
    words = max(1, -(-h // 64))
    padded = np.zeros((n, words * 64), dtype=bool)
    padded[:, :h] = bits
    packed = np.packbits(padded, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64).reshape(n, words)


def pattern_set(patterns: np.ndarray) -> set[bytes]:
    """Packed patterns (R, words) as a set of row keys."""
    patterns = np.ascontiguousarray(patterns, dtype=np.uint64)
    return {row.tobytes() for row in patterns}


def _patterns_from_first(net: PWANet, z: np.ndarray) -> np.ndarray:
    """Packed patterns (N, words) of points whose first-layer pre-activations are ``z`` (N, n_out)."""
    hidden = net.hidden
    bits = [hidden[0].pattern_bits(z)]
    h = hidden[0].activate(z)
    for layer in hidden[1:]:
        z = layer.apply(h)
        bits.append(layer.pattern_bits(z))
        h = layer.activate(z)
    return pack_bits(np.concatenate(bits, axis=1))


def _first_on_slice(net: PWANet, origin: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layer 1 composed with ``x = origin + basis u``: ``z = u @ Wb.T + bb``, Wb (n_out, k), bb (n_out,)."""
    first = net.hidden[0]
    return first.linear(np.ascontiguousarray(basis.T)).T, first.apply(origin[None, :])[0]


def grid_points(sl: Slice, grid: int) -> np.ndarray:
    """Sample points (M, k) of a slice's domain, in slice coordinates.

    2-D: the centres of a ``grid x grid`` lattice over the domain's bounding
    box that lie in the (convex) domain. 1-D: the centres of ``grid`` equal
    cells of the segment.
    """
    lo, hi = sl.vertices.min(axis=0), sl.vertices.max(axis=0)
    if sl.dim == 1:
        return (lo[0] + (np.arange(grid) + 0.5) * (hi[0] - lo[0]) / grid)[:, None]
    ticks = [lo[d] + (np.arange(grid) + 0.5) * (hi[d] - lo[d]) / grid for d in range(2)]
    u = np.stack(np.meshgrid(ticks[0], ticks[1], indexing="xy"), axis=-1).reshape(-1, 2)
    # the convex domain as half-planes n . u <= c (counter-clockwise ring)
    v = sl.vertices
    e = np.roll(v, -1, axis=0) - v
    normals = np.stack([e[:, 1], -e[:, 0]], axis=1)
    limits = (normals * v).sum(axis=1) + 1e-12 * np.abs(v).max() * np.linalg.norm(normals, axis=1)
    return u[(u @ normals.T <= limits).all(axis=1)]


def grid_patterns(net: PWANet, sl: Slice, grid: int, chunk: int = 1 << 15) -> np.ndarray:
    """Distinct activation patterns at the grid points of a slice (``grid`` as in :func:`grid_points`).

    Points are forwarded in float64, ``chunk`` at a time, so memory stays
    bounded by ``chunk`` times the widest layer plus the distinct patterns
    found. The first layer is composed with the slice (``W1 (origin + basis u)
    + b1``), as any sampler of a slice would do.

    Returns
    -------
    ndarray of shape (R_grid, words), dtype=np.uint64
        The distinct packed patterns; ``R_grid`` is at most the region count.
    """
    if int(grid) < 1:
        raise ValueError(f"grid must be a positive integer; got {grid!r}")
    u = grid_points(sl, int(grid))
    w, b = _first_on_slice(net, sl.origin, sl.basis)
    found = [np.unique(_patterns_from_first(net, u[s:s + chunk] @ w.T + b), axis=0)
             for s in range(0, len(u), chunk)]
    return np.unique(np.concatenate(found), axis=0)


def lc_grid_regions(net: PWANet, X: np.ndarray, radius: float, dim: int, grid: int, *, seed: int = 0,
                    chunk: int = 1 << 15) -> np.ndarray:
    """Distinct patterns sampled in each point's neighbourhood: (N,) int64.

    The neighbourhood is the one of ``local_complexity(..., method="exact")``:
    the l1 ball of radius ``radius`` around ``x`` in the span of the first
    ``dim`` columns of ``frame(D, dim, seed)``, sampled as in :func:`grid_points`
    (a ``grid x grid`` lattice, or ``grid`` points on a segment). Each count is
    at most the exact ``regions`` there.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    V = frame(X.shape[1], dim, seed)
    u = grid_points(Slice(np.zeros(X.shape[1]), V, cross_polytope(dim, radius)), int(grid))
    w, _ = _first_on_slice(net, np.zeros(X.shape[1]), V)
    base, zu = net.hidden[0].apply(X), u @ w.T  # z = (W1 x + b1) + (W1 V) u
    per_chunk = max(1, chunk // len(u))
    counts = np.zeros(len(X), dtype=np.int64)
    for s in range(0, len(X), per_chunk):
        rows = base[s:s + per_chunk]
        z = (rows[:, None, :] + zu[None, :, :]).reshape(-1, zu.shape[1])
        pats = _patterns_from_first(net, z).reshape(len(rows), len(u), -1)
        for i, p in enumerate(pats):
            counts[s + i] = len(np.unique(p, axis=0))
    return counts

