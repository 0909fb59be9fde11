"""Certified predicates: rigorous bounds, the same partitions on generic nets, clear errors.

The comparisons against exact arithmetic on degenerate nets are in
``test_exact_oracle.py``; here the bounds themselves are checked against
Fractions, and certified mode against tolerance mode where both must agree.
"""

from fractions import Fraction

import numpy as np
import pytest
from common import (
    ANCHORS,
    SQUARE,
    Case,
    anchor_module,
    hidden,
    plane,
    random_net,
    readout,
)
from exact_oracle import exact_partition, quantised_net
from test_exact_oracle import assert_exact
from test_partition import to_pwanet

import relugeo as rg
from relugeo.kernels.certified import crossing_radius, meet_radius, value_bound
from relugeo.regions.certify import Certifier
from relugeo.regions import warmup
from relugeo.regions.complexity import cross_polytope, frame


def _q(x):
    return Fraction(float(x))


def test_value_bound_holds_against_exact_arithmetic():
    rng = np.random.default_rng(0)
    for _ in range(100):
        a, b, c, x, y = rng.normal(size=5) * 10.0 ** rng.integers(-8, 8, size=5)
        ea, eb, ec, r = np.abs(rng.normal(size=4)) * 10.0 ** rng.integers(-20, -5, size=4)
        # exact coefficients and point anywhere within the stated errors
        da, db, dc, dx, dy = rng.uniform(-1, 1, size=5)
        v, e = value_bound(a, b, c, ea, eb, ec, x, y, r)
        exact = ((_q(a) + _q(da * ea)) * (_q(x) + _q(dx * r)) + (_q(b) + _q(db * eb)) * (_q(y) + _q(dy * r))
                 + _q(c) + _q(dc * ec))
        # da * ea etc. are rounded: allow their own rounding
        assert abs(exact - _q(v)) <= _q(e) * (1 + 1e-12), (a, b, c, x, y)


def test_crossing_radius_holds_against_exact_arithmetic():
    rng = np.random.default_rng(1)
    for _ in range(200):
        p0, p1 = rng.normal(size=(2, 2))
        line = rng.normal(size=3)
        line[2] = -(line[:2] @ (0.5 * (p0 + p1)))  # through the middle of the edge
        s0, s1 = line[:2] @ p0 + line[2], line[:2] @ p1 + line[2]
        if s0 * s1 >= 0:
            continue
        e0 = e1 = abs(s0 - s1) * 1e-9
        t = s0 / (s0 - s1)
        vx, vy = p0 + t * (p1 - p0)
        r = crossing_radius(s0, e0, s1, e1, p0[0], p0[1], p1[0], p1[1], 0.0, 0.0, t)
        # any exact values within the bounds give a crossing within r
        for z0, z1 in ((s0 - e0, s1 + e1), (s0 + e0, s1 - e1), (s0, s1)):
            tau = _q(z0) / (_q(z0) - _q(z1))
            ex = _q(p0[0]) + tau * (_q(p1[0]) - _q(p0[0]))
            ey = _q(p0[1]) + tau * (_q(p1[1]) - _q(p0[1]))
            assert max(abs(ex - _q(vx)), abs(ey - _q(vy))) <= _q(r)


