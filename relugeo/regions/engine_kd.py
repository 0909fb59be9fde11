"""Cells of dimension k (used for k >= 3) for the layer-by-layer walk of :mod:`.engine`.

A :class:`CellBatchKD` stands where a :class:`~.engine.CellBatch` does;
:func:`.engine.count_batch` and :func:`.engine.split_batch` hand it to the
k-D kernels (:mod:`relugeo.kernels.cpu_kd`), so depth-first batching,
``max_regions`` and pass-through neurons work as in 2-D. A max layer's cells
are split by :func:`split_max_batch` (Python over cells, the compiled
polytope splitter per window). There are no CUDA kernels for k-D cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RelugeoError
from ..kernels import DEVICES, cpu_kd, resolve_device
from ..nets.pwanet import PWANet
from . import engine


@dataclass
class CellBatchKD:
    """A batch of convex k-D cells of the same depth.

    ``pre`` has shape (C, k + 1, n), as in :class:`~.engine.CellBatch`. Cell
    ``c`` has the vertices ``X[off[c]:off[c + 1]]`` (V, k) float64 and their
    facet-id bitsets ``I`` (V, W) uint64 (see :mod:`relugeo.kernels.cpu_kd`);
    ``n_domain_facets`` facet ids belong to the domain, the rest to neurons.
    """

    layer: int
    pre: np.ndarray
    off: np.ndarray
    X: np.ndarray
    I: np.ndarray  # noqa: E741 - the incidence matrix
    pat: np.ndarray
    root: np.ndarray
    uscale: np.ndarray
    n_domain_facets: int

    @property
    def n_cells(self) -> int:
        return self.pre.shape[0]

    def take(self, start: int, stop: int) -> "CellBatchKD":
        """Cells ``start:stop`` as their own batch."""
        v0, v1 = self.off[start], self.off[stop]
        return CellBatchKD(self.layer, self.pre[start:stop], self.off[start : stop + 1] - v0, self.X[v0:v1],
                           self.I[v0:v1], self.pat[start:stop], self.root[start:stop], self.uscale[start:stop],
                           self.n_domain_facets)

    def facet_base(self, net: PWANet) -> int:
        """Facet id of neuron 0 of layer ``self.layer``."""
        return self.n_domain_facets + int(sum(net.widths[: self.layer]))


def domain_incidence(vertices: np.ndarray, facets: np.ndarray | None = None) -> np.ndarray:
    """Which facets of a domain each vertex lies on: (m, F) bool.

    k = 1: the two ends are facets 0 and 1; k = 2: edge j runs from vertex j
    to vertex j + 1 of the ring; k >= 3: ``facets`` (F, k + 1) are the
    domain's facet equations (``Slice.facets``).
    """
    m, k = vertices.shape
    if k == 1:
        return np.eye(2, dtype=bool)
    if k == 2:
        inc = np.zeros((m, m), dtype=bool)
        inc[np.arange(m), np.arange(m)] = True
        inc[np.arange(m), np.arange(m) - 1] = True
        return inc
    size = float(np.abs(vertices - vertices.mean(axis=0)).max())
    return np.abs(vertices @ facets[:, :k].T + facets[:, k]) <= 1e-9 * size


def root_batch(net: PWANet, origins: np.ndarray, basis: np.ndarray, domain: np.ndarray,
               incidence: np.ndarray) -> CellBatchKD:
    """One cell per origin, each the same domain (m, k) with facet incidences ``incidence`` (m, F) bool."""
    N = origins.shape[0]
    k = basis.shape[1]
    m, F = incidence.shape
    first = net.layers[0]
    pre = np.empty((N, k + 1, first.n_out))
    pre[:, :k, :] = first.linear(np.ascontiguousarray(basis.T))[None]
    pre[:, k, :] = first.apply(origins)
    W = max(1, -(-(F + net.n_hidden + net.output_dim) // 64))  # ids for the logits' zero sets too
    bits = np.zeros((m, W * 64), dtype=np.uint8)
    bits[:, :F] = incidence
    inc = np.packbits(bits, axis=1, bitorder="little").view(np.uint64)
    return CellBatchKD(
        layer=0,
        pre=pre,
        off=np.arange(N + 1, dtype=np.int64) * m,
        X=np.ascontiguousarray(np.tile(domain, (N, 1))),
        I=np.ascontiguousarray(np.tile(inc, (N, 1))),
        pat=np.zeros((N, net.n_words), dtype=np.uint64),
        root=np.arange(N, dtype=np.int64),
        uscale=np.full(N, float(np.abs(domain).max())),
        n_domain_facets=F,
    )


def _check_device(device: str) -> None:
    """k-D cells run on the CPU kernels: "auto" takes them, an explicit "cuda" is refused."""
    if device not in DEVICES:
        resolve_device(device)
    if device == "cuda":
        raise RelugeoError("domains of dimension k >= 3 have CPU kernels only; use device='cpu' or 'auto'")


def count_batch(net: PWANet, batch: CellBatchKD, tol: float, device: str = "cpu") -> "engine.Counted":
    """:func:`.engine.count_batch` for k-D cells."""
    _check_device(device)
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    bits, cuts, ncut, npieces, nverts, masked = cpu_kd.split_polytopes_count(
        batch.pre, batch.off, batch.X, batch.I, batch.uscale, tol, batch.facet_base(net), layer.slopes)
    nxt = net.layers[batch.layer + 1]
    if not nxt.is_dense:
        return engine.Counted(bits, cuts, ncut, npieces, nverts, np.empty((batch.n_cells, k + 1, 0)))
    return engine.Counted(bits, cuts, ncut, npieces, nverts, engine._base_map(layer, nxt, masked))


def split_batch(net: PWANet, batch: CellBatchKD, tol: float, counted: "engine.Counted | None" = None,
                start: int = 0, stop: int | None = None, device: str = "cpu") -> CellBatchKD:
    """:func:`.engine.split_batch` for k-D cells."""
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    c = count_batch(net, batch, tol, device) if counted is None else counted
    stop = batch.n_cells if stop is None else stop
    rows = slice(start, stop)
    piece_start = np.zeros(stop - start + 1, dtype=np.int64)
    np.cumsum(c.npieces[rows], out=piece_start[1:])
    vert_start = np.zeros(stop - start + 1, dtype=np.int64)
    np.cumsum(c.nverts[rows], out=vert_start[1:])
    nc, nv = int(piece_start[-1]), int(vert_start[-1])
    n_next = c.base.shape[2]
    coff = np.zeros(nc + 1, dtype=np.int64)
    cX = np.empty((nv, k))
    cI = np.empty((nv, batch.I.shape[1]), dtype=np.uint64)
    cpat = np.empty((nc, batch.pat.shape[1]), dtype=np.uint64)
    pre = np.empty((nc, k + 1, n_next))
    cparent = np.empty(nc, dtype=np.int64)
    bit_offset = int(sum(net.widths[: batch.layer]))
    nxt = net.layers[batch.layer + 1]
    wt = net.weight_t(batch.layer + 1) if nxt.is_dense else np.empty((layer.n_out, 0))
    v0 = batch.off[start]
    cpu_kd.split_polytopes_write(
        batch.pre[rows], batch.off[start : stop + 1] - v0, batch.X[v0:], batch.I[v0:], batch.uscale[rows], tol,
        batch.facet_base(net), layer.slopes, batch.pat[rows], bit_offset, c.bits[rows], c.cuts[rows],
        c.ncut[rows], piece_start, vert_start, c.base[rows], wt, coff, cX, cI, cpat, pre, cparent)
    if not nxt.is_dense:
        pre = engine._apply_to_children(layer, nxt, batch.pre[rows][cparent], cpat, bit_offset)
    return CellBatchKD(batch.layer + 1, pre, coff, cX, cI, cpat, batch.root[rows][cparent],
                       batch.uscale[rows][cparent], batch.n_domain_facets)


def split_max_batch(net: PWANet, batch: CellBatchKD, tol: float) -> CellBatchKD:
    """Split every cell of ``batch`` by the ties of max layer ``batch.layer``; return the children with
    the map of the next layer (or of the logits) on each.

    Window by window, the piece of a cell where slot j wins is the cell clipped
    by ``z_j - z_i >= 0`` for every other slot i (the hyperplane gets the
    facet id of slot i's pattern bit); slots with identical maps tie
    everywhere and the first one wins, as in :meth:`AffineLayer.winners`.
    """
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    n_win, m = layer.windows.shape
    bit0 = int(sum(net.widths[: batch.layer]))
    fbase = batch.facet_base(net)
    X_out, I_out, parent, wins = [], [], [], []
    for c in range(batch.n_cells):
        pieces = [(batch.X[batch.off[c] : batch.off[c + 1]], batch.I[batch.off[c] : batch.off[c + 1]], [])]
        for w in range(n_win):
            z = batch.pre[c][:, layer.windows[w]]  # (k + 1, m)
            scale = float(np.abs(z).max()) or 1.0
            nxt = []
            for Xp, Ip, won in pieces:
                for j in range(m):
                    planes = z[:, j : j + 1] - z  # (k + 1, m): z_j - z_i >= 0 where j wins
                    flat = np.abs(planes).max(axis=0) <= 1e-15 * scale
                    if flat[:j].any():
                        continue  # an identical earlier slot wins
                    cuts = np.flatnonzero(~flat).astype(np.int32)
                    piece = _clip_positive(Xp, Ip, planes, cuts, float(batch.uscale[c]), tol,
                                           fbase + w * m)
                    if piece is not None:
                        nxt.append((piece[0], piece[1], won + [j]))
            pieces = nxt
        for Xp, Ip, won in pieces:
            X_out.append(Xp)
            I_out.append(Ip)
            parent.append(c)
            wins.append(won)
    cparent = np.asarray(parent, dtype=np.int64)
    cwin = np.asarray(wins, dtype=np.int64).reshape(len(parent), n_win)
    coff = np.concatenate([[0], np.cumsum([len(x) for x in X_out])]).astype(np.int64)
    cX = np.ascontiguousarray(np.concatenate(X_out)) if X_out else np.zeros((0, k))
    cI = np.ascontiguousarray(np.concatenate(I_out)) if I_out else np.zeros((0, batch.I.shape[1]), np.uint64)
    cpat = batch.pat[cparent]
    g = bit0 + np.arange(n_win) * m + cwin
    rows = np.broadcast_to(np.arange(len(cwin))[:, None], g.shape)
    np.bitwise_or.at(cpat, (rows, g >> 6), np.left_shift(np.uint64(1), (g & 63).astype(np.uint64)))
    idx = layer.windows[np.arange(n_win), cwin]
    if layer.keep is not None and len(layer.keep):
        idx = np.concatenate([idx, np.broadcast_to(layer.keep, (len(cwin), len(layer.keep)))], axis=1)
    out = np.take_along_axis(batch.pre[cparent], idx[:, None, :], axis=2)
    nl = net.layers[batch.layer + 1]
    pre = nl.linear(out.reshape(-1, out.shape[2])).reshape(len(out), k + 1, nl.n_out)
    pre[:, k, :] += nl.bias
    return CellBatchKD(batch.layer + 1, pre, coff, cX, cI, cpat, batch.root[cparent], batch.uscale[cparent],
                       batch.n_domain_facets)


def _clip_positive(X, inc, planes, cuts, uscale, tol, fbase):
    """The part of the polytope (vertices X, incidences inc) where every hyperplane ``planes[:, cuts]``
    is >= 0, as (X, inc), or None when it has no interior. Hyperplane i gets the facet id ``fbase + i``."""
    if len(cuts) == 0:
        return X, inc
    pre = np.ascontiguousarray(planes[None])
    ws = cpu_kd._new_workspace(X.shape[1], inc.shape[1], 16, 4, len(cuts), 16, 16)
    ws, npc, slot = cpu_kd._split_polytope(ws, np.ascontiguousarray(X), np.ascontiguousarray(inc), 0, len(X), pre, 0,
                                           cuts, len(cuts), uscale, tol, fbase)
    PX, PI, OFF, SID = ws[:4]
    want = np.zeros(SID.shape[2], dtype=np.uint64)
    for j in range(len(cuts)):
        want[j >> 6] |= np.uint64(1) << np.uint64(j & 63)
    for p in range(npc):
        if (SID[slot, p] == want).all():
            a, b = OFF[slot, p], OFF[slot, p + 1]
            return PX[slot, a:b].copy(), PI[slot, a:b].copy()
    return None
