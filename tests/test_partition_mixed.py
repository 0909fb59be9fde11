"""Nets beyond plain MLPs held to the oracle: per-neuron slopes, pass-through
neurons (how residual connections are carried) and max layers (max-pooling).

The oracle (tests/oracle.py) reads each layer from the dense (W, b, act) form
of the same net and shares no code with the engine.
"""

import numpy as np
import pytest
from common import random_slice
from oracle import hidden_patterns, oracle_partition_2d, sample_patterns
from test_partition import assert_matches_oracle, n_hidden, run_oracle, to_pwanet, unpack

import relugeo as rg
from relugeo.regions.complexity import cross_polytope


def oracle_layers(net: rg.PWANet) -> list:
    """The dense (W, b, act) form of a PWANet, as the oracle reads it."""
    return [(L.weight, L.bias, ("max", L.windows, L.keep) if L.is_max else L.negative_slope) for L in net.layers]


def mixed_net(seed, input_dim=2, width=8, pool=3, n_out=3):
    """A random net: per-neuron slopes with pass-through neurons, a max layer with
    padded windows and kept neurons, a leaky layer, then the logits."""
    rng = np.random.default_rng(seed)
    W1 = rng.normal(size=(width, input_dim))
    b1 = rng.normal(size=width) * 0.5
    slopes = rng.choice([0.0, 0.1, 1.0], size=width, p=[0.5, 0.2, 0.3])
    n_win = width // pool
    windows = rng.permutation(width)[: n_win * pool].reshape(n_win, pool)
    windows[0, -1] = -1  # padding
    keep = rng.choice(width, size=2, replace=False)
    W2 = np.eye(width) if seed % 2 == 0 else rng.normal(size=(width, width)) / np.sqrt(width)
    b2 = np.zeros(width) if seed % 2 == 0 else rng.normal(size=width) * 0.3
    n2 = n_win + len(keep)
    W3 = rng.normal(size=(6, n2)) / np.sqrt(n2)
    b3 = rng.normal(size=6) * 0.5
    W4 = rng.normal(size=(n_out, 6))
    return [(W1, b1, slopes), (W2, b2, ("max", windows, keep)), (W3, b3, 0.2), (W4, np.zeros(n_out), None)]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("k", [1, 2])
def test_mixed_nets_equal_the_oracle(seed, k):
    layers = mixed_net(seed, input_dim=5 if seed % 3 == 0 else 2)
    origin, basis, vertices = random_slice(seed, layers[0][0].shape[1], k)
    part = rg.partition(to_pwanet(layers), rg.Slice(origin, basis, vertices))
    assert_matches_oracle(part, layers, run_oracle(layers, origin, basis, vertices), vertices)
    assert part.verify()["ok"]
    if k == 2:
        seen = sample_patterns(layers, origin, basis, vertices, 120)
        assert seen <= set(unpack(part.patterns, n_hidden(layers)))


def test_dead_candidates_tie_to_the_lowest_slot():
    # after a ReLU, the three candidates are all 0 on the quadrant x < 0, y < 0: one region there,
    # won by slot 0, whatever the rounding
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    layers = [(W1, np.zeros(3), 0.0), (np.eye(3), np.zeros(3), ("max", np.array([[2, 1, 0]]), np.zeros(0, int))),
              (np.ones((1, 1)), np.zeros(1), None)]
    origin, basis = np.zeros(2), np.eye(2)
    vertices = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    part = rg.partition(to_pwanet(layers), rg.Slice(origin, basis, vertices))
    assert_matches_oracle(part, layers, oracle_partition_2d(layers, origin, basis, vertices), vertices)
    assert part.verify()["ok"]
    bits = unpack(part.patterns, 6)
    dead = [b for b in bits if b[:3] == (0, 0, 0)]
    assert dead == [(0, 0, 0, 1, 0, 0)]


def test_pass_through_neurons_never_split_and_carry_no_bit():
    rng = np.random.default_rng(3)
    W1 = rng.normal(size=(6, 2))
    slopes = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    layers = [(W1, rng.normal(size=6), slopes), (rng.normal(size=(1, 6)), np.zeros(1), None)]
    net = to_pwanet(layers)
    sl = rg.Slice.square(np.zeros(2), np.eye(2), 2.0)
    part = rg.partition(net, sl)
    only_relu = rg.partition(to_pwanet([(W1[[0, 3]], layers[0][1][[0, 3]], 0.0),
                                        (np.ones((1, 2)), np.zeros(1), None)]), sl)
    assert part.n_regions == only_relu.n_regions
    assert set(np.flatnonzero(slopes == 1.0)).isdisjoint(np.flatnonzero(
        np.unpackbits(part.patterns.view(np.uint8), axis=1, bitorder="little")[:, :6].any(axis=0)))
    assert set(part.edge_neuron[part.edge_layer == 0].tolist()) <= {0, 3}


def test_forward_patterns_match_the_oracle():
    layers = mixed_net(4, input_dim=3)
    x = np.random.default_rng(0).normal(size=(300, 3))
    net = to_pwanet(layers)
    assert unpack(net.patterns(x), n_hidden(layers)) == [tuple(map(int, r)) for r in hidden_patterns(layers, x)]
    h = x
    for W, b, act in layers[:-1]:
        z = h @ W.T + b
        if isinstance(act, tuple):
            _, windows, keep = act
            vals = np.where(windows >= 0, z[:, np.maximum(windows, 0)], -np.inf)
            h = np.concatenate([vals.max(axis=2), z[:, keep]], axis=1)
        else:
            h = np.where(z > 0, z, act * z)
    np.testing.assert_allclose(net.forward(x), h @ layers[-1][0].T + layers[-1][1], rtol=1e-12)


