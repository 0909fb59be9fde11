"""CUDA (simulated) against CPU kernels, element by element; run with NUMBA_ENABLE_CUDASIM=1.

Pytest module run in a subprocess by ``tests/test_cuda_kernels.py``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import relugeo as rg
from relugeo.kernels import backend, cpu, resolve_device
from relugeo.kernels import cuda as gk

# the simulator runs every CUDA thread as a Python thread and polls them from the main one; a short
# GIL switch interval lets threads waiting at a barrier resume promptly (several times faster)
sys.setswitchinterval(1e-4)

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


def _write(kern, pre, cells, slopes, counted, n_next=5, seed=3):
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
           np.empty(nv, dtype=np.int32), np.empty((nc, 2), dtype=np.uint64), np.empty((nc, 3, n_next)),
           np.empty(nc, dtype=np.int64))
    kern.split_cells_write(pre, off, vx, vy, el, en, u, TOL, 2, slopes, pat, 20, bits, cuts, ncut, ps, vs,
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


def test_split_no_cells():
    pre = np.empty((0, 3, 4))
    cells = _cells(pre)
    for x, y in zip(cpu.split_cells_count(pre, *cells, TOL, 0, np.zeros(4)),
                    gk.split_cells_count(pre, *cells, TOL, 0, np.zeros(4))):
        assert x.shape == y.shape


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


def test_local_complexity_end_to_end():
    net = _net((6, 5, 5, 3), 1)
    X = np.random.default_rng(1).normal(size=(2, 6))
    for layers in ("hidden", "all"):
        a = rg.local_complexity(net, X, 0.5, layers=layers, device="cpu")
        b = rg.local_complexity(net, X, 0.5, layers=layers, device="cuda")
        assert np.array_equal(a.regions, b.regions) and np.array_equal(a.neurons, b.neurons)
        np.testing.assert_allclose(b.boundary_density, a.boundary_density, rtol=1e-9)
