"""Local complexity: exact E1/E2/E3 against the vertex estimator, the partition engine and brute force."""

import numpy as np
import pytest
import torch
from torch import nn

import relugeo as rg
from relugeo.regions.complexity import cross_polytope, frame


def mlp(sizes, seed, negative_slope=0.0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if negative_slope == 0 else nn.LeakyReLU(negative_slope))
    return rg.from_torch(nn.Sequential(*layers).double())


CASES = [
    (seed, sizes, slope)
    for seed, (sizes, slope) in enumerate(
        [
            ([5, 16, 16, 3], 0.0),
            ([8, 24, 24, 24, 1], 0.0),
            ([3, 12, 12, 12, 12, 2], 0.1),
            ([20, 32, 16, 4], 0.0),
            ([2, 10, 10, 1], 0.01),
            ([6, 40, 40, 5], 0.0),
        ]
    )
]


@pytest.mark.parametrize("seed,sizes,slope", CASES)
@pytest.mark.parametrize("layers", ["hidden", "all"])
def test_exact_bounds_vertex_and_equals_it_on_layer_one(seed, sizes, slope, layers):
    net = mlp(sizes, seed, slope)
    X = np.random.default_rng(seed).normal(size=(40, sizes[0]))
    for dim in (1, 2):
        ex = rg.local_complexity(net, X, 0.7, dim=dim, seed=seed, layers=layers)
        vx = rg.local_complexity(net, X, 0.7, method="vertex", n_directions=dim, seed=seed, layers=layers)
        assert ex.neurons.shape == vx.neurons.shape == (40, len(net.hidden) + (layers == "all"))
        assert (ex.neurons >= vx.neurons).all()
        np.testing.assert_array_equal(ex.neurons[:, 0], vx.neurons[:, 0])
        # deeper layers are where the vertex estimator can miss crossings
        assert ex.neurons.sum() > 0


@pytest.mark.parametrize("seed,sizes,slope", CASES[:4])
def test_exact_equals_partition_of_the_same_neighbourhood(seed, sizes, slope):
    net = mlp(sizes, seed, slope)
    rng = np.random.default_rng(100 + seed)
    X = rng.normal(size=(12, sizes[0]))
    r = 0.9
    for dim in (1, 2):
        lc = rg.local_complexity(net, X, r, dim=dim, seed=seed, batch_size=5)
        V = frame(sizes[0], dim, seed)
        np.testing.assert_array_equal(V, lc.frame)
        for i, x in enumerate(X):
            part = rg.partition(net, rg.Slice(x, V, cross_polytope(dim, r)))
            part.verify()
            assert lc.regions[i] == part.n_regions
            per_layer = np.bincount(part.neurons[:, 0], minlength=len(net.hidden)) if len(part.neurons) else 0
            np.testing.assert_array_equal(lc.neurons[i], per_layer)
            assert lc.boundary_density[i] == pytest.approx(part.boundary_length / part.domain_area, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_one_dimensional_lc_matches_brute_force_sign_changes(seed):
    net = mlp([4, 8, 8, 1], seed)
    X = np.random.default_rng(seed).normal(size=(6, 4))
    r = 1.5
    lc = rg.local_complexity(net, X, r, dim=1, seed=seed)
    v = lc.frame[:, 0]
    t = np.linspace(-r, r, 200_001)
    for i, x in enumerate(X):
        pats = net.patterns(x + t[:, None] * v)
        changes = int((pats[1:] != pats[:-1]).any(axis=1).sum())
        assert lc.regions[i] >= changes + 1
        assert lc.regions[i] == changes + 1
        assert lc.boundary_density[i] == pytest.approx(changes / (2 * r))


def test_regions_never_below_dense_sampling():
    net = mlp([10, 24, 24, 24, 1], 3)
    X = np.random.default_rng(3).normal(size=(5, 10))
    r = 1.2
    lc = rg.local_complexity(net, X, r, dim=2)
    u = np.linspace(-r, r, 301)
    uu = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)
    uu = uu[np.abs(uu).sum(axis=1) <= r]
    for i, x in enumerate(X):
        seen = np.unique(net.patterns(x + uu @ lc.frame.T), axis=0)
        assert lc.regions[i] >= len(seen)


