"""A slow, deliberately simple oracle for the activation regions of an MLP on a slice.

It shares no code with relugeo (numpy only) and favours clarity over speed, so
the partition engine can be held to it on small nets.

A network is a list of ``(W, b, act)`` tuples in float64, ``W`` of shape
(n_out, n_in). Every tuple but the last has an activation ``act``:

- a float or an array (n_out,) of negative slopes (0.0 for ReLU, alpha for
  leaky ReLU); a slope of exactly 1 is a linear neuron, which splits nothing
  and whose pattern bit is always 0;
- ``("max", windows, keep)``: the outputs are the maximum of ``z`` over each
  row of ``windows`` (n_windows, m) (entries -1 are padding), then ``z[keep]``.
  Its pattern is one bit per (window, slot), set for the winning slot; equal
  candidates go to the lowest slot.

The last tuple has ``act = None`` (the logits).
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

A max layer splits a cell window by window: the part where slot ``s`` wins
is the cell clipped by ``z_s - z_t >= 0`` for every other slot ``t``.

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


def is_max(act):
    return isinstance(act, tuple) and act[0] == "max"


def _apply(act, z, mask):
    """A layer's outputs (N, n_act) from pre-activations ``z`` (N, n) with its mask held fixed.

    ``mask`` is the bool array ``z > 0`` of a two-slope layer, or the winning
    slot of every window of a max layer.
    """
    if is_max(act):
        _, windows, keep = act
        chosen = [windows[w, s] for w, s in enumerate(mask)] + list(keep)
        return z[:, chosen]
    return np.where(mask, z, np.asarray(act, dtype=np.float64) * z)


def _mask_at(act, z):
    """The mask of one point's pre-activations ``z`` (n,): signs, or each window's winning slot."""
    if is_max(act):
        _, windows, _ = act
        vals = np.where(windows >= 0, z[np.maximum(windows, 0)], -np.inf)
        return vals.argmax(axis=1)
    return z > 0


def forward_fixed(layers, masks, x):
    """Pre-activations of layer ``len(masks)`` at inputs ``x`` (N, D).

    The activation of every earlier layer ``i`` is held fixed: neuron ``j`` of
    a two-slope layer ``i`` passes ``z`` when ``masks[i][j]`` is true and
    ``slope * z`` otherwise, whatever the sign of ``z`` at ``x``; a max layer
    takes the slots ``masks[i]``, whatever the maxima at ``x``.
    """
    h = np.atleast_2d(np.asarray(x, dtype=np.float64))
    for (W, b, act), mask in zip(layers, masks):
        h = _apply(act, h @ W.T + b, mask)
    W, b, _ = layers[len(masks)]
    return h @ W.T + b


def _bits(act, mask):
    """Pattern bits of one layer from its mask."""
    if is_max(act):
        _, windows, _ = act
        return [int(s == win) for win in mask for s in range(windows.shape[1])]
    linear = np.broadcast_to(np.asarray(act, dtype=np.float64) == 1.0, np.shape(mask))
    return [int(v and not lin) for v, lin in zip(mask, linear)]


def hidden_patterns(layers, x):
    """The true activation patterns of every hidden layer at inputs ``x`` (N, D), int8 0/1."""
    rows = []
    for point in np.atleast_2d(np.asarray(x, dtype=np.float64)):
        h = point[None, :]
        bits = []
        for W, b, act in layers[:-1]:
            z = h @ W.T + b
            mask = _mask_at(act, z[0])
            bits += _bits(act, mask)
            h = _apply(act, z, mask)
        rows.append(bits)
    return np.array(rows, dtype=np.int8).reshape(len(rows), -1)


def _pattern_tuple(layers, masks):
    return tuple(v for (_, _, act), mask in zip(layers, masks) for v in _bits(act, mask))


def _linear(act, n):
    """Which of a two-slope layer's ``n`` neurons are linear (slope exactly 1)."""
    return np.broadcast_to(np.asarray(act, dtype=np.float64), (n,)) == 1.0


