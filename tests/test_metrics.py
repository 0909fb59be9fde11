"""Manifold metrics: features, inversion and stragglers, compression and NTK kernel PCA, neural collapse.

Every metric is checked on a case whose answer is known in closed form, and
against an independent implementation of the published convention.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import svds
from scipy.stats import hypergeom
from torch import nn
from typer.testing import CliRunner

import relugeo as rg
from relugeo import metrics as M
from relugeo.cli import app
from relugeo.metrics import MetricInputError
from relugeo.nets import build_module


def simplex_etf(C: int, d: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """C unit-norm vectors in R^d with pairwise cosine -1/(C-1), randomly rotated, times ``scale``."""
    E = np.eye(C) - 1.0 / C
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return scale * E @ Q[:C]


def seeded_mlp(spec: str, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return build_module(spec).double()


# ---------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------
def test_features_of_a_pwanet_equal_those_of_its_torch_module():
    model = seeded_mlp("mlp:6-9-7-3:leaky_relu(0.1)")
    net = rg.from_torch(model)
    X = np.random.default_rng(0).normal(size=(50, 6))
    a = M.layer_features(net, X, batch_size=7)
    b = M.layer_features(model, X)
    assert list(a) == list(b) == [0, 1]
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-12)
    np.testing.assert_allclose(M.penultimate_features(net, X), a[1], atol=1e-12)
    np.testing.assert_allclose(M.penultimate_features(model, X), a[1], atol=1e-12)
    np.testing.assert_allclose(M.model_outputs(model, X), net.forward(X), atol=1e-12)
    W, b_ = M.classifier_weights(model)
    np.testing.assert_array_equal(W, net.layers[-1].weight)
    np.testing.assert_array_equal(b_, net.layers[-1].bias)
    assert list(M.layer_features(net, X, -1)) == [1]


def test_tanh_features_are_float64_and_leave_the_module_untouched():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))  # float32
    model.train()
    X = np.random.default_rng(1).normal(size=(30, 4))
    H = M.layer_features(model, X, [0, "0"], batch_size=4)
    lin = model[0]
    pre = X @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()
    np.testing.assert_allclose(H[0], np.tanh(pre), atol=1e-12)
    np.testing.assert_allclose(H["0"], pre, atol=1e-12)  # a named submodule: the Linear's output
    assert H[0].dtype == np.float64
    assert model[0].weight.dtype == torch.float32 and model.training
    assert all(len(m._forward_hooks) == 0 and len(m._forward_pre_hooks) == 0 for m in model.modules())
    assert M.hidden_layer_names(model) == ["1"]


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.act = nn.Linear(3, 3), nn.ReLU()

    def forward(self, x):
        return self.act(self.lin(self.act(self.lin(x))))


def test_feature_layer_errors_name_the_problem():
    with pytest.raises(MetricInputError, match="more than once per forward"):
        M.layer_features(Twice(), np.zeros((4, 3)))
    model = seeded_mlp("mlp:3-4-2:relu")
    with pytest.raises(MetricInputError, match="out of range"):
        M.layer_features(model, np.zeros((2, 3)), 5)
    with pytest.raises(MetricInputError, match="not a submodule"):
        M.layer_features(model, np.zeros((2, 3)), "head")
    with pytest.raises(MetricInputError, match="no activation modules"):
        M.layer_features(nn.Sequential(nn.Linear(3, 2)), np.zeros((2, 3)))
    with pytest.raises(MetricInputError, match=r"shape \(N, 3\)"):
        M.layer_features(rg.from_torch(model), np.zeros((2, 4)))
    with pytest.raises(MetricInputError, match="batch_size"):
        M.layer_features(model, np.zeros((2, 3)), batch_size=0)


# ---------------------------------------------------------------------------
# neural collapse
# ---------------------------------------------------------------------------
def collapsed(C=5, d=12, n=8, scale=3.0, shift=True):
    mu = simplex_etf(C, d, scale)
    offset = np.linspace(-1, 1, d) if shift else 0.0
    y = np.repeat(np.arange(C), n)
    return mu[y] + offset, y, mu


def test_exactly_collapsed_simplex_features_give_zero_for_every_nc_metric():
    H, y, mu = collapsed()
    res = M.neural_collapse(H, y, W=2.5 * mu, b=np.zeros(5), H_test=H, y_test=y)
    for name in ("nc1", "nc1_pinv", "trace_ratio", "wcv", "rnc1", "nc3", "nc4", "wcv_test"):
        assert abs(getattr(res, name)) < 1e-12, name
    for name in ("nc2_equinorm", "nc2_equiangularity", "nc2_max_angle"):
        assert abs(getattr(res, name)) < 1e-12, name
    assert res.bcv == pytest.approx(9.0)  # every centred mean has norm 3


def test_isotropic_noise_matches_the_expected_ratios():
    rng = np.random.default_rng(3)
    C, n, d = 4, 1000, 200
    y = np.repeat(np.arange(C), n)
    H = rng.normal(size=(C * n, d))
    N = C * n
    ratio, wcv, bcv = M.trace_ratio(H, y)
    assert wcv == pytest.approx(d * (1 - C / N), rel=0.02)
    assert bcv == pytest.approx(d * (C - 1) / N, rel=0.2)
    assert ratio == pytest.approx((N - C) / (C - 1), rel=0.2)
    # Sigma_W ~ I, Sigma_B has C-1 eigenvalues ~ d/(nC): NC1 ~ (C-1) n / d
    assert M.nc1(H, y) == pytest.approx((C - 1) * n / d, rel=0.25)
    assert M.rnc1(H, y) == pytest.approx(wcv / np.linalg.norm(H, axis=1).mean() ** 2)


def papyan_oracle(H, y, C, how):
    """Papyan et al.'s reference computation with explicit (n, n) matrices."""
    mus = np.stack([H[y == c].mean(0) for c in range(C)])
    muG = mus.mean(0)
    Sw = sum(np.outer(h - mus[c], h - mus[c]) for h, c in zip(H, y)) / len(H)
    Mc = (mus - muG).T
    Sb = Mc @ Mc.T / C
    if how == "svd":
        eigvec, eigval, _ = svds(Sb, k=C - 1)
        inv = eigvec @ np.diag(eigval ** -1) @ eigvec.T
    else:
        inv = np.linalg.pinv(Sb, rcond=1e-6)
    return np.trace(Sw @ inv) / C


