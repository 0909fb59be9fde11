"""The oracle's own tests: it is held to the closed form, to sampling and to hand counts.

Nothing here imports relugeo.
"""

import numpy as np
import pytest
import shapely
import torch
from common import (
    SQUARE,
    anchor_module,
    degenerate_cases_1d,
    degenerate_cases_2d,
    from_module,
    net_from_rows,
    plane,
    random_net,
    random_slice,
    to_torch,
)
from oracle import (
    arrangement_count,
    clip_halfplane,
    counter_clockwise,
    forward_fixed,
    hidden_patterns,
    oracle_partition_1d,
    oracle_partition_2d,
    polygon_area,
    polygon_centroid,
    sample_patterns,
)


def run_oracle(layers, origin, basis, vertices):
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.shape[1] == 1:
        return oracle_partition_1d(layers, origin, basis, vertices[0, 0], vertices[1, 0])
    return oracle_partition_2d(layers, origin, basis, vertices)


def domain_size(vertices):
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.shape[1] == 1:
        return float(abs(vertices[1, 0] - vertices[0, 0]))
    return polygon_area(counter_clockwise(vertices))


# (seed, hidden widths, input dim, slice dim, negative slope)
NETS = [
    (0, [6], 2, 2, 0.0),
    (1, [8, 6], 2, 2, 0.0),
    (2, [5, 5, 5], 2, 2, 0.1),
    (3, [10, 8], 50, 2, 0.0),
    (4, [7, 7, 7], 50, 2, 0.2),
    (5, [12, 9, 6], 2, 1, 0.0),
    (6, [16, 16], 50, 1, 0.1),
]
NET_IDS = [f"s{s}-{'x'.join(map(str, w))}-D{d}-k{k}-a{a}" for s, w, d, k, a in NETS]


def net_and_slice(seed, widths, input_dim, k, slope):
    return random_net(seed, widths, input_dim, slope), *random_slice(seed, input_dim, k)


# -- plane geometry ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_clip_halfplane_matches_shapely(seed):
    rng = np.random.default_rng(seed)
    poly = counter_clockwise(np.array(shapely.convex_hull(shapely.multipoints(rng.normal(size=(10, 2)))).exterior.coords)[:-1])
    a, b, c = rng.normal(size=3) * [1, 1, 0.3]
    d = poly @ [a, b] + c
    mine = clip_halfplane(poly, d)
    n = np.array([a, b]) / np.hypot(a, b)
    t = np.array([-n[1], n[0]])
    p0 = -c / np.hypot(a, b) * n  # on the line
    L = 1e3
    halfplane = shapely.Polygon([p0 - L * t, p0 + L * t, p0 + L * t + L * n, p0 - L * t + L * n])
    expected = shapely.Polygon(poly).intersection(halfplane)
    area = polygon_area(mine) if len(mine) >= 3 else 0.0
    assert area == pytest.approx(expected.area, rel=1e-12, abs=1e-12)
    if area > 0:
        np.testing.assert_allclose(polygon_centroid(mine), np.array(expected.centroid.coords)[0], atol=1e-12)


def test_polygon_area_and_centroid_far_from_the_origin():
    tiny = np.array([0.3, -0.2]) + 0.5e-9 * SQUARE
    assert polygon_area(tiny) == pytest.approx(1e-18, rel=1e-6)
    np.testing.assert_allclose(polygon_centroid(tiny), [0.3, -0.2], rtol=0, atol=1e-15)
    assert polygon_area(tiny[::-1]) == pytest.approx(-1e-18, rel=1e-6)


# -- the network ---------------------------------------------------------------------------


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_forward_with_true_masks_is_torch_forward(slope):
    layers = random_net(0, [7, 5, 4], 3, slope, n_out=2)
    x = np.random.default_rng(1).normal(size=(50, 3))
    z = forward_fixed(layers, [], x)
    masks = []
    for W, b, s in layers[:-1]:
        masks.append(z > 0)
        z = forward_fixed(layers, masks, x)
    with torch.no_grad():
        expected = to_torch(layers)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)
    assert hidden_patterns(layers, x).shape == (50, 16)


def test_from_module_inverts_to_torch():
    layers = random_net(2, [4, 3], 2, 0.05)
    back = from_module(to_torch(layers))
    for (W, b, s), (W2, b2, s2) in zip(layers, back):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
        assert s == s2


def test_float32_nets_are_float32_values():
    layers = random_net(0, [5], 2, 0.0, np.float32)
    for W, b, _ in layers:
        assert W.dtype == np.float64
        np.testing.assert_array_equal(W, W.astype(np.float32).astype(np.float64))
        np.testing.assert_array_equal(b, b.astype(np.float32).astype(np.float64))
    assert not np.array_equal(layers[0][0], random_net(0, [5], 2, 0.0)[0][0])


# -- the oracle ----------------------------------------------------------------------------


def test_two_lines_make_four_quadrants():
    layers = net_from_rows([[1, 0, 0], [0, 1, 0]])
    regions = oracle_partition_2d(layers, *plane())
    assert sorted(p for p, _, _ in regions) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for pattern, area, point in regions:
        assert area == pytest.approx(1.0, rel=1e-12)
        assert tuple(int(v > 0) for v in point) == pattern


def test_regions_carry_their_own_patterns():
    layers, origin, basis, vertices = net_and_slice(*NETS[2])
    regions = oracle_partition_2d(layers, origin, basis, vertices)
    points = np.array([p for _, _, p in regions])
    bits = hidden_patterns(layers, origin + points @ basis.T)
    assert [tuple(map(int, b)) for b in bits] == [p for p, _, _ in regions]