def _winner_piece(piece, d_of, windows, w, s, dist_tol, keep_piece):
    """The part of ``piece`` where slot ``s`` of window ``w`` wins, or None.

    ``d_of(i, j, piece)`` gives the signed distances of the piece's vertices to
    the tie line of neurons i, j (positive where z_i > z_j), or, when
    ``z_i - z_j`` is constant on the slice, that constant (0 when the two are
    equal to rounding).
    """
    i = windows[w, s]
    for t in range(windows.shape[1]):
        j = windows[w, t]
        if t == s or j < 0:
            continue
        d, flat, const = d_of(i, j, piece)
        if flat:
            if const < 0 or (const == 0 and t < s):
                return None
            continue
        if d.max() > dist_tol and d.min() < -dist_tol:
            piece = keep_piece(piece, d)
            if piece is None:
                return None
        elif d.min() < -dist_tol:
            return None
        elif d.max() <= dist_tol and t < s:
            return None  # z_i = z_j on the whole piece: the lower slot wins
    return piece


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
            regions.append((_pattern_tuple(layers, masks), polygon_area(cell), polygon_centroid(cell)))
            return
        c = polygon_centroid(cell)
        z0, G = _affine_on_slice(layers, masks, origin, basis, c, step)
        act = layers[len(masks)][2]
        if is_max(act):
            for piece, win in _split_max_2d(cell, c, z0, G, act[1], dist_tol, area_tol):
                refine(piece, masks + [np.array(win)])
            return
        linear = _linear(act, len(z0))
        pieces = [cell]
        for j in range(len(z0)):
            norm = float(np.hypot(G[j, 0], G[j, 1]))
            if norm == 0.0 or linear[j]:
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


def _difference(a, b):
    """``a - b``, or 0 when it is rounding."""
    d = a - b
    return 0.0 if abs(d) <= 1e-12 * (abs(a) + abs(b)) else d


def _split_max_2d(cell, c, z0, G, windows, dist_tol, area_tol):
    """The pieces of ``cell`` with the winning slot of every window on each: list of (piece, winners)."""

    def d_of(i, j, piece):
        g = G[i] - G[j]
        norm = float(np.hypot(g[0], g[1]))
        if norm <= 1e-12 * (np.abs(G[i]).sum() + np.abs(G[j]).sum()):
            return None, True, _difference(z0[i], z0[j])
        return (z0[i] - z0[j] + (piece - c) @ g) / norm, False, 0.0

    def keep_piece(piece, d):
        half = clip_halfplane(piece, d)
        return half if len(half) >= 3 and polygon_area(half) >= area_tol else None

    pieces = [(cell, [])]
    for w in range(windows.shape[0]):
        pieces = [(part, win + [s]) for piece, win in pieces for s in range(windows.shape[1])
                  if windows[w, s] >= 0
                  for part in [_winner_piece(piece, d_of, windows, w, s, dist_tol, keep_piece)]
                  if part is not None]
    return pieces


def _split_max_1d(a, b, c, z0, G, windows, dist_tol, len_tol):
    """The intervals of ``[a, b]`` with the winning slot of every window on each."""

    def d_of(i, j, piece):
        g = float(G[i, 0] - G[j, 0])
        if abs(g) <= 1e-12 * (abs(G[i, 0]) + abs(G[j, 0])):
            return None, True, _difference(z0[i], z0[j])
        return (z0[i] - z0[j] + g * (np.array(piece) - c)) / abs(g), False, 0.0

    def keep_piece(piece, d):
        lo, hi = piece
        root = lo + (hi - lo) * d[0] / (d[0] - d[1])
        part = (root, hi) if d[1] > 0 else (lo, root)
        return part if part[1] - part[0] >= len_tol else None

    pieces = [((a, b), [])]
    for w in range(windows.shape[0]):
        pieces = [(part, win + [s]) for piece, win in pieces for s in range(windows.shape[1])
                  if windows[w, s] >= 0
                  for part in [_winner_piece(piece, d_of, windows, w, s, dist_tol, keep_piece)]
                  if part is not None]
    return pieces


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
            regions.append((_pattern_tuple(layers, masks), b - a, np.array([0.5 * (a + b)])))
            return
        c = 0.5 * (a + b)
        z0, G = _affine_on_slice(layers, masks, origin, basis, np.array([c]), step)
        act = layers[len(masks)][2]
        if is_max(act):
            for (lo, hi), win in _split_max_1d(a, b, c, z0, G, act[1], dist_tol, len_tol):
                refine(lo, hi, masks + [np.array(win)])
            return
        linear = _linear(act, len(z0))
        pieces = [(a, b)]
        for j in range(len(z0)):
            g = float(G[j, 0])
            if g == 0.0 or linear[j]:
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
