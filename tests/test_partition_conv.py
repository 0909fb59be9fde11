"""Convolutional, max-pool and residual nets: exact partitions equal the oracle.

Each torch module is ingested with ``rg.from_torch``; the oracle
(tests/oracle.py) reads the dense (W, b, act) form of the resulting net and
shares no code with the engine. Every partition must also pass ``verify()``
(area sum, centroid certificates) and contain every pattern a dense grid of
the slice finds.
"""

import numpy as np
import pytest
from common import bn_resnet, maxpool_cnn, preact_resnet, small_cnn
from oracle import sample_patterns
from test_partition import assert_matches_oracle, n_hidden, run_oracle, unpack
from test_partition_mixed import oracle_layers

import relugeo as rg

BUILDERS = {"cnn": small_cnn, "maxpool": maxpool_cnn, "preact_resnet": preact_resnet, "bn_resnet": bn_resnet}


def _module(name, seed):
    return BUILDERS[name](seed)[0]


def _slice(D, k, seed, half):
    rng = np.random.default_rng(seed)
    origin = rng.normal(size=D)
    basis = np.linalg.qr(rng.normal(size=(D, k)))[0]
    if k == 1:
        return origin, basis, np.array([[-half], [half]])
    return origin, basis, half * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("k", [1, 2])
def test_conv_nets_equal_the_dense_oracle(name, k):
    net = rg.from_torch(_module(name, 0))
    layers = oracle_layers(net)
    origin, basis, vertices = _slice(net.input_dim, k, 1, 1.5)
    part = rg.partition(net, rg.Slice(origin, basis, vertices))
    assert part.n_regions > 5
    assert_matches_oracle(part, layers, run_oracle(layers, origin, basis, vertices), vertices)
    report = part.verify()
    assert report["ok"] and report["certificate_failures"] == 0
    if k == 2:
        seen = sample_patterns(layers, origin, basis, vertices, 150)
        assert seen <= set(unpack(part.patterns, n_hidden(layers)))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_conv_net_logits_match_the_torch_module_on_every_region(name):
    import torch

    module = _module(name, 1)
    net = rg.from_torch(module)
    origin, basis, vertices = _slice(net.input_dim, 2, 2, 1.0)
    part = rg.partition(net, rg.Slice(origin, basis, vertices))
    x = part.slice.to_input(part.centroids)
    shape = next(p for p in module.parameters() if p.dim() == 4).shape[1]
    with torch.no_grad():
        side = int(round(np.sqrt(net.input_dim / shape)))
        want = module.double()(torch.from_numpy(x).reshape(len(x), shape, side, side)).numpy()
    k = part.dim
    got = np.einsum("rk,rkc->rc", part.centroids, part.logit_maps[:, :k]) + part.logit_maps[:, k]
    np.testing.assert_allclose(got, want.reshape(len(x), -1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["maxpool", "bn_resnet"])
def test_local_complexity_of_conv_nets_counts_each_neighbourhood(name):
    from relugeo.regions.complexity import cross_polytope

    net = rg.from_torch(_module(name, 0))
    X = np.random.default_rng(0).normal(size=(4, net.input_dim))
    lc = rg.local_complexity(net, X, 0.8, dim=2)
    for i, x in enumerate(X):
        part = rg.partition(net, rg.Slice(x, lc.frame[:, :2], cross_polytope(2, 0.8)))
        assert lc.regions[i] == part.n_regions


def test_track_follows_exported_resnet_checkpoints(tmp_path):
    import torch

    modules = {}
    for step, seed in ((0, 0), (10, 1)):
        module, shape = bn_resnet(seed)
        module.eval()
        modules[step] = module
        program = torch.export.export(module, (torch.randn(2, *shape),))
        torch.export.save(program, tmp_path / f"step_{step}.pt2")
    X = np.random.default_rng(0).normal(size=(10, int(np.prod(shape))))
    res = rg.track(tmp_path, X, slices=1, points=5, radius=0.2, methods=("exact",))
    assert sorted(res.points.step.unique()) == [0, 10]
    for step, module in modules.items():
        rows = res.points[res.points.step == step]
        lc = rg.local_complexity(rg.from_torch(module), X[rows.point.to_numpy()], 0.2, dim=2, seed=0)
        np.testing.assert_array_equal(rows.regions_exact.to_numpy(), lc.regions)
    assert (res.table.measure == "n_regions").any()
