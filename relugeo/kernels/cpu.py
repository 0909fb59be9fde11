"""CPU kernels (numba njit, releasing the GIL).

Every kernel here has a twin of the same name in ``cuda.py`` with the same
semantics; both are tested against slow NumPy references in ``tests/``.

A kernel call runs on the calling thread. The engine gets its parallelism by
running independent batches of cells (subtrees, pieces of a point set) on a
pool of threads, not from parallel loops inside the kernels: on a shared
machine, thousands of short parallel regions measured slower than one thread,
and numba compiles parallel loops several times more slowly.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _pack_signs(z, n_words):
    n, m = z.shape
    out = np.zeros((n, n_words), dtype=np.uint64)
    for r in range(n):
        for j in range(m):
            if z[r, j] > 0.0:
                out[r, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
    return out


def pack_signs(z: np.ndarray, n_words: int | None = None) -> np.ndarray:
    """Pack the bits ``z > 0`` row by row into uint64 words.

    Parameters
    ----------
    z : ndarray of shape (N, M), float
    n_words : int, optional
        Words per row, at least ``ceil(M / 64)``; default exactly that (min 1).

    Returns
    -------
    ndarray of shape (N, n_words), dtype=np.uint64
        Bit ``j`` of row ``r`` is bit ``j % 64`` of word ``j // 64``.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    need = max(1, -(-z.shape[1] // 64))
    n_words = need if n_words is None else int(n_words)
    if n_words < need:
        raise ValueError(f"n_words must be at least {need} for {z.shape[1]} columns; got {n_words}")
    return _pack_signs(z, n_words)


# ---------------------------------------------------------------------------
# Splitting convex polygons by lines (2-D cells)
#
# A cell is a convex polygon given counter-clockwise by its vertices; edge j
# runs from vertex j to vertex j+1 and carries the (layer, neuron) that created
# it, or (-1, -1) for the domain boundary. A neuron's line on the cell is
# s(u) = a*u0 + b*u1 + c. A vertex is ON the line when |s| <= eps, with
# eps = tol * (|a|*U + |b|*U + |c|) and U the largest |u| of the cell's domain.
# The line CUTS the cell when one vertex has s > eps and another s < -eps.
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _line_eps(a, b, c, uscale, tol):
    return tol * ((abs(a) + abs(b)) * uscale + abs(c))


CHUNK = 32  # cells per work item: each item allocates one workspace