@pytest.mark.parametrize("k", [1, 2])
def test_local_complexity_of_mixed_nets_counts_the_regions(k):
    layers = mixed_net(7, input_dim=4)
    net = to_pwanet(layers)
    X = np.random.default_rng(1).normal(size=(6, 4))
    lc = rg.local_complexity(net, X, 0.7, dim=k)
    for i, x in enumerate(X):
        part = rg.partition(net, rg.Slice(x, lc.frame[:, :k], cross_polytope(k, 0.7)))
        assert lc.regions[i] == part.n_regions


@pytest.mark.parametrize("k", [1, 2])
def test_linear_regions_merge_across_tie_edges(k):
    # pass-through neurons feed a max whose result the logits ignore: one linear region, many activation regions
    rng = np.random.default_rng(5)
    W1 = rng.normal(size=(6, 2))
    layers = [(W1, rng.normal(size=6), 1.0), (np.eye(6), np.zeros(6), ("max", np.arange(6).reshape(2, 3), np.zeros(0, int))),
              (np.zeros((2, 2)), np.array([1.0, -1.0]), None)]
    vertices = np.array([[-2.0], [2.0]]) if k == 1 else 2.0 * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    part = rg.partition(to_pwanet(layers), rg.Slice(np.zeros(2), np.eye(2)[:, :k], vertices))
    assert part.n_regions > 2
    assert part.n_linear_regions == 1
    # with logits that read the maxima, the maps differ across every tie and nothing merges
    layers[-1] = (np.eye(2), np.zeros(2), None)
    part = rg.partition(to_pwanet(layers), rg.Slice(np.zeros(2), np.eye(2)[:, :k], vertices))
    assert part.n_linear_regions == part.n_regions


def test_distance_to_region_boundary_counts_ties_and_skips_pass_through():
    import shapely

    from relugeo.regions.region_stats import distance_to_region_boundary

    layers = mixed_net(2)
    net = to_pwanet(layers)
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 50.0))
    X = np.random.default_rng(2).uniform(-1, 1, size=(40, 2))
    d = distance_to_region_boundary(net, X)
    checked = 0
    for x, dx in zip(X, d):
        own = np.flatnonzero((part.patterns == net.patterns(x)).all(axis=1))[0]
        labels = part.edge_layer[part.ring_offsets[own]:part.ring_offsets[own + 1]]
        if (labels < 0).any():
            continue  # the region reaches the domain's edge
        ring = part.polygons[own]
        edges = shapely.linestrings(np.stack([ring, np.roll(ring, -1, axis=0)], axis=1))
        assert shapely.distance(shapely.Point(*x), edges).min() == pytest.approx(dx, rel=1e-8)
        checked += 1
    assert checked >= 10


def as_linear_maps(net: rg.PWANet, which) -> rg.PWANet:
    """The same net with the weights of layers ``which`` given as LinearMaps (applied, never stored)."""
    from relugeo.nets.linear_maps import LinearMap

    def wrap(i, L):
        if i not in which:
            return L
        W = L.weight
        return rg.AffineLayer(LinearMap(lambda x, W=W: x @ W.T, W.shape, f"layer {i}"), L.bias, L.negative_slope,
                              L.windows, L.keep)

    return rg.PWANet([wrap(i, L) for i, L in enumerate(net.layers)])


@pytest.mark.parametrize("k", [1, 2])
def test_linear_map_layers_give_the_dense_partition(k):
    from common import random_net

    for layers in (mixed_net(8, input_dim=3), random_net(4, [7, 6, 5], 3, 0.1, n_out=2)):
        net = to_pwanet(layers)
        origin, basis, vertices = random_slice(3, 3, k)
        sl = rg.Slice(origin, basis, vertices)
        want = rg.partition(net, sl)
        got = rg.partition(as_linear_maps(net, range(len(layers))), sl)
        assert got.n_regions == want.n_regions
        order_w = np.lexsort(want.patterns.T)
        order_g = np.lexsort(got.patterns.T)
        np.testing.assert_array_equal(got.patterns[order_g], want.patterns[order_w])
        np.testing.assert_allclose(got.areas[order_g], want.areas[order_w], rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(got.logit_maps[order_g], want.logit_maps[order_w], rtol=1e-9, atol=1e-12)
        got.verify()
        X = np.random.default_rng(0).normal(size=(5, 3))
        a = rg.local_complexity(net, X, 0.5, dim=k)
        b = rg.local_complexity(as_linear_maps(net, range(len(layers))), X, 0.5, dim=k)
        np.testing.assert_array_equal(a.regions, b.regions)
        np.testing.assert_array_equal(a.neurons, b.neurons)


def test_torch_map_is_the_convolution():
    import torch

    from relugeo.nets.linear_maps import torch_map

    conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False).double()
    m = torch_map(conv, (2, 5, 5), 3 * 3 * 3, "conv", chunk=7)
    x = np.random.default_rng(0).normal(size=(20, 50))
    with torch.no_grad():
        want = conv(torch.from_numpy(x).reshape(20, 2, 5, 5)).reshape(20, -1).numpy()
    np.testing.assert_allclose(m.apply(x), want, rtol=1e-12)
    np.testing.assert_allclose(x @ m.dense().T, want, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 50\)"):
        m.apply(x[:, :10])
    bad = torch_map(lambda t: conv(t) * np.nan, (2, 5, 5), 27, "nan conv")
    with pytest.raises(rg.InvalidNetworkError, match="NaN"):
        rg.PWANet([rg.AffineLayer(bad, np.zeros(27)), rg.AffineLayer(np.ones((1, 27)), np.zeros(1), None)])