def test_frame_is_nested_orthonormal_and_leaves_global_rng_alone():
    net = mlp([30, 8, 1], 0)
    np.random.seed(123)
    torch.manual_seed(123)
    before_np = np.random.get_state()[1].copy()
    before_torch = torch.get_rng_state().clone()
    F5 = frame(30, 5, seed=7)
    F2 = frame(30, 2, seed=7)
    np.testing.assert_allclose(F5[:, :2], F2)
    np.testing.assert_allclose(F5.T @ F5, np.eye(5), atol=1e-12)
    assert not np.allclose(frame(30, 2, seed=8), F2)
    rg.local_complexity(net, np.zeros((2, 30)), 0.5, seed=7)
    rg.local_complexity(net, np.zeros((2, 30)), 0.5, method="vertex", seed=7)
    np.testing.assert_array_equal(np.random.get_state()[1], before_np)
    assert torch.equal(torch.get_rng_state(), before_torch)


def test_results_do_not_depend_on_batch_size():
    net = mlp([6, 20, 20, 2], 5)
    X = np.random.default_rng(5).normal(size=(23, 6))
    a = rg.local_complexity(net, X, 0.8, batch_size=1)
    b = rg.local_complexity(net, X, 0.8, batch_size=1000)
    np.testing.assert_array_equal(a.neurons, b.neurons)
    np.testing.assert_array_equal(a.regions, b.regions)
    np.testing.assert_allclose(a.boundary_density, b.boundary_density, rtol=1e-12)


def test_frame_table_and_group_summary():
    net = mlp([4, 8, 8, 3], 1)
    X = np.random.default_rng(1).normal(size=(6, 4))
    groups = np.array(["train"] * 4 + ["test"] * 2)
    lc = rg.local_complexity(net, X, 0.5, groups=groups)
    df = lc.to_frame()
    assert list(df.columns[:2]) == ["point", "group"]
    assert {"lc", "layer_1", "layer_2", "regions", "boundary_density"} <= set(df.columns)
    np.testing.assert_array_equal(df["lc"], lc.neurons.sum(axis=1))
    s = lc.summary()
    assert list(s.index) == ["train", "test"]
    assert s.loc["train", "n_points"] == 4
    assert s.loc["test", "lc"] == pytest.approx(lc.lc[4:].mean())
    vx = rg.local_complexity(net, X, 0.5, method="vertex", n_directions=3)
    assert "regions" not in vx.to_frame().columns


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(X=np.zeros((3, 5))), r"shape \(N, 4\)"),
        (dict(X=np.array([[0, 0, np.nan, 0]])), "NaN"),
        (dict(X=np.zeros((0, 4))), "empty"),
        (dict(radius=0.0), "radius"),
        (dict(radius=-1.0), "radius"),
        (dict(radius=float("nan")), "radius"),
        (dict(method="vertex", n_directions=5), "n_directions"),
        (dict(method="sampled"), "method must be one of"),
        (dict(dim=9), "dim must be an integer from 1 to 8"),
        (dict(layers="logits"), "layers must be"),
        (dict(batch_size=0), "batch_size"),
        (dict(groups=["a"]), "groups"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, match):
    net = mlp([4, 8, 1], 0)
    args = dict(X=np.zeros((3, 4)), radius=0.5)
    args.update(kwargs)
    X = args.pop("X")
    radius = args.pop("radius")
    with pytest.raises(ValueError, match=match):
        rg.local_complexity(net, X, radius, **args)


@pytest.mark.parametrize("scale", [1e4, 1.0, 1e-4])
@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_fused_last_layers_equal_the_leaf_walk_at_any_scale(scale, slope):
    # layers="hidden" fuses the last two hidden layers, skipping last-layer neurons by a float32 bound;
    # layers="all" splits every cell down to the leaves: the counts must agree whatever the magnitudes
    rng = np.random.default_rng(3)
    sizes = [5, 12, 12, 12, 2]
    layers = [rg.AffineLayer(rng.normal(size=(sizes[i + 1], sizes[i])) * (scale if i == 0 else 1.0),
                             rng.normal(size=sizes[i + 1]) * scale * 0.3, slope if i < 3 else None)
              for i in range(4)]
    net = rg.PWANet(layers)
    X = rng.normal(size=(30, 5))
    fused = rg.local_complexity(net, X, 0.5)
    leaves = rg.local_complexity(net, X, 0.5, layers="all")
    np.testing.assert_array_equal(fused.neurons, leaves.neurons[:, :3])
    np.testing.assert_array_equal(fused.regions, leaves.regions)
    assert fused.regions.sum() > 3 * len(X) and fused.neurons[:, 2].sum() > len(X)