@pytest.mark.parametrize("how", ["svd", "pinv"])
def test_nc1_agrees_with_papyan_reference_code(how):
    rng = np.random.default_rng(4)
    C, d = 5, 9
    y = rng.integers(0, C, 300)
    H = rng.normal(size=(C, d))[y] * 2 + rng.normal(size=(300, d)) @ rng.normal(size=(d, d)) * 0.5
    ours = M.nc1(H, y, method=how)
    assert ours == pytest.approx(papyan_oracle(H, y, C, how), rel=1e-8)
    assert M.nc1(H, y, method=how, divide_by_classes=False) == pytest.approx(C * ours, rel=1e-12)
    # invariant to a common shift and rotation, homogeneous of degree 0 in scale
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    assert M.nc1(3 * H @ Q + 1.5, y, method=how) == pytest.approx(ours, rel=1e-8)


def test_nc1_variants_differ_only_on_a_rank_deficient_between_class_covariance():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(3), 50)
    mus = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])  # collinear means: Sigma_B has rank 1 < C-1
    noise = 0.1 * rng.normal(size=(150, 3))
    noise -= np.stack([noise[y == c].mean(0) for c in range(3)])[y]  # keep the means exactly collinear
    H = mus[y] + noise
    assert np.isfinite(M.nc1(H, y, method="pinv"))
    assert M.nc1(H, y, method="svd") > 1e6 * M.nc1(H, y, method="pinv")
    with pytest.raises(MetricInputError, match="use method='pinv'"):
        M.nc1(rng.normal(size=(40, 2)), np.arange(40) % 4)


def test_trace_ratio_matches_sakamoto_sato_nc1_score():
    rng = np.random.default_rng(6)
    y = np.concatenate([np.zeros(10), np.ones(30), np.full(60, 2)]).astype(int)
    H = rng.normal(size=(3, 4))[y] + rng.normal(size=(100, 4))
    # nc1_score of keitaroskmt/collapse-dynamics, transcribed
    reps, target = torch.tensor(H), torch.tensor(y)
    means, counts = {}, []
    for c in range(3):
        means[c] = reps[target == c].mean(0)
        counts.append(int((target == c).sum()))
    wcv = sum(torch.norm(reps[target == c] - means[c]) ** 2 for c in range(3)) / 100
    gmean = sum(means[c] * counts[c] for c in range(3)) / 100
    bcv = sum(torch.norm(means[c] - gmean) ** 2 * counts[c] / 100 for c in range(3))
    ratio, w, b = M.trace_ratio(H, y)
    assert (ratio, w, b) == pytest.approx((float(wcv / (bcv + 1e-8)), float(wcv), float(bcv)), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), C=st.integers(2, 5), d=st.integers(5, 9), per=st.integers(2, 6))
