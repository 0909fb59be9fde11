"""An exact-rational oracle for the activation regions of a small MLP on a slice.

Every float64 weight, bias, slice origin, basis entry and domain vertex is a
dyadic rational, so the regions the network makes in exact arithmetic are
well defined. This oracle finds them with :class:`fractions.Fraction`
throughout: no tolerance anywhere. A region is reported iff its area (2-D)
or length (1-D) is positive in exact arithmetic, however small.

It shares no code with relugeo or with ``tests/oracle.py``; it is slow and
meant for nets of a few dozen neurons.

A network is a list of ``(W, b, slope)`` tuples (``W`` (n_out, n_in), ``b``
(n_out,)); ``slope`` is the negative slope of the layer's neurons, one for all or an array
(n_out,) (0 for ReLU, alpha for leaky ReLU, exactly 1 for a linear pass-through
whose bit is always 0) or ``("max", windows, keep)`` for a max layer (max-pooling: the
outputs are the maximum over each window (n_windows, m) of neuron indices,
-1 padding, then the neurons ``keep``; the bits are one per (window, slot),
set for the window's winner, ties to the lowest slot); the last tuple is the
logits (``slope`` None). A slice is
``origin`` (D,), ``basis`` (D, k) and ``vertices`` (m, k): a convex polygon
(k = 2) or a segment ``[[t0], [t1]]`` (k = 1).

Method: a cell is a convex polygon (or an interval) with exact vertices, the
bits of the layers above it, and the exact affine maps (in ``u``) of the
current layer's inputs on it. A layer's neurons cut the cell one after
another by exact halfplane clipping; a piece is kept iff its exact area is
positive. A neuron's bit on a final piece is the sign ``z > 0`` at the
piece's exact centroid (an interior point, so the sign there is the sign on
the whole piece; a neuron that is zero on the whole piece has bit 0). A max
layer cuts the cell by every tie ``z_i - z_j`` of two candidates of a window
(an arrangement finer than the regions), and each piece's winners are read
at its centroid (a tie there is a tie on the whole piece: the lowest slot
wins). Regions are keyed by pattern, so pieces of one region add up.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def _q(x) -> Fraction:
    return Fraction(float(x))


def _affine_input(origin, basis):
    """The net's inputs as exact affine maps of u: list of D tuples (g_1..g_k, c)."""
    D, k = basis.shape
    return [tuple(_q(basis[d, j]) for j in range(k)) + (_q(origin[d]),) for d in range(D)]


def _layer_maps(W, b, h):
    """Exact maps of ``z = W h + b`` given the maps ``h`` of the layer's inputs."""
    out = []
    rows = len(h[0])
    for o in range(W.shape[0]):
        coef = [Fraction(0)] * rows
        for i, hi in enumerate(h):
            w = _q(W[o, i])
            if w:
                for r in range(rows):
                    coef[r] += w * hi[r]
        coef[-1] += _q(b[o])
        out.append(tuple(coef))
    return out


def _value(line, point):
    return sum(g * x for g, x in zip(line[:-1], point)) + line[-1]


def _area2(poly):
    """Twice the signed area of a polygon."""
    n = len(poly)
    return sum(poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1] for i in range(n))


def _centroid(poly):
    """Exact centroid of a convex polygon of positive area (an interior point)."""
    a2 = _area2(poly)
    n = len(poly)
    cx = cy = Fraction(0)
    for i in range(n):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
        cr = x0 * y1 - x1 * y0
        cx += (x0 + x1) * cr
        cy += (y0 + y1) * cr
    return (cx / (3 * a2), cy / (3 * a2))


def _clip(poly, line, side):
    """The part of a convex polygon where ``side * line(u) >= 0`` (exact)."""
    vals = [side * _value(line, p) for p in poly]
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if vals[i] >= 0:
            out.append(poly[i])
        if (vals[i] > 0 > vals[j]) or (vals[i] < 0 < vals[j]):
            t = vals[i] / (vals[i] - vals[j])
            out.append(tuple(p + t * (q - p) for p, q in zip(poly[i], poly[j])))
    # drop repeated vertices (a line through a vertex)
    dedup = [p for i, p in enumerate(out) if p != out[i - 1]] if len(out) > 1 else out
    return dedup


