"""CUDA (simulated) against CPU kernels, element by element; run with NUMBA_ENABLE_CUDASIM=1.

Pytest module run in a subprocess by ``tests/test_cuda_kernels.py``.
"""

from __future__ import annotations

import sys
import threading
import traceback

import numpy as np
import pytest
from numba.core import types
from numba.cuda.simulator import kernel as simkernel
from numba.cuda.simulator import kernelapi
from numba.np import numpy_support

import relugeo as rg
from relugeo.kernels import backend, cpu, resolve_device
from relugeo.kernels import cuda as gk


def _shared_array(self, shape, dtype):
    """numba's simulated ``cuda.shared.array`` with an atomic first allocation.

    The simulator looks a block's shared array up by the calling line and,
    when missing, allocates and stores it in two steps; with threads switched
    often, two threads of a block can each store their own array and the
    block's exclusive scan comes out wrong now and then. ``dict.setdefault``
    stores once.
    """
    if shape == 0:
        return _SIM_SHARED_ARRAY(self, shape, dtype)
    if isinstance(dtype, types.Type):
        dtype = numpy_support.as_dtype(dtype)
    caller = traceback.extract_stack(sys._getframe())[-2][0:2]
    return self._allocations.setdefault(caller, np.empty(shape, dtype))


_SIM_SHARED_ARRAY = kernelapi.FakeCUDAShared.array
kernelapi.FakeCUDAShared.array = _shared_array


def _run_block(self, grid_point, *args):
    """numba's simulated block, made several times faster.

    A kernel without ``cuda.syncthreads`` runs its threads one after the other
    in the calling thread: they cannot observe each other within a block. The
    others (the block scan) get a Python thread each and one
    ``threading.Barrier``, instead of the simulator's main thread polling every
    thread until all wait. A thread's exception breaks the barrier so that its
    block ends; so does a thread that returns before a barrier the others
    reach (after a timeout), as that kernel would be wrong on a GPU.
    """
    if "syncthreads" not in self._f.__code__.co_names:
        me = threading.current_thread()
        me.blockIdx = kernelapi.Dim3(*grid_point)
        for point in np.ndindex(*self._block_dim):
            me.threadIdx = kernelapi.Dim3(*point)
            me.thread_id = point[0] + self._block_dim[0] * (point[1] + self._block_dim[1] * point[2])
            self._f(*args)
        return
    threads = [simkernel.BlockThread(lambda: self._f(*args), self, grid_point, point, self._debug)
               for point in np.ndindex(*self._block_dim)]
    barrier = threading.Barrier(len(threads), timeout=60)
    for t in threads:
        t.barrier = barrier
        t.start()
    for t in threads:
        t.join()
    for t in threads:
        if t.exception:
            raise t.exception[0].with_traceback(t.exception[1])


def _syncthreads(self):
    try:
        self.barrier.wait()
    except threading.BrokenBarrierError:
        raise RuntimeError("a thread of the block did not reach cuda.syncthreads()") from None


def _thread_run(self):
    _SIM_THREAD_RUN(self)
    if self.exception:
        self.barrier.abort()


_SIM_THREAD_RUN = simkernel.BlockThread.run
simkernel.BlockManager.run = _run_block
simkernel.BlockThread.syncthreads = _syncthreads
simkernel.BlockThread.run = _thread_run

TOL = 1e-10
SQUARE = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


def _cells(pre: np.ndarray, ring: np.ndarray = SQUARE):
    C = pre.shape[0]
    m = len(ring)
    off = np.arange(C + 1, dtype=np.int64) * m
    lab = np.full(C * m, -1, dtype=np.int32)
    return off, np.tile(ring[:, 0], C), np.tile(ring[:, 1], C), lab, lab.copy(), np.ones(C)


def _degenerate_pre(rng, C: int, n: int) -> np.ndarray:
    """Random lines plus lines through vertices, coinciding lines, zero rows and slivers."""
    pre = rng.normal(size=(C, 3, n))
    pre[:, :, 1] = pre[:, :, 0]                       # coinciding neurons
    pre[:, :, 2] = 0.0                                # a zero row
    pre[:, 0, 3], pre[:, 1, 3], pre[:, 2, 3] = 1.0, 1.0, 0.0    # the diagonal: through two vertices
    pre[:, 0, 4], pre[:, 1, 4], pre[:, 2, 4] = 1.0, -1.0, 2.0   # through one vertex only
    pre[:, 0, 5], pre[:, 1, 5], pre[:, 2, 5] = 1.0, 0.0, -1.0 + 1e-12  # a sliver at the edge
    pre[:, 0, 6], pre[:, 1, 6], pre[:, 2, 6] = 1.0, 0.0, 0.0    # parallel to the sliver
    return pre


