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

On the GPU: ``pack_signs``, ``polygon_area_centroid``, ``split_cells_count``,
``split_cells_write``, ``reduce_leaves``. On the CPU (the ``cpu.py`` kernel,
called from here): ``split_intervals_count``, ``split_intervals_write``,
``reduce_last_layer``, ``split_cells_reduce``, ``split_cells_max``,
``decision_boundary_2d``, ``decision_boundary_1d``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

from . import cpu

# threads per block; the simulator runs every thread as a Python thread, so it gets small blocks
THREADS = 16 if config.ENABLE_CUDASIM else 128

# kernels without a CUDA body yet: the CPU kernel, same contract
split_intervals_count = cpu.split_intervals_count
split_intervals_write = cpu.split_intervals_write
reduce_last_layer = cpu.reduce_last_layer
split_cells_reduce = cpu.split_cells_reduce
split_cells_max = cpu.split_cells_max
decision_boundary_2d = cpu.decision_boundary_2d
decision_boundary_1d = cpu.decision_boundary_1d
split_polygon = cpu.split_polygon


def _grid(n: int) -> int:
    return max(1, (n + THREADS - 1) // THREADS)


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
    return tol * ((abs(a) + abs(b)) * uscale + abs(c))


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
                v = a * vx[q] + b * vy[q] + c
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
        g0 = _sign(a * px[ps + q] + b * py[ps + q] + c, e) * side
        g1 = _sign(a * px[ps + q1] + b * py[ps + q1] + c, e) * side
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
    has_pos = False
    has_neg = False
    for q in range(m):
        g = _sign(a * px[ps + q] + b * py[ps + q] + c, e)
        has_pos = has_pos or g > 0
        has_neg = has_neg or g < 0
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
        for q in range(m):
            g = _sign(a * px[ps + q] + b * py[ps + q] + c, e)
            has_pos = has_pos or g > 0
            has_neg = has_neg or g < 0
    word = j >> 6
    bit = np.uint64(1) << np.uint64(j & 63)
    if not (has_pos and has_neg):
        for q in range(m):
            qx[wv + q] = px[ps + q]
            qy[wv + q] = py[ps + q]
            ql[wv + q] = pl[ps + q]
            qn[wv + q] = pn[ps + q]
        for w in range(psid.shape[1]):
            qsid[nb, w] = psid[p, w]
        if has_pos:
            qsid[nb, word] |= bit
        qcell[nb] = pcell[p]
        qoff[nb + 1] = wv + m
        return
    for side in (1, -1):
        if _side_count(px, py, ps, m, a, b, c, e, side) < 3:
            continue
        for q in range(m):
            q1 = q + 1 if q + 1 < m else 0
            s0 = a * px[ps + q] + b * py[ps + q] + c
            s1 = a * px[ps + q1] + b * py[ps + q1] + c
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
                qx[wv] = x0 + t * (px[ps + q1] - x0)
                qy[wv] = y0 + t * (py[ps + q1] - y0)
                if g0 > 0:
                    ql[wv] = layer
                    qn[wv] = i
                else:
                    ql[wv] = pl[ps + q]
                    qn[wv] = pn[ps + q]
                wv += 1
        for w in range(psid.shape[1]):
            qsid[nb, w] = psid[p, w]
        if side == 1:
            qsid[nb, word] |= bit
        qcell[nb] = pcell[p]
        qoff[nb + 1] = wv
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
    for w in range(pat.shape[1]):
        cpat[child, w] = pat[cell, w]
    for i in range(pre.shape[2]):
        if bits[cell, i] == 1:
            g = bit_offset + i
            cpat[child, g >> 6] |= np.uint64(1) << np.uint64(g & 63)
    for r in range(pre.shape[1]):
        for o in range(wt.shape[1]):
            cnext[child, r, o] = base[cell, r, o]
    for j in range(ncut[cell]):
        if (psid[p, j >> 6] >> np.uint64(j & 63)) & np.uint64(1) == 0:
            continue
        i = cuts[cell, j]
        g = bit_offset + i
        cpat[child, g >> 6] |= np.uint64(1) << np.uint64(g & 63)
        for r in range(pre.shape[1]):
            coef = (1.0 - slopes[i]) * pre[cell, r, i]
            if coef != 0.0:
                for o in range(wt.shape[1]):
                    cnext[child, r, o] += coef * wt[i, o]


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
                dx = vx[q1] - vx[q]
                dy = vy[q1] - vy[q]
                total += 0.5 * math.sqrt(dx * dx + dy * dy)
            else:
                total += 0.5
    if with_logits:
        for o in range(maps.shape[2]):
            a = maps[c, 0, o]
            b = maps[c, 1, o] if two_d else 0.0
            cc = maps[c, 2, o] if two_d else maps[c, 1, o]
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
                total += 1.0
                continue
            npt = 0
            x0 = 0.0
            y0 = 0.0
            for q in range(st, en):
                q1 = q + 1 if q + 1 < en else st
                s0 = a * vx[q] + b * vy[q] + cc
                s1 = a * vx[q1] + b * vy[q1] + cc
                if (s0 >= 0.0) != (s1 >= 0.0) and npt < 2:
                    t = s0 / (s0 - s1)
                    x = vx[q] + t * (vx[q1] - vx[q])
                    y = vy[q] + t * (vy[q1] - vy[q])
                    if npt == 1:
                        total += math.sqrt((x - x0) ** 2 + (y - y0) ** 2)
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
