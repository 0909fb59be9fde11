"""Exact local complexity in P = 3, 4 dimensional neighbourhoods: against the vertex estimator on the
same frame, against partition() of the same cross-polytope, and the logits' count."""

import numpy as np
import pytest
from common import random_net

import relugeo as rg


@pytest.fixture(scope="module")
def digits_case():
    datasets = pytest.importorskip("sklearn.datasets")
    X = datasets.load_digits().data[:12] / 16.0
    layers = random_net(7, (12, 12, 12), input_dim=64, n_out=10)
    return rg.PWANet([rg.AffineLayer(W, b, act) for W, b, act in layers]), X


@pytest.mark.parametrize("P", [3, 4])
def test_exact_lc_kd_against_vertex_and_partition(digits_case, P):
    net, X = digits_case
    r = 1.0
    exact = rg.local_complexity(net, X, r, dim=P)
    vertex = rg.local_complexity(net, X, r, method="vertex", n_directions=P)
    assert exact.neurons.shape == vertex.neurons.shape == (len(X), 3)
    assert (exact.neurons >= vertex.neurons).all()
    assert (exact.neurons[:, 0] == vertex.neurons[:, 0]).all()
    assert np.isnan(exact.boundary_density).all()
    assert exact.regions.max() > 5
    for i in range(0, len(X), 3):
        part = rg.partition(net, rg.Slice.cross_polytope(X[i], exact.frame, r))
        assert part.n_regions == exact.regions[i]
        crossed = np.bincount(part.neurons[:, 0], minlength=3)
        assert crossed.tolist() == exact.neurons[i].tolist()
    with_logits = rg.local_complexity(net, X, r, dim=P, layers="all")
    assert (with_logits.regions == exact.regions).all()
    assert (with_logits.neurons[:, :3] == exact.neurons).all()
    assert (with_logits.neurons[:, 3] >= rg.local_complexity(
        net, X, r, method="vertex", n_directions=P, layers="all").neurons[:, 3]).all()


def test_exact_lc_dim_out_of_range(digits_case):
    net, X = digits_case
    with pytest.raises(ValueError, match="dim must be an integer from 1 to 8"):
        rg.local_complexity(net, X, 1.0, dim=9)
