"""A slow, deliberately simple oracle for the activation regions of an MLP on a slice.

It shares no code with relugeo (numpy only) and favours clarity over speed, so
the partition engine can be held to it on small nets.

A network is a list of ``(W, b, negative_slope)`` tuples in float64, ``W`` of
shape (n_out, n_in). Every tuple but the last has a float ``negative_slope``
(0.0 for ReLU, alpha for leaky ReLU); the last has ``None`` (the logits).
A slice is ``origin`` (D,), ``basis`` (D, k) and ``vertices`` (m, k): a convex
polygon for k = 2 or a segment ``[[t0], [t1]]`` for k = 1. A point ``u`` of the
slice is the input ``x = origin + basis @ u``.

Method (2-D; 1-D is the same with intervals). A *cell* is a convex polygon on
which the activation pattern of every layer before layer ``l`` is fixed. With
the activation masks of those layers held fixed, layer ``l``'s pre-activations
are an affine function of ``u``; the oracle reads it off by forwarding three
points (the cell's centroid ``c``, ``c + h e1``, ``c + h e2``, h = max(1, domain
diameter)) through the network with the masks fixed. Each neuron whose zero
line crosses the interior of a piece splits it (Sutherland-Hodgman clipping
of a convex polygon by a halfplane), neuron after neuron. Each final piece gets
layer ``l``'s bits from the signs ``z > 0`` at its centroid and is refined by
the next layer.

Tolerance rules:
- a line crosses a piece only when some vertex has signed distance
  > 1e-9 * D and another < -1e-9 * D (D = the domain's diameter);
- a piece of area (length) < 1e-14 times the domain's area (length) is dropped;
- a neuron with a zero gradient on the slice never splits anything.
"""

from __future__ import annotations

import numpy as np

DIST_RTOL = 1e-9
AREA_RTOL = 1e-14
GRID_SHIFT = (np.sqrt(2.0) - 1.0, (np.sqrt(5.0) - 1.0) / 2.0)


# -- the network -----------------------------------------------------------------------


def forward_fixed(layers, masks, x):
    """Pre-activations of layer ``len(masks)`` at inputs ``x`` (N, D).

    The activation of every earlier layer ``i`` is held fixed: neuron ``j`` of
    layer ``i`` passes ``z`` when ``masks[i][j]`` is true and ``slope * z``
    otherwise, whatever the sign of ``z`` at ``x``.
    """
    h = np.atleast_2d(np.asarray(x, dtype=np.float64))
    for (W, b, slope), mask in zip(layers, masks):
        z = h @ W.T + b
        h = np.where(mask, z, slope * z)
    W, b, _ = layers[len(masks)]
    return h @ W.T + b


def hidden_patterns(layers, x):
    """The true activation patterns ``z > 0`` of every hidden neuron at inputs ``x`` (N, D)."""
    h = np.atleast_2d(np.asarray(x, dtype=np.float64))
    bits = []
    for W, b, slope in layers[:-1]:
        z = h @ W.T + b
        bits.append(z > 0)
        h = np.where(z > 0, z, slope * z)
    if not bits:
        return np.zeros((h.shape[0], 0), dtype=np.int8)
    return np.concatenate(bits, axis=1).astype(np.int8)


def _pattern_tuple(masks):
    return tuple(int(v) for mask in masks for v in mask)


# -- plane geometry --------------------------------------------------------------------


def polygon_area(poly):
    """Area of a polygon (m, 2), positive when counter-clockwise (shoelace about vertex 0)."""
    p = poly - poly[0]
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def polygon_centroid(poly):
    """Centroid of a polygon with non-zero area (m, 2)."""
    p = poly - poly[0]
    x, y = p[:, 0], p[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = 0.5 * cross.sum()
    cx = ((x + xn) * cross).sum() / (6.0 * a)
    cy = ((y + yn) * cross).sum() / (6.0 * a)
    return poly[0] + np.array([cx, cy])


def counter_clockwise(vertices):
    v = np.asarray(vertices, dtype=np.float64)
    return v if polygon_area(v) > 0 else v[::-1].copy()


def diameter(points):
    p = np.asarray(points, dtype=np.float64)
    return float(np.max(np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)))


def clip_halfplane(poly, d):
    """Sutherland-Hodgman: the part of convex ``poly`` (m, 2) where the affine function with
    vertex values ``d`` (m,) is >= 0."""
    out = []
    m = len(poly)
    for i in range(m):
        p, q = poly[i], poly[(i + 1) % m]
        dp, dq = d[i], d[(i + 1) % m]
        if dp >= 0:
            out.append(p)
        if (dp > 0 and dq < 0) or (dp < 0 and dq > 0):
            t = dp / (dp - dq)
            out.append(p + t * (q - p))
    return np.array(out).reshape(-1, 2)