def test_collapse_and_entanglement_metrics_are_invariant_to_rotation_and_shift(seed, C, d, per):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(C), per)
    H = rng.normal(size=(C, d))[y] + 0.5 * rng.normal(size=(C * per, d))
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    G = H @ Q + rng.normal(size=d)
    assert M.nc1(G, y) == pytest.approx(M.nc1(H, y), rel=1e-6)
    assert M.nc1(H, y, method="pinv") == pytest.approx(papyan_oracle(H, y, C, "pinv"), rel=1e-6)
    assert M.trace_ratio(G, y)[0] == pytest.approx(M.trace_ratio(H, y)[0], rel=1e-9)
    assert M.nc2(G, y).max_angle == pytest.approx(M.nc2(H, y).max_angle, abs=1e-9)
    assert M.soft_nearest_neighbor_loss(G, y, 2.0, batch_size=3) == pytest.approx(
        M.soft_nearest_neighbor_loss(H, y, 2.0), rel=1e-9)
    np.testing.assert_array_equal(M.knn_same_class(G, y, 1, per_point=True, batch_size=2),
                                  M.knn_same_class(H, y, 1, per_point=True))


def test_nc2_nc3_nc4_against_direct_formulas():
    rng = np.random.default_rng(7)
    C, d = 4, 6
    y = np.repeat(np.arange(C), 25)
    H = rng.normal(size=(C, d))[y] + 0.8 * rng.normal(size=(100, d))
    mus = np.stack([H[y == c].mean(0) for c in range(C)])
    Mc = mus - mus.mean(0)
    norms = np.linalg.norm(Mc, axis=1)
    cos = [Mc[i] @ Mc[j] / norms[i] / norms[j] for i in range(C) for j in range(C) if i != j]
    two = M.nc2(H, y)
    assert two.equinorm == pytest.approx(np.std(norms, ddof=1) / norms.mean())
    assert two.equiangularity == pytest.approx(np.std(cos, ddof=1))
    assert two.max_angle == pytest.approx(np.mean(np.abs(np.array(cos) + 1 / (C - 1))))
    W = rng.normal(size=(C, d))
    assert M.nc3(H, y, W) == pytest.approx(np.sum((W / np.linalg.norm(W) - Mc / np.linalg.norm(Mc)) ** 2))
    assert M.nc3(H, y, 7 * Mc) == pytest.approx(0, abs=1e-24)
    # a nearest-class-mean classifier in linear form never disagrees with the NCC...
    W_ncc, b_ncc = 2 * mus, -(mus ** 2).sum(1)
    assert M.nc4(H, y, W_ncc, b_ncc) == 0
    # ...and one that always answers class 0 disagrees wherever the NCC does not say 0
    ncc = ((H[:, None, :] - mus[None]) ** 2).sum(2).argmin(1)
    assert M.nc4(H, y, np.zeros((C, d)), np.array([1.0, 0, 0, 0])) == pytest.approx(np.mean(ncc != 0))


def test_within_class_variance_about_given_means():
    H = np.array([[0.0, 0], [2, 0], [5, 5], [5, 7]])
    y = np.array([3, 3, 8, 8])
    assert M.within_class_variance(H, y) == pytest.approx(1.0)
    means = np.array([[0.0, 0], [5, 5]])
    assert M.within_class_variance(H, y, means=means, classes=[3, 8]) == pytest.approx((0 + 4 + 0 + 4) / 4)
    assert M.within_class_variance(H[:2], y[:2]) == pytest.approx(1.0)  # one class is fine here
    with pytest.raises(MetricInputError, match=r"classes \[8\]"):
        M.within_class_variance(H, y, means=means[:1], classes=[3])


# ---------------------------------------------------------------------------
# bad input, across the metric functions
# ---------------------------------------------------------------------------
LABELLED = {
    "nc1": lambda H, y: M.nc1(H, y),
    "trace_ratio": lambda H, y: M.trace_ratio(H, y),
    "rnc1": lambda H, y: M.rnc1(H, y),
    "nc2": lambda H, y: M.nc2(H, y),
    "neural_collapse": lambda H, y: M.neural_collapse(H, y),
    "class_geometry": lambda H, y: M.class_geometry(H, y),
    "knn_same_class": lambda H, y: M.knn_same_class(H, y, k=2),
    "snn_loss": lambda H, y: M.soft_nearest_neighbor_loss(H, y),
}


@pytest.mark.parametrize("fn", list(LABELLED), ids=list(LABELLED))
def test_bad_features_and_labels_give_clear_errors(fn):
    f = LABELLED[fn]
    rng = np.random.default_rng(0)
    H, y = rng.normal(size=(12, 4)), np.arange(12) % 3
    f(H, y)  # the valid case runs
    with pytest.raises(MetricInputError, match=r"shape \(N, n\)"):
        f(H[:, 0], y)
    with pytest.raises(MetricInputError, match="12 rows"):
        f(H, y[:10])
    with pytest.raises(MetricInputError, match="at least 2 classes"):
        f(H, np.zeros(12, dtype=int))
    Hn = H.copy()
    Hn[5, 2] = np.nan
    with pytest.raises(MetricInputError, match="NaN or inf in 1 of 12 rows.*row 5"):
        f(Hn, y)
    with pytest.raises(MetricInputError, match="integer class labels"):
        f(H, y + 0.5)
    assert issubclass(MetricInputError, rg.RelugeoError) and issubclass(MetricInputError, ValueError)