def test_meet_radius_holds_against_exact_arithmetic():
    rng = np.random.default_rng(3)
    finite = 0
    for _ in range(200):
        (a1, b1, c1), (a2, b2, c2) = rng.normal(size=(2, 3)) * 10.0 ** rng.integers(-3, 3, size=(2, 1))
        errs = np.abs(rng.normal(size=6)) * 10.0 ** rng.integers(-16, -6, size=6)
        det = a1 * b2 - b1 * a2
        # a float point near the meeting point
        x = (b1 * c2 - b2 * c1) / det * (1 + 1e-9 * rng.normal())
        y = (c1 * a2 - c2 * a1) / det * (1 + 1e-9 * rng.normal())
        r = meet_radius(a1, b1, c1, *errs[:3], a2, b2, c2, *errs[3:], x, y)
        finite += bool(r < 1.0)
        for _ in range(3):
            # exact lines anywhere within the stated errors meet within r of (x, y)
            A1, B1, C1 = (_q(v) + _q(d * e) for v, d, e in zip((a1, b1, c1), rng.uniform(-1, 1, 3), errs[:3]))
            A2, B2, C2 = (_q(v) + _q(d * e) for v, d, e in zip((a2, b2, c2), rng.uniform(-1, 1, 3), errs[3:]))
            D = A1 * B2 - B1 * A2
            ex, ey = (B1 * C2 - B2 * C1) / D, (C1 * A2 - C2 * A1) / D
            # d * e is rounded: allow its own rounding
            assert max(abs(ex - _q(x)), abs(ey - _q(y))) <= _q(r) * (1 + 1e-9), (a1, b1, c1, a2, b2, c2)
    assert finite > 150  # the bound is informative, not merely infinite
    assert meet_radius(1.0, 1.0, 0.0, 0.1, 0.1, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0) == np.inf


@pytest.mark.parametrize("row", [(1.0, -1.0, 0.0), (1.0, 1.0, -2.0)], ids=["cuts_through_corners", "touches_corner"])
def test_exact_fallback_evaluates_only_the_undecided_neuron(monkeypatch, row):
    # ten generic lines and one through a corner of the square (the float filter cannot decide it there),
    # then a second layer: only that neuron is evaluated exactly, the rest go through the float kernels
    rng = np.random.default_rng(4)
    rows = np.concatenate([rng.normal(size=(10, 3)) * [1.0, 1.0, 0.5], [row]])
    layers = [hidden(rows[:, :2], rows[:, 2]), hidden(rng.normal(size=(3, 11)), rng.normal(size=3) * 0.5), readout(3)]
    exact_rows = set()
    int_row = Certifier.int_row
    warmup.ensure_compiled("certified")  # its first compilation runs certified partitions of its own

    def recorded(self, root, pattern, layer, neuron):
        exact_rows.add((layer, neuron))
        return int_row(self, root, pattern, layer, neuron)

    monkeypatch.setattr(Certifier, "int_row", recorded)
    part = assert_exact(Case("one_undecided", layers, *plane()), predicates="certified")
    assert part.n_exact_cells == 1
    assert exact_rows == {(0, 10)}
    part.verify()


@pytest.mark.parametrize("width, depth, count", ANCHORS[:2])
def test_certified_equals_tolerance_on_generic_nets(width, depth, count):
    net = rg.from_torch(anchor_module(width, depth))
    sl = rg.Slice(np.zeros(2), np.eye(2), SQUARE)
    tol, cert = rg.partition(net, sl), rg.partition(net, sl, predicates="certified")
    assert cert.n_regions == tol.n_regions == count
    assert set(map(bytes, cert.patterns)) == set(map(bytes, tol.patterns))
    assert cert.predicates == "certified" and tol.predicates == "tolerance"
    assert cert.n_exact_cells == 0 == tol.n_exact_cells
    np.testing.assert_allclose(np.sort(cert.areas), np.sort(tol.areas), rtol=1e-9, atol=1e-15)
    assert (cert.edge_neuron[cert.edge_layer < 0] == -1).all()
    cert.verify()


def test_certified_1d_and_high_dimensional_slice():
    layers = random_net(4, [12, 10, 8], 20, 0.1)
    net = to_pwanet(layers)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 20))
    seg = rg.Slice.segment(a, b)
    tol, cert = rg.partition(net, seg), rg.partition(net, seg, predicates="certified")
    assert set(map(bytes, cert.patterns)) == set(map(bytes, tol.patterns))
    cert.verify()


def test_the_exact_fallback_runs_and_is_counted():
    layers = quantised_net(np.random.default_rng(5), [5, 4, 3])
    part = rg.partition(to_pwanet(layers), rg.Slice(np.zeros(2), np.eye(2), SQUARE), predicates="certified")
    assert part.n_exact_cells > 0
    assert part.n_regions == len(exact_partition(layers, np.zeros(2), np.eye(2), SQUARE))


