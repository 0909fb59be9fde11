"""The layer-by-layer walk that splits cells into activation regions.

Cells of one hidden layer are handled in batches: one matrix product gives
every cell's pre-activation map (``pre = post @ W.T + b``), then a compiled
kernel splits each cell by the neurons whose zero set crosses it. Batches
larger than ``batch_cells`` are cut into chunks and walked depth-first, so the
working memory is bounded by ``batch_cells`` and the depth, not by the number
of regions. The final cells (leaves) are handed to a consumer batch by batch.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from ..errors import RegionLimitError
from ..kernels import backend, cpu, resolve_device
from ..nets.pwanet import PWANet
from . import engine_kd

DEFAULT_TOL = 1e-10
BATCH_BYTES = 1 << 19  # per-batch cell maps sized to stay in cache


class _SingleThreadedBlas:
    """A context in which BLAS runs on one thread. Re-entrant and shared by threads: the first
    entry limits BLAS (a process-wide setting), the last exit restores it. The controller is
    built once, since building it scans every loaded library."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._limit = None
        self._controller: ThreadpoolController | None = None

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    self._controller = ThreadpoolController()
                self._limit = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._limit.restore_original_limits()
                self._limit = None


_BLAS_ONE_THREAD = _SingleThreadedBlas()


def _single_threaded_blas() -> _SingleThreadedBlas:
    """The shared context in which BLAS runs on one thread (see :class:`_SingleThreadedBlas`)."""
    return _BLAS_ONE_THREAD


def kernel_pool(n_threads: int) -> ThreadPoolExecutor:
    """A pool of ``n_threads`` Python threads whose tasks run the
    kernels (which release the GIL) on one numba thread each: work moves to whichever thread is free,
    so a core held by another process slows one thread, not the whole run. Use it inside
    :func:`_single_threaded_blas`, so that side-by-side products do not also split inside BLAS."""
    return ThreadPoolExecutor(n_threads, initializer=numba.set_num_threads, initargs=(1,))


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
    vr: np.ndarray | None = None  # certified predicates: each vertex's error bound (see regions.certify)
    fixed: np.ndarray | None = None  # certified predicates: (C, n) int8 signs of this layer's neurons known exactly

    @property
    def n_cells(self) -> int:
        return self.pre.shape[0]

    def take(self, start: int, stop: int) -> "CellBatch":
        """Cells ``start:stop`` as their own batch: new ring offsets, every other array a view of this batch's."""
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
            None if self.vr is None else self.vr[v0:v1],
            None if self.fixed is None else self.fixed[start:stop],
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
    base: np.ndarray | None
    undecided: np.ndarray | None = None
    masked: np.ndarray | None = None


def count_batch(net: PWANet, batch: CellBatch, tol: float, device: str = "cpu", certifier=None,
                with_base: bool = True) -> Counted:
    """Classify every neuron of ``batch.layer`` on every cell and count the children
    (kernels of ``device``, see :func:`relugeo.kernels.backend`; with a ``certifier``,
    the certified kernels: cells they cannot decide count no children here and are
    listed in ``Counted.undecided``). With ``with_base=False`` the next layer's map
    is not formed: ``base`` is None and ``masked`` holds the layer's activations
    it is formed from."""
    if isinstance(batch, engine_kd.CellBatchKD):
        return engine_kd.count_batch(net, batch, tol, device)
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    undecided = None
    if certifier is not None:
        bits, cuts, ncut, npieces, nverts, masked, undecided = certifier.count(batch)
    else:
        kern = backend(device)
        count = kern.split_cells_count if k == 2 else kern.split_intervals_count
        bits, cuts, ncut, npieces, nverts, masked = count(
            batch.pre, batch.off, batch.vx, batch.vy, batch.elay, batch.eneu, batch.uscale, tol, batch.layer,
            layer.slopes,
        )
    nxt = net.layers[batch.layer + 1]
    if not with_base:
        return Counted(bits, cuts, ncut, npieces, nverts, None, undecided, masked)
    if not nxt.is_dense:
        return Counted(bits, cuts, ncut, npieces, nverts, np.empty((batch.n_cells, k + 1, 0)))
    return Counted(bits, cuts, ncut, npieces, nverts, _base_map(layer, nxt, masked), undecided)



