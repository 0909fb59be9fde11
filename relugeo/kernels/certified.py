"""Certified splitting kernels (numba njit): float64 with rigorous error bounds.

The twins of ``cpu.split_cells_count`` / ``split_cells_write`` and of the
interval kernels, for ``predicates="certified"``. Every sign decision (is a
vertex on the positive side of a neuron's line, do two breakpoints differ) is
a float64 evaluation together with a bound on its distance to the exact value
for the caller's float weights read as dyadic rationals. The bound covers

- the error of the cell's float map: ``err`` (k + 1, n) bounds, for every
  neuron of the layer, the error of each coefficient of its map on any cell
  (see :func:`relugeo.regions.certify.error_table`);
- the error of the cell's vertices: ``vr`` (V,) is, for each ring vertex, a
  bound on the distance (max norm) from the stored float vertex to the exact
  vertex; a new vertex gets its own from the two lines that meet there when
  the edge it cuts lies on a neuron of the same layer (:func:`meet_radius`),
  else from the interval of the exact crossing (:func:`crossing_radius`);
- the rounding of the evaluation itself.

When a sign cannot be decided (the value lies within its bound, e.g. a line
exactly through a vertex) the kernel does not guess: it marks the whole cell
in ``undecided`` and writes no children for it; the caller splits such cells
in exact arithmetic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .cpu import (
    CHUNK,
    _finish_child,
    _grow,
    _grow_workspace,
    _lone_cell_children,
    _mask_row,
    _new_workspace,
    _range_on_ring,
)

U = 2.0**-53  # unit roundoff of float64
SAFE = 1.0 + 64 * U  # covers the rounding of the bounds' own arithmetic


@njit(cache=True)
def value_bound(a, b, c, ea, eb, ec, x, y, r):
    """``a*x + b*y + c`` in float64 and a bound on its distance to the exact value.

    ``ea, eb, ec`` bound the errors of the coefficients, ``r`` that of the
    point (max norm). The exact value has the float value's sign when
    ``|value| > bound``.
    """
    ax = abs(a * x)
    by = abs(b * y)
    v = a * x + b * y + c
    e = ea * abs(x) + eb * abs(y) + ec + (abs(a) + ea + abs(b) + eb) * r + 4.0 * U * (ax + by + abs(c))
    return v, e * SAFE


@njit(cache=True)
def crossing_radius(s0, e0, s1, e1, x0, y0, x1, y1, r0, r1, t):
    """Error bound (max norm) of the float crossing ``p0 + t (p1 - p0)`` of a line with an edge.

    The line's values at the ends are ``s0`` and ``s1`` (certified of opposite
    signs, within ``e0`` and ``e1`` of the exact values); the exact fraction
    ``z0 / (z0 - z1)`` is monotone in both values, so it lies between the two
    fractions of the extreme values.
    """
    c1 = (s0 - e0) / ((s0 - e0) - (s1 - e1))
    c2 = (s0 + e0) / ((s0 + e0) - (s1 + e1))
    dt = max(abs(t - c1), abs(t - c2)) + 8.0 * U
    dx = abs(x1 - x0)
    dy = abs(y1 - y0)
    rn = max(r0, r1) + dt * (max(dx, dy) + r0 + r1) + 4.0 * U * max(abs(x0) + dx, abs(y0) + dy)
    return rn * SAFE


@njit(cache=True, inline="always")
def meet_radius(a1, b1, c1, ea1, eb1, ec1, a2, b2, c2, ea2, eb2, ec2, x, y):
    """Bound (max norm) on the distance from the point ``(x, y)`` to where two lines meet.

    The lines are ``a x + b y + c`` with coefficients within ``ea, eb, ec`` of
    the exact ones. With ``G`` the exact gradients, ``(x, y)`` minus the
    meeting point is ``G^-1`` times the exact values at ``(x, y)``. Unlike
    :func:`crossing_radius` the bound does not grow with the radii of the ends
    of the edge that was cut. Infinite when the bounds cannot tell the lines
    from parallel.
    """
    v1, e1 = value_bound(a1, b1, c1, ea1, eb1, ec1, x, y, 0.0)
    v2, e2 = value_bound(a2, b2, c2, ea2, eb2, ec2, x, y, 0.0)
    det = a1 * b2 - b1 * a2
    ddet = (ea1 * (abs(b2) + eb2) + abs(a1) * eb2 + eb1 * (abs(a2) + ea2) + abs(b1) * ea2
            + 3.0 * U * (abs(a1 * b2) + abs(b1 * a2))) * SAFE
    if abs(det) <= ddet:
        return np.inf
    g = max(abs(b1) + eb1 + abs(b2) + eb2, abs(a1) + ea1 + abs(a2) + ea2)
    return g * max(abs(v1) + e1, abs(v2) + e2) / (abs(det) - ddet) * SAFE * SAFE


@njit(cache=True)
def _grow_radii(R, cap):
    """The radius buffer R (3, cap), grown to ``cap`` when smaller: rows 0 and 1 the two slots' vertex
    radii, row 2 scratch for the radii of a piece's crossings."""
    if R.shape[1] >= cap:
        return R
    R2 = np.empty((3, cap))
    R2[:, : R.shape[1]] = R
    return R2