@pytest.mark.parametrize("dim", [1, 2])
def test_certified_local_complexity_counts_exact_regions(dim):
    rng = np.random.default_rng(1)
    layers = quantised_net(rng, [6, 5], input_dim=3)
    net = to_pwanet(layers)
    X = rng.integers(-4, 5, size=(5, 3)) / 4.0
    lc = rg.local_complexity(net, X, 0.5, dim=dim, predicates="certified")
    V = frame(3, dim, 0)
    want = [len(exact_partition(layers, x, V, cross_polytope(dim, 0.5))) for x in X]
    assert lc.regions.tolist() == want


def test_bad_predicates_and_unsupported_nets_raise_clearly():
    net = to_pwanet(random_net(0, [4], 2))
    sl = rg.Slice(np.zeros(2), np.eye(2), SQUARE)
    with pytest.raises(ValueError, match="predicates must be 'tolerance' or 'certified'; got 'exact'"):
        rg.partition(net, sl, predicates="exact")
    with pytest.raises(ValueError, match="predicates must be"):
        rg.local_complexity(net, np.zeros((1, 2)), 0.1, predicates="exact")
    with pytest.raises(ValueError, match="device='cuda'"):  # under the CUDA simulator too: tests/cuda_sim
        rg.partition(net, sl, predicates="certified", device="cuda")
    W = np.eye(2)
    pooled = rg.PWANet([rg.AffineLayer(W, np.zeros(2), 0.0),
                        rg.AffineLayer(W, np.zeros(2), None, np.array([[0, 1]]), np.zeros(0, dtype=np.int64)),
                        rg.AffineLayer(np.ones((1, 1)), np.zeros(1), None)])
    # max layers are covered (tests/test_certified_maxpool.py), on the CPU only
    cert, tol = rg.partition(pooled, sl, predicates="certified"), rg.partition(pooled, sl)
    assert cert.n_regions == tol.n_regions == 5  # four quadrants, the positive one cut by the tie x = y
    assert set(map(bytes, cert.patterns)) == set(map(bytes, tol.patterns))
    with pytest.raises(ValueError, match="device='cuda'"):
        rg.partition(pooled, sl, predicates="certified", device="cuda")


@pytest.mark.parametrize("row", [None, (1.0, -1.0, 0.0), "none_cut"], ids=["generic", "through_corners", "none_cut"])
def test_root_split_in_one_pass_equals_count_then_write(row):
    from relugeo.regions import engine
    from relugeo.regions.partition import _slice_roots

    rng = np.random.default_rng(8)
    rows = rng.normal(size=(12, 3)) * [1.0, 1.0, 0.5]
    if row == "none_cut":
        rows[:, 2] = np.abs(rows[:, :2]).sum(axis=1) + 1.0  # every line misses the square: one piece, the square
    elif row is not None:
        rows[3] = row  # a line the float filter cannot decide at two corners: no one-pass split
    net = to_pwanet([hidden(rows[:, :2], rows[:, 2]), hidden(rng.normal(size=(4, 12)), rng.normal(size=4)),
                     readout(4)])
    sl = rg.Slice(np.zeros(2), np.eye(2), SQUARE)
    roots = _slice_roots(net, sl, np.zeros(2))
    cert = rg.regions.certify.for_slice(net, sl, np.zeros(2), roots)
    once = engine._split_once(net, roots, 0.0, cert)
    if isinstance(row, tuple):
        assert once is None
        return
    counted, children, cparent = once
    two = engine.split_batch(net, roots, 0.0, certifier=cert)
    for name in ("off", "vx", "vy", "vr", "elay", "eneu", "pat"):
        np.testing.assert_array_equal(getattr(children, name), getattr(two, name), err_msg=name)
    assert (cparent == 0).all() and counted.npieces[0] == children.n_cells
    assert children.n_cells == 1 if row == "none_cut" else children.n_cells > 12
    maps = engine._with_maps(net, ("maps", children, cparent, roots, counted, 0, 1, 0, children.n_cells))
    np.testing.assert_allclose(maps.pre, two.pre, rtol=1e-12, atol=1e-12)
