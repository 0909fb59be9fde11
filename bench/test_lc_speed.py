"""Local complexity at 1,000 digits: exact (2-D) against the vertex estimator, relugeo's and the torch port.

The vertex estimator forwards the 2P = 50 vertices ``x +- r v_p`` of every
point's neighbourhood. relugeo's ``method="vertex"`` and the port of the
official code use the same frame, so their counts must agree exactly; and
on the same 2-D frame the exact counts bound the port's from above and equal
them on the first layer.
"""

import numpy as np
import pytest
from baselines import VertexLC
from nets import digits_module, digits_points

import relugeo as rg

SUITE = "lc"
RADII = [0.25, 1.0]
P = 25


@pytest.fixture(scope="module")
def digits():
    module = digits_module()
    return module, rg.from_torch(module), digits_points()


@pytest.fixture(scope="module")
def port(digits):
    return VertexLC.wrap(digits[0])


@pytest.mark.parametrize("r", RADII)
def test_exact(bench, digits, r):
    _, net, X = digits
    bench.label(SUITE, f"r={r}", "exact dim 2")
    lc = bench(rg.local_complexity, net, X, r, dim=2, method="exact", rounds=3)
    bench.counts(points=len(X), mean_lc=float(lc.lc.mean()), mean_regions=float(lc.regions.mean()))


@pytest.mark.parametrize("r", RADII)
def test_vertex(bench, digits, r):
    _, net, X = digits
    bench.label(SUITE, f"r={r}", f"vertex P={P}")
    lc = bench(rg.local_complexity, net, X, r, method="vertex", n_directions=P, rounds=5)
    bench.counts(points=len(X), mean_lc=float(lc.lc.mean()))


@pytest.mark.parametrize("r", RADII)
def test_vertex_torch_port(bench, digits, port, r):
    _, net, X = digits
    frame = rg.regions.frame(net.input_dim, P, 0)
    bench.label(SUITE, f"r={r}", f"vertex P={P} (torch port)")
    counts = bench(port, X, r, frame, rounds=5)
    # the official code hooks every Linear, so its last column is the logits
    ours = rg.local_complexity(net, X, r, method="vertex", n_directions=P, layers="all")
    np.testing.assert_array_equal(counts, ours.neurons)
    bench.counts(points=len(X), mean_lc=float(counts[:, :-1].sum(axis=1).mean()))


@pytest.mark.parametrize("r", RADII)
def test_exact_bounds_the_port_on_the_same_plane(digits, port, r):
    _, net, X = digits
    X = X[:200]
    exact = rg.local_complexity(net, X, r, dim=2, layers="all")
    counts = port(X, r, rg.regions.frame(net.input_dim, 2, 0), batch_size=len(X))
    assert (exact.neurons >= counts).all()
    np.testing.assert_array_equal(exact.neurons[:, 0], counts[:, 0])