@njit(cache=True, nogil=True)
def _new_workspace(cap_v, cap_p, cap_k):
    """Double-buffered storage for splitting one ring by many lines.

    Slot 0 and slot 1 alternate as source and destination, line by line:
    vertex coordinates X, Y (2, cap_v), edge labels L, N (2, cap_v), ring
    offsets OFF (2, cap_p + 1), sides SID (2, cap_p, words) with one bit per
    line (bit j of word j // 64: the piece is on line j's positive side), and per-vertex
    values S and signs SG (cap_v,).
    """
    return (
        np.empty((2, cap_v)),
        np.empty((2, cap_v)),
        np.empty((2, cap_v), dtype=np.int32),
        np.empty((2, cap_v), dtype=np.int32),
        np.zeros((2, cap_p + 1), dtype=np.int64),
        np.zeros((2, cap_p, max(1, (cap_k + 63) // 64)), dtype=np.uint64),
        np.empty(cap_v),
        np.empty(cap_v, dtype=np.int8),
    )


@njit(cache=True, nogil=True)
def _grow_workspace(ws, cap_v, cap_p, cap_k):
    """``ws`` itself when it holds the capacities asked for, else a larger copy."""
    X, Y, L, N, OFF, SID, S, SG = ws
    v0 = X.shape[1]
    p0 = OFF.shape[1] - 1
    k0 = SID.shape[2] * 64
    if cap_v <= v0 and cap_p <= p0 and cap_k <= k0:
        return ws
    new = _new_workspace(max(cap_v, 2 * v0), max(cap_p, 2 * p0), max(cap_k, k0))
    new[0][:, :v0] = X
    new[1][:, :v0] = Y
    new[2][:, :v0] = L
    new[3][:, :v0] = N
    new[4][:, : p0 + 1] = OFF
    new[5][:, :p0, : SID.shape[2]] = SID
    return new


@njit(cache=True, nogil=True, inline="always")
def _split_ring(ws, vx, vy, elay, eneu, st, en, pre, cell, cuts, k, uscale, tol, layer):
    """Split the convex ring ``st:en`` by the lines of neurons ``cuts[:k]`` of ``cell``.

    The line of neuron ``i`` is ``pre[cell, 0, i] * u0 + pre[cell, 1, i] * u1 +
    pre[cell, 2, i] = 0``; the edges it creates are labelled ``(layer, i)``.
    Returns ``(ws, n_pieces, slot)``: the pieces are the rings
    ``OFF[slot, p]:OFF[slot, p + 1]`` of the workspace, and bit j of
    ``SID[slot, p]`` is set where piece p lies on the positive side of line j.

    Inlined where it is called, so that the splitting itself
    (:func:`_split_ring_fit`) is a function without calls, whose array
    arguments numba passes without reference counting; the workspace grows
    here, in the rare case that it is too small.
    """
    cap_v = 2 * (en - st) + 8
    cap_p = 2
    while True:
        if cap_v > ws[0].shape[1] or cap_p > ws[4].shape[1] - 1 or k > 64 * ws[5].shape[2]:
            ws = _grow_workspace(ws, cap_v, cap_p, k)
        npc = _split_ring_fit(ws, vx, vy, elay, eneu, st, en, pre, cell, cuts, k, uscale, tol, layer)
        if npc >= 0:
            return ws, npc, k & 1
        cap_v = 2 * ws[0].shape[1]
        cap_p = 2 * (ws[4].shape[1] - 1)


@njit(cache=True, nogil=True, error_model="numpy")
def _split_ring_fit(ws, vx, vy, elay, eneu, st, en, pre, cell, cuts, k, uscale, tol, layer):
    """:func:`_split_ring` in the workspace as it is: the number of pieces, or -1 when it is too small.

    The workspace must hold the ring (``2 * n + 8`` vertices, two pieces and
    ``k`` side bits), as :func:`_split_ring` makes sure. One return and no
    exception (its one division is by a nonzero difference): numba then
    passes the arrays without reference counting.
    """
    n = en - st
    X, Y, L, N, OFF, SID, S, SG = ws
    full = False
    for q in range(n):
        X[0, q] = vx[st + q]
        Y[0, q] = vy[st + q]
        L[0, q] = elay[st + q]
        N[0, q] = eneu[st + q]
    OFF[0, 0] = 0
    OFF[0, 1] = n
    for w in range(SID.shape[2]):
        SID[0, 0, w] = 0
    npc = 1
    for j in range(k):
        # every piece of m vertices cut in two: at most 2 m + 4 vertices and two pieces
        if full or 2 * OFF[j & 1, npc] + 4 * npc > X.shape[1] or 2 * npc > OFF.shape[1] - 1:
            full = True
            continue
        i = cuts[j]
        aj = pre[cell, 0, i]
        bj = pre[cell, 1, i]
        cj = pre[cell, 2, i]
        ej = _line_eps(aj, bj, cj, uscale, tol)
        src = j & 1
        dst = 1 - src
        nb = 0
        wv = 0
        OFF[dst, 0] = 0
        for p in range(npc):
            ps = OFF[src, p]
            m = OFF[src, p + 1] - ps
            has_pos = False
            has_neg = False
            for q in range(m):
                v = aj * X[src, ps + q] + bj * Y[src, ps + q] + cj
                S[q] = v
                if v > ej:
                    SG[q] = 1
                    has_pos = True
                elif v < -ej:
                    SG[q] = -1
                    has_neg = True
                else:
                    SG[q] = 0
            if not (has_pos and has_neg):
                for q in range(m):
                    X[dst, wv] = X[src, ps + q]
                    Y[dst, wv] = Y[src, ps + q]
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
            # two pieces: the positive side first, then the negative side
            for side in (1, -1):
                w0 = wv
                for q in range(m):
                    q1 = q + 1 if q + 1 < m else 0
                    g0 = SG[q] * side
                    g1 = SG[q1] * side
                    if g0 >= 0:
                        X[dst, wv] = X[src, ps + q]
                        Y[dst, wv] = Y[src, ps + q]
                        if g0 == 0 and g1 <= 0:
                            # leaves along the cutting line
                            L[dst, wv] = layer
                            N[dst, wv] = i
                        else:
                            L[dst, wv] = L[src, ps + q]
                            N[dst, wv] = N[src, ps + q]
                        wv += 1
                    if g0 * g1 < 0:
                        t = S[q] / (S[q] - S[q1])
                        x0 = X[src, ps + q]
                        y0 = Y[src, ps + q]
                        X[dst, wv] = x0 + t * (X[src, ps + q1] - x0)
                        Y[dst, wv] = y0 + t * (Y[src, ps + q1] - y0)
                        if g0 > 0:
                            # crossing to the far side: the new edge runs along the line
                            L[dst, wv] = layer
                            N[dst, wv] = i
                        else:
                            L[dst, wv] = L[src, ps + q]
                            N[dst, wv] = N[src, ps + q]
                        wv += 1
                if wv - w0 >= 3:
                    for w in range((j >> 6) + 1):
                        SID[dst, nb, w] = SID[src, p, w]
                    if j & 63 == 0:
                        SID[dst, nb, j >> 6] = 0
                    if side == 1:
                        SID[dst, nb, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
                    nb += 1
                    OFF[dst, nb] = wv
                else:
                    wv = w0
        npc = nb
    return -1 if full else npc


def _unpack_bits(words, k):
    return ((words[np.arange(k) >> 6] >> (np.arange(k) & 63).astype(np.uint64)) & np.uint64(1)).astype(np.uint8)


def split_polygon(vertices, labels, lines, uscale, tol=1e-10, layer=0):
    """Split one convex polygon by a sequence of lines (reference entry point).

    Parameters
    ----------
    vertices : ndarray of shape (n, 2), float64
        Counter-clockwise vertices.
    labels : ndarray of shape (n, 2), int32
        (layer, neuron) of the edge leaving each vertex; (-1, -1) on the boundary.
    lines : ndarray of shape (k, 3), float64
        Line j is ``lines[j, 0] * u0 + lines[j, 1] * u1 + lines[j, 2] = 0``;
        the edges it creates get the label ``(layer, j)``.
    uscale, tol : float
        Tolerance scale and relative tolerance (see the module notes).

    Returns
    -------
    pieces : list of (vertices (m, 2), labels (m, 2), sides (k,) uint8)
        ``sides[j]`` is 1 where the piece lies on the positive side of line j.
    """
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    lab = np.ascontiguousarray(labels, dtype=np.int32)
    lines = np.ascontiguousarray(lines, dtype=np.float64).reshape(-1, 3)
    k = lines.shape[0]
    pre = np.ascontiguousarray(lines.T[None])
    ws = _new_workspace(16, 4, max(k, 1))
    ws, npc, slot = _split_ring(ws, v[:, 0].copy(), v[:, 1].copy(), lab[:, 0].copy(), lab[:, 1].copy(), 0,
                                len(v), pre, 0, np.arange(k, dtype=np.int32), k, float(uscale), float(tol),
                                layer)
    X, Y, L, N, OFF, SID = ws[:6]
    out = []
    for p in range(npc):
        a, b = OFF[slot, p], OFF[slot, p + 1]
        out.append((np.stack([X[slot, a:b], Y[slot, a:b]], 1), np.stack([L[slot, a:b], N[slot, a:b]], 1),
                    _unpack_bits(SID[slot, p], k)))
    return out


@njit(cache=True, nogil=True, inline="always")
def _range_on_ring(a, b, c, vx, vy, st, en):
    """Largest and smallest value of ``a x + b y + c`` (float64) at the ring vertices ``st .. en - 1``."""
    top = -np.inf
    bottom = np.inf
    for q in range(st, en):
        v = a * vx[q] + b * vy[q] + c
        top = max(top, v)
        bottom = min(bottom, v)
    return top, bottom


@njit(cache=True, nogil=True, inline="always")
def _ring_box(vx, vy, st, en):
    """The box around the ring ``st .. en - 1``: its centre ``cx, cy``, half-widths ``hx, hy`` and the
    largest coordinates ``ax, ay`` in absolute value."""
    xmin = xmax = vx[st]
    ymin = ymax = vy[st]
    for q in range(st + 1, en):
        xmin = min(xmin, vx[q])
        xmax = max(xmax, vx[q])
        ymin = min(ymin, vy[q])
        ymax = max(ymax, vy[q])
    return (0.5 * (xmin + xmax), 0.5 * (ymin + ymax), 0.5 * (xmax - xmin), 0.5 * (ymax - ymin),
            max(abs(xmin), abs(xmax)), max(abs(ymin), abs(ymax)))


@njit(cache=True, nogil=True)
def _cell_signs(pre, cell, vx, vy, st, en, uscale, tol, bits, cuts, hi, lo, slopes):
    """Classify every neuron on one cell: write its bit, list the cutting ones.

    bits[i] = 1 when neuron i is positive on the whole cell (s > eps at some
    vertex and no vertex below -eps); 0 when it is non-positive there; cut
    neurons are written to ``cuts``. A neuron whose slope is 1 is linear: it
    never cuts and its bit stays 0. ``hi``, ``lo`` are scratch of shape (n,).
    Returns the number of cutting neurons.

    Most neurons are decided by their range over the box around the ring
    (above ``eps`` or below it by a margin of 1e-13 of their magnitude there,
    hundreds of times any rounding error of the two evaluations); only the
    others are evaluated vertex by vertex. The bits are those of evaluating
    every neuron at every vertex.
    """
    n = pre.shape[2]
    ga = pre[cell, 0]
    gb = pre[cell, 1]
    gc = pre[cell, 2]
    cx, cy, hx, hy, ax, ay = _ring_box(vx, vy, st, en)
    for i in range(n):
        a = abs(ga[i])
        b = abs(gb[i])
        c = abs(gc[i])
        mid = ga[i] * cx + gb[i] * cy + gc[i]
        rad = a * hx + b * hy
        eps = _line_eps(ga[i], gb[i], gc[i], uscale, tol)
        margin = 1e-13 * (a * ax + b * ay + c)
        hi[i] = mid + rad - eps + margin  # < 0: no vertex above eps
        lo[i] = mid - rad - eps - margin  # > 0: every vertex above eps
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
        eps = _line_eps(ga[i], gb[i], gc[i], uscale, tol)
        pos = top > eps
        if pos and bottom < -eps:
            cuts[ncut] = i
            ncut += 1
            bits[i] = 0
        else:
            bits[i] = 1 if pos else 0
    return ncut


@njit(cache=True, nogil=True)
def _mask_row(pre, cell, bits, slopes, masked):
    for r in range(pre.shape[1]):
        for i in range(pre.shape[2]):
            v = pre[cell, r, i]
            masked[cell, r, i] = v if bits[cell, i] == 1 else slopes[i] * v


@njit(cache=True, nogil=True)
def split_cells_count(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes):
    """Pass 1 of splitting a batch of cells by one layer's neurons.

    Parameters
    ----------
    pre : ndarray of shape (C, 3, n), float64
        Pre-activation map of the layer on each cell: ``z_i(u) = pre[c, 0, i] * u0
        + pre[c, 1, i] * u1 + pre[c, 2, i]``.
    off : ndarray of shape (C + 1,), int64
        Ring offsets into ``vx, vy, elay, eneu`` (each of shape (V,)).
    uscale : ndarray of shape (C,), float64
        Coordinate scale of each cell's domain (for the on-line tolerance).
    slopes : ndarray of shape (n,), float64
        Negative slope of each neuron's activation; 1 marks a linear neuron
        (a pass-through), which never cuts.

    Returns
    -------
    bits : ndarray of shape (C, n), uint8   side of every non-cutting neuron
    cuts : ndarray of shape (C, n), int32   cutting neurons, ``ncut[c]`` per row
    ncut : ndarray of shape (C,), int64
    npieces, nverts : ndarray of shape (C,), int64   children and their vertices
    masked : ndarray of shape (C, 3, n), float64
        ``pre`` times the activation slope of each neuron with the cutting
        neurons taken as inactive: the parent's activations before correction.
    """
    C = pre.shape[0]
    n = pre.shape[2]
    bits = np.empty((C, n), dtype=np.uint8)
    cuts = np.empty((C, n), dtype=np.int32)
    ncut = np.zeros(C, dtype=np.int64)
    npieces = np.ones(C, dtype=np.int64)
    nverts = np.empty(C, dtype=np.int64)
    masked = np.empty_like(pre)
    for ch in range((C + CHUNK - 1) // CHUNK):
        ws = _new_workspace(64, 8, 8)
        hi = np.empty(n)
        lo = np.empty(n)
        for cell in range(ch * CHUNK, min(C, (ch + 1) * CHUNK)):
            st = off[cell]
            en = off[cell + 1]
            k = _cell_signs(pre, cell, vx, vy, st, en, uscale[cell], tol, bits[cell], cuts[cell], hi, lo, slopes)
            ncut[cell] = k
            _mask_row(pre, cell, bits, slopes, masked)
            if k == 0:
                nverts[cell] = en - st
            else:
                ws, npc, slot = _split_ring(ws, vx, vy, elay, eneu, st, en, pre, cell, cuts[cell], k,
                                            uscale[cell], tol, layer)
                npieces[cell] = npc
                nverts[cell] = ws[4][slot, npc]
    return bits, cuts, ncut, npieces, nverts, masked


@njit(cache=True, nogil=True)
def _finish_child(child, cell, pre, bits, cuts, k, active, slopes, pat, bit_offset, base, wt, cpat, cnext):
    """Pattern and next-layer map of one child.

    The parent's ``base`` map (its cutting neurons counted as inactive) is
    corrected by ``(1 - slopes[i]) * pre[cell, :, i] * W_next[:, i]`` for each cutting
    neuron ``i`` that is active on the child, so a child costs a few rank-1
    updates instead of a full matrix product.
    """
    rows = pre.shape[1]
    n_next = wt.shape[1]
    for w in range(pat.shape[1]):
        cpat[child, w] = pat[cell, w]
    for i in range(pre.shape[2]):
        if bits[cell, i] == 1:
            g = bit_offset + i
            cpat[child, g >> 6] |= np.uint64(1) << np.uint64(g & 63)
    for r in range(rows):
        for o in range(n_next):
            cnext[child, r, o] = base[cell, r, o]
    for j in range(k):
        if (active[j >> 6] >> np.uint64(j & 63)) & np.uint64(1) == 0:
            continue
        i = cuts[cell, j]
        g = bit_offset + i
        cpat[child, g >> 6] |= np.uint64(1) << np.uint64(g & 63)
        for r in range(rows):
            coef = (1.0 - slopes[i]) * pre[cell, r, i]
            if coef != 0.0:
                for o in range(n_next):
                    cnext[child, r, o] += coef * wt[i, o]


@njit(cache=True, nogil=True)
def split_cells_write(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes, pat, bit_offset,
                      bits, cuts, ncut, piece_start, vert_start, base, wt,
                      coff, cx, cy, cl, cn, cpat, cnext, cparent):
    """Pass 2: write the children counted by :func:`split_cells_count`.

    ``piece_start``/``vert_start`` (shape (C + 1,)) are exclusive prefix sums of
    the counts. ``base`` (C, 3, n_next) is the next layer's map on each parent
    with its cutting neurons taken as inactive, ``wt`` (n, n_next) the next
    layer's weight transposed. Children get the parent's packed pattern plus
    this layer's bits at ``bit_offset`` and the next layer's map ``cnext``
    (NC, 3, n_next).
    """
    C = pre.shape[0]
    no_cut = np.zeros(1, dtype=np.uint64)
    for ch in range((C + CHUNK - 1) // CHUNK):
        ws = _new_workspace(64, 8, 8)
        for cell in range(ch * CHUNK, min(C, (ch + 1) * CHUNK)):
            st = off[cell]
            en = off[cell + 1]
            k = ncut[cell]
            p0 = piece_start[cell]
            w0 = vert_start[cell]
            if k == 0:
                m = en - st
                cx[w0 : w0 + m] = vx[st:en]
                cy[w0 : w0 + m] = vy[st:en]
                cl[w0 : w0 + m] = elay[st:en]
                cn[w0 : w0 + m] = eneu[st:en]
                coff[p0 + 1] = w0 + m
                cparent[p0] = cell
                _finish_child(p0, cell, pre, bits, cuts, 0, no_cut, slopes, pat, bit_offset, base, wt, cpat,
                              cnext)
                continue
            ws, npc, slot = _split_ring(ws, vx, vy, elay, eneu, st, en, pre, cell, cuts[cell], k,
                                        uscale[cell], tol, layer)
            X, Y, L, N, OFF, SID = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
            m = OFF[slot, npc]
            for q in range(m):
                cx[w0 + q] = X[slot, q]
                cy[w0 + q] = Y[slot, q]
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
def split_cell_once(pre, vx, vy, elay, eneu, uscale, tol, layer, slopes, pat, bit_offset):
    """Split one cell (the ring ``vx[:], vy[:]``, map ``pre`` (1, 3, n)) in a single pass, its children
    written without the next layer's map.

    :func:`split_cells_count` then :func:`split_cells_write` with a ``wt`` of
    width 0, with the same children, but the cell is cut once instead of
    twice: for a domain cut by a whole first layer, that cut is a large share
    of the partition.

    Returns
    -------
    bits, cuts, ncut, masked
        As :func:`split_cells_count` (with C = 1).
    coff, cx, cy, cl, cn, cpat, cparent
        As :func:`split_cells_write` writes them.
    """
    n = pre.shape[2]
    en = vx.shape[0]
    bits = np.empty((1, n), dtype=np.uint8)
    cuts = np.empty((1, n), dtype=np.int32)
    ncut = np.zeros(1, dtype=np.int64)
    masked = np.empty_like(pre)
    hi = np.empty(n)
    lo = np.empty(n)
    k = _cell_signs(pre, 0, vx, vy, 0, en, uscale[0], tol, bits[0], cuts[0], hi, lo, slopes)
    ncut[0] = k
    _mask_row(pre, 0, bits, slopes, masked)
    ws = _new_workspace(64, 8, 8)
    ws, npc, slot = _split_ring(ws, vx, vy, elay, eneu, 0, en, pre, 0, cuts[0], k, uscale[0], tol, layer)
    coff, cx, cy, cl, cn, cpat, cparent = _lone_cell_children(ws, slot, npc, pre, bits, cuts, k, slopes, pat,
                                                              bit_offset)
    return bits, cuts, ncut, masked, coff, cx, cy, cl, cn, cpat, cparent


@njit(cache=True, nogil=True)
def _lone_cell_children(ws, slot, npc, pre, bits, cuts, k, slopes, pat, bit_offset):
    """The ``npc`` pieces of one cell (map ``pre`` (1, 3, n)), split in the workspace ``ws`` into
    ``slot``, as children without the next layer's map: ``(coff, cx, cy, cl, cn, cpat, cparent)``."""
    X, Y, L, N, OFF, SID = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
    m = OFF[slot, npc]
    coff = OFF[slot, : npc + 1].copy()
    cpat = np.empty((npc, pat.shape[1]), dtype=np.uint64)
    base = np.empty((1, pre.shape[1], 0))
    wt = np.empty((pre.shape[2], 0))
    cnext = np.empty((npc, pre.shape[1], 0))
    for p in range(npc):
        _finish_child(p, 0, pre, bits, cuts, k, SID[slot, p], slopes, pat, bit_offset, base, wt, cpat, cnext)
    return (coff, X[slot, :m].copy(), Y[slot, :m].copy(), L[slot, :m].copy(), N[slot, :m].copy(), cpat,
            np.zeros(npc, dtype=np.int64))


@njit(cache=True, nogil=True)
def children_maps(cpat, cparent, pre, cuts, ncut, slopes, bit_offset, base, wt, cnext):
    """The next layer's map of children written without one (``split_cells_write`` or
    ``split_intervals_write`` called with a ``wt`` of width 0).

    Child ``c`` of parent ``cparent[c]`` gets exactly what ``_finish_child``
    would have written: the parent's ``base`` map plus, in the order of
    ``cuts``, the rank-1 term of each cutting neuron that is active on the
    child (its bit set in ``cpat``; cutting neurons carry no bit otherwise).
    ``cnext`` has shape (NC, rows, n_next). Lets the walk write the children
    of a cell cut into very many pieces a group at a time.
    """
    NC = cpat.shape[0]
    rows = pre.shape[1]
    n_next = wt.shape[1]
    for c in range(NC):
        cell = cparent[c]
        for r in range(rows):
            for o in range(n_next):
                cnext[c, r, o] = base[cell, r, o]
        for j in range(ncut[cell]):
            i = cuts[cell, j]
            g = bit_offset + i
            if (cpat[c, g >> 6] >> np.uint64(g & 63)) & np.uint64(1) == 0:
                continue
            for r in range(rows):
                coef = (1.0 - slopes[i]) * pre[cell, r, i]
                if coef != 0.0:
                    for o in range(n_next):
                        cnext[c, r, o] += coef * wt[i, o]


@njit(cache=True, nogil=True)
def polygon_area_centroid(off, vx, vy):
    """Shoelace area and centroid of every ring: (R,) and (R, 2) float64.

    Coordinates are taken relative to each ring's first vertex, so tiny
    polygons far from the origin keep their precision.
    """
    R = off.shape[0] - 1
    area = np.empty(R)
    cen = np.empty((R, 2))
    for r in range(R):
        st = off[r]
        en = off[r + 1]
        x0 = vx[st]
        y0 = vy[st]
        a2 = 0.0
        cxs = 0.0
        cys = 0.0
        for q in range(st, en):
            q1 = q + 1 if q + 1 < en else st
            xa = vx[q] - x0
            ya = vy[q] - y0
            xb = vx[q1] - x0
            yb = vy[q1] - y0
            cr = xa * yb - xb * ya
            a2 += cr
            cxs += (xa + xb) * cr
            cys += (ya + yb) * cr
        area[r] = 0.5 * a2
        if a2 != 0.0:
            cen[r, 0] = x0 + cxs / (3.0 * a2)
            cen[r, 1] = y0 + cys / (3.0 * a2)
        else:
            cen[r, 0] = x0
            cen[r, 1] = y0
    return area, cen


# ---------------------------------------------------------------------------
# Splitting intervals by points (1-D cells)
#
# A 1-D cell is a ring of exactly two entries (t0 < t1); the label of entry j is
# the (layer, neuron) whose breakpoint is that end (-1 for the domain's ends).
# A neuron is s(t) = a*t + c; it cuts the cell when s(t0) and s(t1) lie beyond
# eps on opposite sides, eps = tol * (|a|*U + |c|).
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _interval_cuts(pre, cell, t0, t1, uscale, tol, bits, cuts, roots, slopes):
    """Classify every neuron on the interval [t0, t1] of ``cell``.

    Writes the bits of the non-cutting neurons, the cutting neurons sorted by
    their breakpoint into ``cuts`` and the breakpoints into ``roots``.
    Breakpoints closer than ``tol * uscale`` are one point (coinciding
    neurons). Returns ``(k, groups)``: cutting neurons and distinct points.
    """
    n = pre.shape[2]
    k = 0
    for i in range(n):
        if slopes[i] == 1.0:
            bits[i] = 0
            continue
        a = pre[cell, 0, i]
        c = pre[cell, 1, i]
        eps = tol * (abs(a) * uscale + abs(c))
        s0 = a * t0 + c
        s1 = a * t1 + c
        if (s0 > eps and s1 < -eps) or (s0 < -eps and s1 > eps):
            cuts[k] = i
            roots[k] = -c / a
            k += 1
            bits[i] = 0
        else:
            bits[i] = 1 if (s0 > eps or s1 > eps) else 0
    if k == 0:
        return 0, 0
    order = np.argsort(roots[:k])
    sc = cuts[:k][order]
    sr = roots[:k][order]
    cuts[:k] = sc
    roots[:k] = sr
    groups = 1
    for j in range(1, k):
        if roots[j] - roots[j - 1] > tol * uscale:
            groups += 1
    return k, groups


@njit(cache=True, nogil=True)
def split_intervals_count(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes):
    """Pass 1 for intervals; same outputs as :func:`split_cells_count`, with
    each row of ``cuts`` sorted by breakpoint."""
    C = pre.shape[0]
    n = pre.shape[2]
    bits = np.empty((C, n), dtype=np.uint8)
    cuts = np.empty((C, n), dtype=np.int32)
    ncut = np.zeros(C, dtype=np.int64)
    npieces = np.ones(C, dtype=np.int64)
    nverts = np.empty(C, dtype=np.int64)
    masked = np.empty_like(pre)
    for cell in range(C):
        roots = np.empty(n)
        k, groups = _interval_cuts(pre, cell, vx[off[cell]], vx[off[cell] + 1], uscale[cell], tol, bits[cell],
                                   cuts[cell], roots, slopes)
        ncut[cell] = k
        npieces[cell] = groups + 1
        nverts[cell] = 2 * (groups + 1)
        _mask_row(pre, cell, bits, slopes, masked)
    return bits, cuts, ncut, npieces, nverts, masked


@njit(cache=True, nogil=True)
def split_intervals_write(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes, pat, bit_offset,
                          bits, cuts, ncut, piece_start, vert_start, base, wt,
                          coff, cx, cy, cl, cn, cpat, cnext, cparent):
    """Pass 2 for intervals; same contract as :func:`split_cells_write`.

    Neurons whose breakpoints coincide end their pieces at the same point; an
    end shared by several neurons is labelled with the first of them.
    """
    C = pre.shape[0]
    for cell in range(C):
        st = off[cell]
        k = ncut[cell]
        p0 = piece_start[cell]
        w0 = vert_start[cell]
        roots = np.empty(k)
        for j in range(k):
            i = cuts[cell, j]
            roots[j] = -pre[cell, 1, i] / pre[cell, 0, i]
        # group g holds the sorted cuts first[g]:first[g + 1]
        first = np.empty(k + 1, dtype=np.int64)
        groups = 0
        for j in range(k):
            if j == 0 or roots[j] - roots[j - 1] > tol * uscale[cell]:
                first[groups] = j
                groups += 1
        first[groups] = k
        active = np.empty(max(1, (k + 63) // 64), dtype=np.uint64)
        for p in range(groups + 1):
            child = p0 + p
            w = w0 + 2 * p
            if p == 0:
                cx[w] = vx[st]
                cl[w] = elay[st]
                cn[w] = eneu[st]
            else:
                cx[w] = roots[first[p - 1]]
                cl[w] = layer
                cn[w] = cuts[cell, first[p - 1]]
            if p == groups:
                cx[w + 1] = vx[st + 1]
                cl[w + 1] = elay[st + 1]
                cn[w + 1] = eneu[st + 1]
            else:
                cx[w + 1] = roots[first[p]]
                cl[w + 1] = layer
                cn[w + 1] = cuts[cell, first[p]]
            cy[w] = 0.0
            cy[w + 1] = 0.0
            coff[child + 1] = w + 2
            cparent[child] = cell
            # the child lies right of the breakpoints of the first p groups
            active[:] = 0
            for j in range(k):
                right = j < first[p]
                if (pre[cell, 0, cuts[cell, j]] > 0.0) == right:
                    active[j >> 6] |= np.uint64(1) << np.uint64(j & 63)
            _finish_child(child, cell, pre, bits, cuts, k, active, slopes, pat, bit_offset, base, wt,
                          cpat, cnext)
    return None


# ---------------------------------------------------------------------------
# Splitting cells by the ties of max layers (max-pooling)
#
# A max layer's window w holds candidate neurons windows[w, s] (-1 is padding).
# On a cell, candidate s wins where z_s - z_t >= 0 for every other candidate t;
# the tie line of (s, t) is classified like a neuron's line (cut / positive /
# negative, same eps), and where z_s - z_t is zero on the whole cell the lower
# slot wins. Edges made by a tie are labelled (layer, w).
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _keep_positive(px, py, pl, pn, a, b, c, eps, layer, label):
    """The part of a convex ring where ``a*x + b*y + c >= 0`` (vertices within ``eps`` lie on the line)."""
    m = px.shape[0]
    s = np.empty(m)
    g = np.empty(m, dtype=np.int8)
    for q in range(m):
        v = a * px[q] + b * py[q] + c
        s[q] = v
        g[q] = 1 if v > eps else (-1 if v < -eps else 0)
    ox = np.empty(2 * m)
    oy = np.empty(2 * m)
    ol = np.empty(2 * m, dtype=np.int32)
    on = np.empty(2 * m, dtype=np.int32)
    w = 0
    for q in range(m):
        q1 = q + 1 if q + 1 < m else 0
        g0 = g[q]
        g1 = g[q1]
        if g0 >= 0:
            ox[w] = px[q]
            oy[w] = py[q]
            if g0 == 0 and g1 <= 0:
                ol[w] = layer
                on[w] = label
            else:
                ol[w] = pl[q]
                on[w] = pn[q]
            w += 1
        if g0 * g1 < 0:
            t = s[q] / (s[q] - s[q1])
            ox[w] = px[q] + t * (px[q1] - px[q])
            oy[w] = py[q] + t * (py[q1] - py[q])
            if g0 > 0:
                ol[w] = layer
                on[w] = label
            else:
                ol[w] = pl[q]
                on[w] = pn[q]
            w += 1
    return ox[:w], oy[:w], ol[:w], on[:w]


@njit(cache=True, nogil=True)
def _tie_side(pre, cell, i, j, px, py, two_d, uscale, tol):
    """Where ``z_i - z_j`` stands on a ring: 2 cut, 1 positive, -1 negative, 0 zero throughout.

    Returns the side and the line's coefficients and eps.
    """
    a = pre[cell, 0, i] - pre[cell, 0, j]
    if two_d:
        b = pre[cell, 1, i] - pre[cell, 1, j]
        c = pre[cell, 2, i] - pre[cell, 2, j]
    else:
        b = 0.0
        c = pre[cell, 1, i] - pre[cell, 1, j]
    eps = _line_eps(a, b, c, uscale, tol)
    pos = False
    neg = False
    for q in range(px.shape[0]):
        v = a * px[q] + b * py[q] + c
        if v > eps:
            pos = True
        elif v < -eps:
            neg = True
    side = 2 if (pos and neg) else (1 if pos else (-1 if neg else 0))
    return side, a, b, c, eps


@njit(cache=True, nogil=True)
def _winner_part(pre, cell, windows, w, s, px, py, pl, pn, two_d, uscale, tol, layer):
    """The part of a ring where slot ``s`` of window ``w`` wins (fewer than 2 (1-D) or 3 (2-D) vertices: none)."""
    i = windows[w, s]
    for t in range(windows.shape[1]):
        j = windows[w, t]
        if t == s or j < 0:
            continue
        side, a, b, c, eps = _tie_side(pre, cell, i, j, px, py, two_d, uscale, tol)
        if side == -1 or (side == 0 and t < s):
            return px[:0], py[:0], pl[:0], pn[:0]
        if side == 2:
            if two_d:
                px, py, pl, pn = _keep_positive(px, py, pl, pn, a, b, c, eps, layer, w)
                if px.shape[0] < 3:
                    return px[:0], py[:0], pl[:0], pn[:0]
            else:
                root = -c / a
                px = px.copy()
                pl = pl.copy()
                pn = pn.copy()
                if a > 0.0:
                    px[0] = root
                    pl[0] = layer
                    pn[0] = w
                else:
                    px[1] = root
                    pl[1] = layer
                    pn[1] = w
    return px, py, pl, pn


@njit(cache=True, nogil=True)
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty((max(need, 2 * a.shape[0]),) + a.shape[1:], dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _max_pieces(pre, cell, vx, vy, elay, eneu, st, en, uscale, tol, layer, windows):
    """The pieces of one cell, window after window: rings (qx, qy, ql, qn, qoff) and winners qwin (P, W)."""
    two_d = pre.shape[1] == 3
    n_win = windows.shape[0]
    qx = vx[st:en].copy()
    qy = vy[st:en].copy()
    ql = elay[st:en].copy()
    qn = eneu[st:en].copy()
    qoff = np.array([0, en - st], dtype=np.int64)
    qwin = np.zeros((1, n_win), dtype=np.int64)
    for w in range(n_win):
        nx = np.empty(qx.shape[0])
        ny = np.empty(qx.shape[0])
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
                px, py, pl, pn = _winner_part(pre, cell, windows, w, s, qx[a0:a1], qy[a0:a1], ql[a0:a1],
                                              qn[a0:a1], two_d, uscale, tol, layer)
                m = px.shape[0]
                if m < (3 if two_d else 2) or (not two_d and px[1] <= px[0]):
                    continue
                v0 = noff[npc]
                nx = _grow(nx, v0 + m)
                ny = _grow(ny, v0 + m)
                nl = _grow(nl, v0 + m)
                nn = _grow(nn, v0 + m)
                noff = _grow(noff, npc + 2)
                nwin = _grow(nwin, npc + 1)
                nx[v0 : v0 + m] = px
                ny[v0 : v0 + m] = py
                nl[v0 : v0 + m] = pl
                nn[v0 : v0 + m] = pn
                nwin[npc] = qwin[p]
                nwin[npc, w] = s
                npc += 1
                noff[npc] = v0 + m
        qx, qy, ql, qn = nx, ny, nl, nn
        qoff = noff[: npc + 1].copy()
        qwin = nwin[:npc].copy()
    return qx, qy, ql, qn, qoff, qwin


@njit(cache=True, nogil=True)
def split_cells_max(pre, off, vx, vy, elay, eneu, uscale, tol, layer, windows):
    """Split cells (2-D polygons or 1-D intervals) by the ties of a max layer.

    Two passes over the cells: one counts each cell's pieces and
    vertices, the other writes them at the prefix sums of the counts.

    Parameters
    ----------
    pre : ndarray of shape (C, k + 1, n), float64   the max layer's pre-activations on each cell
    off, vx, vy, elay, eneu : the cells' rings (see ``split_cells_count``)
    windows : ndarray of shape (W, m), int64        candidate neurons per window, -1 padding

    Returns
    -------
    coff : (NC + 1,) int64; cx, cy : (V,) float64; cl, cn : (V,) int32   children's rings
    cparent : (NC,) int64   parent cell of each child
    cwin : (NC, W) int64    winning slot of every window on each child
    """
    C = pre.shape[0]
    npieces = np.zeros(C, dtype=np.int64)
    nverts = np.zeros(C, dtype=np.int64)
    for cell in range(C):
        qoff = _max_pieces(pre, cell, vx, vy, elay, eneu, off[cell], off[cell + 1], uscale[cell], tol, layer,
                           windows)[4]
        npieces[cell] = qoff.shape[0] - 1
        nverts[cell] = qoff[-1]
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
    cl = np.empty(V, dtype=np.int32)
    cn = np.empty(V, dtype=np.int32)
    cparent = np.empty(NC, dtype=np.int64)
    cwin = np.empty((NC, windows.shape[0]), dtype=np.int64)
    for cell in range(C):
        qx, qy, ql, qn, qoff, qwin = _max_pieces(pre, cell, vx, vy, elay, eneu, off[cell], off[cell + 1],
                                                 uscale[cell], tol, layer, windows)
        p0 = piece_start[cell]
        v0 = vert_start[cell]
        nv = nverts[cell]
        cx[v0 : v0 + nv] = qx[:nv]
        cy[v0 : v0 + nv] = qy[:nv]
        cl[v0 : v0 + nv] = ql[:nv]
        cn[v0 : v0 + nv] = qn[:nv]
        for p in range(npieces[cell]):
            coff[p0 + p + 1] = v0 + qoff[p + 1]
            cparent[p0 + p] = cell
            cwin[p0 + p] = qwin[p]
    return coff, cx, cy, cl, cn, cparent, cwin


# ---------------------------------------------------------------------------
# Decision boundaries inside regions
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _clip_halfplane(px, py, plab, a, b, c, lab):
    """Keep the part of a convex ring where a*x + b*y + c >= 0; new edges get ``lab``."""
    m = px.shape[0]
    ox = np.empty(m + 2)
    oy = np.empty(m + 2)
    ol = np.empty(m + 2, dtype=np.int64)
    w = 0
    for q in range(m):
        q1 = q + 1 if q + 1 < m else 0
        s0 = a * px[q] + b * py[q] + c
        s1 = a * px[q1] + b * py[q1] + c
        if s0 >= 0.0:
            ox[w] = px[q]
            oy[w] = py[q]
            ol[w] = lab if (s0 == 0.0 and s1 < 0.0) else plab[q]
            w += 1
        if (s0 > 0.0 and s1 < 0.0) or (s0 < 0.0 and s1 > 0.0):
            t = s0 / (s0 - s1)
            ox[w] = px[q] + t * (px[q1] - px[q])
            oy[w] = py[q] + t * (py[q1] - py[q])
            ol[w] = lab if s0 > 0.0 else plab[q]
            w += 1
    return ox[:w], oy[:w], ol[:w]


@njit(cache=True, nogil=True)
def decision_boundary_2d(off, vx, vy, maps):
    """Segments where the argmax of the logits changes, region by region.

    Parameters
    ----------
    off : ndarray of shape (R + 1,), int64; vx, vy : ndarray of shape (V,)
        Region rings (convex, counter-clockwise).
    maps : ndarray of shape (R, 3, n_out), float64
        Logits on each region: ``L(u) = maps[r, 0] * u0 + maps[r, 1] * u1 + maps[r, 2]``.
        A single logit (n_out = 1) is read as the two classes ``[0, L]``.

    Returns
    -------
    seg : ndarray of shape (S, 2, 2), float64   segment ends in slice coordinates
    region : ndarray of shape (S,), int64       region holding each segment
    classes : ndarray of shape (S, 2), int64    the two classes tied along it
    """
    R = off.shape[0] - 1
    n_out = maps.shape[2]
    C = 2 if n_out == 1 else n_out
    seg = np.empty((16, 2, 2))
    reg = np.empty(16, dtype=np.int64)
    cls = np.empty((16, 2), dtype=np.int64)
    ns = 0
    L = np.empty((3, C))
    for r in range(R):
        st = off[r]
        en = off[r + 1]
        if n_out == 1:
            L[:, 0] = 0.0
            L[:, 1] = maps[r, :, 0]
        else:
            L[:, :] = maps[r]
        first = -1
        mixed = False
        for q in range(st, en):
            best = 0
            bv = L[0, 0] * vx[q] + L[1, 0] * vy[q] + L[2, 0]
            for c in range(1, C):
                v = L[0, c] * vx[q] + L[1, c] * vy[q] + L[2, c]
                if v > bv:
                    bv = v
                    best = c
            if first < 0:
                first = best
            elif best != first:
                mixed = True
        if not mixed:
            continue
        for c in range(C):
            px = vx[st:en].copy()
            py = vy[st:en].copy()
            pl = np.full(en - st, -1, dtype=np.int64)
            for d in range(C):
                if d == c or px.shape[0] < 3:
                    continue
                px, py, pl = _clip_halfplane(
                    px, py, pl, L[0, c] - L[0, d], L[1, c] - L[1, d], L[2, c] - L[2, d], d
                )
            m = px.shape[0]
            if m < 3:
                continue
            for q in range(m):
                d = pl[q]
                if d > c:
                    q1 = q + 1 if q + 1 < m else 0
                    if px[q] == px[q1] and py[q] == py[q1]:
                        continue
                    if ns == seg.shape[0]:
                        seg2 = np.empty((2 * ns, 2, 2))
                        seg2[:ns] = seg
                        seg = seg2
                        reg2 = np.empty(2 * ns, dtype=np.int64)
                        reg2[:ns] = reg
                        reg = reg2
                        cls2 = np.empty((2 * ns, 2), dtype=np.int64)
                        cls2[:ns] = cls
                        cls = cls2
                    seg[ns, 0, 0] = px[q]
                    seg[ns, 0, 1] = py[q]
                    seg[ns, 1, 0] = px[q1]
                    seg[ns, 1, 1] = py[q1]
                    reg[ns] = r
                    cls[ns, 0] = c
                    cls[ns, 1] = d
                    ns += 1
    return seg[:ns].copy(), reg[:ns].copy(), cls[:ns].copy()


@njit(cache=True, nogil=True)
def decision_boundary_1d(off, vx, maps):
    """Points where the argmax of the logits changes along 1-D regions.

    ``maps`` has shape (R, 2, n_out): ``L(t) = maps[r, 0] * t + maps[r, 1]``; a
    single logit is read as the classes ``[0, L]``. Returns ``t`` (S,),
    ``region`` (S,) int64 and ``classes`` (S, 2) int64 (class before, after).
    """
    R = off.shape[0] - 1
    n_out = maps.shape[2]
    C = 2 if n_out == 1 else n_out
    ts = np.empty(16)
    reg = np.empty(16, dtype=np.int64)
    cls = np.empty((16, 2), dtype=np.int64)
    ns = 0
    sl = np.empty(C)
    of = np.empty(C)
    for r in range(R):
        t0 = vx[off[r]]
        t1 = vx[off[r] + 1]
        if n_out == 1:
            sl[0] = 0.0
            of[0] = 0.0
            sl[1] = maps[r, 0, 0]
            of[1] = maps[r, 1, 0]
        else:
            sl[:] = maps[r, 0]
            of[:] = maps[r, 1]
        # class on top just right of t0: largest value, ties to the larger slope
        cur = 0
        for c in range(1, C):
            vc = sl[c] * t0 + of[c]
            vb = sl[cur] * t0 + of[cur]
            if vc > vb or (vc == vb and sl[c] > sl[cur]):
                cur = c
        t = t0
        while True:
            nxt = -1
            tn = t1
            for d in range(C):
                if sl[d] > sl[cur]:
                    td = (of[cur] - of[d]) / (sl[d] - sl[cur])
                    if td < tn and td >= t:
                        tn = td
                        nxt = d
            if nxt < 0:
                break
            if tn > t0:
                if ns == ts.shape[0]:
                    ts2 = np.empty(2 * ns)
                    ts2[:ns] = ts
                    ts = ts2
                    reg2 = np.empty(2 * ns, dtype=np.int64)
                    reg2[:ns] = reg
                    reg = reg2
                    cls2 = np.empty((2 * ns, 2), dtype=np.int64)
                    cls2[:ns] = cls
                    cls = cls2
                ts[ns] = tn
                reg[ns] = r
                cls[ns, 0] = cur
                cls[ns, 1] = nxt
                ns += 1
            cur = nxt
            t = tn
    return ts[:ns].copy(), reg[:ns].copy(), cls[:ns].copy()


# ---------------------------------------------------------------------------
# Per-root reductions of leaf cells (local complexity)
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _add_ring_edges(r, st, en, vx, vy, elay, eneu, layer_offset, two_d, hits, length):
    """Credit root ``r`` with the neurons on the ring's inner edges and half their length
    (2-D) or half a crossing per end (1-D): each inner edge is shared by two cells."""
    for q in range(st, en):
        if elay[q] >= 0:
            hits[r, layer_offset[elay[q]] + eneu[q]] = 1
            if two_d:
                q1 = q + 1 if q + 1 < en else st
                dx = vx[q1] - vx[q]
                dy = vy[q1] - vy[q]
                length[r] += 0.5 * np.sqrt(dx * dx + dy * dy)
            else:
                length[r] += 0.5


@njit(cache=True, nogil=True)
def _chord_length(a, b, c, vx, vy, st, en):
    """Length of the line ``a*x + b*y + c = 0`` inside the convex ring ``st:en``."""
    npt = 0
    x0 = 0.0
    y0 = 0.0
    for q in range(st, en):
        q1 = q + 1 if q + 1 < en else st
        s0 = a * vx[q] + b * vy[q] + c
        s1 = a * vx[q1] + b * vy[q1] + c
        if (s0 >= 0.0) != (s1 >= 0.0):
            t = s0 / (s0 - s1)
            x = vx[q] + t * (vx[q1] - vx[q])
            y = vy[q] + t * (vy[q1] - vy[q])
            if npt == 1:
                return np.sqrt((x - x0) ** 2 + (y - y0) ** 2)
            x0 = x
            y0 = y
            npt = 1
    return 0.0


@njit(cache=True, nogil=True)
def reduce_leaves(off, vx, vy, elay, eneu, root, maps, layer_offset, logit_offset, with_logits,
                  uscale, tol, counts, hits, length):
    """Accumulate, per root domain, what its leaf cells say about it.

    Parameters
    ----------
    off, vx, vy, elay, eneu : leaf rings (see ``split_cells_count``); 1-D rings
        hold the two ends of an interval.
    root : ndarray of shape (C,), int64        root domain of each leaf
    maps : ndarray of shape (C, k + 1, n_out)  logits on each leaf
    layer_offset : ndarray of shape (n_layers,), int64   first hit column per hidden layer
    logit_offset : int64                        first hit column of the logits
    with_logits : bool                          also count the logits' zero sets
    counts : ndarray of shape (N,), int64       += leaves per root
    hits : ndarray of shape (N, H), uint8       set where neuron h's zero set crosses the root
    length : ndarray of shape (N,), float64     += length (2-D) or number (1-D) of zero-set
        pieces inside the root, region boundaries counted once
    """
    C = off.shape[0] - 1
    n_out = maps.shape[2]
    two_d = maps.shape[1] == 3
    for c in range(C):
        r = root[c]
        counts[r] += 1
        st = off[c]
        en = off[c + 1]
        _add_ring_edges(r, st, en, vx, vy, elay, eneu, layer_offset, two_d, hits, length)
        if not with_logits:
            continue
        for o in range(n_out):
            if two_d:
                a = maps[c, 0, o]
                b = maps[c, 1, o]
                cc = maps[c, 2, o]
            else:
                a = maps[c, 0, o]
                b = 0.0
                cc = maps[c, 1, o]
            eps = tol * ((abs(a) + abs(b)) * uscale[c] + abs(cc))
            pos = False
            neg = False
            for q in range(st, en):
                v = a * vx[q] + b * vy[q] + cc
                if v > eps:
                    pos = True
                elif v < -eps:
                    neg = True
            if not (pos and neg):
                continue
            hits[r, logit_offset + o] = 1
            if not two_d:
                length[r] += 1.0
                continue
            length[r] += _chord_length(a, b, cc, vx, vy, st, en)
    return None


@njit(cache=True, nogil=True)
def _new_edge_length(ws, npc, slot, layer):
    """Length of the edges that layer ``layer`` made among the pieces of a split.

    Each such edge bounds two pieces, so it is counted half per piece; lines
    of coinciding neurons make one edge and count once.
    """
    X, Y, L, OFF = ws[0], ws[1], ws[2], ws[4]
    total = 0.0
    for p in range(npc):
        a = OFF[slot, p]
        b = OFF[slot, p + 1]
        for q in range(a, b):
            if L[slot, q] == layer:
                q1 = q + 1 if q + 1 < b else a
                dx = X[slot, q1] - X[slot, q]
                dy = Y[slot, q1] - Y[slot, q]
                total += 0.5 * np.sqrt(dx * dx + dy * dy)
    return total


@njit(cache=True, nogil=True)
def reduce_last_layer(pre, off, vx, vy, elay, eneu, root, uscale, tol, layer, slopes, layer_offset,
                      counts, hits, length):
    """Per-root reduction of the cells before the last hidden layer, without splitting them.

    ``pre`` (C, k + 1, n) is the last hidden layer's map on each cell. A cell
    holds as many regions as the arrangement of its cutting lines makes in it
    (counted by splitting, so degenerate arrangements count right), every
    cutting neuron is hit, and the zero sets add their chord lengths (2-D) or
    one crossing each (1-D). Same accumulators as :func:`reduce_leaves`.
    """
    C = pre.shape[0]
    n = pre.shape[2]
    two_d = pre.shape[1] == 3
    cuts = np.empty((C, n), dtype=np.int32)
    ncut = np.zeros(C, dtype=np.int64)
    pieces = np.ones(C, dtype=np.int64)
    chord = np.zeros(C)
    for ch in range((C + CHUNK - 1) // CHUNK):
        ws = _new_workspace(64, 8, 8)
        hi = np.empty(n)
        lo = np.empty(n)
        bits = np.empty((1, n), dtype=np.uint8)
        roots = np.empty(n)
        for cell in range(ch * CHUNK, min(C, (ch + 1) * CHUNK)):
            st = off[cell]
            en = off[cell + 1]
            groups = 0
            if two_d:
                k = _cell_signs(pre, cell, vx, vy, st, en, uscale[cell], tol, bits[0], cuts[cell], hi, lo, slopes)
            else:
                k, groups = _interval_cuts(pre, cell, vx[st], vx[st + 1], uscale[cell], tol, bits[0], cuts[cell],
                                           roots, slopes)
            ncut[cell] = k
            if k == 0:
                continue
            if not two_d:
                pieces[cell] = groups + 1
                chord[cell] = groups
                continue
            ws, npc, slot = _split_ring(ws, vx, vy, elay, eneu, st, en, pre, cell, cuts[cell], k,
                                        uscale[cell], tol, layer)
            pieces[cell] = npc
            chord[cell] = _new_edge_length(ws, npc, slot, layer)
    for cell in range(C):
        r = root[cell]
        counts[r] += pieces[cell]
        length[r] += chord[cell]
        for j in range(ncut[cell]):
            hits[r, layer_offset[layer] + cuts[cell, j]] = 1
        st = off[cell]
        en = off[cell + 1]
        _add_ring_edges(r, st, en, vx, vy, elay, eneu, layer_offset, two_d, hits, length)
    return None


@njit(cache=True, nogil=True)
def add_split_counts(root, pieces, lengths, next_hits, cuts, ncut, off, elay, eneu, layer, layer_offset, counts,
                     length, hits):
    """Add one batch's :func:`split_cells_reduce` results to its roots' sums.

    Each cell's pieces and zero-set length go to its root ``root[c]``; its
    root is hit by the next layer's neurons that cut a child, by layer
    ``layer``'s cutting neurons ``cuts[c, :ncut[c]]`` and by the neurons on
    its ring's inner edges. Same accumulators as :func:`reduce_leaves`.
    """
    for cell in range(root.shape[0]):
        r = root[cell]
        counts[r] += pieces[cell]
        length[r] += lengths[cell]
        for o in range(next_hits.shape[1]):
            if next_hits[cell, o] != 0:
                hits[r, layer_offset[layer + 1] + o] = 1
        for j in range(ncut[cell]):
            hits[r, layer_offset[layer] + cuts[cell, j]] = 1
        for q in range(off[cell], off[cell + 1]):
            if elay[q] >= 0:
                hits[r, layer_offset[elay[q]] + eneu[q]] = 1


@njit(cache=True, nogil=True)
def _children_candidates(pre, cell, vx, vy, st, en, uscale, tol, cuts, k, slopes, masked, w, bias, wnorm, rough,
                         wt, next_slopes, scratch, cand, bm):
    """The next layer's neurons that may cut some child of cell ``cell``; returns how many are in ``cand``,
    and writes their map on the parent (cutting neurons inactive) to ``bm[:, o]``.

    On a child, next-layer neuron ``o`` is its map on the parent,
    ``w[o] . masked[cell] (+ bias[o])``, plus ``(1 - slopes[i]) * w[o, i] * z_i``
    for each cutting neuron ``i`` active there, where ``z_i`` runs from
    ``-eps`` (the on-line tolerance) up to its largest value on the parent's
    ring. Every child lies in the parent's box. A neuron whose bound over
    the box, with those terms, is below zero (or above it) by a margin of
    1e-12 of its magnitude, thousands of times any rounding here or in a
    child's own evaluation, cuts no child. The map is bounded twice: first
    from ``rough[cell, :, o]``, the same product in float32 (without the
    bias), widened by that product's own rounding error (at most
    ``(n + 2) 2^-24 |w[o]| |masked[cell, r]|`` per row); the neurons that
    bound keeps get their float64 map (:func:`_dot8`) and are bounded again
    by it. They are listed in increasing order, as a child's own
    classification lists them. ``scratch`` has shape (5, n_next), ``cand``
    (n_next,), ``bm`` (3, n_next).
    """
    n = masked.shape[2]
    n_next = w.shape[0]
    cx, cy, hx, hy, ax, ay = _ring_box(vx, vy, st, en)
    m0 = 0.0
    m1 = 0.0
    m2 = 0.0
    for i in range(n):
        m0 += masked[cell, 0, i] * masked[cell, 0, i]
        m1 += masked[cell, 1, i] * masked[cell, 1, i]
        m2 += masked[cell, 2, i] * masked[cell, 2, i]
    # the float32 product's error at any point of the box, per unit of |w[o]|, and a floor for underflow
    gamma = 1.01 * (n + 2) * 2.0**-24
    rough_err = gamma * (np.sqrt(m0) * ax + np.sqrt(m1) * ay + np.sqrt(m2))
    tiny = n * 1e-44 * (ax + ay + 1.0)
    # the cutting neurons' terms: their middle, half-range and magnitude per next-layer neuron
    tmid = scratch[0]
    trad = scratch[1]
    tsize = scratch[2]
    for o in range(n_next):
        tmid[o] = 0.0
        trad[o] = 0.0
        tsize[o] = 0.0
    for j in range(k):
        i = cuts[cell, j]
        a = pre[cell, 0, i]
        b = pre[cell, 1, i]
        c = pre[cell, 2, i]
        top, bottom = _range_on_ring(a, b, c, vx, vy, st, en)
        slack = 1e-12 * (abs(a) * ax + abs(b) * ay + abs(c))
        zhi = max(top, 0.0) + slack
        zlo = -_line_eps(a, b, c, uscale, tol) - slack
        g = 1.0 - slopes[i]
        zmid = g * 0.5 * (zhi + zlo)
        zrad = abs(g) * 0.5 * (zhi - zlo)
        for o in range(n_next):
            wo = wt[i, o]
            tmid[o] += wo * zmid
            trad[o] += abs(wo) * zrad
            tsize[o] += abs(wo) * (abs(zmid) + zrad)
    # the float32 bound of every neuron (a loop without branches), then the float64 maps of those it keeps
    hi = scratch[3]
    lo = scratch[4]
    for o in range(n_next):
        a = np.float64(rough[cell, 0, o])
        b = np.float64(rough[cell, 1, o])
        c = np.float64(rough[cell, 2, o]) + bias[o]
        mid = a * cx + b * cy + c + tmid[o]
        rad = abs(a) * hx + abs(b) * hy + trad[o]
        margin = wnorm[o] * rough_err + tiny + 1e-12 * (abs(a) * ax + abs(b) * ay + abs(c) + tsize[o])
        hi[o] = mid + rad + margin
        lo[o] = mid - rad - margin
    nc = 0
    for o in range(n_next):
        if next_slopes[o] == 1.0 or hi[o] < 0.0 or lo[o] > 0.0:
            continue
        a = _dot8(masked, cell, 0, w, o)
        b = _dot8(masked, cell, 1, w, o)
        c = _dot8(masked, cell, 2, w, o) + bias[o]
        mid = a * cx + b * cy + c + tmid[o]
        rad = abs(a) * hx + abs(b) * hy + trad[o]
        margin = 1e-12 * (abs(a) * ax + abs(b) * ay + abs(c) + tsize[o])
        if mid + rad < -margin or mid - rad > margin:
            continue
        bm[0, o] = a
        bm[1, o] = b
        bm[2, o] = c
        cand[nc] = o
        nc += 1
    return nc


@njit(cache=True, nogil=True, inline="always")
def _dot8(masked, cell, r, w, o):
    """``masked[cell, r] . w[o]`` summed in eight interleaved parts (so the CPU runs them side by side),
    added pairwise at the end; the CUDA twin sums in the same order."""
    n = masked.shape[2]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    i = 0
    while i + 8 <= n:
        a0 += masked[cell, r, i] * w[o, i]
        a1 += masked[cell, r, i + 1] * w[o, i + 1]
        a2 += masked[cell, r, i + 2] * w[o, i + 2]
        a3 += masked[cell, r, i + 3] * w[o, i + 3]
        a4 += masked[cell, r, i + 4] * w[o, i + 4]
        a5 += masked[cell, r, i + 5] * w[o, i + 5]
        a6 += masked[cell, r, i + 6] * w[o, i + 6]
        a7 += masked[cell, r, i + 7] * w[o, i + 7]
        i += 8
    while i < n:
        a0 += masked[cell, r, i] * w[o, i]
        i += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@njit(cache=True, nogil=True)
def split_cells_reduce(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes, bits, cuts, ncut, masked, w,
                       wt, bias, rough, next_slopes):
    """Split cells by layer ``layer`` and count, without storing, what the next layer does to each child.

    The fused form of :func:`split_cells_write` followed by
    :func:`reduce_last_layer` when layer ``layer + 1`` is the last hidden
    layer: each child's map of the next layer is built in scratch memory,
    for the neurons that may cut some child of its parent only
    (:func:`_children_candidates`), the child is split by it only to count
    pieces, and everything is summed per parent.

    ``masked`` (C, 3, n) is ``split_cells_count``'s: the layer's
    activations on each parent with its cutting neurons inactive. The next
    layer has weight ``w`` (n_next, n), also transposed (``wt``, (n, n_next), C-contiguous), and bias
    ``bias`` (n_next,);
    ``rough`` (C, 3, n_next), float32, is ``masked @ w.T`` in float32, which
    only lets the kernel skip neurons far from zero: the counts are those of
    every neuron, each child's map in float64.

    Returns
    -------
    pieces : ndarray of shape (C,), int64     regions inside each parent
    length : ndarray of shape (C,), float64   zero-set length inside each parent,
        its own boundary counted half (it is shared with its neighbours)
    next_hits : ndarray of shape (C, n_next), uint8   next-layer neurons cutting some child
    """
    C = pre.shape[0]
    n_next = w.shape[0]
    pieces = np.zeros(C, dtype=np.int64)
    length = np.zeros(C)
    next_hits = np.zeros((C, n_next), dtype=np.uint8)
    wnorm = np.empty(n_next)
    for o in range(n_next):
        t = 0.0
        for i in range(w.shape[1]):
            t += w[o, i] * w[o, i]
        wnorm[o] = 1.01 * np.sqrt(t)
    for ch in range((C + CHUNK - 1) // CHUNK):
        ws = _new_workspace(64, 8, 8)
        ws2 = _new_workspace(64, 8, 8)
        m = np.empty((1, 3, n_next))
        cand = np.empty(n_next, dtype=np.int32)
        scratch = np.empty((5, n_next))
        bm = np.empty((3, n_next))
        ccuts = np.empty(n_next, dtype=np.int32)
        no_side = np.zeros(1, dtype=np.uint64)
        for cell in range(ch * CHUNK, min(C, (ch + 1) * CHUNK)):
            k = ncut[cell]
            nc = _children_candidates(pre, cell, vx, vy, off[cell], off[cell + 1], uscale[cell], tol, cuts, k,
                                      slopes, masked, w, bias, wnorm, rough, wt, next_slopes, scratch, cand, bm)
            if k == 0:
                npc = 1
                slot = 0
                ws = _grow_workspace(ws, off[cell + 1] - off[cell] + 8, 2, 1)
                X = ws[0]
                Y = ws[1]
                L = ws[2]
                OFF = ws[4]
                st = off[cell]
                en = off[cell + 1]
                for q in range(en - st):
                    X[0, q] = vx[st + q]
                    Y[0, q] = vy[st + q]
                    L[0, q] = elay[st + q]
                OFF[0, 0] = 0
                OFF[0, 1] = en - st
            else:
                ws, npc, slot = _split_ring(ws, vx, vy, elay, eneu, off[cell], off[cell + 1], pre, cell,
                                            cuts[cell], k, uscale[cell], tol, layer)
            X, Y, L, N, OFF, SID = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
            for p in range(npc):
                side = SID[slot, p] if k > 0 else no_side
                for r in range(3):
                    for c in range(nc):
                        m[0, r, cand[c]] = bm[r, cand[c]]
                for j in range(k):
                    if (side[j >> 6] >> np.uint64(j & 63)) & np.uint64(1) == 1:
                        i = cuts[cell, j]
                        for r in range(3):
                            coef = (1.0 - slopes[i]) * pre[cell, r, i]
                            if coef != 0.0:
                                for c in range(nc):
                                    m[0, r, cand[c]] += coef * wt[i, cand[c]]
                a = OFF[slot, p]
                b = OFF[slot, p + 1]
                for q in range(a, b):
                    if L[slot, q] >= 0:
                        q1 = q + 1 if q + 1 < b else a
                        dx = X[slot, q1] - X[slot, q]
                        dy = Y[slot, q1] - Y[slot, q]
                        length[cell] += 0.5 * np.sqrt(dx * dx + dy * dy)
                kk = 0
                for c in range(nc):
                    o = cand[c]
                    top, bottom = _range_on_ring(m[0, 0, o], m[0, 1, o], m[0, 2, o], X[slot], Y[slot], a, b)
                    eps = _line_eps(m[0, 0, o], m[0, 1, o], m[0, 2, o], uscale[cell], tol)
                    if top > eps and bottom < -eps:
                        ccuts[kk] = o
                        kk += 1
                if kk == 0:
                    pieces[cell] += 1
                    continue
                ws2, npc2, slot2 = _split_ring(ws2, X[slot], Y[slot], L[slot], N[slot], a, b, m, 0, ccuts, kk,
                                               uscale[cell], tol, layer + 1)
                pieces[cell] += npc2
                length[cell] += _new_edge_length(ws2, npc2, slot2, layer + 1)
                for j in range(kk):
                    next_hits[cell, ccuts[j]] = 1
    return pieces, length, next_hits