def _split(piece, line, dim):
    """The pieces of positive measure that a neuron's zero set cuts ``piece`` into."""
    if dim == 1:
        (t0,), (t1,) = piece
        g, c = line
        if g == 0:
            return [piece]
        t = -c / g
        if t0 < t < t1:
            return [((t0,), (t,)), ((t,), (t1,))]
        return [piece]
    vals = [_value(line, p) for p in piece]
    if not (max(vals) > 0 and min(vals) < 0):
        return [piece]
    out = []
    for side in (1, -1):
        half = _clip(piece, line, side)
        if len(half) >= 3 and _area2(half) > 0:
            out.append(half)
    return out


def _measure(piece, dim):
    return piece[1][0] - piece[0][0] if dim == 1 else _area2(piece) / 2


def _interior(piece, dim):
    return ((piece[0][0] + piece[1][0]) / 2,) if dim == 1 else _centroid(piece)


def exact_partition(layers, origin, basis, vertices) -> dict:
    """Every activation region of the slice's domain, in exact arithmetic.

    Returns a dict ``pattern -> measure``: ``pattern`` a tuple of 0/1 over all
    hidden neurons (layer by layer), ``measure`` the region's exact area (2-D,
    ``vertices`` counter-clockwise or not) or length (1-D) as a Fraction.
    """
    origin = np.asarray(origin, dtype=np.float64)
    basis = np.asarray(basis, dtype=np.float64).reshape(origin.shape[0], -1)
    vertices = np.asarray(vertices, dtype=np.float64)
    dim = basis.shape[1]
    domain = [tuple(_q(v) for v in row) for row in vertices]
    if dim == 1:
        domain = sorted(domain)
    elif _area2(domain) < 0:
        domain = domain[::-1]
    regions: dict = {}
    # a cell: (piece, bits so far, exact maps of layer ``depth``'s inputs, depth)
    stack = [(domain, (), _affine_input(origin, basis), 0)]
    while stack:
        piece, bits, h, depth = stack.pop()
        W, b, slope = layers[depth]
        z = _layer_maps(W, b, h)
        if slope is None:
            regions[bits] = regions.get(bits, 0) + _measure(piece, dim)
            continue
        if isinstance(slope, tuple):
            for p, more, post in _max_layer(piece, z, slope[1], slope[2], dim):
                stack.append((p, bits + more, post, depth + 1))
            continue
        slopes = [_q(v) for v in np.broadcast_to(np.asarray(slope, dtype=np.float64), (len(z),))]
        pieces = [piece]
        for line, s in zip(z, slopes):
            if s != 1:
                pieces = [q for p in pieces for q in _split(p, line, dim)]
        for p in pieces:
            point = _interior(p, dim)
            signs = [_value(line, point) > 0 and s != 1 for line, s in zip(z, slopes)]
            post = [line if on else tuple(s * g for g in line) for line, on, s in zip(z, signs, slopes)]
            stack.append((p, bits + tuple(int(v) for v in signs), post, depth + 1))
    return regions


def _max_layer(piece, z, windows, keep, dim):
    """A max layer on one cell: (piece, its bits, its outputs' exact maps) per piece of positive measure."""
    windows = np.asarray(windows)
    pieces = [piece]
    for row in windows:
        cands = [int(i) for i in row if i >= 0]
        for x, i in enumerate(cands):
            for j in cands[x + 1 :]:
                tie = tuple(p - q for p, q in zip(z[i], z[j]))
                pieces = [q for p in pieces for q in _split(p, tie, dim)]
    out = []
    for p in pieces:
        point = _interior(p, dim)
        bits, post = (), []
        for row in windows:
            vals = [_value(z[i], point) if i >= 0 else None for i in row]
            best = max(v for v in vals if v is not None)
            win = next(s for s, v in enumerate(vals) if v is not None and v == best)
            bits += tuple(int(s == win) for s in range(len(row)))
            post.append(z[int(row[win])])
        post += [z[int(i)] for i in keep]
        out.append((p, bits, post))
    return out


def quantised_net(rng, widths, input_dim=2, weight_step=0.25, bias_step=0.125, keep=1.0, slope=0.0, n_out=1):
    """A random MLP with weights on a grid (``weight_step`` * small ints) and biases on another.

    ``keep`` is the fraction of weights left non-zero (a pruned net when below 1).
    """
    sizes = [input_dim, *widths, n_out]
    layers = []
    for i in range(len(sizes) - 1):
        W = rng.integers(-4, 5, size=(sizes[i + 1], sizes[i])) * weight_step
        W = W * (rng.random(W.shape) < keep)
        b = rng.integers(-4, 5, size=sizes[i + 1]) * bias_step
        layers.append((W.astype(np.float64), b.astype(np.float64), None if i == len(sizes) - 2 else slope))
    return layers