@pytest.mark.parametrize("case", NETS, ids=NET_IDS)
def test_areas_sum_to_the_domain(case):
    layers, origin, basis, vertices = net_and_slice(*case)
    regions = run_oracle(layers, origin, basis, vertices)
    assert len(regions) > 3
    assert all(area > 0 for _, area, _ in regions)
    total = sum(area for _, area, _ in regions)
    assert total == pytest.approx(domain_size(vertices), rel=1e-9)
    assert len({p for p, _, _ in regions}) == len(regions)


@pytest.mark.parametrize("case", NETS, ids=NET_IDS)
def test_sampled_patterns_are_oracle_patterns(case):
    layers, origin, basis, vertices = net_and_slice(*case)
    patterns = {p for p, _, _ in run_oracle(layers, origin, basis, vertices)}
    sampled = sample_patterns(layers, origin, basis, vertices, 150 if basis.shape[1] == 2 else 4000)
    assert sampled <= patterns
    assert len(sampled) >= 0.5 * len(patterns)


ONE_LAYER = [(seed, width, d, k) for seed, (width, d, k) in enumerate(
    [(3, 2, 2), (8, 2, 2), (20, 2, 2), (32, 2, 2), (12, 50, 2), (24, 50, 2), (10, 2, 1), (32, 50, 1)]
)]


@pytest.mark.parametrize("seed,width,input_dim,k", ONE_LAYER)
def test_one_layer_equals_the_arrangement_count(seed, width, input_dim, k):
    layers = random_net(seed, [width], input_dim)
    origin, basis, vertices = random_slice(seed, input_dim, k)
    W, b, _ = layers[0]
    expected = arrangement_count(W, b, origin, basis, vertices)
    assert expected > 1
    assert len(run_oracle(layers, origin, basis, vertices)) == expected


def test_arrangement_count_by_hand():
    # x = 0, y = 0, x + y = 0.5 on [-1, 1]^2: 3 lines, 3 crossing points inside
    assert arrangement_count(np.array([[1.0, 0], [0, 1], [1, 1]]), np.array([0, 0, -0.5]), *plane()) == 7
    # a line outside the square, and one through a corner only
    assert arrangement_count(np.array([[1.0, 0], [1, 1]]), np.array([-3.0, 2.0]), *plane()) == 1
    seg = (np.zeros(2), np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]]))
    assert arrangement_count(np.array([[1.0, 0], [1, 0], [1, 0]]), np.array([-0.25, -0.5, -1.0]), *seg) == 3


@pytest.mark.parametrize("case", degenerate_cases_2d() + degenerate_cases_1d(), ids=lambda c: f"{c.dim}d-{c.name}")
def test_degenerate_cases(case):
    regions = run_oracle(case.layers, case.origin, case.basis, case.vertices)
    if case.expected is not None:
        assert len(regions) == case.expected
    assert len({p for p, _, _ in regions}) == len(regions)
    assert sum(a for _, a, _ in regions) == pytest.approx(domain_size(case.vertices), rel=1e-9)
    sampled = sample_patterns(case.layers, case.origin, case.basis, case.vertices, 200 if case.dim == 2 else 4000)
    assert sampled <= {p for p, _, _ in regions}


# -- the checks can fail -----------------------------------------------------------------


def test_area_check_sees_a_missing_region():
    layers, origin, basis, vertices = net_and_slice(*NETS[1])
    regions = oracle_partition_2d(layers, origin, basis, vertices)[1:]
    assert sum(a for _, a, _ in regions) != pytest.approx(domain_size(vertices), rel=1e-9)


def test_sampling_sees_a_missing_line():
    layers, origin, basis, vertices = net_and_slice(*NETS[1])
    W, b, s = layers[0]
    W, b = W.copy(), b.copy()
    W[0], b[0] = 0.0, 1.0  # neuron 0 always on: its line is gone
    blind = oracle_partition_2d([(W, b, s), *layers[1:]], origin, basis, vertices)
    sampled = sample_patterns(layers, origin, basis, vertices, 100)
    assert not sampled <= {p for p, _, _ in blind}


def test_arrangement_count_sees_a_missing_line():
    layers = random_net(1, [8], 2)
    W, b, _ = layers[0]
    assert arrangement_count(W, b, *plane()) != arrangement_count(W[1:], b[1:], *plane())


# -- the regression anchors --------------------------------------------------------------


def anchor_regions(w, depth, **kwargs):
    return oracle_partition_2d(from_module(anchor_module(w, depth, **kwargs)), *plane())


@pytest.mark.parametrize(
    "w,depth,expected", [(16, 3, 178), (32, 3, 1180), pytest.param(32, 5, 1460, marks=pytest.mark.slow)]
)
def test_anchor_counts(w, depth, expected):
    assert len(anchor_regions(w, depth)) == expected


def test_anchor_modules_are_built_one_after_another():
    module = anchor_module(16, 3)
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4 and len({id(m) for m in linears}) == 4
    assert not torch.equal(linears[1].weight, linears[2].weight)
    # the literal list repetition shares one Linear(w, w) and is a different net
    torch.manual_seed(0)
    mods = [torch.nn.Linear(2, 16), torch.nn.ReLU()] + [torch.nn.Linear(16, 16), torch.nn.ReLU()] * 2
    mods += [torch.nn.Linear(16, 1)]
    shared = oracle_partition_2d(from_module(torch.nn.Sequential(*mods)), *plane())
    assert len(shared) == 222