def test_classifier_shape_and_label_errors():
    H, y, mu = collapsed()
    with pytest.raises(MetricInputError, match=r"W must have shape \(C, 12\)"):
        M.nc3(H, y, mu[:, :5])
    with pytest.raises(MetricInputError, match="labels must be exactly 0..4"):
        M.nc4(H, y + 1, mu)
    with pytest.raises(MetricInputError, match="b must be"):
        M.nc4(H, y, mu, np.zeros(3))
    with pytest.raises(MetricInputError, match="global_mean"):
        M.nc1(H, y, global_mean="median")


# ---------------------------------------------------------------------------
# class manifolds, inversion, stragglers
# ---------------------------------------------------------------------------
def test_class_geometry_on_the_unit_sphere():
    H = np.array([[2.0, 0], [0, 3], [-1, 0], [0, -5], [0, -1]])
    y = np.array([0, 0, 1, 1, 1])
    g = M.class_geometry(H, y)
    # class 0: (1,0),(0,1): centroid (.5,.5), each at distance sqrt(.5)
    # class 1: (-1,0),(0,-1),(0,-1): centroid (-1/3,-2/3)
    np.testing.assert_allclose(g.centroids, [[0.5, 0.5], [-1 / 3, -2 / 3]])
    r1 = np.sqrt(np.mean([(2 / 3) ** 2 + (2 / 3) ** 2, 1 / 9 + 1 / 9, 1 / 9 + 1 / 9]))
    np.testing.assert_allclose(g.radii, [np.sqrt(0.5), r1])
    np.testing.assert_allclose(g.distances, [[0, np.hypot(5 / 6, 7 / 6)], [np.hypot(5 / 6, 7 / 6), 0]])
    np.testing.assert_array_equal(g.counts, [2, 3])
    np.testing.assert_allclose(M.class_radii(7 * H, y), g.radii)  # scale-free on the sphere
    raw = M.class_geometry(H, y, normalize=False)
    assert raw.radii[0] == pytest.approx(np.sqrt(np.mean([1 + 2.25, 1 + 2.25])))
    Hz, yz = np.vstack([H, [0, 0]]), np.append(y, 1)
    with pytest.raises(MetricInputError, match="all-zero rows"):
        M.class_radii(Hz, yz)
    np.testing.assert_allclose(M.class_radii(Hz, yz, zero_rows="drop"), g.radii)
    kept = M.class_geometry(Hz, yz, zero_rows="keep")
    np.testing.assert_allclose(kept.centroids[1], g.centroids[1] * 3 / 4)
    with pytest.raises(MetricInputError, match=r"classes \[1\]"):
        M.class_radii(np.vstack([H[:2], [0, 0]]), [0, 0, 1], zero_rows="drop")


def test_inversion_found_at_the_known_minimum_of_synthetic_curves():
    t = np.arange(400)
    curve = 1 + ((t - 137) / 100.0) ** 2
    assert M.inversion_epoch(curve) == 137
    # an early transient bump is ignored by the burn-in, found without it
    bumped = curve.copy()
    bumped[5] = bumped[4] + 0.1
    assert M.inversion_epoch(bumped) == 137
    assert M.inversion_epoch(bumped, burn_in=0) == 4
    # noise: the raw curve stops decreasing early, the smoothed one near the minimum
    noisy = curve + np.random.default_rng(0).normal(scale=0.01, size=len(t))
    raw = M.inversion_epoch(noisy)
    smooth = M.inversion_epoch(noisy, smooth=41)
    assert raw < 100
    assert abs(smooth - 137) <= 10
    # epochs on a log grid: the answer is the epoch, not the index
    epochs = np.unique(np.round(np.logspace(0, 3, 60))).astype(int)
    logc = (np.log(epochs) - np.log(150)) ** 2
    assert M.inversion_epoch(logc, epochs=epochs) == epochs[np.argmin(logc)]
    assert M.inversion_epoch(np.linspace(2, 1, 50)) is None


def test_smoothing_keeps_ends_and_linear_trends():
    line = 3.0 * np.arange(20) + 1
    np.testing.assert_allclose(M.smooth_curve(line, 7), line)
    s = M.smooth_curve([0, 0, 3, 0, 0], 3)
    np.testing.assert_allclose(s, [0, 1, 1, 1, 0])
    with pytest.raises(MetricInputError, match="odd"):
        M.smooth_curve(line, 4)
    with pytest.raises(MetricInputError, match="NaN"):
        M.inversion_epoch([1.0, np.nan, 2.0])
    with pytest.raises(MetricInputError, match="increasing"):
        M.inversion_epoch([3, 2, 1], epochs=[0, 2, 1])


