"""CPU kernels for k-dimensional cells (numba njit; the engine uses them for k >= 3).

A cell is a convex polytope of the slice given by its vertices ``X`` (V, k)
and, per vertex, the hyperplanes it lies on: a bitset ``I`` (V, W) of global
facet ids (id ``f`` is bit ``f % 64`` of word ``f // 64``). Ids ``0..F-1`` are
the domain's facets, id ``F + g`` the zero set of the neuron whose pattern bit
is ``g``. Vertices are not shared between cells.

A neuron's zero set on a cell is ``s(u) = sum_r pre[c, r, i] * u_r + pre[c, k, i]``.
A vertex is ON it when ``|s| <= eps`` with ``eps = tol * (sum_r |pre[c, r, i]| * U
+ |pre[c, k, i]|)`` (U the largest |u| of the cell's domain): the rule of the
2-D kernels (``cpu._line_eps``) for any k. The neuron CUTS the cell when one
vertex has ``s > eps`` and another ``s < -eps``.

A cut makes one new vertex on every edge from a positive to a negative vertex.
Vertices ``a`` and ``b`` span an edge iff no third vertex lies on every
hyperplane common to ``a`` and ``b``: the hyperplanes common to both cut out
the smallest face holding them, and a face with two vertices is an edge. The
test is exact because every vertex lists every recorded hyperplane it lies
on: a new vertex inside edge ``ab`` lies on exactly the hyperplanes of the
edge plus the cutting one, and a vertex on the cutting hyperplane gains it.
Both children keep the vertices on their side, those on the hyperplane and
the new vertices.

There are no CUDA twins of these kernels: the engine refuses ``device="cuda"``
for k >= 3.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .cpu import _finish_child, _mask_row


@njit(cache=True, inline="always")
def _popcount(x):
    """Set bits of a uint64 (a constant number of word operations)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, inline="always")
def _plane_eps(pre, cell, i, uscale, tol):
    """The on-hyperplane tolerance of neuron ``i`` on ``cell`` (``cpu._line_eps`` for any k)."""
    k = pre.shape[1] - 1
    g = 0.0
    for r in range(k):
        g += abs(pre[cell, r, i])
    return tol * (g * uscale + abs(pre[cell, k, i]))