def _affine_on_slice(layers, masks, origin, basis, centre, step):
    """Layer ``len(masks)``'s pre-activations near ``centre`` as ``z(u) = z0 + G @ (u - centre)``."""
    k = basis.shape[1]
    u = np.vstack([centre, centre + step * np.eye(k)])
    z = forward_fixed(layers, masks, origin + u @ basis.T)
    z0 = z[0]
    G = ((z[1:] - z0) / step).T  # (n, k)
    return z0, G


# -- the oracle ------------------------------------------------------------------------


def oracle_partition_2d(layers, origin, basis, vertices):
    """Every activation region of a 2-D slice's convex polygon.

    Returns a list of ``(pattern, area, point)``: ``pattern`` a tuple of 0/1
    over all hidden neurons (layer by layer), ``area`` in slice units, ``point``
    (2,) the region's centroid.
    """
    origin = np.asarray(origin, dtype=np.float64)
    basis = np.asarray(basis, dtype=np.float64).reshape(origin.shape[0], 2)
    domain = counter_clockwise(vertices)
    diam = diameter(domain)
    dist_tol = DIST_RTOL * diam
    area_tol = AREA_RTOL * polygon_area(domain)
    step = max(1.0, diam)
    n_hidden = len(layers) - 1
    regions = []

    def refine(cell, masks):
        if len(masks) == n_hidden:
            regions.append((_pattern_tuple(masks), polygon_area(cell), polygon_centroid(cell)))
            return
        c = polygon_centroid(cell)
        z0, G = _affine_on_slice(layers, masks, origin, basis, c, step)
        pieces = [cell]
        for j in range(len(z0)):
            norm = float(np.hypot(G[j, 0], G[j, 1]))
            if norm == 0.0:
                continue
            split = []
            for piece in pieces:
                d = (z0[j] + (piece - c) @ G[j]) / norm
                if d.max() > dist_tol and d.min() < -dist_tol:
                    for side in (1.0, -1.0):
                        half = clip_halfplane(piece, side * d)
                        if len(half) >= 3 and polygon_area(half) >= area_tol:
                            split.append(half)
                else:
                    split.append(piece)
            pieces = split
        for piece in pieces:
            point = polygon_centroid(piece)
            z = forward_fixed(layers, masks, origin + basis @ point)[0]
            refine(piece, masks + [z > 0])

    refine(domain, [])
    return regions


def oracle_partition_1d(layers, origin, basis, t0, t1):
    """Every activation region of the segment ``u in [t0, t1]`` of a 1-D slice.

    Returns a list of ``(pattern, length, point)`` with ``point`` of shape (1,).
    """
    origin = np.asarray(origin, dtype=np.float64)
    basis = np.asarray(basis, dtype=np.float64).reshape(origin.shape[0], 1)
    t0, t1 = sorted((float(t0), float(t1)))
    length = t1 - t0
    dist_tol = DIST_RTOL * length
    len_tol = AREA_RTOL * length
    step = max(1.0, length)
    n_hidden = len(layers) - 1
    regions = []

    def refine(a, b, masks):
        if len(masks) == n_hidden:
            regions.append((_pattern_tuple(masks), b - a, np.array([0.5 * (a + b)])))
            return
        c = 0.5 * (a + b)
        z0, G = _affine_on_slice(layers, masks, origin, basis, np.array([c]), step)
        pieces = [(a, b)]
        for j in range(len(z0)):
            g = float(G[j, 0])
            if g == 0.0:
                continue
            split = []
            for lo, hi in pieces:
                d_lo = (z0[j] + g * (lo - c)) / abs(g)
                d_hi = (z0[j] + g * (hi - c)) / abs(g)
                if max(d_lo, d_hi) > dist_tol and min(d_lo, d_hi) < -dist_tol:
                    root = lo + (hi - lo) * d_lo / (d_lo - d_hi)
                    for piece in ((lo, root), (root, hi)):
                        if piece[1] - piece[0] >= len_tol:
                            split.append(piece)
                else:
                    split.append((lo, hi))
            pieces = split
        for lo, hi in pieces:
            z = forward_fixed(layers, masks, origin + basis[:, 0] * (0.5 * (lo + hi)))[0]
            refine(lo, hi, masks + [z > 0])

    refine(t0, t1, [])
    return regions


