"""k-D partitions (k = 3, 4) held to the LP oracle (tests/oracle_kd.py), sampling and volume sums;
the k-D kernels routed through k = 1 and 2 give today's regions; bad input fails clearly."""

import numpy as np
import pytest
from common import anchor_module, random_net
from oracle import hidden_patterns
from oracle_kd import (
    cross_polytope_halfspaces,
    cube_halfspaces,
    oracle_patterns_kd,
    sample_in_halfspaces,
)

import relugeo as rg
from relugeo.regions import engine, engine_kd


def to_pwanet(layers):
    return rg.PWANet([rg.AffineLayer(W, b, act) for W, b, act in layers])


def pattern_set(patterns, n_bits):
    bits = np.unpackbits(np.ascontiguousarray(patterns).view(np.uint8), axis=1, bitorder="little")[:, :n_bits]
    return {tuple(int(v) for v in row) for row in bits}


CASES = [
    # (k, widths, negative slope, domain, seed)
    (3, (5, 4), 0.0, "cube", 0),
    (3, (5, 5), 0.2, "cross", 1),
    (3, (4, 4, 4), 0.0, "cross", 2),
    (4, (4, 4), 0.0, "cube", 3),
    (4, (4, 4), 0.1, "cross", 4),
]


@pytest.mark.parametrize("k, widths, slope, domain, seed", CASES)
def test_kd_equals_lp_oracle(k, widths, slope, domain, seed):
    rng = np.random.default_rng(seed)
    D = k + 2
    layers = random_net(seed, widths, input_dim=D, negative_slope=slope)
    origin = rng.normal(size=D) * 0.3
    basis = np.linalg.qr(rng.normal(size=(D, k)))[0]
    r = 1.5
    if domain == "cube":
        sl = rg.Slice.cube(origin, basis, r)
        A, c = cube_halfspaces(k, r)
    else:
        sl = rg.Slice.cross_polytope(origin, basis, r)
        A, c = cross_polytope_halfspaces(k, r)
    net = to_pwanet(layers)
    part = rg.partition(net, sl)
    assert isinstance(part, rg.PartitionKD)
    n_bits = sum(widths)
    ours = pattern_set(part.patterns, n_bits)
    want = oracle_patterns_kd(layers, origin, basis, A, c, size=r)
    assert part.n_regions == len(ours) == len(want)
    assert ours == want
    # sampling finds nothing the partition lacks
    u = sample_in_halfspaces(A, c, r, 4000, seed)
    sampled = {tuple(int(v) for v in row) for row in hidden_patterns(layers, origin + u @ basis.T)}
    assert sampled <= ours
    rep = part.verify()
    assert rep["volume_rel_error"] <= 1e-9 and rep["certificate_failures"] == 0
    assert sl.area == pytest.approx((2 * r) ** k if domain == "cube" else (2 * r) ** k / np.prod(range(1, k + 1)))
    assert (part.n_vertices >= k + 1).all() and (part.n_facets >= k + 1).all()


def test_kd_counts_facets_and_vertices_of_the_domain():
    """A net whose one neuron misses the cube leaves the cube whole: 2^k vertices, 2k facets."""
    k = 4
    layers = [(np.ones((1, k)), np.array([10.0]), 0.0), (np.ones((1, 1)), np.zeros(1), None)]
    part = rg.partition(to_pwanet(layers), rg.Slice.cube(np.zeros(k), np.eye(k), 1.0))
    assert part.n_regions == 1
    assert part.n_vertices.tolist() == [16] and part.n_facets.tolist() == [8]
    assert part.volumes[0] == pytest.approx(16.0)
    assert len(part.neurons) == 0


def test_kd_hyperplanes_through_vertices_and_duplicates():
    """Hyperplanes through the cube's centre and vertices, one duplicated: the counts of a central
    arrangement (3 generic planes through 0 in R^3 make 8 regions; the duplicate adds nothing)."""
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    layers = [(W, np.zeros(4), 0.0), (np.ones((1, 4)), np.zeros(1), None)]
    part = rg.partition(to_pwanet(layers), rg.Slice.cube(np.zeros(3), np.eye(3), 1.0))
    assert part.n_regions == 8
    part.verify()
    # a plane x + y + z = 3 touching the corner only cuts nothing
    layers = [(np.array([[1.0, 1.0, 1.0]]), np.array([-3.0]), 0.0), (np.ones((1, 1)), np.zeros(1), None)]
    assert rg.partition(to_pwanet(layers), rg.Slice.cube(np.zeros(3), np.eye(3), 1.0)).n_regions == 1


def _kd_walk_patterns(net, origin, basis, vertices):
    inc = engine_kd.domain_incidence(vertices)
    roots = engine_kd.root_batch(net, origin[None], basis, vertices, inc)
    leaves = []
    engine.walk(net, roots, leaves.append)
    return np.concatenate([b.pat for b in leaves])


