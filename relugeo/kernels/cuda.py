"""CUDA kernels (numba.cuda), twins of ``cpu.py``.

Every public function here has the name, signature and results of its twin
in ``cpu.py`` (NumPy arrays in, NumPy arrays out), so :func:`relugeo.kernels.backend`
can swap the modules. Without a GPU the kernels run under numba's simulator
(``NUMBA_ENABLE_CUDASIM=1``, set before numba.cuda is first imported).

Splitting 2-D cells runs line by line across all pieces of a batch, one
thread per piece: for cutting-line index ``j`` every piece is classified by
its cell's ``j``-th cutting line (1 or 2 children and their vertex counts),
an exclusive scan gives every child its place, and a write pass copies or
cuts the rings. Each piece emits its positive side first, so the pieces of a
cell come out in the CPU kernel's order, vertex for vertex.

Splitting intervals (1-D cells) runs one thread per cell; its breakpoints are
sorted by a port of numba's ``np.argsort`` quicksort, so coinciding
breakpoints come out in the CPU kernel's order too.

Per-root sums run on the host in the CPU kernels' order (``np.add.at`` adds
its items one after another), so they are bit for bit the CPU kernels' where
the device computes every addend as the CPU does.

On the GPU: ``pack_signs``, ``polygon_area_centroid``, ``split_cells_count``,
``split_cells_write``, ``split_intervals_count``, ``split_intervals_write``,
``reduce_leaves``, ``reduce_last_layer``, ``split_cells_reduce``. On the CPU
(the ``cpu.py`` kernel, called from here): ``split_cells_max``,
``decision_boundary_2d``, ``decision_boundary_1d``, ``split_polygon``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

from . import cpu

# threads per block; the simulator runs a block scan's threads as Python threads, so it gets tiny blocks
THREADS = 4 if config.ENABLE_CUDASIM else 128

# kernels without a CUDA body yet: the CPU kernel, same contract
split_cells_max = cpu.split_cells_max
decision_boundary_2d = cpu.decision_boundary_2d
decision_boundary_1d = cpu.decision_boundary_1d
split_polygon = cpu.split_polygon


def _grid(n: int) -> int:
    return max(1, (n + THREADS - 1) // THREADS)


# Products round on their own, as on the CPU: NVVM would otherwise contract ``a * b + c`` into one
# fused multiply-add and the line values, intersections and lengths would differ in the last bit.
if config.ENABLE_CUDASIM:
    @cuda.jit(device=True)
    def _mul(a, b):
        return a * b
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def _mul(a, b):
        return libdevice.dmul_rn(a, b)


@cuda.jit(device=True)
def _line_at(a, b, c, x, y):
    """The line ``a u0 + b u1 + c`` at ``(x, y)``, rounded as the CPU kernels round it."""
    return _mul(a, x) + _mul(b, y) + c


@cuda.jit(device=True)
def _half_edge(px, py, q, q1):
    """Half the length of the edge from vertex ``q`` to vertex ``q1``: its share of a boundary between two
    regions."""
    dx = px[q1] - px[q]
    dy = py[q1] - py[q]
    return _mul(0.5, math.sqrt(_mul(dx, dx) + _mul(dy, dy)))


# ---------------------------------------------------------------------------
# Exclusive scan (device)
# ---------------------------------------------------------------------------


@cuda.jit
def _scan_blocks(x, out, sums):
    """Exclusive scan of ``x`` within blocks of THREADS items; block totals to ``sums``."""
    tmp = cuda.shared.array(THREADS, dtype=np.int64)
    t = cuda.threadIdx.x
    i = cuda.blockIdx.x * THREADS + t
    tmp[t] = x[i] if i < x.shape[0] else 0
    cuda.syncthreads()
    d = 1
    while d < THREADS:
        v = tmp[t - d] if t >= d else 0
        cuda.syncthreads()
        tmp[t] += v
        cuda.syncthreads()
        d *= 2
    if i < x.shape[0]:
        out[i] = tmp[t] - x[i]
    if t == THREADS - 1:
        sums[cuda.blockIdx.x] = tmp[t]


@cuda.jit
def _add_block_offsets(out, offs):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] += offs[i // THREADS]


def _exclusive_scan(d_x):
    """Device array (n + 1,) int64: exclusive prefix sums of the device array ``d_x`` (n,), then the total."""
    n = d_x.shape[0]
    d_out = cuda.device_array(n + 1, dtype=np.int64)
    if n == 0:
        return cuda.to_device(np.zeros(1, dtype=np.int64))
    nb = _grid(n)
    d_sums = cuda.device_array(nb, dtype=np.int64)
    _scan_blocks[nb, THREADS](d_x, d_out, d_sums)
    if nb > 1:
        d_offs = _exclusive_scan(d_sums)
        _add_block_offsets[nb, THREADS](d_out[:n], d_offs)
        total = d_offs[nb:nb + 1]
    else:
        total = d_sums[0:1]
    d_out[n:n + 1].copy_to_device(total)
    return d_out


# ---------------------------------------------------------------------------
# Signs
# ---------------------------------------------------------------------------


@cuda.jit
def _pack_signs_kernel(z, out):
    r = cuda.grid(1)
    if r >= z.shape[0]:
        return
    for w in range(out.shape[1]):
        out[r, w] = 0
    for j in range(z.shape[1]):
        if z[r, j] > 0.0:
            out[r, j >> 6] |= np.uint64(1) << np.uint64(j & 63)


def pack_signs(z: np.ndarray, n_words: int | None = None) -> np.ndarray:
    """Pack the bits ``z > 0`` row by row into uint64 words (see ``cpu.pack_signs``).

    z : ndarray of shape (N, M); returns ndarray of shape (N, n_words), dtype=np.uint64.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    need = max(1, -(-z.shape[1] // 64))
    n_words = need if n_words is None else int(n_words)
    if n_words < need:
        raise ValueError(f"n_words must be at least {need} for {z.shape[1]} columns; got {n_words}")
    out = cuda.device_array((z.shape[0], n_words), dtype=np.uint64)
    if z.shape[0]:
        _pack_signs_kernel[_grid(z.shape[0]), THREADS](cuda.to_device(z), out)
    return out.copy_to_host()


# ---------------------------------------------------------------------------
# Areas
# ---------------------------------------------------------------------------


@cuda.jit
def _area_kernel(off, vx, vy, area, cen):
    r = cuda.grid(1)
    if r >= area.shape[0]:
        return
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
        cr = _mul(xa, yb) - _mul(xb, ya)
        a2 += cr
        cxs += _mul(xa + xb, cr)
        cys += _mul(ya + yb, cr)
    area[r] = 0.5 * a2
    if a2 != 0.0:
        cen[r, 0] = x0 + cxs / (3.0 * a2)
        cen[r, 1] = y0 + cys / (3.0 * a2)
    else:
        cen[r, 0] = x0
        cen[r, 1] = y0


def polygon_area_centroid(off: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shoelace area (R,) and centroid (R, 2) of every ring, one thread per ring (see ``cpu``)."""
    R = off.shape[0] - 1
    area = cuda.device_array(R)
    cen = cuda.device_array((R, 2))
    if R:
        _area_kernel[_grid(R), THREADS](cuda.to_device(off), cuda.to_device(vx), cuda.to_device(vy), area, cen)
    return area.copy_to_host(), cen.copy_to_host()


# ---------------------------------------------------------------------------
# Splitting convex polygons by lines (2-D cells); semantics in cpu.py
# ---------------------------------------------------------------------------


@cuda.jit(device=True)
def _line_eps(a, b, c, uscale, tol):
    return tol * (_mul(abs(a) + abs(b), uscale) + abs(c))


@cuda.jit
def _cell_signs_kernel(pre, off, vx, vy, uscale, tol, slopes, bits, cuts, ncut, masked):
    """One thread per cell: bits of the non-cutting neurons, the cutting ones in order, the masked map."""
    cell = cuda.grid(1)
    if cell >= pre.shape[0]:
        return
    n = pre.shape[2]
    st = off[cell]
    en = off[cell + 1]
    k = 0
    for i in range(n):
        a = pre[cell, 0, i]
        b = pre[cell, 1, i]
        c = pre[cell, 2, i]
        bit = 0
        if slopes[i] != 1.0:
            hi = -math.inf
            lo = math.inf
            for q in range(st, en):
                v = _line_at(a, b, c, vx[q], vy[q])
                if v > hi:
                    hi = v
                if v < lo:
                    lo = v
            eps = _line_eps(a, b, c, uscale[cell], tol)
            pos = hi > eps
            if pos and lo < -eps:
                cuts[cell, k] = i
                k += 1
            elif pos:
                bit = 1
        bits[cell, i] = bit
        for r in range(pre.shape[1]):
            v = pre[cell, r, i]
            masked[cell, r, i] = v if bit == 1 else slopes[i] * v
    ncut[cell] = k


@cuda.jit(device=True)
def _sign(v, e):
    if v > e:
        return 1
    if v < -e:
        return -1
    return 0


@cuda.jit(device=True)
def _side_count(px, py, ps, m, a, b, c, e, side):
    """Vertices of the part of ring ``ps:ps + m`` on ``side`` (+1 or -1) of the line."""
    cnt = 0
    for q in range(m):
        q1 = q + 1 if q + 1 < m else 0
        g0 = _sign(_line_at(a, b, c, px[ps + q], py[ps + q]), e) * side
        g1 = _sign(_line_at(a, b, c, px[ps + q1], py[ps + q1]), e) * side
        if g0 >= 0:
            cnt += 1
        if g0 * g1 < 0:
            cnt += 1
    return cnt


@cuda.jit(device=True)
def _piece_line(j, p, pcell, pre, cuts, ncut, uscale, tol):
    """The ``j``-th cutting line of piece ``p``'s cell: (active, a, b, c, eps, neuron)."""
    cell = pcell[p]
    if j >= ncut[cell]:
        return False, 0.0, 0.0, 0.0, 0.0, -1
    i = cuts[cell, j]
    a = pre[cell, 0, i]
    b = pre[cell, 1, i]
    c = pre[cell, 2, i]
    return True, a, b, c, _line_eps(a, b, c, uscale[cell], tol), i


@cuda.jit(device=True)
def _ring_sides(px, py, ps, m, a, b, c, e):
    """``(has_pos, has_neg)``: whether some vertex of ring ``ps:ps + m`` lies strictly on each side of the line."""
    has_pos = False
    has_neg = False
    for q in range(m):
        g = _sign(_line_at(a, b, c, px[ps + q], py[ps + q]), e)
        has_pos = has_pos or g > 0
        has_neg = has_neg or g < 0
    return has_pos, has_neg


@cuda.jit(device=True)
def _close_child(p, nb, end, j, positive, pcell, psid, qcell, qoff, qsid):
    """Finish child ``nb`` of piece ``p``: its ring ends at ``end``; its sides are its parent's plus,
    where ``positive``, line ``j``'s bit."""
    for w in range(psid.shape[1]):
        qsid[nb, w] = psid[p, w]
    if positive:
        qsid[nb, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
    qcell[nb] = pcell[p]
    qoff[nb + 1] = end


@cuda.jit
def _count_pieces(j, pcell, poff, px, py, pre, cuts, ncut, uscale, tol, npc, nvt):
    """One thread per piece: children (0, 1 or 2) and their vertices after cutting line ``j``."""
    p = cuda.grid(1)
    if p >= pcell.shape[0]:
        return
    ps = poff[p]
    m = poff[p + 1] - ps
    npc[p] = 1
    nvt[p] = m
    act, a, b, c, e, i = _piece_line(j, p, pcell, pre, cuts, ncut, uscale, tol)
    if not act:
        return
    has_pos, has_neg = _ring_sides(px, py, ps, m, a, b, c, e)
    if not (has_pos and has_neg):
        return
    npc[p] = 0
    nvt[p] = 0
    for side in (1, -1):
        cnt = _side_count(px, py, ps, m, a, b, c, e, side)
        if cnt >= 3:
            npc[p] += 1
            nvt[p] += cnt


@cuda.jit
def _write_pieces(j, layer, pcell, poff, px, py, pl, pn, psid, pre, cuts, ncut, uscale, tol,
                  pstart, vstart, qcell, qoff, qx, qy, ql, qn, qsid):
    """One thread per piece: write its children at ``pstart[p]`` / ``vstart[p]`` (see ``_count_pieces``)."""
    p = cuda.grid(1)
    if p >= pcell.shape[0]:
        return
    ps = poff[p]
    m = poff[p + 1] - ps
    nb = pstart[p]
    wv = vstart[p]
    act, a, b, c, e, i = _piece_line(j, p, pcell, pre, cuts, ncut, uscale, tol)
    has_pos = False
    has_neg = False
    if act:
        has_pos, has_neg = _ring_sides(px, py, ps, m, a, b, c, e)
    if not (has_pos and has_neg):
        for q in range(m):
            qx[wv + q] = px[ps + q]
            qy[wv + q] = py[ps + q]
            ql[wv + q] = pl[ps + q]
            qn[wv + q] = pn[ps + q]
        _close_child(p, nb, wv + m, j, has_pos, pcell, psid, qcell, qoff, qsid)
        return
    for side in (1, -1):
        if _side_count(px, py, ps, m, a, b, c, e, side) < 3:
            continue
        for q in range(m):
            q1 = q + 1 if q + 1 < m else 0
            s0 = _line_at(a, b, c, px[ps + q], py[ps + q])
            s1 = _line_at(a, b, c, px[ps + q1], py[ps + q1])
            g0 = _sign(s0, e) * side
            g1 = _sign(s1, e) * side
            if g0 >= 0:
                qx[wv] = px[ps + q]
                qy[wv] = py[ps + q]
                if g0 == 0 and g1 <= 0:
                    ql[wv] = layer
                    qn[wv] = i
                else:
                    ql[wv] = pl[ps + q]
                    qn[wv] = pn[ps + q]
                wv += 1
            if g0 * g1 < 0:
                t = s0 / (s0 - s1)
                x0 = px[ps + q]
                y0 = py[ps + q]
                qx[wv] = x0 + _mul(t, px[ps + q1] - x0)
                qy[wv] = y0 + _mul(t, py[ps + q1] - y0)
                if g0 > 0:
                    ql[wv] = layer
                    qn[wv] = i
                else:
                    ql[wv] = pl[ps + q]
                    qn[wv] = pn[ps + q]
                wv += 1
        _close_child(p, nb, wv, j, side == 1, pcell, psid, qcell, qoff, qsid)
        nb += 1


@cuda.jit
def _first_piece(cfirst, pstart):
    """Move each cell's first-piece index through one scan: ``cfirst[c] = pstart[cfirst[c]]``."""
    c = cuda.grid(1)
    if c < cfirst.shape[0]:
        cfirst[c] = pstart[cfirst[c]]


def _split_all(pre, off, vx, vy, elay, eneu, uscale, tol, layer, cuts, ncut):
    """Split every cell of a batch by its cutting lines, line by line across all pieces.

    All arguments are device arrays (``cuts`` (C, n), ``ncut`` (C,) from the
    classification). Returns device arrays: ``cfirst`` (C + 1,) first piece of
    each cell, piece rings ``poff, px, py, pl, pn`` and sides ``psid`` (P, words).
    """
    C = pre.shape[0]
    words = max(1, (pre.shape[2] + 63) // 64)
    pcell = cuda.to_device(np.arange(C, dtype=np.int64))
    poff, px, py, pl, pn = off, vx, vy, elay, eneu
    psid = cuda.to_device(np.zeros((C, words), dtype=np.uint64))
    cfirst = cuda.to_device(np.arange(C + 1, dtype=np.int64))
    kmax = int(ncut.copy_to_host().max()) if C else 0
    for j in range(kmax):
        P = pcell.shape[0]
        npc = cuda.device_array(P, dtype=np.int64)
        nvt = cuda.device_array(P, dtype=np.int64)
        _count_pieces[_grid(P), THREADS](j, pcell, poff, px, py, pre, cuts, ncut, uscale, tol, npc, nvt)
        pstart = _exclusive_scan(npc)
        vstart = _exclusive_scan(nvt)
        NP = int(pstart[P:P + 1].copy_to_host()[0])
        NV = int(vstart[P:P + 1].copy_to_host()[0])
        qcell = cuda.device_array(NP, dtype=np.int64)
        qoff = cuda.to_device(np.zeros(NP + 1, dtype=np.int64))
        qx = cuda.device_array(NV)
        qy = cuda.device_array(NV)
        ql = cuda.device_array(NV, dtype=np.int32)
        qn = cuda.device_array(NV, dtype=np.int32)
        qsid = cuda.device_array((NP, words), dtype=np.uint64)
        _write_pieces[_grid(P), THREADS](j, layer, pcell, poff, px, py, pl, pn, psid, pre, cuts, ncut, uscale,
                                         tol, pstart, vstart, qcell, qoff, qx, qy, ql, qn, qsid)
        _first_piece[_grid(C + 1), THREADS](cfirst, pstart)
        pcell, poff, px, py, pl, pn, psid = qcell, qoff, qx, qy, ql, qn, qsid
    return cfirst, poff, px, py, pl, pn, psid


@cuda.jit
def _cell_totals(cfirst, poff, npieces, nverts):
    c = cuda.grid(1)
    if c < npieces.shape[0]:
        npieces[c] = cfirst[c + 1] - cfirst[c]
        nverts[c] = poff[cfirst[c + 1]] - poff[cfirst[c]]


def _classify(pre, off, vx, vy, uscale, tol, slopes):
    C, rows, n = pre.shape
    bits = cuda.device_array((C, n), dtype=np.uint8)
    cuts = cuda.device_array((C, n), dtype=np.int32)
    ncut = cuda.device_array(C, dtype=np.int64)
    masked = cuda.device_array((C, rows, n))
    if C:
        _cell_signs_kernel[_grid(C), THREADS](pre, off, vx, vy, uscale, float(tol), slopes, bits, cuts, ncut,
                                              masked)
    return bits, cuts, ncut, masked


def _to_device(*arrays):
    return tuple(cuda.to_device(np.ascontiguousarray(a)) for a in arrays)


def split_cells_count(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes):
    """Pass 1 of splitting a batch of cells by one layer's neurons (see ``cpu.split_cells_count``).

    Returns host arrays ``bits`` (C, n) uint8, ``cuts`` (C, n) int32 (rows
    valid up to ``ncut``), ``ncut``, ``npieces``, ``nverts`` (C,) int64 and
    ``masked`` (C, 3, n) float64, equal to the CPU kernel's.
    """
    d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, d_s = _to_device(pre, off, vx, vy, elay, eneu, uscale, slopes)
    bits, cuts, ncut, masked = _classify(d_pre, d_off, d_vx, d_vy, d_u, tol, d_s)
    C = pre.shape[0]
    cfirst, poff, *_ = _split_all(d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, float(tol), int(layer), cuts, ncut)
    npieces = cuda.device_array(C, dtype=np.int64)
    nverts = cuda.device_array(C, dtype=np.int64)
    if C:
        _cell_totals[_grid(C), THREADS](cfirst, poff, npieces, nverts)
    return (bits.copy_to_host(), cuts.copy_to_host(), ncut.copy_to_host(), npieces.copy_to_host(),
            nverts.copy_to_host(), masked.copy_to_host())


@cuda.jit(device=True)
def _active(side, srow, j):
    """Whether bit ``j`` of row ``srow`` of ``side`` is set: the child is on cutting line ``j``'s positive side."""
    return (side[srow, j >> 6] >> np.uint64(j & 63)) & np.uint64(1) == 1


@cuda.jit(device=True)
def _child_pattern(child, cell, side, srow, bits, cuts, k, pat, bit_offset, cpat):
    """The parent's pattern plus this layer's bits: the positive neurons and the active cutting ones."""
    for w in range(pat.shape[1]):
        cpat[child, w] = pat[cell, w]
    for i in range(bits.shape[1]):
        if bits[cell, i] == 1:
            g = bit_offset + i
            cpat[child, g >> 6] |= np.uint64(1) << np.uint64(g & 63)
    for j in range(k):
        if _active(side, srow, j):
            g = bit_offset + cuts[cell, j]
            cpat[child, g >> 6] |= np.uint64(1) << np.uint64(g & 63)


@cuda.jit(device=True)
def _child_next_map(child, cell, side, srow, pre, cuts, k, slopes, base, wt, cnext):
    """The next layer's map on a child: the parent's ``base`` plus a rank-1 update per active cutting
    neuron (see ``cpu._finish_child``)."""
    for r in range(pre.shape[1]):
        for o in range(wt.shape[1]):
            cnext[child, r, o] = base[cell, r, o]
    for j in range(k):
        if not _active(side, srow, j):
            continue
        i = cuts[cell, j]
        for r in range(pre.shape[1]):
            coef = (1.0 - slopes[i]) * pre[cell, r, i]
            if coef != 0.0:
                for o in range(wt.shape[1]):
                    cnext[child, r, o] += _mul(coef, wt[i, o])


@cuda.jit
def _finish_children(cfirst, pcell, poff, px, py, pl, pn, psid, pre, bits, cuts, ncut, slopes, pat, bit_offset,
                     base, wt, piece_start, vert_start, coff, cx, cy, cl, cn, cpat, cnext, cparent):
    """One thread per child: its ring, parent, pattern and next-layer map (see ``cpu._finish_child``)."""
    p = cuda.grid(1)
    if p >= pcell.shape[0]:
        return
    cell = pcell[p]
    f = cfirst[cell]
    child = piece_start[cell] + p - f
    w0 = vert_start[cell] + poff[p] - poff[f]
    m = poff[p + 1] - poff[p]
    for q in range(m):
        cx[w0 + q] = px[poff[p] + q]
        cy[w0 + q] = py[poff[p] + q]
        cl[w0 + q] = pl[poff[p] + q]
        cn[w0 + q] = pn[poff[p] + q]
    coff[child + 1] = w0 + m
    cparent[child] = cell
    _child_pattern(child, cell, psid, p, bits, cuts, ncut[cell], pat, bit_offset, cpat)
    _child_next_map(child, cell, psid, p, pre, cuts, ncut[cell], slopes, base, wt, cnext)


@cuda.jit
def _piece_cells(cfirst, pcell):
    c = cuda.grid(1)
    if c < cfirst.shape[0] - 1:
        for p in range(cfirst[c], cfirst[c + 1]):
            pcell[p] = c


def split_cells_write(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes, pat, bit_offset,
                      bits, cuts, ncut, piece_start, vert_start, base, wt,
                      coff, cx, cy, cl, cn, cpat, cnext, cparent) -> None:
    """Pass 2: write the children counted by :func:`split_cells_count` (see ``cpu.split_cells_write``).

    The rings are split again on the device; the children are written into
    the host arrays ``coff`` ... ``cparent``, equal to the CPU kernel's.
    """
    d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, d_s = _to_device(pre, off, vx, vy, elay, eneu, uscale, slopes)
    d_bits, d_cuts, d_ncut, d_pat, d_ps, d_vs, d_base, d_wt = _to_device(
        bits, cuts, ncut, pat, piece_start, vert_start, base, wt)
    C = pre.shape[0]
    cfirst, poff, px, py, pl, pn, psid = _split_all(d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, float(tol),
                                                     int(layer), d_cuts, d_ncut)
    P = poff.shape[0] - 1
    pcell = cuda.device_array(P, dtype=np.int64)
    outs = _to_device(coff, cx, cy, cl, cn, cpat, cnext, cparent)
    if C:
        _piece_cells[_grid(C), THREADS](cfirst, pcell)
    if P:
        _finish_children[_grid(P), THREADS](cfirst, pcell, poff, px, py, pl, pn, psid, d_pre, d_bits, d_cuts, d_ncut,
                                            d_s, d_pat, int(bit_offset), d_base, d_wt, d_ps, d_vs, *outs)
    for host, dev in zip((coff, cx, cy, cl, cn, cpat, cnext, cparent), outs):
        dev.copy_to_host(host)
    return None


# ---------------------------------------------------------------------------
# Splitting intervals by points (1-D cells); semantics in cpu.py
# ---------------------------------------------------------------------------

# numba's quicksort: ranges shorter than 16 go to insertion sort; pending ranges wait on a stack
_SMALL_SORT = 15
_STACK = 200  # numba's MAX_STACK = 100 ranges, two ends each


@cuda.jit(device=True)
def _lt(a, b):
    """numba's float order for sorting: NaN after everything."""
    return a < b or (math.isnan(b) and not math.isnan(a))


@cuda.jit(device=True)
def _insertion_sort(A, R, row, low, high):
    """Insertion sort of ``R[row, low:high + 1]`` by the keys ``A[row, R[row, .]]`` (stable)."""
    for i in range(low + 1, high + 1):
        k = R[row, i]
        v = A[row, k]
        j = i
        while j > low and _lt(v, A[row, R[row, j - 1]]):
            R[row, j] = R[row, j - 1]
            j -= 1
        R[row, j] = k


@cuda.jit(device=True)
def _swap(R, row, i, j):
    t = R[row, i]
    R[row, i] = R[row, j]
    R[row, j] = t


@cuda.jit(device=True)
def _partition(A, R, row, low, high):
    """numba's quicksort partition of ``R[row, low:high + 1]`` (median of three); returns the pivot's place."""
    mid = (low + high) >> 1
    if _lt(A[row, R[row, mid]], A[row, R[row, low]]):
        _swap(R, row, low, mid)
    if _lt(A[row, R[row, high]], A[row, R[row, mid]]):
        _swap(R, row, high, mid)
    if _lt(A[row, R[row, mid]], A[row, R[row, low]]):
        _swap(R, row, low, mid)
    pivot = A[row, R[row, mid]]
    _swap(R, row, high, mid)
    i = low
    j = high - 1
    while True:
        while i < high and _lt(A[row, R[row, i]], pivot):
            i += 1
        while j >= low and _lt(pivot, A[row, R[row, j]]):
            j -= 1
        if i >= j:
            break
        _swap(R, row, i, j)
        i += 1
        j -= 1
    _swap(R, row, i, high)
    return i


@cuda.jit(device=True)
def _argsort(A, R, row, k):
    """``R[row, :k]`` = ``np.argsort(A[row, :k])`` as numba's quicksort orders it, ties included."""
    for j in range(k):
        R[row, j] = j
    if k < 2:
        return
    stack = cuda.local.array(_STACK, dtype=np.int64)
    stack[0] = 0
    stack[1] = k - 1
    n = 1
    while n > 0:
        n -= 1
        low = stack[2 * n]
        high = stack[2 * n + 1]
        while high - low >= _SMALL_SORT:
            i = _partition(A, R, row, low, high)
            # the larger side waits on the stack
            if high - i > i - low:
                if high > i:
                    stack[2 * n] = i + 1
                    stack[2 * n + 1] = high
                    n += 1
                high = i - 1
            else:
                if i > low:
                    stack[2 * n] = low
                    stack[2 * n + 1] = i - 1
                    n += 1
                low = i + 1
        _insertion_sort(A, R, row, low, high)


@cuda.jit(device=True)
def _interval_cuts(pre, cell, t0, t1, uscale, tol, slopes, bits, cuts, rts, cut0, order):
    """Classify every neuron on the interval [t0, t1] of ``cell`` (see ``cpu._interval_cuts``).

    Writes ``bits[cell]`` and the cutting neurons sorted by breakpoint to
    ``cuts[cell]``; ``rts``, ``cut0``, ``order`` are (C, n) scratch holding the
    unsorted breakpoints, the unsorted cuts and their order. Returns
    ``(k, groups)``.
    """
    k = 0
    for i in range(pre.shape[2]):
        if slopes[i] == 1.0:
            bits[cell, i] = 0
            continue
        a = pre[cell, 0, i]
        c = pre[cell, 1, i]
        eps = tol * (_mul(abs(a), uscale) + abs(c))
        s0 = _mul(a, t0) + c
        s1 = _mul(a, t1) + c
        if (s0 > eps and s1 < -eps) or (s0 < -eps and s1 > eps):
            cut0[cell, k] = i
            rts[cell, k] = -c / a
            k += 1
            bits[cell, i] = 0
        else:
            bits[cell, i] = 1 if (s0 > eps or s1 > eps) else 0
    if k == 0:
        return 0, 0
    _argsort(rts, order, cell, k)
    groups = 1
    prev = rts[cell, order[cell, 0]]
    for j in range(k):
        cuts[cell, j] = cut0[cell, order[cell, j]]
        r = rts[cell, order[cell, j]]
        if j > 0 and r - prev > tol * uscale:
            groups += 1
        prev = r
    return k, groups


@cuda.jit
def _interval_count_kernel(pre, off, vx, uscale, tol, slopes, bits, cuts, ncut, npieces, nverts, masked,
                           rts, cut0, order):
    """One thread per interval: classify the neurons, count the children, mask the map."""
    cell = cuda.grid(1)
    if cell >= pre.shape[0]:
        return
    st = off[cell]
    k, groups = _interval_cuts(pre, cell, vx[st], vx[st + 1], uscale[cell], tol, slopes, bits, cuts, rts, cut0,
                               order)
    ncut[cell] = k
    npieces[cell] = groups + 1
    nverts[cell] = 2 * (groups + 1)
    for r in range(pre.shape[1]):
        for i in range(pre.shape[2]):
            v = pre[cell, r, i]
            masked[cell, r, i] = v if bits[cell, i] == 1 else slopes[i] * v


def _count_intervals(d_pre, d_off, d_vx, d_u, tol, d_s):
    """Device arrays ``bits, cuts, ncut, npieces, nverts, masked`` of :func:`split_intervals_count`."""
    C, rows, n = d_pre.shape
    bits = cuda.device_array((C, n), dtype=np.uint8)
    cuts = cuda.device_array((C, n), dtype=np.int32)
    ncut = cuda.device_array(C, dtype=np.int64)
    npieces = cuda.device_array(C, dtype=np.int64)
    nverts = cuda.device_array(C, dtype=np.int64)
    masked = cuda.device_array((C, rows, n))
    if C:
        rts = cuda.device_array((C, n))
        cut0 = cuda.device_array((C, n), dtype=np.int32)
        order = cuda.device_array((C, n), dtype=np.int64)
        _interval_count_kernel[_grid(C), THREADS](d_pre, d_off, d_vx, d_u, float(tol), d_s, bits, cuts, ncut,
                                                  npieces, nverts, masked, rts, cut0, order)
    return bits, cuts, ncut, npieces, nverts, masked


def split_intervals_count(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes):
    """Pass 1 for intervals (see ``cpu.split_intervals_count``), one thread per cell.

    Returns host arrays equal to the CPU kernel's, each row of ``cuts`` sorted
    by breakpoint with ties in the same order.
    """
    d_pre, d_off, d_vx, d_u, d_s = _to_device(pre, off, vx, uscale, slopes)
    return tuple(a.copy_to_host() for a in _count_intervals(d_pre, d_off, d_vx, d_u, tol, d_s))


@cuda.jit
def _interval_write_kernel(pre, off, vx, elay, eneu, uscale, tol, layer, slopes, pat, bit_offset, bits, cuts, ncut,
                           piece_start, vert_start, base, wt, coff, cx, cy, cl, cn, cpat, cnext, cparent,
                           rts, first, active):
    """One thread per interval: write its children (see ``cpu.split_intervals_write``).

    ``rts`` (C, n), ``first`` (C, n + 1) and ``active`` (C, words) are scratch:
    the sorted breakpoints, the first cut of each group of coinciding ones and
    the child's side of every cutting neuron.
    """
    cell = cuda.grid(1)
    if cell >= pre.shape[0]:
        return
    st = off[cell]
    k = ncut[cell]
    p0 = piece_start[cell]
    w0 = vert_start[cell]
    for j in range(k):
        i = cuts[cell, j]
        rts[cell, j] = -pre[cell, 1, i] / pre[cell, 0, i]
    groups = 0
    for j in range(k):
        if j == 0 or rts[cell, j] - rts[cell, j - 1] > tol * uscale[cell]:
            first[cell, groups] = j
            groups += 1
    first[cell, groups] = k
    for p in range(groups + 1):
        child = p0 + p
        w = w0 + 2 * p
        if p == 0:
            cx[w] = vx[st]
            cl[w] = elay[st]
            cn[w] = eneu[st]
        else:
            cx[w] = rts[cell, first[cell, p - 1]]
            cl[w] = layer
            cn[w] = cuts[cell, first[cell, p - 1]]
        if p == groups:
            cx[w + 1] = vx[st + 1]
            cl[w + 1] = elay[st + 1]
            cn[w + 1] = eneu[st + 1]
        else:
            cx[w + 1] = rts[cell, first[cell, p]]
            cl[w + 1] = layer
            cn[w + 1] = cuts[cell, first[cell, p]]
        cy[w] = 0.0
        cy[w + 1] = 0.0
        coff[child + 1] = w + 2
        cparent[child] = cell
        # the child lies right of the breakpoints of the first p groups
        for v in range(active.shape[1]):
            active[cell, v] = 0
        for j in range(k):
            right = j < first[cell, p]
            if (pre[cell, 0, cuts[cell, j]] > 0.0) == right:
                active[cell, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
        _child_pattern(child, cell, active, cell, bits, cuts, k, pat, bit_offset, cpat)
        _child_next_map(child, cell, active, cell, pre, cuts, k, slopes, base, wt, cnext)


def split_intervals_write(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes, pat, bit_offset,
                          bits, cuts, ncut, piece_start, vert_start, base, wt,
                          coff, cx, cy, cl, cn, cpat, cnext, cparent) -> None:
    """Pass 2 for intervals (see ``cpu.split_intervals_write``), one thread per cell.

    The children are written into the host arrays ``coff`` ... ``cparent``,
    equal to the CPU kernel's.
    """
    C, _, n = pre.shape
    if C == 0:
        return None
    d = _to_device(pre, off, vx, elay, eneu, uscale)
    d_s, d_pat, d_bits, d_cuts, d_ncut, d_ps, d_vs, d_base, d_wt = _to_device(
        slopes, pat, bits, cuts, ncut, piece_start, vert_start, base, wt)
    outs = _to_device(coff, cx, cy, cl, cn, cpat, cnext, cparent)
    rts = cuda.device_array((C, max(1, n)))
    first = cuda.device_array((C, n + 1), dtype=np.int64)
    active = cuda.device_array((C, max(1, (n + 63) // 64)), dtype=np.uint64)
    _interval_write_kernel[_grid(C), THREADS](*d, float(tol), int(layer), d_s, d_pat, int(bit_offset), d_bits,
                                              d_cuts, d_ncut, d_ps, d_vs, d_base, d_wt, *outs, rts, first, active)
    for host, dev in zip((coff, cx, cy, cl, cn, cpat, cnext, cparent), outs):
        dev.copy_to_host(host)
    return None


# ---------------------------------------------------------------------------
# Per-root reductions of leaf cells (local complexity)
# ---------------------------------------------------------------------------


@cuda.jit
def _reduce_leaves_kernel(off, vx, vy, elay, eneu, root, maps, layer_offset, logit_offset, with_logits,
                          uscale, tol, hits, clen):
    """One thread per leaf: set its root's hit bits (idempotent writes) and its own length share ``clen``."""
    c = cuda.grid(1)
    if c >= off.shape[0] - 1:
        return
    r = root[c]
    st = off[c]
    en = off[c + 1]
    two_d = maps.shape[1] == 3
    total = 0.0
    for q in range(st, en):
        if elay[q] >= 0:
            hits[r, layer_offset[elay[q]] + eneu[q]] = 1
            if two_d:
                q1 = q + 1 if q + 1 < en else st
                total += _half_edge(vx, vy, q, q1)
            else:
                total += 0.5
    if with_logits:
        for o in range(maps.shape[2]):
            a = maps[c, 0, o]
            b = maps[c, 1, o] if two_d else 0.0
            cc = maps[c, 2, o] if two_d else maps[c, 1, o]
            eps = tol * (_mul(abs(a) + abs(b), uscale[c]) + abs(cc))
            pos = False
            neg = False
            for q in range(st, en):
                v = _line_at(a, b, cc, vx[q], vy[q])
                if v > eps:
                    pos = True
                elif v < -eps:
                    neg = True
            if not (pos and neg):
                continue
            hits[r, logit_offset + o] = 1
            if not two_d:
                total += 1.0
                continue
            npt = 0
            x0 = 0.0
            y0 = 0.0
            for q in range(st, en):
                q1 = q + 1 if q + 1 < en else st
                s0 = _line_at(a, b, cc, vx[q], vy[q])
                s1 = _line_at(a, b, cc, vx[q1], vy[q1])
                if (s0 >= 0.0) != (s1 >= 0.0) and npt < 2:
                    t = s0 / (s0 - s1)
                    x = vx[q] + _mul(t, vx[q1] - vx[q])
                    y = vy[q] + _mul(t, vy[q1] - vy[q])
                    if npt == 1:
                        total += math.sqrt(_mul(x - x0, x - x0) + _mul(y - y0, y - y0))
                    x0 = x
                    y0 = y
                    npt += 1
    clen[c] = total


def reduce_leaves(off, vx, vy, elay, eneu, root, maps, layer_offset, logit_offset, with_logits,
                  uscale, tol, counts, hits, length) -> None:
    """Accumulate, per root domain, what its leaf cells say about it (see ``cpu.reduce_leaves``).

    One thread per leaf; the per-leaf counts and lengths are summed per root
    on the host (``np.add.at``), so lengths agree with the CPU kernel to
    rounding, counts and hits exactly.
    """
    C = off.shape[0] - 1
    if C == 0:
        return None
    d = _to_device(off, vx, vy, elay, eneu, root, maps, layer_offset)
    d_u, d_hits = _to_device(uscale, hits)
    clen = cuda.device_array(C)
    _reduce_leaves_kernel[_grid(C), THREADS](*d, int(logit_offset), bool(with_logits), d_u, float(tol), d_hits,
                                             clen)
    d_hits.copy_to_host(hits)
    np.add.at(counts, root, 1)
    np.add.at(length, root, clen.copy_to_host())
    return None


# ---------------------------------------------------------------------------
# Counting the last hidden layer without storing its cells (local complexity)
# ---------------------------------------------------------------------------


@cuda.jit
def _new_edge_lengths(gfirst, ncut, poff, px, py, pl, layer, out):
    """One thread per group of pieces: length of the edges that ``layer`` made among them, half per
    piece (see ``cpu._new_edge_length``); 0 for a group that no line cuts."""
    g = cuda.grid(1)
    if g >= out.shape[0]:
        return
    total = 0.0
    if ncut[g] > 0:
        for p in range(gfirst[g], gfirst[g + 1]):
            a = poff[p]
            b = poff[p + 1]
            for q in range(a, b):
                if pl[q] == layer:
                    q1 = q + 1 if q + 1 < b else a
                    total += _half_edge(px, py, q, q1)
    out[g] = total


@cuda.jit
def _ring_edge_lengths(off, vx, vy, elay, two_d, elen):
    """One thread per cell: what each inner edge adds to its root's length (see ``cpu._add_ring_edges``):
    half its length (2-D) or half a crossing (1-D); 0 on the domain boundary."""
    c = cuda.grid(1)
    if c >= off.shape[0] - 1:
        return
    st = off[c]
    en = off[c + 1]
    for q in range(st, en):
        if elay[q] < 0:
            elen[q] = 0.0
        elif two_d:
            q1 = q + 1 if q + 1 < en else st
            elen[q] = _half_edge(vx, vy, q, q1)
        else:
            elen[q] = 0.5


def _add_to_roots(off, elay, eneu, root, cuts, ncut, pieces, chord, elen, layer, layer_offset, counts, hits,
                  length) -> None:
    """Sum per root what each cell holds, in ``cpu.reduce_last_layer``'s order.

    ``length`` gets each cell's ``chord`` and then its inner edges' ``elen``
    one after another (``np.add.at`` adds its items in order), so the sums
    are the CPU kernel's bit for bit.
    """
    C = root.shape[0]
    np.add.at(counts, root, pieces)
    v0 = int(off[0])
    nv = np.diff(off)
    vcell = np.repeat(np.arange(C), nv)
    q = np.arange(v0, int(off[-1]))
    inner = elay[q] >= 0
    # cell c's chord goes just before its vertices
    place = np.empty(C + len(q), dtype=np.int64)
    order_chord = off[:-1] - v0 + np.arange(C)
    order_edge = q - v0 + vcell + 1
    keep = np.ones(C + len(q), dtype=bool)
    keep[order_edge] = inner
    place[order_chord] = root
    place[order_edge] = root[vcell]
    vals = np.empty(C + len(q))
    vals[order_chord] = chord
    vals[order_edge] = elen[q]
    np.add.at(length, place[keep], vals[keep])
    cell, j = np.nonzero(np.arange(cuts.shape[1])[None, :] < ncut[:, None])
    hits[root[cell], layer_offset[layer] + cuts[cell, j]] = 1
    qi = q[inner]
    hits[root[vcell[inner]], layer_offset[elay[qi]] + eneu[qi]] = 1


def reduce_last_layer(pre, off, vx, vy, elay, eneu, root, uscale, tol, layer, slopes, layer_offset,
                      counts, hits, length) -> None:
    """Per-root reduction of the cells before the last hidden layer (see ``cpu.reduce_last_layer``).

    2-D cells are classified and split on the device (``_split_all``) only to
    count their pieces and measure the new edges; intervals run one thread
    per cell. The per-root sums are done on the host in the CPU kernel's
    order: counts, hits and lengths equal the CPU kernel's.
    """
    C = pre.shape[0]
    if C == 0:
        return None
    two_d = pre.shape[1] == 3
    d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, d_s = _to_device(pre, off, vx, vy, elay, eneu, uscale, slopes)
    if two_d:
        _, cuts, ncut, _ = _classify(d_pre, d_off, d_vx, d_vy, d_u, tol, d_s)
        cfirst, poff, px, py, pl, _, _ = _split_all(d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, float(tol),
                                                    int(layer), cuts, ncut)
        d_chord = cuda.device_array(C)
        _new_edge_lengths[_grid(C), THREADS](cfirst, ncut, poff, px, py, pl, int(layer), d_chord)
        npieces = cuda.device_array(C, dtype=np.int64)
        nverts = cuda.device_array(C, dtype=np.int64)
        _cell_totals[_grid(C), THREADS](cfirst, poff, npieces, nverts)
        pieces = npieces.copy_to_host()
        chord = d_chord.copy_to_host()
    else:
        _, cuts, ncut, npieces, _, _ = _count_intervals(d_pre, d_off, d_vx, d_u, tol, d_s)
        pieces = npieces.copy_to_host()
        # a cut interval holds groups + 1 pieces and one crossing per group
        chord = (pieces - 1).astype(np.float64)
    elen = cuda.device_array(d_vx.shape[0])
    _ring_edge_lengths[_grid(C), THREADS](d_off, d_vx, d_vy, d_l, two_d, elen)
    _add_to_roots(off, elay, eneu, root, cuts.copy_to_host(), ncut.copy_to_host(), pieces, chord,
                  elen.copy_to_host(), int(layer), layer_offset, counts, hits, length)
    return None


@cuda.jit
def _piece_next_maps(pcell, psid, pre, cuts, ncut, slopes, base, wt, uscale, nmap, pscale):
    """One thread per piece: the next layer's map on it (as ``_finish_children``) and its cell's scale."""
    p = cuda.grid(1)
    if p >= pcell.shape[0]:
        return
    cell = pcell[p]
    _child_next_map(p, cell, psid, p, pre, cuts, ncut[cell], slopes, base, wt, nmap)
    pscale[p] = uscale[cell]


@cuda.jit
def _reduce_children(cfirst, poff, px, py, pl, cuts2, ncut2, cfirst2, plen, pieces, length, next_hits):
    """One thread per parent cell: sum over its children the pieces the next layer makes, the inner edge
    lengths (half each) and the next layer's new edges, in ``cpu.split_cells_reduce``'s order; mark the
    next-layer neurons that cut a child."""
    c = cuda.grid(1)
    if c >= pieces.shape[0]:
        return
    npc = 0
    total = 0.0
    for p in range(cfirst[c], cfirst[c + 1]):
        a = poff[p]
        b = poff[p + 1]
        for q in range(a, b):
            if pl[q] >= 0:
                q1 = q + 1 if q + 1 < b else a
                total += _half_edge(px, py, q, q1)
        kk = ncut2[p]
        if kk == 0:
            npc += 1
            continue
        npc += cfirst2[p + 1] - cfirst2[p]
        total += plen[p]
        for j in range(kk):
            next_hits[c, cuts2[p, j]] = 1
    pieces[c] = npc
    length[c] = total


@cuda.jit(device=True)
def _dot8(masked, cell, r, w, o):
    """``masked[cell, r] . w[o]`` in ``cpu._dot8``'s order: eight interleaved parts, added pairwise."""
    n = masked.shape[2]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    i = 0
    while i + 8 <= n:
        a0 += _mul(masked[cell, r, i], w[o, i])
        a1 += _mul(masked[cell, r, i + 1], w[o, i + 1])
        a2 += _mul(masked[cell, r, i + 2], w[o, i + 2])
        a3 += _mul(masked[cell, r, i + 3], w[o, i + 3])
        a4 += _mul(masked[cell, r, i + 4], w[o, i + 4])
        a5 += _mul(masked[cell, r, i + 5], w[o, i + 5])
        a6 += _mul(masked[cell, r, i + 6], w[o, i + 6])
        a7 += _mul(masked[cell, r, i + 7], w[o, i + 7])
        i += 8
    while i < n:
        a0 += _mul(masked[cell, r, i], w[o, i])
        i += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@cuda.jit
def _parent_next_maps(masked, w, bias, base):
    """One thread per (parent, next-layer neuron): the neuron's map on the parent with the cutting neurons
    inactive, as ``cpu._children_candidates`` computes it."""
    t = cuda.grid(1)
    n_next = w.shape[0]
    if t >= masked.shape[0] * n_next:
        return
    cell = t // n_next
    o = t - cell * n_next
    base[cell, 0, o] = _dot8(masked, cell, 0, w, o)
    base[cell, 1, o] = _dot8(masked, cell, 1, w, o)
    base[cell, 2, o] = _dot8(masked, cell, 2, w, o) + bias[o]


def split_cells_reduce(pre, off, vx, vy, elay, eneu, uscale, tol, layer, slopes, bits, cuts, ncut, masked, w, wt,
                       bias, rough, next_slopes):
    """Split 2-D cells by layer ``layer`` and count what the next layer does to each child
    (see ``cpu.split_cells_reduce``).

    Every parent gets the next layer's map (one thread per parent and
    neuron; ``rough`` only lets the CPU kernel skip neurons, so it is not
    used here), the cells are split on the device (``_split_all``), every
    child gets the next layer's map (one thread per child), the children are
    classified and split by it, and one thread per parent sums pieces,
    lengths and hits. Returns host arrays ``pieces`` (C,) int64, ``length``
    (C,) float64 and ``next_hits`` (C, n_next) uint8, equal to the CPU
    kernel's.
    """
    C = pre.shape[0]
    n_next = w.shape[0]
    pieces = cuda.device_array(C, dtype=np.int64)
    length = cuda.device_array(C)
    next_hits = cuda.to_device(np.zeros((C, n_next), dtype=np.uint8))
    if C == 0:
        return pieces.copy_to_host(), length.copy_to_host(), next_hits.copy_to_host()
    d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, d_s = _to_device(pre, off, vx, vy, elay, eneu, uscale, slopes)
    d_cuts, d_ncut, d_masked, d_w, d_bias, d_wt, d_ns = _to_device(cuts, ncut, masked, w, bias, wt, next_slopes)
    d_base = cuda.device_array((C, pre.shape[1], n_next))
    _parent_next_maps[_grid(C * n_next), THREADS](d_masked, d_w, d_bias, d_base)
    cfirst, poff, px, py, pl, pn, psid = _split_all(d_pre, d_off, d_vx, d_vy, d_l, d_n, d_u, float(tol),
                                                    int(layer), d_cuts, d_ncut)
    P = poff.shape[0] - 1
    pcell = cuda.device_array(P, dtype=np.int64)
    _piece_cells[_grid(C), THREADS](cfirst, pcell)
    nmap = cuda.device_array((P, pre.shape[1], n_next))
    pscale = cuda.device_array(P)
    _piece_next_maps[_grid(P), THREADS](pcell, psid, d_pre, d_cuts, d_ncut, d_s, d_base, d_wt, d_u, nmap, pscale)
    _, cuts2, ncut2, _ = _classify(nmap, poff, px, py, pscale, tol, d_ns)
    cfirst2, poff2, px2, py2, pl2, _, _ = _split_all(nmap, poff, px, py, pl, pn, pscale, float(tol),
                                                     int(layer) + 1, cuts2, ncut2)
    plen = cuda.device_array(P)
    _new_edge_lengths[_grid(P), THREADS](cfirst2, ncut2, poff2, px2, py2, pl2, int(layer) + 1, plen)
    _reduce_children[_grid(C), THREADS](cfirst, poff, px, py, pl, cuts2, ncut2, cfirst2, plen, pieces, length,
                                        next_hits)
    return pieces.copy_to_host(), length.copy_to_host(), next_hits.copy_to_host()