def test_stragglers_are_the_misclassified_points():
    logits = np.array([[2.0, 1], [0, 1], [5, -1], [0, 3]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(M.stragglers(logits, y), [1, 2])
    np.testing.assert_array_equal(M.stragglers(np.array([0, 0, 0, 1]), y), [2])
    with pytest.raises(MetricInputError, match="4 rows but y has 3"):
        M.stragglers(logits, y[:3])


def test_straggler_overlap_z_score_against_the_hypergeometric_null():
    n = 100
    t = M.straggler_overlap(np.arange(20), np.arange(10, 30), n)
    dist = hypergeom(n, 20, 20)
    assert (t.overlap, t.size_a, t.size_b) == (10, 20, 20)
    assert t.expected == pytest.approx(dist.mean()) == 4.0
    assert t.std ** 2 == pytest.approx(dist.var())
    assert t.z == pytest.approx((10 - 4) / math.sqrt(dist.var()))
    # identical sets: the largest possible overlap; disjoint: below the null
    same = M.straggler_overlap(np.arange(30), np.arange(30), 200)
    assert same.z == pytest.approx((30 - 4.5) / math.sqrt(hypergeom(200, 30, 30).var()))
    assert M.straggler_overlap(np.arange(30), np.arange(30, 60), 200).z < -2
    mask = np.zeros(n, dtype=bool)
    mask[:20] = True
    assert M.straggler_overlap(mask, np.arange(10, 30), n) == t
    assert np.isnan(M.straggler_overlap(np.arange(n), np.arange(5), n).z)  # no variance under the null
    with pytest.raises(MetricInputError, match="outside 0..99"):
        M.straggler_overlap([5, 100], [1], n)
    with pytest.raises(MetricInputError, match="repeated"):
        M.straggler_overlap([5, 5], [1], n)


def test_knn_same_class_matches_sklearn_and_the_separated_case():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(8)
    H = rng.normal(size=(120, 5))
    y = (H[:, 0] + 0.7 * rng.normal(size=120) > 0).astype(int)
    _, idx = NearestNeighbors(n_neighbors=8).fit(H).kneighbors(H)
    want = (y[idx[:, 1:]] == y[:, None]).mean(1)
    np.testing.assert_allclose(M.knn_same_class(H, y, 7, per_point=True, batch_size=13), want)
    sep = np.vstack([rng.normal(size=(30, 3)), 100 + rng.normal(size=(30, 3))])
    assert M.knn_same_class(sep, np.repeat([0, 1], 30), k=29) == 1.0
    with pytest.raises(MetricInputError, match="k must be"):
        M.knn_same_class(H, y, 120)


def test_soft_nearest_neighbor_loss_known_answers():
    # four vertices of a regular simplex: all distances equal, so each point's
    # same-class share is 1/3 whatever the temperature
    V = np.eye(4)
    for T in (0.1, 1.0, 10.0):
        assert M.soft_nearest_neighbor_loss(V, [0, 0, 1, 1], T) == pytest.approx(math.log(3))
    rng = np.random.default_rng(9)
    far = np.vstack([rng.normal(size=(10, 2)), 50 + rng.normal(size=(10, 2))])
    assert M.soft_nearest_neighbor_loss(far, np.repeat([0, 1], 10)) < 1e-12
    # an explicit double loop
    H, y = rng.normal(size=(25, 3)), rng.integers(0, 3, 25)
    y[:6] = [0, 0, 1, 1, 2, 2]
    T = 0.7
    total = 0.0
    for i in range(25):
        w = np.array([math.exp(-np.sum((H[i] - H[j]) ** 2) / T) if j != i else 0.0 for j in range(25)])
        total -= math.log(w[y == y[i]].sum() / w.sum())
    assert M.soft_nearest_neighbor_loss(H, y, T, batch_size=4) == pytest.approx(total / 25, rel=1e-10)
    with pytest.raises(MetricInputError, match=r"classes \[7\] have one"):
        M.soft_nearest_neighbor_loss(H[:7], np.array([0, 0, 1, 1, 2, 2, 7]))
    with pytest.raises(MetricInputError, match="temperature"):
        M.soft_nearest_neighbor_loss(H, y, 0.0)


# ---------------------------------------------------------------------------
# geometric compression
# ---------------------------------------------------------------------------
def test_stripe_and_cylinder_are_balanced_and_labelled_by_the_informative_coordinates():
    X, y = M.stripe(40000, 4, seed=1)
    assert np.mean(y == 1) == pytest.approx(0.5, abs=0.01)
    np.testing.assert_array_equal(y == 1, (X[:, 0] > -0.3) & (X[:, 0] < 1.18549))
    Xc, yc = M.cylinder(40000, 5, 2, seed=2)
    assert np.mean(yc == 1) == pytest.approx(0.5, abs=0.01)
    np.testing.assert_array_equal(yc == 1, np.hypot(Xc[:, 0], Xc[:, 1]) > math.sqrt(2 * math.log(2)))
    assert np.mean(M.cylinder(40000, 5, 3, seed=3)[1] == 1) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(MetricInputError, match="d_par"):
        M.cylinder(10, 2, 3)


def test_compression_ratio_is_one_for_isotropic_and_exact_for_built_ratios():
    d = 8
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))
    iso = np.vstack([Q, -Q]) * 2.5  # equal column norms
    assert M.compression_ratio(iso, 1) == pytest.approx(1.0, abs=1e-12)
    gauss = np.random.default_rng(1).normal(size=(20000, d))
    assert M.compression_ratio(gauss, 2) == pytest.approx(1.0, abs=0.03)
    scale = np.array([6.0, 2.0, 1, 1, 1, 1, 1, 1])
    assert M.compression_ratio(iso * scale, 2) == pytest.approx(4.0, abs=1e-12)
    assert M.compression_ratio(iso * scale, [0]) == pytest.approx(6 / (8 / 7), abs=1e-12)
    mask = np.zeros(d, dtype=bool)
    mask[1] = True
    assert M.compression_ratio(iso * scale, mask) == pytest.approx(2 / (6 + 6) * 7, abs=1e-12)
    with pytest.raises(MetricInputError, match="from 1 to 7"):
        M.compression_ratio(iso, 8)
    with pytest.raises(MetricInputError, match="some but not all"):
        M.compression_ratio(iso, np.ones(d, dtype=bool))