@pytest.fixture(params=["random", "degenerate"])
def layer(request):
    rng = np.random.default_rng(7)
    C, n = 12, 10
    pre = rng.normal(size=(C, 3, n)) if request.param == "random" else _degenerate_pre(rng, C, n)
    slopes = np.zeros(n)
    slopes[8] = 1.0    # a pass-through neuron
    slopes[9] = 0.1    # a leaky one
    return pre, slopes


def _count_equal(a, b):
    bits, cuts, ncut, npieces, nverts, masked = a
    valid = np.arange(cuts.shape[1])[None, :] < ncut[:, None]
    assert np.array_equal(bits, b[0])
    assert np.array_equal(np.where(valid, cuts, -1), np.where(valid, b[1], -1))
    for x, y in zip(a[2:], b[2:]):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_resolve_device():
    assert resolve_device("cuda") == "cuda" and resolve_device("auto") == "cuda"
    assert backend("cuda") is gk and backend("cpu") is cpu
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("gpu")


def test_pack_signs():
    z = np.random.default_rng(1).normal(size=(40, 130))
    z[:, 5] = 0.0
    assert np.array_equal(gk.pack_signs(z), cpu.pack_signs(z))
    assert np.array_equal(gk.pack_signs(z, 4), cpu.pack_signs(z, 4))


def test_polygon_area_centroid():
    rng = np.random.default_rng(2)
    off = np.array([0, 4, 8, 11], dtype=np.int64)
    vx = np.concatenate([SQUARE[:, 0], 1e6 + SQUARE[:, 0] * 1e-6, [0.0, 1.0, 2.0]])
    vy = np.concatenate([SQUARE[:, 1], SQUARE[:, 1] * 1e-6, [0.0, 0.0, 0.0]]) + rng.normal(size=11) * 0
    for x, y in zip(gk.polygon_area_centroid(off, vx, vy), cpu.polygon_area_centroid(off, vx, vy)):
        assert np.array_equal(x, y)


def _write(kern, pre, cells, slopes, counted, n_next=5, seed=3, name="split_cells_write"):
    off, vx, vy, el, en, u = cells
    bits, cuts, ncut, npieces, nverts, masked = counted
    C = pre.shape[0]
    rng = np.random.default_rng(seed)
    wt = rng.normal(size=(pre.shape[2], n_next))
    base = masked @ wt
    pat = rng.integers(0, 2**63, size=(C, 2), dtype=np.uint64) & np.uint64(0xFFFF)
    ps = np.concatenate([[0], np.cumsum(npieces)]).astype(np.int64)
    vs = np.concatenate([[0], np.cumsum(nverts)]).astype(np.int64)
    nc, nv = int(ps[-1]), int(vs[-1])
    out = (np.zeros(nc + 1, dtype=np.int64), np.empty(nv), np.empty(nv), np.empty(nv, dtype=np.int32),
           np.empty(nv, dtype=np.int32), np.empty((nc, 2), dtype=np.uint64),
           np.empty((nc, pre.shape[1], n_next)), np.empty(nc, dtype=np.int64))
    getattr(kern, name)(pre, off, vx, vy, el, en, u, TOL, 2, slopes, pat, 20, bits, cuts, ncut, ps, vs,
                        base, wt, *out)
    return out