# -- sampling and the closed form ------------------------------------------------------


def _inside(domain, points, margin):
    """Points (N, 2) whose distance inside every edge of the ccw convex ``domain`` exceeds ``margin``."""
    keep = np.ones(len(points), dtype=bool)
    m = len(domain)
    for i in range(m):
        p, q = domain[i], domain[(i + 1) % m]
        e = q - p
        normal = np.array([-e[1], e[0]]) / np.hypot(e[0], e[1])  # points inward for ccw
        keep &= (points - p) @ normal > margin
    return keep


def sample_points(vertices, n_per_side):
    """Slice coordinates of a grid strictly inside the domain.

    2-D: one point in each cell of an ``n_per_side`` x ``n_per_side`` grid over
    the bounding box, kept where strictly inside the polygon. 1-D: one point in
    each of ``n_per_side`` equal intervals. The point sits at the irrational
    offset ``GRID_SHIFT`` inside its cell, so that hyperplanes with simple
    rational coefficients do not pass exactly through grid points (a point on a
    hyperplane shows the pattern of a lower-dimensional face, not a region).
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.shape[1] == 1:
        t0, t1 = sorted(v[:, 0])
        return (t0 + (np.arange(n_per_side) + GRID_SHIFT[0]) * (t1 - t0) / n_per_side)[:, None]
    domain = counter_clockwise(v)
    lo, hi = domain.min(axis=0), domain.max(axis=0)
    sx = (np.arange(n_per_side) + GRID_SHIFT[0]) / n_per_side
    sy = (np.arange(n_per_side) + GRID_SHIFT[1]) / n_per_side
    gx, gy = np.meshgrid(lo[0] + sx * (hi[0] - lo[0]), lo[1] + sy * (hi[1] - lo[1]))
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return points[_inside(domain, points, DIST_RTOL * diameter(domain))]


def sample_patterns(layers, origin, basis, vertices, n_per_side):
    """The set of distinct activation patterns (tuples of 0/1) at a dense grid of the domain."""
    origin = np.asarray(origin, dtype=np.float64)
    basis = np.asarray(basis, dtype=np.float64).reshape(origin.shape[0], -1)
    u = sample_points(vertices, n_per_side)
    bits = hidden_patterns(layers, origin + u @ basis.T)
    first = {row.tobytes(): i for i, row in reversed(list(enumerate(np.packbits(bits, axis=1))))}
    return {tuple(int(v) for v in bits[i]) for i in first.values()}


def arrangement_count(W1, b1, origin, basis, vertices):
    """Regions of ONE layer of hyperplanes on the domain, in closed form.

    2-D: 1 + (lines crossing the interior) + (pairwise intersection points
    strictly inside). 1-D: 1 + (breakpoints strictly inside). Assumes general
    position (no parallel or duplicate lines, no three through a point).
    """
    W1 = np.asarray(W1, dtype=np.float64)
    b1 = np.asarray(b1, dtype=np.float64)
    origin = np.asarray(origin, dtype=np.float64)
    basis = np.asarray(basis, dtype=np.float64).reshape(origin.shape[0], -1)
    v = np.asarray(vertices, dtype=np.float64)
    G = W1 @ basis  # (n, k): z(u) = G @ u + c
    c = W1 @ origin + b1
    if basis.shape[1] == 1:
        t0, t1 = sorted(v[:, 0])
        tol = DIST_RTOL * (t1 - t0)
        inside = [
            g != 0 and t0 + tol < -cj / g < t1 - tol for g, cj in zip(G[:, 0], c)
        ]
        return 1 + int(sum(inside))
    domain = counter_clockwise(v)
    tol = DIST_RTOL * diameter(domain)
    crossing = []
    for j in range(len(c)):
        norm = np.hypot(G[j, 0], G[j, 1])
        if norm == 0:
            continue
        d = (domain @ G[j] + c[j]) / norm
        if d.max() > tol and d.min() < -tol:
            crossing.append(j)
    points = 0
    for a in range(len(crossing)):
        for b in range(a + 1, len(crossing)):
            i, j = crossing[a], crossing[b]
            A = G[[i, j]]
            if abs(np.linalg.det(A)) <= 1e-14 * np.prod(np.linalg.norm(A, axis=1)):
                continue  # parallel: no intersection point
            p = np.linalg.solve(A, -c[[i, j]])
            points += int(_inside(domain, p[None, :], tol)[0])
    return 1 + len(crossing) + points