def test_kernel_pca_recovers_known_eigenvectors_and_label_weights():
    P = 30
    U, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(P, P)))
    lam = np.linspace(10, 0.5, P)
    K = U @ np.diag(lam) @ U.T
    y = 3 * U[:, 0] + 4 * U[:, 2]
    res = M.kernel_pca(K, y)
    np.testing.assert_allclose(res.eigenvalues, lam, atol=1e-10)
    for r in range(P):
        assert abs(abs(res.eigenvectors[:, r] @ U[:, r]) - 1) < 1e-8
    want = np.zeros(P)
    want[0], want[2] = 9 / 25, 16 / 25
    np.testing.assert_allclose(res.fraction, want, atol=1e-12)
    np.testing.assert_allclose(res.cumulative[:4], [0.36, 0.36, 1, 1], atol=1e-12)
    assert res.rank_for(0.5) == 3 and res.rank_for(0.36) == 1
    # centring: a constant kernel direction carries no weight after it
    ones = np.ones(P) / math.sqrt(P)
    Kc = 5 * np.outer(ones, ones) + 0.1 * np.eye(P)
    assert M.kernel_pca(Kc, np.ones(P)).fraction[0] == pytest.approx(1)
    assert M.kernel_pca(Kc, np.ones(P) + U[:, 3], center=True).eigenvalues[0] == pytest.approx(0.1)
    with pytest.raises(MetricInputError, match="symmetric"):
        M.kernel_pca(K + np.triu(np.ones((P, P)), 1), y)
    with pytest.raises(MetricInputError, match=r"shape \(30,\)"):
        M.kernel_pca(K, y[:-1])


def explicit_ntk(model, X, output=None):
    params = [p for p in model.parameters()]
    rows = []
    for x in torch.as_tensor(X):
        out = model(x[None]).reshape(-1)[0 if output is None else output]
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, params)]))
    J = torch.stack(rows).detach().numpy()
    return J @ J.T