def test_split_cells(layer):
    pre, slopes = layer
    cells = _cells(pre)
    a = cpu.split_cells_count(pre, *cells, TOL, 2, slopes)
    b = gk.split_cells_count(pre, *cells, TOL, 2, slopes)
    _count_equal(a, b)
    assert a[3].max() > 1
    for x, y in zip(_write(cpu, pre, cells, slopes, a), _write(gk, pre, cells, slopes, a)):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_split_cells_second_layer(layer):
    """Cells that are themselves pieces, with inner edge labels, split again."""
    pre, slopes = layer
    pre = pre[:4]  # the simulator is slow: few cells, many pieces
    cells = _cells(pre)
    a = cpu.split_cells_count(pre, *cells, TOL, 0, slopes)
    out = _write(cpu, pre, cells, slopes, a, n_next=7)
    coff, cx, cy, cl, cn, cpat, cnext, cparent = out
    nxt = np.ascontiguousarray(cnext)
    uscale = np.ones(len(cparent))
    s7 = np.zeros(7)
    a2 = cpu.split_cells_count(nxt, coff, cx, cy, cl, cn, uscale, TOL, 1, s7)
    b2 = gk.split_cells_count(nxt, coff, cx, cy, cl, cn, uscale, TOL, 1, s7)
    _count_equal(a2, b2)
    cells2 = (coff, cx, cy, cl, cn, uscale)
    for x, y in zip(_write(cpu, nxt, cells2, s7, a2), _write(gk, nxt, cells2, s7, a2)):
        assert np.array_equal(x, y)


def test_reduce_leaves():
    rng = np.random.default_rng(5)
    pre = _degenerate_pre(rng, 8, 8)
    cells = _cells(pre)
    slopes = np.zeros(8)
    a = cpu.split_cells_count(pre, *cells, TOL, 0, slopes)
    coff, cx, cy, cl, cn, cpat, cnext, cparent = _write(cpu, pre, cells, slopes, a, n_next=3)
    root = cparent // 3 % 10
    lo = np.zeros(3, dtype=np.int64)  # _write labels the new edges with layer 2
    res = []
    for kern in (cpu, gk):
        acc = (np.zeros(10, dtype=np.int64), np.zeros((10, 11), dtype=np.uint8), np.zeros(10))
        kern.reduce_leaves(coff, cx, cy, cl, cn, root, cnext, lo, 8, True, np.ones(len(root)), TOL, *acc)
        res.append(acc)
    assert np.array_equal(res[0][0], res[1][0]) and np.array_equal(res[0][1], res[1][1])
    np.testing.assert_allclose(res[1][2], res[0][2], rtol=1e-12)


# ---------------------------------------------------------------------------
# Intervals (1-D cells)
# ---------------------------------------------------------------------------


def _intervals(pre: np.ndarray, t0: float = -1.0, t1: float = 1.0, inner: bool = True):
    """Interval cells [t0, t1] as the engine builds them; with ``inner``, some ends carry a neuron of layer 0."""
    C = pre.shape[0]
    off = np.arange(C + 1, dtype=np.int64) * 2
    vx = np.tile([t0, t1], C)
    lab = np.full(2 * C, -1, dtype=np.int32)
    neu = lab.copy()
    if inner:
        lab[1::3] = 0
        neu[1::3] = np.arange(len(neu[1::3])) % 4
    return off, vx, np.zeros(2 * C), lab, neu, np.full(C, max(abs(t0), abs(t1)))


def _degenerate_pre_1d(rng, C: int, n: int) -> np.ndarray:
    """Random breakpoints plus coinciding, nearly coinciding, end and zero neurons."""
    pre = rng.normal(size=(C, 2, n))
    pre[:, :, 1] = pre[:, :, 0]                       # coinciding neurons
    pre[:, :, 2] = 0.0                                # a zero row
    pre[:, 0, 3], pre[:, 1, 3] = 1.0, 1.0             # breakpoint on the left end
    pre[:, 0, 4], pre[:, 1, 4] = -2.0, 0.6            # breakpoint at 0.3 ...
    pre[:, 0, 5], pre[:, 1, 5] = 1.0, -0.3 - 1e-13    # ... and within tol of it, from the other side
    pre[:, 0, 6], pre[:, 1, 6] = 4.0, -1.2            # exactly the same point as neuron 4, other scale
    pre[:, 0, 7], pre[:, 1, 7] = 1.0, -1.0 + 1e-12    # a sliver at the right end
    return pre


@pytest.fixture
def intervals(layer, request):
    """The ``layer`` fixture's slopes, with 1-D maps of the same kind (random or degenerate)."""
    pre2, slopes = layer
    C, _, n = pre2.shape
    rng = np.random.default_rng(11)
    if request.node.callspec.params["layer"] == "random":
        return rng.normal(size=(C, 2, n)), slopes
    return _degenerate_pre_1d(rng, C, n), slopes


