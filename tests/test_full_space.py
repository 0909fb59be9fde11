"""Slice.full: all of R^D partitioned exactly, unbounded regions included."""

from math import comb

import numpy as np
import pytest
from common import random_net
from oracle import hidden_patterns

import relugeo as rg


def to_pwanet(layers):
    return rg.PWANet([rg.AffineLayer(W, b, act) for W, b, act in layers])


def pattern_set(patterns, n_bits):
    bits = np.unpackbits(np.ascontiguousarray(patterns).view(np.uint8), axis=1, bitorder="little")[:, :n_bits]
    return {tuple(int(v) for v in row) for row in bits}


@pytest.mark.parametrize("d, n", [(1, 5), (2, 9), (3, 8), (4, 7), (5, 7)])
def test_one_layer_gives_zaslavskys_count(d, n):
    """n hyperplanes in general position in R^d: sum_{i <= d} C(n, i) regions, C(n - 1, d) of them bounded."""
    net = to_pwanet(random_net(d, (n,), input_dim=d))
    part = rg.partition(net, rg.Slice.full(d))
    assert part.n_regions == sum(comb(n, i) for i in range(d + 1))
    assert part.n_bounded == comb(n - 1, d)
    rep = part.verify()
    assert rep["certificate_failures"] == 0
    assert np.isinf(part.volumes[~part.bounded]).all() and (part.volumes[part.bounded] > 0).all()


@pytest.mark.parametrize("d, slope", [(2, 0.0), (3, 0.1)])
def test_deep_full_space_holds_every_box(d, slope):
    layers = random_net(d + 10, (8, 8, 8), input_dim=d, negative_slope=slope)
    net = to_pwanet(layers)
    full = rg.partition(net, rg.Slice.full(d))
    full.verify()
    ours = pattern_set(full.patterns, net.n_hidden)
    for half in (0.5, 3.0, 50.0):
        box = rg.partition(net, rg.Slice.cube(np.zeros(d), np.eye(d), half))
        assert pattern_set(box.patterns, net.n_hidden) <= ours
        assert full.n_regions >= box.n_regions
    # far-out sampling finds nothing new
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, d)) * np.exp(rng.uniform(-2, 8, size=(3000, 1)))
    assert {tuple(int(v) for v in r) for r in hidden_patterns(layers, x)} <= ours
    # the bounded regions lie in some box: a large enough one holds all of them
    assert full.bounded.sum() < full.n_regions


def test_full_space_bad_input():
    with pytest.raises(rg.InvalidSliceError, match="between 1 and 8"):
        rg.Slice.full(9)
    net = to_pwanet(random_net(0, (4,), input_dim=3))
    with pytest.raises(rg.InvalidSliceError, match="R\\^4"):
        rg.partition(net, rg.Slice.full(4))
    with pytest.raises(rg.RegionLimitError, match="max_regions = 5"):
        rg.partition(net, rg.Slice.full(3), max_regions=5)