def _base_map(layer, nxt, masked: np.ndarray) -> np.ndarray:
    """The next layer's map on each parent with its cutting neurons taken as inactive: ``masked``
    (C, k + 1, n) of :func:`count_batch` through the next layer, its bias in the last row."""
    C, rows = masked.shape[:2]
    base = nxt.linear(masked.reshape(-1, layer.n_out)).reshape(C, rows, nxt.n_out)
    base[:, rows - 1, :] += nxt.bias
    return base

def split_batch(net: PWANet, batch: CellBatch, tol: float, counted: Counted | None = None,
                start: int = 0, stop: int | None = None, device: str = "cpu", certifier=None) -> CellBatch:
    """Split cells ``start:stop`` of ``batch`` by the neurons of ``batch.layer``;
    return the children with the map of the next layer (or of the logits) on each."""
    if isinstance(batch, engine_kd.CellBatchKD):
        return engine_kd.split_batch(net, batch, tol, counted, start, stop, device)
    return _write_children(net, batch, tol, counted, start, stop, device, certifier)[0]


def _write_children(net: PWANet, batch: CellBatch, tol: float, counted: Counted | None = None,
                    start: int = 0, stop: int | None = None, device: str = "cpu", certifier=None,
                    with_maps: bool = True) -> tuple[CellBatch, np.ndarray]:
    """:func:`split_batch`, also returning each child's parent (an index into ``start:stop``).

    With ``with_maps=False`` the children come without the next layer's map
    (``pre`` of width 0): :func:`_with_maps` adds it to a range of them later.
    """
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
    c = count_batch(net, batch, tol, device, certifier) if counted is None else counted
    stop = batch.n_cells if stop is None else stop
    rows = slice(start, stop)
    piece_start = np.zeros(stop - start + 1, dtype=np.int64)
    np.cumsum(c.npieces[rows], out=piece_start[1:])
    vert_start = np.zeros(stop - start + 1, dtype=np.int64)
    np.cumsum(c.nverts[rows], out=vert_start[1:])
    nc, nv = int(piece_start[-1]), int(vert_start[-1])
    n_next = c.base.shape[2] if with_maps else 0
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
    wt = net.weight_t(batch.layer + 1) if nxt.is_dense and with_maps else np.empty((layer.n_out, 0))
    base = c.base[rows] if with_maps else np.empty((stop - start, k + 1, 0))
    cr = None
    if certifier is not None:
        cr = np.empty(nv)
        certifier.write(batch, c, start, stop, piece_start, vert_start, wt, coff, cx, cy, cr, cl, cn, cpat, pre,
                        cparent)
    else:
        kern = backend(device)
        write = kern.split_cells_write if k == 2 else kern.split_intervals_write
        write(batch.pre[rows], batch.off[start : stop + 1], batch.vx, batch.vy, batch.elay, batch.eneu,
              batch.uscale[rows], tol, batch.layer, layer.slopes, batch.pat[rows], bit_offset, c.bits[rows],
              c.cuts[rows], c.ncut[rows], piece_start, vert_start, base, wt,
              coff, cx, cy, cl, cn, cpat, pre, cparent)
    if not nxt.is_dense and with_maps:
        pre = _apply_to_children(layer, nxt, batch.pre[rows][cparent], cpat, bit_offset)
    children = CellBatch(
        batch.layer + 1, pre, coff, cx, cy, cl, cn, cpat, batch.root[rows][cparent], batch.uscale[rows][cparent],
        cr,
    )
    return children, cparent


def _with_maps(net: PWANet, item: tuple) -> CellBatch:
    """Children ``s:e`` of a deferred group (see :func:`_walk`), with the next layer's map written."""
    _, children, cparent, batch, counted, start, stop, s, e = item
    rows = slice(start, stop)
    part = children.take(s, e)
    k = batch.pre.shape[1] - 1
    nxt = net.layers[batch.layer + 1]
    part.pre = np.empty((e - s, k + 1, nxt.n_out))
    cpu.children_maps(part.pat, cparent[s:e], batch.pre[rows], counted.cuts[rows], counted.ncut[rows],
                      net.layers[batch.layer].slopes, int(sum(net.widths[: batch.layer])), counted.base[rows],
                      net.weight_t(batch.layer + 1), part.pre)
    return part


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