@njit(cache=True, inline="always")
def _split_ring_cert(ws, R, vx, vy, vr, elay, eneu, st, en, pre, err, cell, cuts, k, layer):
    """Certified :func:`relugeo.kernels.cpu._split_ring`: the same pieces, labels and sides.

    ``R`` holds the vertex radii alongside the workspace. Returns
    ``(ws, R, n_pieces, slot, ok)``; ``ok`` is False when some sign could
    not be decided (the pieces are then meaningless). Inlined where it is
    called, as its twin, so that the splitting (:func:`_split_ring_cert_fit`)
    runs without reference counting; the workspace grows here.
    """
    cap_v = 2 * (en - st) + 8
    cap_p = 2
    while True:
        if cap_v > ws[0].shape[1] or cap_p > ws[4].shape[1] - 1 or k > 64 * ws[5].shape[2]:
            ws = _grow_workspace(ws, cap_v, cap_p, k)
        if R.shape[1] < ws[0].shape[1]:
            R = _grow_radii(R, ws[0].shape[1])
        npc = _split_ring_cert_fit(ws, R, vx, vy, vr, elay, eneu, st, en, pre, err, cell, cuts, k, layer)
        if npc != -1:
            return ws, R, max(npc, 0), k & 1, npc >= 0
        cap_v = 2 * ws[0].shape[1]
        cap_p = 2 * (ws[4].shape[1] - 1)