def test_split_intervals(intervals):
    pre, slopes = intervals
    cells = _intervals(pre)
    a = cpu.split_intervals_count(pre, *cells, TOL, 2, slopes)
    b = gk.split_intervals_count(pre, *cells, TOL, 2, slopes)
    _count_equal(a, b)
    assert a[3].max() > 2
    name = "split_intervals_write"
    for x, y in zip(_write(cpu, pre, cells, slopes, a, name=name), _write(gk, pre, cells, slopes, a, name=name)):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_split_intervals_ties():
    """Many exactly coinciding breakpoints (16 and more: numba's quicksort partitions) keep the CPU's order."""
    rng = np.random.default_rng(4)
    C, n = 4, 40
    scale = rng.integers(1, 9, size=(C, n)) * rng.choice([-1.0, 1.0], size=(C, n))
    point = rng.choice([-0.5, 0.25, 0.5], size=(C, n))
    pre = np.stack([scale, -point * scale], axis=1)
    slopes = np.zeros(n)
    slopes[-1] = 1.0
    cells = _intervals(pre)
    a = cpu.split_intervals_count(pre, *cells, TOL, 0, slopes)
    b = gk.split_intervals_count(pre, *cells, TOL, 0, slopes)
    _count_equal(a, b)
    assert a[2].min() >= 16 and (a[3] == 4).all()
    name = "split_intervals_write"
    for x, y in zip(_write(cpu, pre, cells, slopes, a, name=name), _write(gk, pre, cells, slopes, a, name=name)):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("name, rows, cells", [("split_cells_count", 3, _cells),
                                               ("split_intervals_count", 2, _intervals)])
def test_split_no_cells(name, rows, cells):
    pre = np.empty((0, rows, 4))
    for x, y in zip(getattr(cpu, name)(pre, *cells(pre), TOL, 0, np.zeros(4)),
                    getattr(gk, name)(pre, *cells(pre), TOL, 0, np.zeros(4))):
        assert x.shape == y.shape and x.dtype == y.dtype


# ---------------------------------------------------------------------------
# Counting the last hidden layer (local complexity)
# ---------------------------------------------------------------------------

LAYER_OFFSET = np.array([0, 10, 20, 30], dtype=np.int64)


def _reduce_last(kern, pre, cells, slopes, layer, n_roots=4):
    off, vx, vy, el, en, u = cells
    root = np.arange(pre.shape[0], dtype=np.int64) * 7 % n_roots
    acc = (np.zeros(n_roots, dtype=np.int64), np.zeros((n_roots, 40), dtype=np.uint8), np.zeros(n_roots))
    kern.reduce_last_layer(pre, off, vx, vy, el, en, root, u, TOL, layer, slopes, LAYER_OFFSET, *acc)
    return acc


def _assert_same(a, b):
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def _children(pre, slopes, n_next=7):
    """The children of the cells of ``pre`` (split by layer 2) and the map of 7 neurons on them."""
    cells = _cells(pre)
    a = cpu.split_cells_count(pre, *cells, TOL, 2, slopes)
    coff, cx, cy, cl, cn, _, cnext, cparent = _write(cpu, pre, cells, slopes, a, n_next=n_next)
    s7 = np.zeros(n_next)
    s7[5] = 1.0
    s7[6] = 0.1
    return np.ascontiguousarray(cnext), (coff, cx, cy, cl, cn, np.ones(len(cparent))), s7


def test_reduce_last_layer(layer):
    pre, slopes = layer
    cells = _cells(pre)
    a = _reduce_last(cpu, pre, cells, slopes, 2)
    _assert_same(a, _reduce_last(gk, pre, cells, slopes, 2))
    assert a[0].sum() > pre.shape[0]
    # cells with inner edges (the children of two cells), split by the next layer
    nxt, cells2, s7 = _children(pre[:2], slopes)
    a = _reduce_last(cpu, nxt, cells2, s7, 3)
    _assert_same(a, _reduce_last(gk, nxt, cells2, s7, 3))
    assert a[2].min() > 0


def test_reduce_last_layer_intervals(intervals):
    pre, slopes = intervals
    cells = _intervals(pre)
    a = _reduce_last(cpu, pre, cells, slopes, 1)
    _assert_same(a, _reduce_last(gk, pre, cells, slopes, 1))
    assert a[0].sum() > pre.shape[0] and a[1][:, :10].any()