def split_max_batch(net: PWANet, batch: CellBatch, tol: float, certifier=None) -> CellBatch:
    """Split every cell of ``batch`` by the ties of max layer ``batch.layer``; return the
    children with the map of the next layer (or of the logits) on each (with a ``certifier``,
    by its certified kernels and exact fallback: :meth:`relugeo.regions.certify.Certifier.split_max`)."""
    if isinstance(batch, engine_kd.CellBatchKD):
        return engine_kd.split_max_batch(net, batch, tol)
    if certifier is not None:
        return certifier.split_max(batch)
    layer = net.layers[batch.layer]
    coff, cx, cy, cl, cn, cparent, cwin = cpu.split_cells_max(
        batch.pre, batch.off, batch.vx, batch.vy, batch.elay, batch.eneu, batch.uscale, tol, batch.layer,
        layer.windows)
    return max_children(net, batch, coff, cx, cy, cl, cn, cparent, cwin)


def max_children(net: PWANet, batch: CellBatch, coff, cx, cy, cl, cn, cparent, cwin, cr=None) -> CellBatch:
    """The children of max layer ``batch.layer`` from their rings (``coff`` (NC + 1,), ``cx, cy, cl, cn``
    and the vertex radii ``cr`` (V,)), parents ``cparent`` (NC,) and winning slots ``cwin`` (NC, W):
    their patterns and the next layer's map on each."""
    layer = net.layers[batch.layer]
    k = batch.pre.shape[1] - 1
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
    return CellBatch(batch.layer + 1, pre, coff, cx, cy, cl, cn, cpat, batch.root[cparent], batch.uscale[cparent],
                     cr)


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
    certifier=None,
    parallel: bool = False,
) -> int:
    """Split ``roots`` through every hidden layer; pass each batch of leaves to ``consume``.

    See :func:`iter_leaves`, which this drives (``consume`` runs on the
    calling thread, ``parallel`` or not). Returns the number of cells handed
    to ``consume``.
    """
    done = 0
    for leaves in iter_leaves(net, roots, tol=tol, batch_cells=batch_cells, max_regions=max_regions,
                              final_layer=final_layer, device=device, certifier=certifier, parallel=parallel):
        consume(leaves)
        done += leaves.n_cells
    return done