def test_ntk_gram_equals_the_explicit_jacobian_and_does_not_depend_on_chunks():
    X = np.random.default_rng(3).normal(size=(23, 4))
    net = M.AlphaNet(4, 16, seed=1)
    K = M.ntk_gram(net, X, chunk_size=5)
    np.testing.assert_allclose(K, explicit_ntk(net, X), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(M.ntk_gram(net, X, chunk_size=100), K, rtol=1e-12, atol=1e-15)
    assert np.linalg.eigvalsh(K).min() > -1e-12
    # the beta part alone: f = (1/h) beta . sigma(.) so J_beta = sigma(.)/h
    feat = math.sqrt(2) * np.maximum(X @ net.omega.detach().numpy().T / 2 + net.bias.detach().numpy(), 0) / 16
    np.testing.assert_allclose(M.ntk_gram(net, X, params=["beta"]), feat @ feat.T, rtol=1e-10)
    mlp = seeded_mlp("mlp:4-6-3:relu", 2)
    np.testing.assert_allclose(M.ntk_gram(mlp, X, output=1, chunk_size=7), explicit_ntk(mlp, X, 1),
                               rtol=1e-10, atol=1e-14)
    with pytest.raises(MetricInputError, match="3 outputs per sample"):
        M.ntk_gram(mlp, X)
    np.testing.assert_allclose(M.ntk_gram(copy.deepcopy(net).requires_grad_(False), X), K, rtol=1e-12)
    with pytest.raises(MetricInputError, match="not parameters of the model"):
        M.ntk_gram(net, X, params=["gamma"])


def test_alpha_net_is_the_reference_formula():
    net = M.AlphaNet(3, 10, seed=4)
    x = torch.randn(7, 3, dtype=torch.float64)
    w, b, beta = net.omega, net.bias, net.beta
    want = sum(beta[n] * math.sqrt(2) * torch.relu(x @ w[n] / math.sqrt(3) + b[n]) for n in range(10)) / 10
    torch.testing.assert_close(net(x), want)


def test_feature_regime_compresses_and_lazy_regime_does_not():
    X, y = M.stripe(128, 4, seed=0)
    Xt, yt = M.stripe(500, 4, seed=1)
    feat = M.train_alpha_model(X, y, alpha=1e-3, h=64, steps=300, X_test=Xt, y_test=yt, n_records=10)
    lazy = M.train_alpha_model(X, y, alpha=1e3, h=64, steps=300, X_test=Xt, y_test=yt, n_records=10)
    for run in (feat, lazy):
        h = run.history
        assert list(h.columns) == ["step", "t", "train_loss", "train_error", "test_error", "margin_fraction",
                                   "lambda"]
        assert h["step"].iloc[0] == 0 and h["lambda"].iloc[0] == feat.history["lambda"].iloc[0]
        assert (np.diff(h["train_loss"]) <= 0).all()
        np.testing.assert_allclose(run.predict(X), run.alpha * (run.model(torch.tensor(X)) -
                                                                run.model0(torch.tensor(X))).detach().numpy())
    assert feat.history["lambda"].iloc[-1] > 3 * feat.history["lambda"].iloc[0]
    assert lazy.history["lambda"].iloc[-1] == pytest.approx(lazy.history["lambda"].iloc[0], rel=0.02)
    assert feat.history["train_error"].iloc[-1] < 0.1
    with pytest.raises(MetricInputError, match="-1 and \\+1"):
        M.train_alpha_model(X, (y > 0).astype(float), alpha=1.0, steps=2)
    with pytest.raises(MetricInputError, match="alpha"):
        M.train_alpha_model(X, y, alpha=0.0, steps=2)


def test_learning_curve_fit_and_predicted_exponents():
    P = np.array([64, 128, 256, 512, 1024])
    fit = M.fit_learning_curve(P, 3.0 * P ** -0.6)
    assert fit.beta == pytest.approx(0.6) and fit.prefactor == pytest.approx(3.0)
    assert fit.stderr == pytest.approx(0, abs=1e-10)
    np.testing.assert_allclose(fit.predict(P), 3.0 * P ** -0.6)
    assert M.predicted_exponents(5) == pytest.approx({"lazy": 5 / 13, "feature": 9 / 13})
    assert M.predicted_exponents(5, 2) == pytest.approx({"lazy": 5 / 13, "feature": 6.5 / 13})
    with pytest.raises(MetricInputError, match="positive"):
        M.fit_learning_curve(P, np.array([0.1, 0.05, 0.0, 0.01, 0.01]))


# ---------------------------------------------------------------------------
# tables, checkpoints, the command line, figures
# ---------------------------------------------------------------------------
@pytest.fixture()
def ckpt_dir(tmp_path):
    model = seeded_mlp("mlp:5-8-6-3:relu", 0).float()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    y[:3] = [0, 1, 2]
    d = tmp_path / "ckpts"
    d.mkdir()
    for step in (0, 10, 30, 60):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        rg.save(d / f"step_{step}.pt", model)
    group = np.array(["train"] * 45 + ["test"] * 15)
    np.savez(tmp_path / "data.npz", X=X, y=y, group=group)
    np.save(tmp_path / "bare.npy", X)
    return tmp_path


def test_metrics_frame_is_the_same_for_a_pwanet_and_its_module(ckpt_dir):
    data = np.load(ckpt_dir / "data.npz")
    module = rg.nets.load_module(ckpt_dir / "ckpts" / "step_10.pt")
    net = rg.from_torch(module)
    a = M.metrics_frame(net, data["X"], data["y"], metrics=["nc", "inversion", "compression"], k=3)
    b = M.metrics_frame(module, data["X"], data["y"], metrics=["nc", "inversion", "compression"], k=3)
    pd.testing.assert_frame_equal(a[["metric", "layer", "class"]], b[["metric", "layer", "class"]])
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-6, equal_nan=True)
    H = M.penultimate_features(net, data["X"])
    assert a.loc[a.metric == "nc1", "value"].item() == pytest.approx(M.nc1(H, data["y"]))
    assert set(a.loc[a.metric == "radius", "layer"]) == {"1", "2"}  # 1-based, like every relugeo table
    assert (a.metric == "centroid_distance").sum() == 2 * 3