@njit(cache=True, error_model="numpy")
def _split_ring_cert_fit(ws, R, vx, vy, vr, elay, eneu, st, en, pre, err, cell, cuts, k, layer):
    """:func:`_split_ring_cert` in the workspace as it is: the number of pieces, -1 when the workspace
    is too small, -2 when a sign is undecided. One return and no exception, as
    :func:`relugeo.kernels.cpu._split_ring_fit`."""
    n = en - st
    X, Y, L, N, OFF, SID, S, SG = ws
    full = False
    undecided = False
    for q in range(n):
        X[0, q] = vx[st + q]
        Y[0, q] = vy[st + q]
        R[0, q] = vr[st + q]
        L[0, q] = elay[st + q]
        N[0, q] = eneu[st + q]
    OFF[0, 0] = 0
    OFF[0, 1] = n
    for w in range(SID.shape[2]):
        SID[0, 0, w] = 0
    npc = 1
    for j in range(k):
        # every piece of m vertices cut in two: at most 2 m + 4 vertices and two pieces
        if full or undecided or 2 * OFF[j & 1, npc] + 4 * npc > X.shape[1] or 2 * npc > OFF.shape[1] - 1:
            full = not undecided
            continue
        i = cuts[j]
        aj = pre[cell, 0, i]
        bj = pre[cell, 1, i]
        cj = pre[cell, 2, i]
        src = j & 1
        dst = 1 - src
        nb = 0
        wv = 0
        OFF[dst, 0] = 0
        for p in range(npc):
            if undecided:
                continue
            ps = OFF[src, p]
            m = OFF[src, p + 1] - ps
            has_pos = False
            has_neg = False
            # one bound for the piece (at its largest coordinates and radius); vertex by vertex only near zero
            mx = 0.0
            my = 0.0
            mr = 0.0
            for q in range(m):
                x = X[src, ps + q]
                y = Y[src, ps + q]
                S[q] = aj * x + bj * y + cj
                mx = max(mx, abs(x))
                my = max(my, abs(y))
                mr = max(mr, R[src, ps + q])
            _, ep = value_bound(aj, bj, cj, err[0, i], err[1, i], err[2, i], mx, my, mr)
            for q in range(m):
                v = S[q]
                e = ep
                if abs(v) <= e:
                    v, e = value_bound(aj, bj, cj, err[0, i], err[1, i], err[2, i], X[src, ps + q],
                                       Y[src, ps + q], R[src, ps + q])
                if v > e:
                    SG[q] = 1
                    has_pos = True
                elif v < -e:
                    SG[q] = -1
                    has_neg = True
                else:
                    undecided = True
            if undecided:
                continue
            if not (has_pos and has_neg):
                for q in range(m):
                    X[dst, wv] = X[src, ps + q]
                    Y[dst, wv] = Y[src, ps + q]
                    R[dst, wv] = R[src, ps + q]
                    L[dst, wv] = L[src, ps + q]
                    N[dst, wv] = N[src, ps + q]
                    wv += 1
                for w in range((j >> 6) + 1):
                    SID[dst, nb, w] = SID[src, p, w]
                if j & 63 == 0:
                    SID[dst, nb, j >> 6] = 0
                if has_pos:
                    SID[dst, nb, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
                nb += 1
                OFF[dst, nb] = wv
                continue
            # two pieces: the positive side first, then the negative side (no vertex is on the line)
            for side in (1, -1):
                for q in range(m):
                    q1 = q + 1 if q + 1 < m else 0
                    g0 = SG[q] * side
                    g1 = SG[q1] * side
                    if g0 > 0:
                        X[dst, wv] = X[src, ps + q]
                        Y[dst, wv] = Y[src, ps + q]
                        R[dst, wv] = R[src, ps + q]
                        L[dst, wv] = L[src, ps + q]
                        N[dst, wv] = N[src, ps + q]
                        wv += 1
                    if g0 * g1 < 0:
                        t = S[q] / (S[q] - S[q1])
                        x0 = X[src, ps + q]
                        y0 = Y[src, ps + q]
                        x1 = X[src, ps + q1]
                        y1 = Y[src, ps + q1]
                        X[dst, wv] = x0 + t * (x1 - x0)
                        Y[dst, wv] = y0 + t * (y1 - y0)
                        if side == 1:
                            # a crossing's radius, kept for the negative side's copy of it in R[2, q]
                            rn = np.inf
                            if L[src, ps + q] == layer:
                                # the edge lies on an earlier cut of this layer: a bound from the two lines
                                h = N[src, ps + q]
                                rn = meet_radius(pre[cell, 0, h], pre[cell, 1, h], pre[cell, 2, h], err[0, h],
                                                 err[1, h], err[2, h], aj, bj, cj, err[0, i], err[1, i], err[2, i],
                                                 X[dst, wv], Y[dst, wv])
                            if rn > max(R[src, ps + q], R[src, ps + q1]):
                                # the bound from the ends' own bounds (tighter than the piece's), never below theirs
                                _, e0 = value_bound(aj, bj, cj, err[0, i], err[1, i], err[2, i], x0, y0,
                                                    R[src, ps + q])
                                _, e1 = value_bound(aj, bj, cj, err[0, i], err[1, i], err[2, i], x1, y1,
                                                    R[src, ps + q1])
                                rn = min(rn, crossing_radius(S[q], e0, S[q1], e1, x0, y0, x1, y1, R[src, ps + q],
                                                             R[src, ps + q1], t))
                            R[2, q] = rn
                        R[dst, wv] = R[2, q]
                        if g0 > 0:
                            L[dst, wv] = layer
                            N[dst, wv] = i
                        else:
                            L[dst, wv] = L[src, ps + q]
                            N[dst, wv] = N[src, ps + q]
                        wv += 1
                for w in range((j >> 6) + 1):
                    SID[dst, nb, w] = SID[src, p, w]
                if j & 63 == 0:
                    SID[dst, nb, j >> 6] = 0
                if side == 1:
                    SID[dst, nb, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
                nb += 1
                OFF[dst, nb] = wv
        npc = nb
    return -2 if undecided else (-1 if full else npc)


@njit(cache=True)
def _cell_signs_cert(pre, err, cell, vx, vy, vr, st, en, bits, cuts, slopes, hi, lo, eb):
    """Certified :func:`relugeo.kernels.cpu._cell_signs`; returns -1 when a sign is undecided.

    As in the tolerance kernel, most neurons are decided by their range over
    the box around the ring, widened by the vertices' radii and bounded with
    the error of the box's own arithmetic; only the others are evaluated
    vertex by vertex, with one bound per neuron at the cell's largest
    coordinates and radius, and a vertex's own bound only for values near
    zero. A cutting neuron's vertices are certified by the split. ``hi``,
    ``lo``, ``eb`` are scratch of shape (n,).
    """
    n = pre.shape[2]
    ga = pre[cell, 0]
    gb = pre[cell, 1]
    gc = pre[cell, 2]
    xmin = xmax = vx[st]
    ymin = ymax = vy[st]
    mr = vr[st]
    for q in range(st + 1, en):
        xmin = min(xmin, vx[q])
        xmax = max(xmax, vx[q])
        ymin = min(ymin, vy[q])
        ymax = max(ymax, vy[q])
        mr = max(mr, vr[q])
    ax = max(abs(xmin), abs(xmax))
    ay = max(abs(ymin), abs(ymax))
    cx = 0.5 * (xmin + xmax)
    cy = 0.5 * (ymin + ymax)
    # half-widths that cover [xmin, xmax] despite the rounding of cx and of the widths (3U ax at most)
    sx = 0.5 * (xmax - xmin) + 4.0 * U * ax
    sy = 0.5 * (ymax - ymin) + 4.0 * U * ay
    # a loop of its own, without branches, so that it vectorises
    for i in range(n):
        a = ga[i]
        b = gb[i]
        mid = a * cx + b * cy + gc[i]
        rad = abs(a) * sx + abs(b) * sy
        # value_bound at the largest coordinates and radius bounds mid's rounding, the coefficients'
        # errors and the vertices' distance to the exact ones; 4U (rad + |mid|) the rest of the sums
        e = value_bound(a, b, gc[i], err[0, i], err[1, i], err[2, i], ax, ay, mr)[1]
        eb[i] = e
        spread = rad + (e + 4.0 * U * (rad + abs(mid))) * SAFE
        hi[i] = mid + spread  # < 0: negative at every exact vertex
        lo[i] = mid - spread  # > 0: positive at every exact vertex
    ncut = 0
    for i in range(n):
        if slopes[i] == 1.0:
            bits[i] = 0
            continue
        if lo[i] > 0.0:
            bits[i] = 1
            continue
        if hi[i] < 0.0:
            bits[i] = 0
            continue
        top, bottom = _range_on_ring(ga[i], gb[i], gc[i], vx, vy, st, en)
        e = eb[i]
        if bottom > e:
            bits[i] = 1
            continue
        if top < -e:
            bits[i] = 0
            continue
        if top > e and bottom < -e:
            cuts[ncut] = i
            ncut += 1
            bits[i] = 0
            continue
        pos = False
        neg = False
        for q in range(st, en):
            v, e = value_bound(ga[i], gb[i], gc[i], err[0, i], err[1, i], err[2, i], vx[q], vy[q], vr[q])
            if v > e:
                pos = True
            elif v < -e:
                neg = True
            else:
                return -1
        if pos and neg:
            cuts[ncut] = i
            ncut += 1
            bits[i] = 0
        else:
            bits[i] = 1 if pos else 0
    return ncut


@njit(cache=True, nogil=True)
def split_cells_count_cert(pre, err, off, vx, vy, vr, elay, eneu, layer, slopes):
    """Pass 1 (certified): as :func:`relugeo.kernels.cpu.split_cells_count`, plus
    ``undecided`` (C,) uint8, set on cells whose split needs exact arithmetic
    (they count no pieces here)."""
    C = pre.shape[0]
    n = pre.shape[2]
    bits = np.zeros((C, n), dtype=np.uint8)
    cuts = np.empty((C, n), dtype=np.int32)
    ncut = np.zeros(C, dtype=np.int64)
    npieces = np.ones(C, dtype=np.int64)
    nverts = np.empty(C, dtype=np.int64)
    masked = np.empty_like(pre)
    undecided = np.zeros(C, dtype=np.uint8)
    for ch in range((C + CHUNK - 1) // CHUNK):
        ws = _new_workspace(64, 8, 8)
        R = np.empty((3, 64))
        hi = np.empty(n)
        lo = np.empty(n)
        eb = np.empty(n)
        for cell in range(ch * CHUNK, min(C, (ch + 1) * CHUNK)):
            st = off[cell]
            en = off[cell + 1]
            k = _cell_signs_cert(pre, err, cell, vx, vy, vr, st, en, bits[cell], cuts[cell], slopes, hi, lo, eb)
            ok = k >= 0
            if k > 0:
                ws, R, npc, slot, ok = _split_ring_cert(ws, R, vx, vy, vr, elay, eneu, st, en, pre, err, cell,
                                                        cuts[cell], k, layer)
                npieces[cell] = npc
                nverts[cell] = ws[4][slot, npc]
            elif k == 0:
                nverts[cell] = en - st
            if not ok:
                undecided[cell] = 1
                ncut[cell] = 0
                npieces[cell] = 0
                nverts[cell] = 0
                bits[cell, :] = 0
            else:
                ncut[cell] = k
            _mask_row(pre, cell, bits, slopes, masked)
    return bits, cuts, ncut, npieces, nverts, masked, undecided


@njit(cache=True, nogil=True)
def split_cells_write_cert(pre, err, off, vx, vy, vr, elay, eneu, layer, slopes, pat, bit_offset,
                           bits, cuts, ncut, piece_start, vert_start, base, wt,
                           coff, cx, cy, cr, cl, cn, cpat, cnext, cparent):
    """Pass 2 (certified): as :func:`relugeo.kernels.cpu.split_cells_write`, writing the
    children's vertex radii ``cr`` too; cells that count no pieces (undecided) are skipped."""
    C = pre.shape[0]
    no_cut = np.zeros(1, dtype=np.uint64)
    for ch in range((C + CHUNK - 1) // CHUNK):
        ws = _new_workspace(64, 8, 8)
        R = np.empty((3, 64))
        for cell in range(ch * CHUNK, min(C, (ch + 1) * CHUNK)):
            p0 = piece_start[cell]
            if piece_start[cell + 1] == p0:
                continue
            st = off[cell]
            en = off[cell + 1]
            k = ncut[cell]
            w0 = vert_start[cell]
            if k == 0:
                m = en - st
                cx[w0 : w0 + m] = vx[st:en]
                cy[w0 : w0 + m] = vy[st:en]
                cr[w0 : w0 + m] = vr[st:en]
                cl[w0 : w0 + m] = elay[st:en]
                cn[w0 : w0 + m] = eneu[st:en]
                coff[p0 + 1] = w0 + m
                cparent[p0] = cell
                _finish_child(p0, cell, pre, bits, cuts, 0, no_cut, slopes, pat, bit_offset, base, wt, cpat,
                              cnext)
                continue
            ws, R, npc, slot, ok = _split_ring_cert(ws, R, vx, vy, vr, elay, eneu, st, en, pre, err, cell,
                                                    cuts[cell], k, layer)
            X, Y, L, N, OFF, SID = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
            m = OFF[slot, npc]
            for q in range(m):
                cx[w0 + q] = X[slot, q]
                cy[w0 + q] = Y[slot, q]
                cr[w0 + q] = R[slot, q]
                cl[w0 + q] = L[slot, q]
                cn[w0 + q] = N[slot, q]
            for p in range(npc):
                child = p0 + p
                coff[child + 1] = w0 + OFF[slot, p + 1]
                cparent[child] = cell
                _finish_child(child, cell, pre, bits, cuts, k, SID[slot, p], slopes, pat, bit_offset, base, wt,
                              cpat, cnext)
    return None


@njit(cache=True, nogil=True)
def split_cell_once_cert(pre, err, vx, vy, vr, elay, eneu, layer, slopes, pat, bit_offset):
    """Certified :func:`relugeo.kernels.cpu.split_cell_once`: one cell (the ring ``vx[:], vy[:]`` with
    radii ``vr``, map ``pre`` (1, 3, n)) split in a single pass, its children written without the
    next layer's map.

    Returns ``(bits, cuts, ncut, masked, coff, cx, cy, cr, cl, cn, cpat, cparent, ok)``; ``ok`` is
    False when some sign could not be decided (the rest is then meaningless: the caller counts and
    splits the cell as any other, in exact arithmetic where needed).
    """
    n = pre.shape[2]
    en = vx.shape[0]
    bits = np.zeros((1, n), dtype=np.uint8)
    cuts = np.empty((1, n), dtype=np.int32)
    ncut = np.zeros(1, dtype=np.int64)
    masked = np.empty_like(pre)
    hi = np.empty(n)
    lo = np.empty(n)
    eb = np.empty(n)
    k = _cell_signs_cert(pre, err, 0, vx, vy, vr, 0, en, bits[0], cuts[0], slopes, hi, lo, eb)
    ws = _new_workspace(64, 8, 8)
    R = np.empty((3, 64))
    ok = k >= 0
    npc = 0
    slot = 0
    if ok:  # with no cut, the ring comes back as the one piece
        ws, R, npc, slot, ok = _split_ring_cert(ws, R, vx, vy, vr, elay, eneu, 0, en, pre, err, 0, cuts[0], k, layer)
    if not ok:
        k = 0
        npc = 0
    ncut[0] = k
    _mask_row(pre, 0, bits, slopes, masked)
    coff, cx, cy, cl, cn, cpat, cparent = _lone_cell_children(ws, slot, npc, pre, bits, cuts, k, slopes, pat,
                                                              bit_offset)
    cr = R[slot, : len(cx)].copy()
    return bits, cuts, ncut, masked, coff, cx, cy, cr, cl, cn, cpat, cparent, ok


# ---------------------------------------------------------------------------
# Intervals (1-D cells): ends t0 < t1 with radii r0, r1; a neuron is a*t + c.
# ---------------------------------------------------------------------------


@njit(cache=True)
def _root_radius(a, c, ea, ec, t):
    """Bound on the distance from the float root ``t = -c / a`` to the exact root (|a| > ea)."""
    d = 0.0
    for sa in (-1.0, 1.0):
        for sc in (-1.0, 1.0):
            d = max(d, abs(t + (c + sc * ec) / (a + sa * ea)))
    return (d + 4.0 * U * abs(t)) * SAFE


@njit(cache=True)
def _interval_cuts_cert(pre, err, cell, t0, t1, r0, r1, bits, cuts, roots, rads, slopes):
    """Certified :func:`relugeo.kernels.cpu._interval_cuts`: the cutting neurons sorted by
    breakpoint, with the breakpoints and their radii. Returns the number of cuts (all
    breakpoints certified distinct), or -1 when a sign or an order is undecided."""
    n = pre.shape[2]
    k = 0
    for i in range(n):
        if slopes[i] == 1.0:
            bits[i] = 0
            continue
        a = pre[cell, 0, i]
        c = pre[cell, 1, i]
        ea = err[0, i]
        ec = err[1, i]
        s0, e0 = value_bound(a, 0.0, c, ea, 0.0, ec, t0, 0.0, r0)
        s1, e1 = value_bound(a, 0.0, c, ea, 0.0, ec, t1, 0.0, r1)
        if abs(s0) <= e0 or abs(s1) <= e1:
            return -1
        if (s0 > 0.0) != (s1 > 0.0):
            if abs(a) <= ea:
                return -1
            cuts[k] = i
            roots[k] = -c / a
            rads[k] = _root_radius(a, c, ea, ec, roots[k])
            k += 1
            bits[i] = 0
        else:
            bits[i] = 1 if s0 > 0.0 else 0
    if k == 0:
        return 0
    order = np.argsort(roots[:k])
    cuts[:k] = cuts[:k][order]
    roots[:k] = roots[:k][order]
    rads[:k] = rads[:k][order]
    for j in range(1, k):
        if roots[j] - rads[j] <= roots[j - 1] + rads[j - 1]:
            return -1
    return k


@njit(cache=True, nogil=True)
def split_intervals_count_cert(pre, err, off, vx, vr, slopes):
    """Pass 1 for intervals (certified); same outputs as :func:`split_cells_count_cert`."""
    C = pre.shape[0]
    n = pre.shape[2]
    bits = np.zeros((C, n), dtype=np.uint8)
    cuts = np.empty((C, n), dtype=np.int32)
    ncut = np.zeros(C, dtype=np.int64)
    npieces = np.zeros(C, dtype=np.int64)
    nverts = np.zeros(C, dtype=np.int64)
    masked = np.empty_like(pre)
    undecided = np.zeros(C, dtype=np.uint8)
    for cell in range(C):
        roots = np.empty(n)
        rads = np.empty(n)
        st = off[cell]
        k = _interval_cuts_cert(pre, err, cell, vx[st], vx[st + 1], vr[st], vr[st + 1], bits[cell], cuts[cell],
                                roots, rads, slopes)
        if k < 0:
            undecided[cell] = 1
            bits[cell, :] = 0
        else:
            ncut[cell] = k
            npieces[cell] = k + 1
            nverts[cell] = 2 * (k + 1)
        _mask_row(pre, cell, bits, slopes, masked)
    return bits, cuts, ncut, npieces, nverts, masked, undecided


@njit(cache=True, nogil=True)
def split_intervals_write_cert(pre, err, off, vx, vr, elay, eneu, layer, slopes, pat, bit_offset,
                               bits, cuts, ncut, piece_start, vert_start, base, wt,
                               coff, cx, cy, cr, cl, cn, cpat, cnext, cparent):
    """Pass 2 for intervals (certified): every breakpoint is its own end (they are all distinct)."""
    C = pre.shape[0]
    for cell in range(C):
        p0 = piece_start[cell]
        if piece_start[cell + 1] == p0:
            continue
        st = off[cell]
        k = ncut[cell]
        w0 = vert_start[cell]
        active = np.empty(max(1, (k + 63) // 64), dtype=np.uint64)
        for p in range(k + 1):
            child = p0 + p
            w = w0 + 2 * p
            if p == 0:
                cx[w] = vx[st]
                cr[w] = vr[st]
                cl[w] = elay[st]
                cn[w] = eneu[st]
            else:
                i = cuts[cell, p - 1]
                cx[w] = -pre[cell, 1, i] / pre[cell, 0, i]
                cr[w] = _root_radius(pre[cell, 0, i], pre[cell, 1, i], err[0, i], err[1, i], cx[w])
                cl[w] = layer
                cn[w] = i
            if p == k:
                cx[w + 1] = vx[st + 1]
                cr[w + 1] = vr[st + 1]
                cl[w + 1] = elay[st + 1]
                cn[w + 1] = eneu[st + 1]
            else:
                i = cuts[cell, p]
                cx[w + 1] = -pre[cell, 1, i] / pre[cell, 0, i]
                cr[w + 1] = _root_radius(pre[cell, 0, i], pre[cell, 1, i], err[0, i], err[1, i], cx[w + 1])
                cl[w + 1] = layer
                cn[w + 1] = i
            cy[w] = 0.0
            cy[w + 1] = 0.0
            coff[child + 1] = w + 2
            cparent[child] = cell
            # the child lies right of the first p breakpoints
            active[:] = 0
            for j in range(k):
                if (pre[cell, 0, cuts[cell, j]] > 0.0) == (j < p):
                    active[j >> 6] |= np.uint64(1) << np.uint64(j & 63)
            _finish_child(child, cell, pre, bits, cuts, k, active, slopes, pat, bit_offset, base, wt,
                          cpat, cnext)
    return None


# ---------------------------------------------------------------------------
# Max layers: cells split by the ties z_i - z_j of each window's candidates
# (see ``cpu.split_cells_max``). A tie edge is labelled (layer, w * m + t):
# window w, lost by slot t to the cell's winner, so the exact fallback knows
# its line; the walk writes the public label (layer, w) on the leaves.
# ---------------------------------------------------------------------------


@njit(cache=True)
def tie_bound(pre, err, cell, i, j):
    """Coefficients of ``z_i - z_j`` on a cell, (a, b, c), and bounds on their errors, (ea, eb, ec).

    Each difference is one rounding off the difference of the float
    coefficients, which are within ``err`` of the exact ones. In 1-D (``pre``
    of shape (C, 2, n)) ``b`` and ``eb`` are zero and ``c`` is the constant.
    """
    k = pre.shape[1] - 1
    a = pre[cell, 0, i] - pre[cell, 0, j]
    c = pre[cell, k, i] - pre[cell, k, j]
    ea = (err[0, i] + err[0, j] + 2.0 * U * abs(a)) * SAFE
    ec = (err[k, i] + err[k, j] + 2.0 * U * abs(c)) * SAFE
    b = 0.0
    eb = 0.0
    if k == 2:
        b = pre[cell, 1, i] - pre[cell, 1, j]
        eb = (err[1, i] + err[1, j] + 2.0 * U * abs(b)) * SAFE
    return a, b, c, ea, eb, ec


@njit(cache=True)
def _keep_positive_cert(px, py, pr, pl, pn, S, SG, a, b, c, ea, eb, ec, layer, label):
    """The part of a ring on the positive side of the line ``a x + b y + c`` (coefficients within
    ``ea, eb, ec``) whose sign ``SG`` is certified (nonzero) at every vertex, with the values ``S``;
    crossings get :func:`crossing_radius` from their ends' own bounds."""
    m = px.shape[0]
    ox = np.empty(2 * m)
    oy = np.empty(2 * m)
    orr = np.empty(2 * m)
    ol = np.empty(2 * m, dtype=np.int32)
    on = np.empty(2 * m, dtype=np.int32)
    w = 0
    for q in range(m):
        q1 = q + 1 if q + 1 < m else 0
        if SG[q] > 0:
            ox[w] = px[q]
            oy[w] = py[q]
            orr[w] = pr[q]
            ol[w] = pl[q]
            on[w] = pn[q]
            w += 1
        if SG[q] * SG[q1] < 0:
            t = S[q] / (S[q] - S[q1])
            ox[w] = px[q] + t * (px[q1] - px[q])
            oy[w] = py[q] + t * (py[q1] - py[q])
            e0 = value_bound(a, b, c, ea, eb, ec, px[q], py[q], pr[q])[1]
            e1 = value_bound(a, b, c, ea, eb, ec, px[q1], py[q1], pr[q1])[1]
            orr[w] = crossing_radius(S[q], e0, S[q1], e1, px[q], py[q], px[q1], py[q1], pr[q], pr[q1], t)
            if SG[q] > 0:
                ol[w] = layer
                on[w] = label
            else:
                ol[w] = pl[q]
                on[w] = pn[q]
            w += 1
    return ox[:w], oy[:w], orr[:w], ol[:w], on[:w]


@njit(cache=True)
def _twin_before(windows, rep, w, s, t):
    """Whether slot ``t`` of window ``w`` has a twin (same ``rep``) in an earlier slot other than ``s``:
    slot ``s``'s tie with it is then already applied."""
    for u in range(t):
        j = windows[w, u]
        if u != s and j >= 0 and rep[j] == rep[windows[w, t]]:
            return True
    return False


@njit(cache=True)
def _winner_part_cert(pre, err, cell, windows, rep, above, w, s, px, py, pr, pl, pn, layer, S, SG):
    """Certified :func:`relugeo.kernels.cpu._winner_part`: the part of a ring (vertex radii ``pr``)
    where slot ``s`` of window ``w`` wins. Returns (px, py, pr, pl, pn, ok), an empty ring when the slot
    wins nowhere; ``ok`` is False when a sign is undecided.

    Candidates with the same ``rep`` (the cell's row of it) are equal on the whole cell, so their tie is
    zero there (the lower slot wins), and a candidate's twin adds no tie line of its own. A candidate
    positive inside the cell (``above``) beats one that is zero on it (``rep`` equal to n). Every other tie is
    decided by its certified signs at the vertices: one bound at the ring's largest coordinates and
    radius (``value_bound`` grows with them), vertex by vertex only near zero. ``S``, ``SG`` are scratch
    at least as long as the ring.
    """
    two_d = pre.shape[1] == 3
    m = windows.shape[1]
    i = windows[w, s]
    for t in range(m):
        j = windows[w, t]
        if t == s or j < 0:
            continue
        if rep[i] == rep[j]:
            if t < s:
                return px[:0], py[:0], pr[:0], pl[:0], pn[:0], True
            continue
        if _twin_before(windows, rep, w, s, t):
            continue
        if above[i] == 1 and rep[j] == pre.shape[2]:
            continue
        if rep[i] == pre.shape[2] and above[j] == 1:
            return px[:0], py[:0], pr[:0], pl[:0], pn[:0], True
        a, b, c, ea, eb, ec = tie_bound(pre, err, cell, i, j)
        nv = px.shape[0]
        mx = 0.0
        my = 0.0
        mr = 0.0
        for q in range(nv):
            S[q] = a * px[q] + b * py[q] + c
            mx = max(mx, abs(px[q]))
            my = max(my, abs(py[q]))
            mr = max(mr, pr[q])
        ep = value_bound(a, b, c, ea, eb, ec, mx, my, mr)[1]
        pos = False
        neg = False
        for q in range(nv):
            v = S[q]
            e = ep
            if abs(v) <= e:
                v, e = value_bound(a, b, c, ea, eb, ec, px[q], py[q], pr[q])
                S[q] = v
            if v > e:
                SG[q] = 1
                pos = True
            elif v < -e:
                SG[q] = -1
                neg = True
            else:
                return px[:0], py[:0], pr[:0], pl[:0], pn[:0], False
        if not pos:
            return px[:0], py[:0], pr[:0], pl[:0], pn[:0], True
        if not neg:
            continue
        if two_d:
            px, py, pr, pl, pn = _keep_positive_cert(px, py, pr, pl, pn, S, SG, a, b, c, ea, eb, ec, layer,
                                                     w * m + t)
            continue
        if abs(a) <= ea:
            return px[:0], py[:0], pr[:0], pl[:0], pn[:0], False
        root = -c / a
        end = 0 if a > 0.0 else 1
        px = px.copy()
        pr = pr.copy()
        pl = pl.copy()
        pn = pn.copy()
        px[end] = root
        pr[end] = _root_radius(a, c, ea, ec, root)
        pl[end] = layer
        pn[end] = w * m + t
        if px[1] - pr[1] <= px[0] + pr[0]:
            # the ends' order is not certified in float64
            return px[:0], py[:0], pr[:0], pl[:0], pn[:0], False
    return px, py, pr, pl, pn, True


@njit(cache=True)
def _max_pieces_cert(pre, err, cell, vx, vy, vr, elay, eneu, st, en, layer, windows, rep, above):
    """Certified :func:`relugeo.kernels.cpu._max_pieces`: rings (qx, qy, qr, ql, qn, qoff), winners
    qwin (P, W) and ok (False when a sign is undecided; the pieces are then meaningless)."""
    n_win = windows.shape[0]
    qx = vx[st:en].copy()
    qy = vy[st:en].copy()
    qr = vr[st:en].copy()
    ql = elay[st:en].copy()
    qn = eneu[st:en].copy()
    qoff = np.array([0, en - st], dtype=np.int64)
    qwin = np.zeros((1, n_win), dtype=np.int64)
    # a ring gains at most one vertex per tie it is clipped by
    S = np.empty(en - st + windows.size)
    SG = np.empty(en - st + windows.size, dtype=np.int8)
    for w in range(n_win):
        nx = np.empty(qx.shape[0])
        ny = np.empty(qx.shape[0])
        nr = np.empty(qx.shape[0])
        nl = np.empty(qx.shape[0], dtype=np.int32)
        nn = np.empty(qx.shape[0], dtype=np.int32)
        noff = np.zeros(qoff.shape[0], dtype=np.int64)
        nwin = np.empty(qwin.shape, dtype=np.int64)
        npc = 0
        for p in range(qoff.shape[0] - 1):
            a0 = qoff[p]
            a1 = qoff[p + 1]
            for s in range(windows.shape[1]):
                if windows[w, s] < 0:
                    continue
                px, py, pr, pl, pn, ok = _winner_part_cert(pre, err, cell, windows, rep, above, w, s, qx[a0:a1],
                                                           qy[a0:a1], qr[a0:a1], ql[a0:a1], qn[a0:a1], layer, S,
                                                           SG)
                if not ok:
                    return qx, qy, qr, ql, qn, qoff, qwin, False
                m = px.shape[0]
                if m == 0:
                    continue
                v0 = noff[npc]
                nx = _grow(nx, v0 + m)
                ny = _grow(ny, v0 + m)
                nr = _grow(nr, v0 + m)
                nl = _grow(nl, v0 + m)
                nn = _grow(nn, v0 + m)
                noff = _grow(noff, npc + 2)
                nwin = _grow(nwin, npc + 1)
                nx[v0 : v0 + m] = px
                ny[v0 : v0 + m] = py
                nr[v0 : v0 + m] = pr
                nl[v0 : v0 + m] = pl
                nn[v0 : v0 + m] = pn
                nwin[npc] = qwin[p]
                nwin[npc, w] = s
                npc += 1
                noff[npc] = v0 + m
        qx, qy, qr, ql, qn = nx, ny, nr, nl, nn
        qoff = noff[: npc + 1].copy()
        qwin = nwin[:npc].copy()
    return qx, qy, qr, ql, qn, qoff, qwin, True


@njit(cache=True, nogil=True)
def split_cells_max_cert(pre, err, off, vx, vy, vr, elay, eneu, layer, windows, rep, above):
    """Certified :func:`relugeo.kernels.cpu.split_cells_max` (2-D polygons or 1-D intervals).

    ``err`` (k + 1, n) bounds the errors of the layer's cell maps, ``vr`` (V,)
    the vertices' (see the module's docstring); ``rep`` (C, n) int64 names,
    on each cell, a class of neurons whose pre-activations are equal there
    exactly (twins: the same weight row and bias; or zero on the whole cell, id
    n), and ``above`` (C, n) int8 marks with 1 the neurons positive inside each cell. Returns the children as
    ``split_cells_max`` does, with their vertex radii ``cr`` (V,) after ``cy``,
    and ``undecided`` (C,) uint8: cells with a sign the bounds cannot decide,
    which get no children here.
    """
    C = pre.shape[0]
    npieces = np.zeros(C, dtype=np.int64)
    nverts = np.zeros(C, dtype=np.int64)
    undecided = np.zeros(C, dtype=np.uint8)
    for cell in range(C):
        out = _max_pieces_cert(pre, err, cell, vx, vy, vr, elay, eneu, off[cell], off[cell + 1], layer, windows,
                               rep[cell], above[cell])
        if not out[7]:
            undecided[cell] = 1
            continue
        npieces[cell] = out[5].shape[0] - 1
        nverts[cell] = out[5][-1]
    piece_start = np.zeros(C + 1, dtype=np.int64)
    vert_start = np.zeros(C + 1, dtype=np.int64)
    for cell in range(C):
        piece_start[cell + 1] = piece_start[cell] + npieces[cell]
        vert_start[cell + 1] = vert_start[cell] + nverts[cell]
    NC = piece_start[C]
    V = vert_start[C]
    coff = np.zeros(NC + 1, dtype=np.int64)
    cx = np.empty(V)
    cy = np.empty(V)
    cr = np.empty(V)
    cl = np.empty(V, dtype=np.int32)
    cn = np.empty(V, dtype=np.int32)
    cparent = np.empty(NC, dtype=np.int64)
    cwin = np.empty((NC, windows.shape[0]), dtype=np.int64)
    for cell in range(C):
        if undecided[cell]:
            continue
        qx, qy, qr, ql, qn, qoff, qwin, _ = _max_pieces_cert(pre, err, cell, vx, vy, vr, elay, eneu, off[cell],
                                                             off[cell + 1], layer, windows, rep[cell], above[cell])
        p0 = piece_start[cell]
        v0 = vert_start[cell]
        nv = nverts[cell]
        cx[v0 : v0 + nv] = qx[:nv]
        cy[v0 : v0 + nv] = qy[:nv]
        cr[v0 : v0 + nv] = qr[:nv]
        cl[v0 : v0 + nv] = ql[:nv]
        cn[v0 : v0 + nv] = qn[:nv]
        for p in range(npieces[cell]):
            coff[p0 + p + 1] = v0 + qoff[p + 1]
            cparent[p0 + p] = cell
            cwin[p0 + p] = qwin[p]
    return coff, cx, cy, cr, cl, cn, cparent, cwin, undecided