def iter_leaves(
    net: PWANet,
    roots: CellBatch,
    *,
    tol: float = DEFAULT_TOL,
    batch_cells: int | None = None,
    max_regions: int | None = None,
    final_layer: int | None = None,
    device: str = "cpu",
    parallel: bool = False,
    certifier=None,
) -> Iterator[CellBatch]:
    """Split ``roots`` through every hidden layer, yielding the leaves batch by batch.

    Batches are walked depth-first. A split batch is counted first; its
    children are then written in groups of about ``batch_cells`` cells, each
    group only when the walk reaches it, so at most one parent batch and one
    group of children per layer of depth are alive at a time: the working
    memory is bounded by ``batch_cells``, the widths and the depth, whatever
    the number of regions. With ``final_layer`` set, cells stop there instead:
    the batches yielded carry the map of layer ``final_layer`` unsplit. Raises
    :class:`RegionLimitError` as soon as the regions found plus the cells still
    pending (each holds at least one region) exceed ``max_regions``.
    ``device`` picks the kernels ("cpu", "cuda" or "auto").
    With a ``certifier`` (:class:`relugeo.regions.certify.Certifier`; the roots
    then carry vertex radii ``vr``) every sign is certified: the certified
    kernels decide what their error bounds allow and the certifier splits the
    other cells in exact arithmetic.

    With ``parallel`` and more than one numba thread, the walk splits the top
    of the tree until it holds about four subtrees per thread, then walks the
    subtrees on a pool of threads, each running the kernels on one thread;
    the leaves come out in the same order as from one thread, but every
    subtree's leaves are held until it is yielded (memory then grows with the
    regions, as :func:`relugeo.partition` does anyway).
    """
    depth = len(net.hidden) if final_layer is None else int(final_layer)
    batch_cells = auto_batch_cells(net) if batch_cells is None else int(batch_cells)
    if batch_cells < 1:
        raise ValueError(f"batch_cells must be a positive integer; got {batch_cells}")
    n = roots.n_cells
    # the stack holds batches, and groups of a counted batch still to be written: (batch, counted, start, stop);
    # its last item is walked next
    stack: list = [roots.take(s, min(s + batch_cells, n)) for s in reversed(range(0, n, batch_cells))]
    walk_args = (net, tol, batch_cells, max_regions, depth, device, certifier)
    # the certifier's exact fallback keeps counts of its own: it runs on one thread
    n_threads = (numba.get_num_threads() if parallel and certifier is None and resolve_device(device) == "cpu"
                 else 1)
    # parallelism comes from the compiled kernels or the subtree threads; a threaded BLAS on these
    # small, cache-sized products only adds contention
    with _single_threaded_blas():
        if n_threads == 1:
            yield from _walk(stack, *walk_args)
            return
        stack = yield from _walk(stack, *walk_args, expand_to=4 * n_threads)
        yield from _walk_subtrees(stack[::-1], walk_args, n_threads)


def _cells(item) -> int:
    """Cells of a stack item: a batch, a group of a counted batch still to be written, or a range of
    written children still without their maps."""
    if isinstance(item, tuple) and item[0] == "maps":
        return item[8] - item[7]
    if isinstance(item, tuple):
        return int(item[1].npieces[item[2] : item[3]].sum())
    return item.n_cells


def _defer_maps(net: PWANet, item: tuple, batch_cells: int, device: str) -> bool:
    """Whether a group's children are many enough to get their maps a range at a time: a single 1-D or
    2-D cell cut into more than four batches' worth of pieces (the first layer's cell in a wide net),
    on the CPU, with a dense next layer."""
    batch, counted, start, stop = item
    return (isinstance(batch, CellBatch) and stop - start == 1 and int(counted.npieces[start]) > 4 * batch_cells
            and resolve_device(device) == "cpu" and net.layers[batch.layer + 1].is_dense)


def _splits_once(net: PWANet, batch, device: str) -> bool:
    """Whether ``batch`` is a lone 2-D cell to split in one pass (:func:`_split_once`): a partition's
    domain, which the first layer may cut into thousands of pieces, on the CPU, with a dense next layer."""
    return (isinstance(batch, CellBatch) and batch.n_cells == 1 and batch.pre.shape[1] == 3
            and resolve_device(device) == "cpu" and net.layers[batch.layer + 1].is_dense)


def _split_once(net: PWANet, batch: CellBatch, tol: float,
                certifier=None) -> tuple[Counted, CellBatch, np.ndarray] | None:
    """Split a lone cell by its layer in one pass (``kernels.cpu.split_cell_once``, or the certifier's
    twin): the same children as counting then writing, without their maps, which :func:`_with_maps`
    adds a range at a time. None when the certifier needs exact arithmetic for the cell."""
    layer = net.layers[batch.layer]
    nxt = net.layers[batch.layer + 1]
    cr = None
    if certifier is not None:
        split = certifier.split_once(batch)
        if split is None:
            return None
        bits, cuts, ncut, masked, coff, cx, cy, cr, cl, cn, cpat, cparent = split
    else:
        ring = slice(int(batch.off[0]), int(batch.off[1]))
        bits, cuts, ncut, masked, coff, cx, cy, cl, cn, cpat, cparent = cpu.split_cell_once(
            np.ascontiguousarray(batch.pre), batch.vx[ring], batch.vy[ring], batch.elay[ring], batch.eneu[ring],
            batch.uscale, tol, batch.layer,
            layer.slopes, batch.pat, int(sum(net.widths[: batch.layer])))
    nc = len(cparent)
    counted = Counted(bits, cuts, ncut, np.array([nc]), np.array([len(cx)]), _base_map(layer, nxt, masked))
    children = CellBatch(batch.layer + 1, np.empty((nc, 3, 0)), coff, cx, cy, cl, cn, cpat, batch.root[cparent],
                         batch.uscale[cparent], cr)
    return counted, children, cparent


