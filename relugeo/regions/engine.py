"""The layer-by-layer walk that splits cells into activation regions.

Cells of one hidden layer are handled in batches: one matrix product gives
every cell's pre-activation map (``pre = post @ W.T + b``), then a compiled
kernel splits each cell by the neurons whose zero set crosses it. Batches
larger than ``batch_cells`` are cut into chunks and walked depth-first, so the
working memory is bounded by ``batch_cells`` and the depth, not by the number
of regions. The final cells (leaves) are handed to a consumer batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from threadpoolctl import ThreadpoolController

from ..errors import RegionLimitError
from ..kernels import backend, cpu
from ..nets.pwanet import PWANet
from . import engine_kd

DEFAULT_TOL = 1e-10
BATCH_BYTES = 1 << 19  # per-batch cell maps sized to stay in cache


_BLAS: list[ThreadpoolController] = []


def _single_threaded_blas():
    """A context in which BLAS runs on one thread (the controller is built once: building it scans
    every loaded library)."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def auto_batch_cells(net: PWANet) -> int:
    """Cells per batch so one batch of cell maps (C, 3, width) fits in about 512 KiB."""
    width = max(max(layer.n_out, layer.n_act) for layer in net.layers)
    return int(min(8192, max(64, BATCH_BYTES // (24 * width))))


@dataclass
class CellBatch:
    """A batch of convex cells of the same depth.

    ``pre`` has shape (C, k + 1, n): the map of layer ``layer``'s
    pre-activations on each cell (rows 0..k-1: gradient in u, row k: value at
    u = 0). When ``layer`` equals the number of hidden layers it is the map of
    the logits. Rings are CSR: ``off`` (C + 1,), ``vx, vy, elay, eneu`` (V,);
    in 1-D every ring holds the two ends of an interval (``vy`` is zero).
    """

    layer: int
    pre: np.ndarray
    off: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    elay: np.ndarray
    eneu: np.ndarray
    pat: np.ndarray
    root: np.ndarray
    uscale: np.ndarray

    @property
    def n_cells(self) -> int:
        return self.pre.shape[0]

    def take(self, start: int, stop: int) -> "CellBatch":
        """Cells ``start:stop`` as their own batch (copies the rings)."""
        v0, v1 = self.off[start], self.off[stop]
        return CellBatch(
            self.layer,
            self.pre[start:stop],
            self.off[start : stop + 1] - v0,
            self.vx[v0:v1],
            self.vy[v0:v1],
            self.elay[v0:v1],
            self.eneu[v0:v1],
            self.pat[start:stop],
            self.root[start:stop],
            self.uscale[start:stop],
        )


def root_batch(net: PWANet, origins: np.ndarray, basis: np.ndarray, domain: np.ndarray) -> CellBatch:
    """One cell per origin, each the same domain (m, k) in slice coordinates.

    Parameters
    ----------
    origins : ndarray of shape (N, D), float64
    basis : ndarray of shape (D, k), float64
    domain : ndarray of shape (m, k), float64
        Counter-clockwise convex polygon (k = 2) or ``[[t0], [t1]]`` (k = 1).
    """
    N = origins.shape[0]
    k = basis.shape[1]
    m = domain.shape[0]
    first = net.layers[0]
    pre = np.empty((N, k + 1, first.n_out))
    pre[:, :k, :] = first.linear(np.ascontiguousarray(basis.T))[None]
    pre[:, k, :] = first.apply(origins)
    off = np.arange(N + 1, dtype=np.int64) * m
    vx = np.tile(domain[:, 0], N)
    vy = np.tile(domain[:, 1], N) if k == 2 else np.zeros(N * m)
    lab = np.full(N * m, -1, dtype=np.int32)
    return CellBatch(
        layer=0,
        pre=pre,
        off=off,
        vx=vx,
        vy=vy,
        elay=lab,
        eneu=lab.copy(),
        pat=np.zeros((N, net.n_words), dtype=np.uint64),
        root=np.arange(N, dtype=np.int64),
        uscale=np.full(N, float(np.abs(domain).max())),
    )


@dataclass
class Counted:
    """Pass 1 of splitting a batch (see ``kernels.cpu.split_cells_count``) and the
    next layer's map on every parent with its cutting neurons taken as inactive
    (of width 0 when the next layer's weight is a LinearMap: children then get
    their map by applying it, see :func:`split_batch`)."""

    bits: np.ndarray
    cuts: np.ndarray
    ncut: np.ndarray
    npieces: np.ndarray
    nverts: np.ndarray
    base: np.ndarray


def count_batch(net: PWANet, batch: CellBatch, tol: float, device: str = "cpu") -> Counted:
    """Classify every neuron of ``batch.layer`` on every cell and count the children
    (kernels of ``device``, see :func:`relugeo.kernels.backend`)."""
    if isinstance(batch, engine_kd.CellBatchKD):
        return engine_kd.count_batch(net, batch, tol, device)
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    kern = backend(device)
    count = kern.split_cells_count if k == 2 else kern.split_intervals_count
    bits, cuts, ncut, npieces, nverts, masked = count(
        batch.pre, batch.off, batch.vx, batch.vy, batch.elay, batch.eneu, batch.uscale, tol, batch.layer,
        layer.slopes,
    )
    nxt = net.layers[batch.layer + 1]
    if not nxt.is_dense:
        return Counted(bits, cuts, ncut, npieces, nverts, np.empty((batch.n_cells, k + 1, 0)))
    base = nxt.linear(masked.reshape(-1, layer.n_out)).reshape(batch.n_cells, k + 1, nxt.n_out)
    base[:, k, :] += nxt.bias
    return Counted(bits, cuts, ncut, npieces, nverts, base)


def split_batch(net: PWANet, batch: CellBatch, tol: float, counted: Counted | None = None,
                start: int = 0, stop: int | None = None, device: str = "cpu") -> CellBatch:
    """Split cells ``start:stop`` of ``batch`` by the neurons of ``batch.layer``;
    return the children with the map of the next layer (or of the logits) on each."""
    if isinstance(batch, engine_kd.CellBatchKD):
        return engine_kd.split_batch(net, batch, tol, counted, start, stop, device)
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    kern = backend(device)
    write = kern.split_cells_write if k == 2 else kern.split_intervals_write
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
    cx = np.empty(nv)
    cy = np.empty(nv)
    cl = np.empty(nv, dtype=np.int32)
    cn = np.empty(nv, dtype=np.int32)
    cpat = np.empty((nc, batch.pat.shape[1]), dtype=np.uint64)
    pre = np.empty((nc, k + 1, n_next))
    cparent = np.empty(nc, dtype=np.int64)
    bit_offset = int(sum(net.widths[: batch.layer]))
    nxt = net.layers[batch.layer + 1]
    wt = net.weight_t(batch.layer + 1) if nxt.is_dense else np.empty((layer.n_out, 0))
    write(batch.pre[rows], batch.off[start : stop + 1], batch.vx, batch.vy, batch.elay, batch.eneu,
          batch.uscale[rows], tol, batch.layer, layer.slopes, batch.pat[rows], bit_offset, c.bits[rows],
          c.cuts[rows], c.ncut[rows], piece_start, vert_start, c.base[rows], wt,
          coff, cx, cy, cl, cn, cpat, pre, cparent)
    if not nxt.is_dense:
        pre = _apply_to_children(layer, nxt, batch.pre[rows][cparent], cpat, bit_offset)
    return CellBatch(
        batch.layer + 1, pre, coff, cx, cy, cl, cn, cpat, batch.root[rows][cparent], batch.uscale[rows][cparent]
    )


def _apply_to_children(layer, nxt, parent_pre: np.ndarray, cpat: np.ndarray, bit_offset: int) -> np.ndarray:
    """The next layer's map on each child, by applying its LinearMap to the child's activations.

    ``parent_pre`` (NC, k + 1, n) is the layer's map on each child's parent;
    the child's own pattern bits say which slope each neuron takes.
    """
    nc, rows, n = parent_pre.shape
    bits = np.unpackbits(cpat.view(np.uint8), axis=1, bitorder="little")[:, bit_offset : bit_offset + n]
    post = np.where(bits[:, None, :].astype(bool), parent_pre, layer.slopes * parent_pre)
    out = nxt.linear(post.reshape(nc * rows, n)).reshape(nc, rows, nxt.n_out)
    out[:, rows - 1, :] += nxt.bias
    return out


def split_max_batch(net: PWANet, batch: CellBatch, tol: float) -> CellBatch:
    """Split every cell of ``batch`` by the ties of max layer ``batch.layer``; return the
    children with the map of the next layer (or of the logits) on each."""
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    coff, cx, cy, cl, cn, cparent, cwin = cpu.split_cells_max(
        batch.pre, batch.off, batch.vx, batch.vy, batch.elay, batch.eneu, batch.uscale, tol, batch.layer,
        layer.windows)
    n_win, m = layer.windows.shape
    # pattern: bit (window * m + winning slot) of this layer
    cpat = batch.pat[cparent]
    g = int(sum(net.widths[: batch.layer])) + np.arange(n_win) * m + cwin
    rows = np.broadcast_to(np.arange(len(cwin))[:, None], g.shape)
    np.bitwise_or.at(cpat, (rows, g >> 6), np.left_shift(np.uint64(1), (g & 63).astype(np.uint64)))
    # outputs: each window's winner, then the kept neurons; then the next layer's map
    idx = layer.windows[np.arange(n_win), cwin]
    if len(layer.keep):
        idx = np.concatenate([idx, np.broadcast_to(layer.keep, (len(cwin), len(layer.keep)))], axis=1)
    out = np.take_along_axis(batch.pre[cparent], idx[:, None, :], axis=2)
    nxt = net.layers[batch.layer + 1]
    pre = nxt.linear(out.reshape(-1, out.shape[2])).reshape(len(out), k + 1, nxt.n_out)
    pre[:, k, :] += nxt.bias
    return CellBatch(batch.layer + 1, pre, coff, cx, cy, cl, cn, cpat, batch.root[cparent], batch.uscale[cparent])


def _groups(sizes: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges of items whose sizes sum to at most ``limit`` (or one item)."""
    out, start, acc = [], 0, 0
    for i, size in enumerate(sizes.tolist()):
        if acc and acc + size > limit:
            out.append((start, i))
            start, acc = i, 0
        acc += size
    out.append((start, len(sizes)))
    return out


def walk(
    net: PWANet,
    roots: CellBatch,
    consume: Callable[[CellBatch], None],
    *,
    tol: float = DEFAULT_TOL,
    batch_cells: int | None = None,
    max_regions: int | None = None,
    final_layer: int | None = None,
    device: str = "cpu",
) -> int:
    """Split ``roots`` through every hidden layer; pass each batch of leaves to ``consume``.

    Batches are walked depth-first, and the children of a batch are written
    in groups of about ``batch_cells``, so the working memory stays bounded
    whatever the number of regions. With ``final_layer`` set, cells stop
    there instead: the batches handed to ``consume`` carry the map of layer
    ``final_layer`` unsplit. Returns the number of cells handed to
    ``consume``. Raises :class:`RegionLimitError` as soon as the regions
    found plus the cells still pending (each holds at least one region)
    exceed ``max_regions``. ``device`` picks the kernels ("cpu", "cuda" or "auto").
    """
    depth = len(net.hidden) if final_layer is None else int(final_layer)
    batch_cells = auto_batch_cells(net) if batch_cells is None else int(batch_cells)
    if batch_cells < 1:
        raise ValueError(f"batch_cells must be a positive integer; got {batch_cells}")
    # parallelism comes from the compiled kernels; a threaded BLAS on these small,
    # cache-sized products only adds contention
    with _single_threaded_blas():
        return _walk(net, roots, consume, tol, batch_cells, max_regions, depth, device)


def _walk(net, roots, consume, tol, batch_cells, max_regions, depth, device="cpu") -> int:
    n = roots.n_cells
    stack = [roots.take(s, min(s + batch_cells, n)) for s in reversed(range(0, n, batch_cells))]
    pending = n
    done = 0
    while stack:
        batch = stack.pop()
        pending -= batch.n_cells
        if batch.layer == depth:
            consume(batch)
            done += batch.n_cells
            continue
        if net.layers[batch.layer].is_max:
            children = split_max_batch(net, batch, tol)
            pending += children.n_cells
            _check_limit(max_regions, done + pending, batch.layer)
            nc = children.n_cells
            stack.extend(children.take(s, min(s + batch_cells, nc)) for s in reversed(range(0, nc, batch_cells)))
            continue
        counted = count_batch(net, batch, tol, device)
        pending += int(counted.npieces.sum())
        _check_limit(max_regions, done + pending, batch.layer)
        for start, stop in reversed(_groups(counted.npieces, batch_cells)):
            stack.append(split_batch(net, batch, tol, counted, start, stop, device))
    return done


def _check_limit(max_regions: int | None, found: int, layer: int) -> None:
    if max_regions is not None and found > max_regions:
        raise RegionLimitError(
            f"the partition has more than max_regions = {max_regions} regions "
            f"(at least {found} found by layer {layer + 1}); raise max_regions or use a smaller domain"
        )