@njit(cache=True)
def _new_workspace(k, W, cap_v, cap_p, cap_j, cap_m, cap_n):
    """Double-buffered storage for splitting one polytope by many hyperplanes.

    Slots 0 and 1 alternate as source and destination: vertices PX (2, cap_v, k),
    incidences PI (2, cap_v, W), piece offsets OFF (2, cap_p + 1), sides SID
    (2, cap_p, words) with bit j set where the piece lies on hyperplane j's positive
    side; per-piece scratch S, SG (cap_m,); new vertices NX (cap_n, k), NI (cap_n, W).
    """
    return (
        np.empty((2, cap_v, k)),
        np.empty((2, cap_v, W), dtype=np.uint64),
        np.zeros((2, cap_p + 1), dtype=np.int64),
        np.zeros((2, cap_p, max(1, (cap_j + 63) // 64)), dtype=np.uint64),
        np.empty(cap_m),
        np.empty(cap_m, dtype=np.int8),
        np.empty((cap_n, k)),
        np.empty((cap_n, W), dtype=np.uint64),
    )


@njit(cache=True)
def _grow_workspace(ws, cap_v, cap_p, cap_j, cap_m, cap_n):
    """``ws`` itself when it holds the capacities asked for, else a larger copy."""
    PX, PI, OFF, SID, S, SG, NX, NI = ws
    v0 = PX.shape[1]
    p0 = OFF.shape[1] - 1
    j0 = SID.shape[2] * 64
    m0 = S.shape[0]
    n0 = NX.shape[0]
    if cap_v <= v0 and cap_p <= p0 and cap_j <= j0 and cap_m <= m0 and cap_n <= n0:
        return ws
    new = _new_workspace(PX.shape[2], PI.shape[2], max(cap_v, 2 * v0 if cap_v > v0 else v0),
                         max(cap_p, 2 * p0 if cap_p > p0 else p0), max(cap_j, j0),
                         max(cap_m, 2 * m0 if cap_m > m0 else m0), max(cap_n, 2 * n0 if cap_n > n0 else n0))
    new[0][:, :v0] = PX
    new[1][:, :v0] = PI
    new[2][:, : p0 + 1] = OFF
    new[3][:, :p0, : SID.shape[2]] = SID
    new[4][:m0] = S
    new[5][:m0] = SG
    new[6][:n0] = NX
    new[7][:n0] = NI
    return new


@njit(cache=True, inline="always")
def _is_edge(PI, slot, ps, m, a, b, k):
    """Whether vertices ``a`` and ``b`` of the piece starting at ``ps`` span one of its edges.

    When ``a`` or ``b`` lies on exactly k hyperplanes (a simple vertex: their
    normals are independent) and the two share k - 1 of them, those k - 1 cut
    out the edge at that vertex, which holds the other one: an edge without
    looking at the third vertices.
    """
    W = PI.shape[2]
    cnt = 0
    for w in range(W):
        cnt += _popcount(PI[slot, ps + a, w] & PI[slot, ps + b, w])
    if cnt < k - 1:
        return False
    if cnt == k - 1:
        na = 0
        nb = 0
        for w in range(W):
            na += _popcount(PI[slot, ps + a, w])
            nb += _popcount(PI[slot, ps + b, w])
        if na == k or nb == k:
            return True
    for c in range(m):
        if c == a or c == b:
            continue
        inside = True
        for w in range(W):
            cw = PI[slot, ps + a, w] & PI[slot, ps + b, w]
            if PI[slot, ps + c, w] & cw != cw:
                inside = False
                break
        if inside:
            return False
    return True


@njit(cache=True, inline="always")
def _split_polytope(ws, X, I, st, en, pre, cell, cuts, kc, uscale, tol, fbase):
    """Split the polytope ``st:en`` of ``cell`` by the hyperplanes of neurons ``cuts[:kc]``.

    The hyperplane of neuron ``i`` gets the facet id ``fbase + i``. Returns
    ``(ws, n_pieces, slot)``: the pieces are ``OFF[slot, p]:OFF[slot, p + 1]`` of
    the workspace, and bit j of ``SID[slot, p]`` is set where piece p lies on
    the positive side of hyperplane j.

    Inlined where it is called, so that the splitting itself
    (:func:`_split_polytope_fit`) is a function without calls, whose array
    arguments numba passes without reference counting (as
    ``cpu._split_ring``); the workspace grows here, in the rare case that it
    is too small, and the split restarts.
    """
    n = en - st
    cap_v = n
    cap_p = 2
    cap_m = n
    cap_n = 1
    while True:
        if (cap_v > ws[0].shape[1] or cap_p > ws[2].shape[1] - 1 or kc > 64 * ws[3].shape[2]
                or cap_m > ws[4].shape[0] or cap_n > ws[6].shape[0]):
            ws = _grow_workspace(ws, cap_v, cap_p, kc, cap_m, cap_n)
        npc = _split_polytope_fit(ws, X, I, st, en, pre, cell, cuts, kc, uscale, tol, fbase)
        if npc >= 0:
            return ws, npc, kc & 1
        # the split starts again: grow fourfold, so that a large cell restarts only a few times
        cap_v = 4 * ws[0].shape[1]
        cap_p = 4 * (ws[2].shape[1] - 1)
        cap_m = 4 * ws[4].shape[0]
        cap_n = 4 * ws[6].shape[0]


@njit(cache=True, error_model="numpy")
def _split_polytope_fit(ws, X, I, st, en, pre, cell, cuts, kc, uscale, tol, fbase):
    """:func:`_split_polytope` in the workspace as it is: the number of pieces, or -1 when it is too small.

    The workspace must hold the polytope (``n`` vertices and values, two
    pieces, ``kc`` side bits), as :func:`_split_polytope` makes sure. One
    return and no exception (its one division is by a nonzero difference).
    """
    k = X.shape[1]
    W = I.shape[1]
    n = en - st
    PX, PI, OFF, SID, S, SG, NX, NI = ws
    full = False
    for q in range(n):
        for r in range(k):
            PX[0, q, r] = X[st + q, r]
        for w in range(W):
            PI[0, q, w] = I[st + q, w]
    OFF[0, 0] = 0
    OFF[0, 1] = n
    for w in range(SID.shape[2]):
        SID[0, 0, w] = 0
    npc = 1
    for j in range(kc):
        i = cuts[j]
        eps = _plane_eps(pre, cell, i, uscale, tol)
        fid = fbase + i
        fw = fid >> 6
        fb = np.uint64(1) << np.uint64(fid & 63)
        jw = j >> 6
        jb = np.uint64(1) << np.uint64(j & 63)
        src = j & 1
        dst = 1 - src
        nb = 0
        wv = 0
        OFF[dst, 0] = 0
        for p in range(npc):
            ps = OFF[src, p]
            m = OFF[src, p + 1] - ps
            if full or wv + m > PX.shape[1] or nb + 2 > OFF.shape[1] - 1 or m > S.shape[0]:
                full = True
                continue
            has_pos = False
            has_neg = False
            for q in range(m):
                v = 0.0
                for r in range(k):
                    v += pre[cell, r, i] * PX[src, ps + q, r]
                v += pre[cell, k, i]
                S[q] = v
                if v > eps:
                    SG[q] = 1
                    has_pos = True
                elif v < -eps:
                    SG[q] = -1
                    has_neg = True
                else:
                    SG[q] = 0
            if not (has_pos and has_neg):
                for q in range(m):
                    for r in range(k):
                        PX[dst, wv, r] = PX[src, ps + q, r]
                    for w in range(W):
                        PI[dst, wv, w] = PI[src, ps + q, w]
                    wv += 1
                for w in range(jw + 1):
                    SID[dst, nb, w] = SID[src, p, w]
                if j & 63 == 0:
                    SID[dst, nb, jw] = 0
                if has_pos:
                    SID[dst, nb, jw] |= jb
                nb += 1
                OFF[dst, nb] = wv
                continue
            # the new vertices: one on every edge from a positive to a negative vertex
            nn = 0
            for a in range(m):
                if SG[a] <= 0:
                    continue
                for b in range(m):
                    if full or SG[b] >= 0 or not _is_edge(PI, src, ps, m, a, b, k):
                        continue
                    if nn >= NX.shape[0]:
                        full = True
                        continue
                    t = S[a] / (S[a] - S[b])
                    for r in range(k):
                        x0 = PX[src, ps + a, r]
                        NX[nn, r] = x0 + t * (PX[src, ps + b, r] - x0)
                    for w in range(W):
                        NI[nn, w] = PI[src, ps + a, w] & PI[src, ps + b, w]
                    NI[nn, fw] |= fb
                    nn += 1
            # two pieces: the positive side first, then the negative side
            for side in (1, -1):
                if full or wv + m + nn > PX.shape[1] or nb + 2 > OFF.shape[1] - 1:
                    full = True
                    continue
                w0 = wv
                for q in range(m):
                    if SG[q] * side >= 0:
                        for r in range(k):
                            PX[dst, wv, r] = PX[src, ps + q, r]
                        for w in range(W):
                            PI[dst, wv, w] = PI[src, ps + q, w]
                        if SG[q] == 0:
                            PI[dst, wv, fw] |= fb
                        wv += 1
                for q in range(nn):
                    for r in range(k):
                        PX[dst, wv, r] = NX[q, r]
                    for w in range(W):
                        PI[dst, wv, w] = NI[q, w]
                    wv += 1
                if wv - w0 >= k + 1:
                    for w in range(jw + 1):
                        SID[dst, nb, w] = SID[src, p, w]
                    if j & 63 == 0:
                        SID[dst, nb, jw] = 0
                    if side == 1:
                        SID[dst, nb, jw] |= jb
                    nb += 1
                    OFF[dst, nb] = wv
                else:
                    wv = w0
        npc = nb
    return -1 if full else npc


def split_polytope(vertices, incidence, planes, uscale, tol=1e-10, fbase=0):
    """Split one convex polytope by a sequence of hyperplanes (reference entry point).

    Parameters
    ----------
    vertices : ndarray of shape (n, k), float64
    incidence : ndarray of shape (n, W), uint64
        Facet-id bitset of every vertex (see the module notes).
    planes : ndarray of shape (J, k + 1), float64
        Hyperplane j is ``planes[j, :k] @ u + planes[j, k] = 0``; it gets the
        facet id ``fbase + j``.

    Returns
    -------
    pieces : list of (vertices (m, k), incidence (m, W), sides (J,) uint8)
    """
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    inc = np.ascontiguousarray(incidence, dtype=np.uint64)
    planes = np.ascontiguousarray(planes, dtype=np.float64).reshape(-1, v.shape[1] + 1)
    J = planes.shape[0]
    pre = np.ascontiguousarray(planes.T[None])
    ws = _new_workspace(v.shape[1], inc.shape[1], 16, 4, max(J, 1), 16, 16)
    ws, npc, slot = _split_polytope(ws, v, inc, 0, len(v), pre, 0, np.arange(J, dtype=np.int32), J,
                                    float(uscale), float(tol), int(fbase))
    PX, PI, OFF, SID = ws[:4]
    out = []
    for p in range(npc):
        a, b = OFF[slot, p], OFF[slot, p + 1]
        sides = ((SID[slot, p][np.arange(J) >> 6] >> (np.arange(J) & 63).astype(np.uint64)) & np.uint64(1))
        out.append((PX[slot, a:b].copy(), PI[slot, a:b].copy(), sides.astype(np.uint8)))
    return out


@njit(cache=True)
def _polytope_signs(pre, cell, X, st, en, uscale, tol, bits, cuts, hi, lo, val, box, slopes):
    """Classify every neuron on one cell (``cpu._cell_signs`` for any k); returns the number cutting.

    Most neurons are decided from the box around the cell's vertices (centre
    ``box[0]``, half-widths ``box[1]``, (2, k) scratch): with ``c`` the value
    at the centre and ``e = sum_r |pre[cell, r, i]| * box[1, r]``, every vertex
    value lies within ``e`` of ``c``, so ``c - e > eps`` (``c + e < -eps``)
    puts every vertex on the positive (negative) side. The bound carries a
    margin ``1e-9 * (sum_r |pre[cell, r, i]| * U + |pre[cell, k, i]| + e)``,
    far above the rounding of these sums, so a decided neuron gets the bit
    the vertex values would give. The others are classified from their values
    at the vertices, summed as :func:`_split_polytope` sums them. ``hi``,
    ``lo``, ``val`` (n,) are scratch; the sums over neurons run over
    contiguous memory.
    """
    n = pre.shape[2]
    k = pre.shape[1] - 1
    for r in range(k):
        a = X[st, r]
        b = X[st, r]
        for q in range(st + 1, en):
            a = min(a, X[q, r])
            b = max(b, X[q, r])
        box[0, r] = 0.5 * (a + b)
        box[1, r] = max(b - box[0, r], box[0, r] - a)
    for i in range(n):
        val[i] = 0.0  # value at the centre
        hi[i] = 0.0  # spread e
        lo[i] = 0.0  # sum_r |pre[cell, r, i]|, as _plane_eps sums it
    for r in range(k):
        c = box[0, r]
        h = box[1, r]
        for i in range(n):
            w = pre[cell, r, i]
            val[i] += w * c
            hi[i] += abs(w) * h
            lo[i] += abs(w)
    ncut = 0
    for i in range(n):
        if slopes[i] == 1.0:
            bits[i] = 0
            continue
        b = pre[cell, k, i]
        eps = tol * (lo[i] * uscale + abs(b))
        c = val[i] + b
        e = hi[i] + 1e-9 * (lo[i] * uscale + abs(b) + hi[i])
        if c - e > eps:
            bits[i] = 1
            continue
        if c + e < -eps:
            bits[i] = 0
            continue
        vmax = -np.inf
        vmin = np.inf
        for q in range(st, en):
            v = 0.0
            for r in range(k):
                v += pre[cell, r, i] * X[q, r]
            v += b
            vmax = max(vmax, v)
            vmin = min(vmin, v)
        pos = vmax > eps
        if pos and vmin < -eps:
            cuts[ncut] = i
            ncut += 1
            bits[i] = 0
        else:
            bits[i] = 1 if pos else 0
    return ncut


@njit(cache=True, nogil=True)
def split_polytopes_count(pre, off, X, I, uscale, tol, fbase, slopes):
    """Pass 1 of splitting a batch of k-D cells by one layer's neurons.

    Parameters
    ----------
    pre : ndarray of shape (C, k + 1, n), float64
        The layer's pre-activation map on each cell.
    off : ndarray of shape (C + 1,), int64
        Cell offsets into ``X`` (V, k) float64 and ``I`` (V, W) uint64.
    uscale : ndarray of shape (C,), float64
    fbase : int
        Facet id of the layer's neuron 0.
    slopes : ndarray of shape (n,), float64

    Returns
    -------
    bits, cuts, ncut, npieces, nverts, masked
        As :func:`relugeo.kernels.cpu.split_cells_count`.
    """
    C = pre.shape[0]
    n = pre.shape[2]
    k = X.shape[1]
    bits = np.empty((C, n), dtype=np.uint8)
    cuts = np.empty((C, n), dtype=np.int32)
    ncut = np.zeros(C, dtype=np.int64)
    npieces = np.ones(C, dtype=np.int64)
    nverts = np.empty(C, dtype=np.int64)
    masked = np.empty_like(pre)
    # one workspace and scratch for the whole batch: the workspace grows to the largest cell's needs once
    ws = _new_workspace(k, I.shape[1], 256, 16, 64, 64, 64)
    hi = np.empty(n)
    lo = np.empty(n)
    val = np.empty(n)
    box = np.empty((2, k))
    for cell in range(C):
        st = off[cell]
        en = off[cell + 1]
        kc = _polytope_signs(pre, cell, X, st, en, uscale[cell], tol, bits[cell], cuts[cell], hi, lo,
                             val, box, slopes)
        ncut[cell] = kc
        _mask_row(pre, cell, bits, slopes, masked)
        if kc == 0:
            nverts[cell] = en - st
        else:
            ws, npc, slot = _split_polytope(ws, X, I, st, en, pre, cell, cuts[cell], kc, uscale[cell], tol, fbase)
            npieces[cell] = npc
            nverts[cell] = ws[2][slot, npc]
    return bits, cuts, ncut, npieces, nverts, masked


@njit(cache=True, nogil=True)
def split_polytopes_write(pre, off, X, I, uscale, tol, fbase, slopes, pat, bit_offset,
                          bits, cuts, ncut, piece_start, vert_start, base, wt,
                          coff, cX, cI, cpat, cnext, cparent):
    """Pass 2: write the children counted by :func:`split_polytopes_count`.

    Same contract as :func:`relugeo.kernels.cpu.split_cells_write`, with the
    children's vertices ``cX`` (NV, k) and incidences ``cI`` (NV, W).
    """
    C = pre.shape[0]
    k = X.shape[1]
    W = I.shape[1]
    no_cut = np.zeros(1, dtype=np.uint64)
    ws = _new_workspace(k, W, 256, 16, 64, 64, 64)
    for cell in range(C):
        st = off[cell]
        en = off[cell + 1]
        kc = ncut[cell]
        p0 = piece_start[cell]
        w0 = vert_start[cell]
        if kc == 0:
            m = en - st
            cX[w0 : w0 + m] = X[st:en]
            cI[w0 : w0 + m] = I[st:en]
            coff[p0 + 1] = w0 + m
            cparent[p0] = cell
            _finish_child(p0, cell, pre, bits, cuts, 0, no_cut, slopes, pat, bit_offset, base, wt, cpat,
                          cnext)
            continue
        ws, npc, slot = _split_polytope(ws, X, I, st, en, pre, cell, cuts[cell], kc, uscale[cell], tol,
                                        fbase)
        PX, PI, OFF, SID = ws[0], ws[1], ws[2], ws[3]
        m = OFF[slot, npc]
        cX[w0 : w0 + m] = PX[slot, :m]
        cI[w0 : w0 + m] = PI[slot, :m]
        for p in range(npc):
            child = p0 + p
            coff[child + 1] = w0 + OFF[slot, p + 1]
            cparent[child] = cell
            _finish_child(child, cell, pre, bits, cuts, kc, SID[slot, p], slopes, pat, bit_offset, base, wt,
                          cpat, cnext)
    return None


@njit(cache=True, nogil=True)
def cell_incidence_union(off, I):
    """The union of the incidence bitsets of every cell's vertices: (C, W) uint64."""
    C = off.shape[0] - 1
    W = I.shape[1]
    out = np.zeros((C, W), dtype=np.uint64)
    for c in range(C):
        for q in range(off[c], off[c + 1]):
            for w in range(W):
                out[c, w] |= I[q, w]
    return out