def test_cli_writes_one_table_with_inversion_steps(ckpt_dir):
    out = ckpt_dir / "m.csv"
    res = CliRunner().invoke(app, ["metrics", str(ckpt_dir / "ckpts"), "--data", str(ckpt_dir / "data.npz"),
                                   "--metrics", "nc,inversion,compression", "--k", "3", "--burn-in", "0",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["checkpoint", "step", "metric", "layer", "class", "value"]
    assert sorted(table["step"].dropna().unique()) == [0, 10, 30, 60]
    assert {"nc1", "wcv_test", "radius", "lambda", "inversion_step", "inversion_step_smoothed"} <= set(table.metric)
    direct = M.metrics_frame(rg.load(ckpt_dir / "ckpts" / "step_30.pt"), np.load(ckpt_dir / "data.npz")["X"][:45],
                             np.load(ckpt_dir / "data.npz")["y"][:45], metrics=["nc"])
    got = table[(table.checkpoint == "step_30.pt") & (table.metric == "nc1")]["value"].item()
    assert got == pytest.approx(direct.loc[direct.metric == "nc1", "value"].item(), rel=1e-6)


@pytest.mark.parametrize("args,message", [
    (["--metrics", "nc,collapse"], "--metrics must be a comma-separated subset"),
    (["--layers", "first"], "--layers must be 'all'"),
    (["--smooth", "4"], "--smooth must be a positive odd"),
])
def test_cli_bad_options_are_named(ckpt_dir, args, message):
    res = CliRunner().invoke(app, ["metrics", str(ckpt_dir / "ckpts"), "--data", str(ckpt_dir / "data.npz"),
                                   "--out", str(ckpt_dir / "x.csv"), *args])
    assert res.exit_code == 2
    assert message in res.output
    assert not (ckpt_dir / "x.csv").exists()


def test_cli_needs_labels_and_reads_tanh_state_dicts(ckpt_dir):
    res = CliRunner().invoke(app, ["metrics", str(ckpt_dir / "ckpts"), "--data", str(ckpt_dir / "bare.npy"),
                                   "--out", str(ckpt_dir / "x.csv")])
    assert res.exit_code == 2 and "needs class labels" in res.output
    torch.manual_seed(0)
    tanh = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    torch.save({"state_dict": tanh.state_dict()}, ckpt_dir / "tanh.pt")
    out = ckpt_dir / "t.csv"
    res = CliRunner().invoke(app, ["metrics", str(ckpt_dir / "tanh.pt"), "--data", str(ckpt_dir / "data.npz"),
                                   "--arch", "mlp:5-4-3:tanh", "--metrics", "inversion", "--k", "3",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    data = np.load(ckpt_dir / "data.npz")
    H = M.layer_features(tanh, data["X"][:45])[0]
    np.testing.assert_allclose(table.loc[table.metric == "radius", "value"], M.class_radii(H, data["y"][:45]),
                               rtol=1e-6)
    res = CliRunner().invoke(app, ["metrics", str(ckpt_dir / "tanh.pt"), "--data", str(ckpt_dir / "data.npz"),
                                   "--arch", "mlp:5-9-3:tanh", "--out", str(out)])
    assert res.exit_code == 2 and "does not match arch" in res.output


def test_metric_figures_draw(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from relugeo.io import save_figure
    from relugeo.viz import plot_collapse, plot_compression, plot_inversion, plot_kernel_pca

    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    e = np.arange(50)
    R = np.stack([1 + (e - 20) ** 2 / 400, 1.1 + (e - 25) ** 2 / 500], 1)
    ax = plot_inversion(e, R, distances=1 - e / 100, inversion=[20, None], classes=["even", "odd"],
                        smoothed=R, ax=axes[0, 0])
    assert len(ax.lines) >= 4 and hasattr(ax, "right_axis")
    hist = pd.DataFrame({"t": [0, 1, 10, 100], "lambda": [1, 1.5, 4, 9]})
    plot_compression({"feature": hist, "lazy": hist.assign(**{"lambda": 1.0})}, ax=axes[0, 1])
    U, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(20, 20)))
    kp = M.kernel_pca(U @ np.diag(np.arange(20, 0, -1.0)) @ U.T, U[:, 0] + U[:, 5])
    plot_kernel_pca({"init": kp, "final": kp}, axes=axes[1, :2])
    table = pd.DataFrame({"step": [0, 0, 5, 5], "metric": ["nc1", "wcv", "nc1", "wcv"], "layer": "",
                          "value": [1.0, 2.0, 0.5, 0.4]})
    plot_collapse(table, ["nc1", "wcv", "nc3"], ax=axes[0, 2])
    with pytest.raises(ValueError, match="none of"):
        plot_collapse(table, ["nc4"], ax=axes[1, 2])
    save_figure(fig, tmp_path / "m.png", dpi=50)
    plt.close(fig)
    assert (tmp_path / "m.png").stat().st_size > 1000