def _walk(stack, net, tol, batch_cells, max_regions, depth, device="cpu", certifier=None, expand_to=None):
    """Walk ``stack`` depth-first, yielding leaves; return what is left of it, which is nothing
    unless ``expand_to`` is set: then the walk stops once the stack holds that many items."""
    pending = sum(_cells(item) for item in stack)
    done = 0
    while stack:
        if expand_to is not None and len(stack) >= expand_to:
            break
        item = stack.pop()
        if isinstance(item, tuple) and item[0] == "maps":
            stack.append(_with_maps(net, item))
            continue
        if isinstance(item, tuple) and certifier is None and _defer_maps(net, item, batch_cells, device):
            # a cell cut into very many pieces: write them all, but their maps one range at a time
            children, cparent = _write_children(net, item[0], tol, item[1], item[2], item[3], device,
                                                with_maps=False)
            nc = children.n_cells
            stack.extend(("maps", children, cparent, *item, s, min(s + batch_cells, nc))
                         for s in reversed(range(0, nc, batch_cells)))
            continue
        if isinstance(item, tuple):
            stack.append(split_batch(net, item[0], tol, item[1], item[2], item[3], device, certifier))
            continue
        batch = item
        pending -= batch.n_cells
        if batch.layer == depth:
            yield batch if certifier is None else certifier.public_labels(batch)
            done += batch.n_cells
            continue
        if net.layers[batch.layer].is_max:
            children = split_max_batch(net, batch, tol, certifier)
            pending += children.n_cells
            _check_limit(max_regions, done + pending, batch.layer)
            nc = children.n_cells
            stack.extend(children.take(s, min(s + batch_cells, nc)) for s in reversed(range(0, nc, batch_cells)))
            continue
        split = _split_once(net, batch, tol, certifier) if _splits_once(net, batch, device) else None
        if split is not None:
            counted, children, cparent = split
            nc = children.n_cells
            pending += nc
            _check_limit(max_regions, done + pending, batch.layer)
            # the children's maps a range at a time when they are very many, as the deferred groups
            # below; else all at once, as one written group (the same batches either way)
            step = batch_cells if nc > 4 * batch_cells else nc
            stack.extend(("maps", children, cparent, batch, counted, 0, 1, s, min(s + step, nc))
                         for s in reversed(range(0, nc, step)))
            continue
        counted = count_batch(net, batch, tol, device, certifier)
        pending += int(counted.npieces.sum())
        if counted.undecided is not None and counted.undecided.any():
            exact = certifier.exact_children(batch, np.flatnonzero(counted.undecided))
            pending += exact.n_cells
            stack.append(exact)
        _check_limit(max_regions, done + pending, batch.layer)
        stack.extend((batch, counted, start, stop) for start, stop in reversed(_groups(counted.npieces, batch_cells)))
    return stack


def _walk_subtrees(items: list, walk_args: tuple, n_threads: int) -> Iterator[CellBatch]:
    """Walk every item (in order) on a pool of ``n_threads`` threads; yield their leaves in that order."""
    max_regions = walk_args[3]

    def run(item):
        return list(_walk([item], *walk_args))

    pool = kernel_pool(n_threads)
    try:
        futures = [pool.submit(run, item) for item in items]
        done = 0
        for future in futures:
            for leaves in future.result():
                done += leaves.n_cells
                _check_limit(max_regions, done, leaves.layer - 1)
                yield leaves
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_limit(max_regions: int | None, found: int, layer: int) -> None:
    if max_regions is not None and found > max_regions:
        raise RegionLimitError(
            f"the partition has more than max_regions = {max_regions} regions "
            f"(at least {found} found by layer {layer + 1}); raise max_regions or use a smaller domain"
        )