def _reduce_split(kern, pre, cells, slopes, layer, n_next=5, seed=6):
    counted = cpu.split_cells_count(pre, *cells, TOL, layer, slopes)
    bits, cuts, ncut, _, _, masked = counted
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_next, pre.shape[2]))
    bias = rng.normal(size=n_next)
    rough = masked.astype(np.float32) @ w.T.astype(np.float32)
    nslopes = np.zeros(n_next)
    nslopes[3] = 1.0
    nslopes[4] = 0.1
    return kern.split_cells_reduce(pre, *cells, TOL, layer, slopes, bits, cuts, ncut, masked, w,
                                   np.ascontiguousarray(w.T), bias, rough, nslopes)


def test_split_cells_reduce(layer):
    pre, slopes = layer
    pre = pre[:4]  # the simulator is slow: few cells, many pieces
    cells = _cells(pre)
    a = _reduce_split(cpu, pre, cells, slopes, 2)
    _assert_same(a, _reduce_split(gk, pre, cells, slopes, 2))
    assert (a[0] > 2).any() and a[2].any()
    nxt, cells2, s7 = _children(pre[:2], slopes)
    a = _reduce_split(cpu, nxt, cells2, s7, 3)
    _assert_same(a, _reduce_split(gk, nxt, cells2, s7, 3))


def test_reduce_no_cells():
    pre = np.empty((0, 3, 4))
    cells = _cells(pre)
    _assert_same(_reduce_last(cpu, pre, cells, np.zeros(4), 0), _reduce_last(gk, pre, cells, np.zeros(4), 0))
    _assert_same(_reduce_split(cpu, pre, cells, np.zeros(4), 0), _reduce_split(gk, pre, cells, np.zeros(4), 0))


def _net(widths, seed):
    import torch

    torch.manual_seed(seed)
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return rg.from_torch(torch.nn.Sequential(*mods[:-1]).double())


@pytest.mark.parametrize("widths", [(2, 6, 5, 3)])
def test_partition_end_to_end(widths):
    net = _net(widths, 0)
    rng = np.random.default_rng(0)
    sl = rg.Slice.through(*rng.normal(size=(3, widths[0])), pad=0.2)
    a = rg.partition(net, sl, device="cpu")
    b = rg.partition(net, sl, device="cuda")
    assert a.n_regions == b.n_regions > 1
    assert np.array_equal(a.patterns, b.patterns)
    np.testing.assert_allclose(b.vertices, a.vertices, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.areas, a.areas, rtol=1e-9, atol=1e-15)


def test_certified_predicates_refuse_cuda():
    """Certified predicates run on the CPU; device="cuda" says so instead of falling back."""
    net = _net((2, 6, 3), 0)
    sl = rg.Slice.through(*np.random.default_rng(0).normal(size=(3, 2)), pad=0.2)
    with pytest.raises(ValueError, match="predicates='certified' runs on the CPU"):
        rg.partition(net, sl, device="cuda", predicates="certified")
    with pytest.raises(ValueError, match="predicates='certified' runs on the CPU"):
        rg.local_complexity(net, np.zeros((1, 2)), 0.5, device="cuda", predicates="certified")


def test_partition_end_to_end_1d():
    net = _net((4, 8, 8, 3), 0)
    rng = np.random.default_rng(0)
    sl = rg.Slice.segment(*rng.normal(size=(2, 4)) * 10)
    a = rg.partition(net, sl, device="cpu")
    b = rg.partition(net, sl, device="cuda")
    assert a.n_regions == b.n_regions > 6
    for name in ("patterns", "vertices", "edge_layer", "edge_neuron", "logit_maps"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("widths, dim", [((6, 5, 5, 3), 2), ((6, 5, 5, 3), 1), ((6, 8, 3), 2)])
def test_local_complexity_end_to_end(widths, dim):
    """Takes the fused last two layers (2-D, two hidden layers), the last-layer count (1-D, or one
    hidden layer) and, with the logits, the leaf reduction."""
    net = _net(widths, 1)
    X = np.random.default_rng(1).normal(size=(2, 6))
    for layers in ("hidden", "all"):
        a = rg.local_complexity(net, X, 2.0, dim=dim, layers=layers, device="cpu")
        b = rg.local_complexity(net, X, 2.0, dim=dim, layers=layers, device="cuda")
        assert np.array_equal(a.regions, b.regions) and np.array_equal(a.neurons, b.neurons)
        assert (a.regions > 1).any()
        np.testing.assert_allclose(b.boundary_density, a.boundary_density, rtol=1e-12)