@pytest.mark.parametrize("w, depth, expected", [(16, 3, 178), (32, 3, 1180)])
def test_kd_kernels_give_todays_2d_regions(w, depth, expected):
    net = rg.from_torch(anchor_module(w, depth))
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    pats = _kd_walk_patterns(net, np.zeros(2), np.eye(2), square)
    today = rg.partition(net, rg.Slice(np.zeros(2), np.eye(2), square))
    assert len(pats) == today.n_regions == expected
    assert pattern_set(pats, net.n_hidden) == pattern_set(today.patterns, net.n_hidden)


@pytest.mark.parametrize("seed", [0, 1])
def test_kd_kernels_give_todays_1d_and_leaky_2d_regions(seed):
    layers = random_net(seed, (12, 12), input_dim=3, negative_slope=0.1)
    net = to_pwanet(layers)
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(3, 2)))[0]
    origin = rng.normal(size=3) * 0.2
    poly = np.array([[-2.0, -1.5], [2.0, -2.0], [1.5, 2.0], [-1.0, 2.5]])
    today = rg.partition(net, rg.Slice(origin, basis, poly))
    pats = _kd_walk_patterns(net, origin, basis, today.slice.vertices)
    assert pattern_set(pats, net.n_hidden) == pattern_set(today.patterns, net.n_hidden)
    assert len(pats) == today.n_regions
    seg = rg.Slice(origin, basis[:, :1], [[-3.0], [3.0]])
    today = rg.partition(net, seg)
    pats = _kd_walk_patterns(net, origin, basis[:, :1], seg.vertices)
    assert len(pats) == today.n_regions
    assert pattern_set(pats, net.n_hidden) == pattern_set(today.patterns, net.n_hidden)


def test_kd_pass_through_neurons_and_depth_first_batches():
    """Pass-through neurons (slope 1) never cut; tiny depth-first batches give the oracle's regions."""
    rng = np.random.default_rng(5)
    slopes = np.array([0.0, 1.0, 0.0, 1.0, 0.1])
    layers = [(rng.normal(size=(5, 3)), rng.normal(size=5) * 0.5, slopes),
              (rng.normal(size=(4, 5)), rng.normal(size=4) * 0.5, 0.0),
              (rng.normal(size=(1, 4)), np.zeros(1), None)]
    net = to_pwanet(layers)
    sl = rg.Slice.cube(np.zeros(3), np.eye(3), 2.0)
    big = rg.partition(net, sl)
    small = rg.partition(net, sl, batch_cells=2)
    want = oracle_patterns_kd(layers, np.zeros(3), np.eye(3), *cube_halfspaces(3, 2.0), size=2.0)
    assert big.n_regions == small.n_regions == len(want) > 5
    assert pattern_set(big.patterns, 9) == pattern_set(small.patterns, 9) == want
    small.verify()


# -- bad input -----------------------------------------------------------------------------


def test_kd_bad_input():
    with pytest.raises(rg.InvalidSliceError, match="k in 1..8"):
        rg.Slice.cube(np.zeros(9), np.eye(9), 1.0)
    flat = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    with pytest.raises(rg.InvalidSliceError, match="flat"):
        rg.Slice(np.zeros(3), np.eye(3), flat)
    with pytest.raises(rg.InvalidSliceError, match="radius"):
        rg.Slice.cross_polytope(np.zeros(3), np.eye(3), -1.0)
    with pytest.raises(rg.InvalidSliceError, match="input_dim = 9"):
        rg.Slice.full(9)
    net = to_pwanet(random_net(0, (16, 16), input_dim=3))
    sl = rg.Slice.cube(np.zeros(3), np.eye(3), 3.0)
    with pytest.raises(rg.RegionLimitError, match="max_regions = 20"):
        rg.partition(net, sl, max_regions=20)
    with pytest.raises(rg.RelugeoError, match="CPU kernels only"):
        rg.partition(net, sl, device="cuda")


def test_kd_partition_and_full_space_on_threads_are_the_ones_on_one(monkeypatch):
    """parallel=True walks subtrees on a pool of threads: the same k-D regions in the same order, bit for
    bit, and the same full-space complex and counts."""
    import numba

    from relugeo.regions import count_full

    net = to_pwanet(random_net(6, (8, 8), input_dim=3, negative_slope=0.1))
    cube = rg.Slice.cube(np.zeros(3), np.eye(3), 2.0)
    one = rg.partition(net, cube, batch_cells=4)
    full_one = rg.partition(net, rg.Slice.full(3), batch_cells=4)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 3)  # more subtrees than this machine has cores
    many = rg.partition(net, cube, batch_cells=4, parallel=True)
    assert many.n_regions == one.n_regions > 40
    for name in ("vertices", "offsets", "incidence", "patterns", "logit_maps"):
        np.testing.assert_array_equal(getattr(many, name), getattr(one, name))
    full_many = rg.partition(net, rg.Slice.full(3), batch_cells=4, parallel=True)
    np.testing.assert_array_equal(full_many.patterns, full_one.patterns)
    np.testing.assert_array_equal(full_many.bounded, full_one.bounded)
    assert count_full(net, batch_cells=4, parallel=True) == (full_one.n_regions, int(full_one.bounded.sum()))
