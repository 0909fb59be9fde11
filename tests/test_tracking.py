"""Region migration: distances to region boundaries, SplineCam statistics, track(), resume, dask, training."""

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import torch
from torch import nn
from typer.testing import CliRunner

import relugeo as rg
from relugeo import data, train
from relugeo.nets import build_module
from relugeo.regions import region_stats as rs
from relugeo.regions.tracking import SLICES

ROOT = Path(__file__).resolve().parents[1]


def mlp(sizes, seed, negative_slope=0.0, module=False):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if negative_slope == 0 else nn.LeakyReLU(negative_slope))
    m = nn.Sequential(*layers).double()
    return (rg.from_torch(m), m) if module else rg.from_torch(m)


def gradient(module, x, layer, neuron):
    """Input gradient of a hidden neuron's pre-activation at x, by torch autograd."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    module[: 2 * layer + 1](xt)[neuron].backward()
    return xt.grad.numpy()


def first_break(net, x, v, T, iterations=80):
    """Brute-force line search: where the pattern first changes along the unit direction v (T if it does not).

    The region is convex, so along a line the points with x's pattern form one
    interval and bisection on "same pattern" finds its end.
    """
    own = net.patterns(x)
    if (net.patterns(x + T * v) == own).all():
        return T
    lo, hi = 0.0, T
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if (net.patterns(x + mid * v) == own).all():
            lo = mid
        else:
            hi = mid
    return hi


# ---------------------------------------------------------------------------
# distance to the own region's boundary (full input space)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("sizes,slope", [([3, 12, 12, 2], 0.0), ([5, 16, 8, 8, 3], 0.1), ([2, 10, 10, 10, 1], 0.0)])
def test_distance_to_region_boundary_is_exact_along_lines(sizes, slope):
    net, module = mlp(sizes, seed=len(sizes), negative_slope=slope, module=True)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, sizes[0]))
    d, layer, neuron = rs.distance_to_region_boundary(net, X, return_neuron=True)
    assert (d > 0).all() and np.isfinite(d).all()
    for x, dx, li, ni in zip(X, d, layer, neuron):
        # no direction leaves the region before d
        for v in rng.normal(size=(8, sizes[0])):
            v /= np.linalg.norm(v)
            assert first_break(net, x, v, 10 * dx + 1) >= dx * (1 - 1e-9)
        # straight toward the nearest neuron's zero set the region ends exactly at d
        g = gradient(module, x, li, ni)
        z = net.preactivations(x)[li][0, ni]
        v = -np.sign(z) * g / np.linalg.norm(g)
        assert first_break(net, x, v, 3 * dx) == pytest.approx(dx, rel=1e-9)
        pattern = net.patterns(x)
        assert (net.patterns(x + 0.999 * dx * v) == pattern).all()
        assert (net.patterns(x + 1.001 * dx * v) != pattern).any()


def test_distance_is_at_most_the_distance_within_any_slice_through_the_point():
    net, module = mlp([6, 14, 14, 3], seed=3, module=True)
    rng = np.random.default_rng(3)
    for x in rng.normal(size=(4, 6)):
        d, li, ni = (a[0] for a in rs.distance_to_region_boundary(net, x[None], return_neuron=True))
        g = gradient(module, x, li, ni)
        random_plane = np.linalg.qr(rng.normal(size=(6, 2)))[0]
        toward = np.linalg.qr(np.stack([g, rng.normal(size=6)], axis=1))[0]
        for basis, equal in ((random_plane, False), (toward, True)):
            part = rg.partition(net, rg.Slice.square(x, basis, 20 * d + 1))
            own = np.flatnonzero((part.patterns == net.patterns(x)).all(axis=1))[0]
            ring = part.polygons[own]
            inner = part.edge_layer[part.ring_offsets[own]:part.ring_offsets[own + 1]] >= 0
            edges = shapely.linestrings(np.stack([ring, np.roll(ring, -1, axis=0)], axis=1)[inner])
            in_slice = shapely.distance(shapely.Point(0, 0), edges).min()
            assert in_slice >= d * (1 - 1e-9)
            if equal:
                assert in_slice == pytest.approx(d, rel=1e-8)


def test_distance_chunking_closed_form_and_degenerate_cases():
    net = mlp([4, 9, 9, 2], seed=5)
    X = np.random.default_rng(5).normal(size=(37, 4))
    np.testing.assert_allclose(rs.distance_to_region_boundary(net, X, batch_size=1),
                               rs.distance_to_region_boundary(net, X), rtol=1e-12)
    one = rg.PWANet([rg.AffineLayer(np.array([[3.0, 4.0]]), np.array([-5.0])),
                     rg.AffineLayer(np.ones((1, 1)), np.zeros(1), None)])
    np.testing.assert_allclose(rs.distance_to_region_boundary(one, [[0.0, 0.0], [3.0, 4.0], [0.6, 0.8]]),
                               [1.0, 4.0, 0.0])
    flat = rg.PWANet([rg.AffineLayer(np.zeros((2, 2)), np.ones(2)), rg.AffineLayer(np.ones((1, 2)), np.zeros(1),
                                                                                      None)])
    assert np.isinf(rs.distance_to_region_boundary(flat, [[1.0, 2.0]])).all()
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        rs.distance_to_region_boundary(net, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="batch_size"):
        rs.distance_to_region_boundary(net, X, batch_size=0)


# ---------------------------------------------------------------------------
# SplineCam statistics and distances to the decision boundary
# ---------------------------------------------------------------------------
def test_region_shape_on_known_rectangles():
    # one neuron x1 - 0.5 on [-1, 1]^2: rectangles 1.5 x 2 and 0.5 x 2
    net = rg.PWANet([rg.AffineLayer(np.array([[1.0, 0.0]]), np.array([-0.5])),
                     rg.AffineLayer(np.ones((1, 1)), np.zeros(1), None)])
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 1.0))
    s = rs.region_shape(part)
    order = np.argsort(-s["area"])
    np.testing.assert_allclose(s["area"][order], [3.0, 1.0])
    np.testing.assert_allclose(s["eccentricity"][order], [np.sqrt(1 - 1.5**2 / 4), np.sqrt(1 - 0.5**2 / 4)])
    np.testing.assert_allclose(s["centrality"][order], [0.25 / np.sqrt(2), 0.75 / np.sqrt(2)])
    # quadrants are squares: eccentricity 0, centroids halfway to the corners
    quad = rg.PWANet([rg.AffineLayer(np.eye(2), np.zeros(2)), rg.AffineLayer(np.ones((1, 2)), np.zeros(1), None)])
    s = rs.region_shape(rg.partition(quad, rg.Slice.square(np.zeros(2), np.eye(2), 1.0)))
    np.testing.assert_allclose(s["eccentricity"], 0.0, atol=1e-7)
    np.testing.assert_allclose(s["centrality"], 0.5)


def test_region_shape_matches_triangle_fan_moments():
    net = mlp([2, 12, 12, 3], seed=7)
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 2.0))
    s = rs.region_shape(part)
    for r, ring in enumerate(part.polygons):
        a, m = 0.0, np.zeros((2, 2))
        tri = []
        for i in range(1, len(ring) - 1):
            p, q, w = ring[0], ring[i], ring[i + 1]
            ar = 0.5 * ((q - p)[0] * (w - p)[1] - (q - p)[1] * (w - p)[0])
            tri.append((ar, p, q, w))
            a += ar
        cen = sum(ar * (p + q + w) / 3 for ar, p, q, w in tri) / a
        for ar, p, q, w in tri:
            P = np.stack([p, q, w]) - cen
            m += ar / 12 * (P.T @ P + np.outer(P.sum(0), P.sum(0)))
        lam = np.linalg.eigvalsh(m / a)
        assert s["area"][r] == pytest.approx(a, rel=1e-9)
        assert s["eccentricity"][r] == pytest.approx(np.sqrt(max(0.0, 1 - lam[0] / lam[1])), abs=1e-6)


def test_decision_boundary_distances_against_shapely_and_density_tiles():
    net = mlp([2, 16, 16, 3], seed=5)
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 2.5))
    assert len(part.decision_boundary) > 0
    dc, dn = rs.decision_boundary_distance(part)
    db = shapely.multilinestrings(part.decision_boundary)
    np.testing.assert_allclose(dc, shapely.distance(shapely.points(part.centroids), db), atol=1e-12)
    np.testing.assert_allclose(dn, shapely.distance(part.to_shapely(), db), atol=1e-12)
    assert (dn <= dc + 1e-12).all()
    assert (dn[part.decision_boundary_regions] == 0).all()
    h = rs.slice_scale(part)
    assert h == pytest.approx(2.5)
    dens = rs.density_by_distance(part, [0, 0.1, 0.3, np.inf])
    assert dens["n_regions"].sum() == part.n_regions
    assert dens["area"].sum() == pytest.approx(part.domain_area / h**2)
    assert dens["boundary_length"].sum() == pytest.approx(part.boundary_length / h)
    first = dc / h < 0.1
    assert dens["n_regions"][0] == first.sum()
    assert dens["region_density"][0] == pytest.approx(first.sum() / (part.areas[first].sum() / h**2))
    table = rs.region_statistics(part)
    assert len(table) == part.n_regions and {"eccentricity", "dist_db_nearest", "n_active"} <= set(table)
    with pytest.raises(ValueError, match="edges"):
        rs.density_by_distance(part, [0.1, 0.2])
    # one class everywhere: no boundary, distances nan, empty bands
    mono = rg.PWANet([rg.AffineLayer(np.eye(2), np.zeros(2)),
                      rg.AffineLayer(np.array([[1.0, 1.0], [0.0, 0.0]]), np.array([10.0, 0.0]), None)])
    p1 = rg.partition(mono, rg.Slice.square(np.zeros(2), np.eye(2), 1.0))
    assert np.isnan(rs.decision_boundary_distance(p1)[0]).all()
    assert rs.density_by_distance(p1, [0, 1, np.inf])["n_regions"].sum() == 0


# ---------------------------------------------------------------------------
# track(): contents, resume, dask, errors
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny digits net trained for 60 steps: 5 checkpoints, and small point sets."""
    root = tmp_path_factory.mktemp("track")
    Xtr, ytr, Xte, yte = data.digits(n_train=1000, seed=0)
    torch.manual_seed(0)
    model = build_module("mlp:64-12-12-10:relu")
    train.fit(model, Xtr, ytr, steps=60, lr=3e-3, seed=0, checkpoint_steps=train.log_steps(60, 5),
              out_dir=root / "ckpt")
    sets = {"train": (Xtr[:300], ytr[:300]), "test": (Xte[:100], yte[:100]),
            "random": data.uniform_like(Xtr, 30, seed=1)}
    return root, sets


KW = {"points": 12, "slices": 1, "radius": {"vertex": (0.3,), "exact": (0.3,)}, "n_directions": 10, "pad": 0.0}


def test_track_table_matches_the_direct_computations(run):
    root, sets = run
    res = rg.track(root / "ckpt", sets, **KW)
    assert res.steps == [0, 1, 4, 15, 60]
    assert set(res.table["set"]) == {"train", "test", "random", SLICES}
    assert {"lc_exact", "lc_vertex", "regions_exact", "dist_region_boundary", "accuracy", "n_regions",
            "region_density", "region_fraction", "boundary_density", "region_eccentricity_mean"} <= \
        set(res.table["measure"])
    assert res.triplets.shape == (1, 3)
    assert len(set(sets["train"][1][res.triplets[0]])) == 3  # three different classes
    net = rg.load(root / "ckpt" / "step_0000060.pt")
    pts = res.points[(res.points.step == 60) & (res.points.set == "test")]
    X = sets["test"][0][pts["point"].to_numpy()]
    lc = rg.local_complexity(net, X, 0.3, method="vertex", n_directions=10)
    np.testing.assert_array_equal(pts["lc_vertex"].to_numpy(), lc.lc)
    ex = rg.local_complexity(net, X, 0.3)
    np.testing.assert_array_equal(pts["regions_exact"].to_numpy(), ex.regions)
    np.testing.assert_allclose(pts["dist_region_boundary"], rs.distance_to_region_boundary(net, X), rtol=1e-12)
    mean = res.pivot("lc_vertex", radius=0.3).loc[60, "test"]
    assert mean == pytest.approx(lc.lc.mean())
    part = rg.partition(net, res.slices[0])
    assert res.pivot("n_regions").loc[60, SLICES] == part.n_regions
    regions = res.regions[res.regions.step == 60]
    np.testing.assert_allclose(regions["eccentricity"], rs.region_shape(part)["eccentricity"])
    fr = res.pivot("region_fraction", set=SLICES)
    np.testing.assert_allclose(fr.loc[fr.notna().all(axis=1)].sum(axis=1), 1.0)
    pd.testing.assert_frame_equal(res.pivot("region_density"), res.pivot("region_density", set=SLICES))
    with pytest.raises(ValueError, match="measure must be one of"):
        res.pivot("lc")


def test_track_resumes_after_an_interruption_with_the_same_tables(run, tmp_path):
    root, sets = run
    full = rg.track(root / "ckpt", sets, out=tmp_path / "full", **KW)

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rg.track(root / "ckpt", sets, out=tmp_path / "cut", progress=stop_after_two, **KW)
    finished = sorted(p.parent.name for p in (tmp_path / "cut" / "parts").glob("*/done.json"))
    assert finished == ["step_0000000", "step_0000001"]
    assert not (tmp_path / "cut" / "track.csv").exists()
    seen = []
    res = rg.track(root / "ckpt", sets, out=tmp_path / "cut", progress=lambda d, n: seen.append(d), **KW)
    assert seen == [3, 4, 5]  # only the missing checkpoints ran
    for a, b in ((full.table, res.table), (full.points, res.points), (full.regions, res.regions)):
        pd.testing.assert_frame_equal(a, b)
    for name in ("track.csv", "points.csv"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes()
    conf = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert conf["radius"] == {"exact": [0.3], "vertex": [0.3]}
    # other settings in the same directory: refuse, unless told to start over
    with pytest.raises(ValueError, match="other settings"):
        rg.track(root / "ckpt", sets, out=tmp_path / "cut", **{**KW, "points": 11})
    again = rg.track(root / "ckpt", sets, out=tmp_path / "cut", resume=False, **{**KW, "points": 11})
    assert again.points.groupby(["step", "set"]).size().max() == 11


def test_track_on_a_dask_cluster_equals_the_local_run(run):
    distributed = pytest.importorskip("distributed")
    root, sets = run
    local = rg.track(root / "ckpt", sets, **KW)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = rg.track(root / "ckpt", sets, client=client, **KW)
    for a, b in ((local.table, remote.table), (local.points, remote.points), (local.regions, remote.regions)):
        pd.testing.assert_frame_equal(a, b)


def test_track_writes_the_region_table_as_gzipped_csv_without_pyarrow(run, tmp_path, monkeypatch):
    root, sets = run
    monkeypatch.setattr("relugeo.regions.tracking._has_pyarrow", lambda: False)
    files = sorted((root / "ckpt").glob("*.pt"))[-1:]
    res = rg.track(files, sets, out=tmp_path, **{**KW, "radius": {"vertex": 0.3}})
    assert not list(tmp_path.glob("*.parquet"))
    back = pd.read_csv(tmp_path / "regions.csv.gz")
    assert len(back) == len(res.regions) > 0
    np.testing.assert_array_equal(back["dist_db_centroid"].to_numpy(), res.regions["dist_db_centroid"].to_numpy())


def test_track_imports_no_dask_without_a_client(run):
    root, _ = run
    code = ("import sys, numpy as np, relugeo as rg; rg.track(sys.argv[1], np.zeros((3, 64)), slices=0, methods=()); "
            "assert not {m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}")
    subprocess.run([sys.executable, "-c", code, str(root / "ckpt")], check=True)


def test_track_without_slices_or_lc_and_explicit_slices(run):
    root, sets = run
    files = sorted((root / "ckpt").glob("*.pt"))[-2:]
    res = rg.track(files, sets["test"][0], slices=0, methods=(), points=None)
    assert set(res.table["measure"]) == {"dist_region_boundary", "dist_region_boundary_median"}
    assert res.regions.empty and len(res.points) == 2 * 100
    sl = rg.Slice.through(*sets["train"][0][:3])
    res = rg.track(files, {"train": sets["train"][0]}, slices=[sl], methods="vertex", radius=0.2, points=5,
                   n_directions=5, keep_partitions=True)
    assert res.triplets is None and sorted(res.partitions) == [15, 60]
    assert res.partitions[60][0].n_regions == res.pivot("n_regions").loc[60, SLICES]


@pytest.mark.parametrize("kwargs,match", [
    ({"radius": -1.0}, "radius"),
    ({"radius": 0.3, "methods": ("exact", "nope")}, "methods"),
    ({"radius": {"vertex": ()}}, "radius"),
    ({"points": 0}, "points"),
    ({"slices": [[0, 1]]}, "slices"),
    ({"slices": [[0, 1, 10_000]]}, "slice triplets"),
    ({"distance_bins": [0.5, 1.0]}, "distance_bins"),
    ({"layers": "some"}, "layers"),
    ({"slice_set": "nope"}, "slice_set"),
])
def test_track_rejects_invalid_arguments(run, kwargs, match):
    root, sets = run
    with pytest.raises(ValueError, match=match):
        rg.track(root / "ckpt", sets, **{**KW, **kwargs})


def test_track_rejects_invalid_inputs(run, tmp_path):
    root, sets = run
    with pytest.raises(FileNotFoundError):
        rg.track(tmp_path, sets)
    with pytest.raises(ValueError, match=r"shape \(N, 64\)"):
        rg.track(root / "ckpt", {"train": np.zeros((3, 5))})
    with pytest.raises(ValueError, match="names"):
        rg.track(root / "ckpt", {SLICES: sets["test"][0]})
    with pytest.raises(ValueError, match="labels"):
        rg.track(root / "ckpt", {"train": (sets["test"][0], np.zeros(3))})


def test_cli_track_writes_tables_and_figures(run, tmp_path):
    from relugeo.cli import app

    root, sets = run
    X = np.concatenate([sets["train"][0][:40], sets["test"][0][:20]])
    y = np.concatenate([sets["train"][1][:40], sets["test"][1][:20]])
    np.savez(tmp_path / "pts.npz", X=X, y=y, group=np.array(["train"] * 40 + ["test"] * 20))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["track", str(root / "ckpt"), "--data", str(tmp_path / "pts.npz"), "-r",
                                      "0.3", "--methods", "vertex", "-P", "8", "--points", "10", "--slices", "1",
                                      "--random", "10", "--animate", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("track.csv", "points.csv", "lc.png", "migration.png", "partition.gif"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "track.csv")
    assert set(table["set"]) == {"train", "test", "random", SLICES}
    bad = CliRunner().invoke(app, ["track", str(root / "ckpt"), "--data", str(tmp_path / "pts.npz"),
                                   "--methods", "fast", "--out", str(out)])
    assert bad.exit_code == 2 and "--methods" in bad.output


# ---------------------------------------------------------------------------
# the three-phase protocol, shortened
# ---------------------------------------------------------------------------
def test_three_phase_protocol_shortened_shows_the_first_descent_and_the_ascent(tmp_path):
    spec = importlib.util.spec_from_file_location("three_phases", ROOT / "examples" / "three_phases_digits.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    threads = torch.get_num_threads()
    try:
        out = example.run(tmp_path, steps=300, n_checkpoints=12, n_points=60, vertex_radii=(0.25,),
                          exact_radii=(), n_slices=0, log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    for name in ("train", "test"):
        p = out["phases"][("vertex", 0.25, name)]
        assert p["min_step"] <= 100
        assert p["first_drop"] >= 0.15, p
        assert p["rise"] >= 0.20, p
        assert p["max_step"] > p["min_step"]
    assert (tmp_path / "lc.png").is_file() and (tmp_path / "summary.txt").is_file()


def test_lc_phases_on_a_synthetic_curve():
    spec = importlib.util.spec_from_file_location("three_phases", ROOT / "examples" / "three_phases_digits.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    steps = [0, 10, 50, 100, 1000, 5000, 30000]
    p = example.lc_phases(steps, [50, 40, 35, 45, 60, 55, 30])
    assert (p["min_step"], p["max_step"]) == (50, 1000)
    assert p["first_drop"] == pytest.approx(0.3) and p["rise"] == pytest.approx(60 / 35 - 1)
    assert p["final_drop"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------
# training harness and data sets
# ---------------------------------------------------------------------------
def test_log_steps_are_distinct_and_log_spaced():
    s = train.log_steps(30_000, 40)
    assert len(s) == 40 == len(set(s)) and s[0] == 0 and s[-1] == 30_000 and s == sorted(s)
    assert train.log_steps(5, 20) == [0, 1, 2, 3, 4, 5]
    ratios = np.diff(np.log(s[15:]))
    assert ratios.max() / ratios.min() < 1.2


def test_fit_init_scale_optimizers_losses_and_checkpoint_meta(tmp_path):
    X, y, Xt, yt = data.moons(200, 50, seed=0)
    torch.manual_seed(0)
    ref = build_module("mlp:2-8-2:relu")
    torch.manual_seed(0)
    model = build_module("mlp:2-8-2:relu")
    hist = train.fit(model, X, y, steps=1, lr=0.0, weight_decay=0.0, init_scale=3.0, optimizer="sgd",
                     checkpoint_steps=[0], out_dir=tmp_path / "a", eval_data=(Xt, yt))
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, 3.0 * q)
    assert {"test_loss", "test_accuracy"} <= set(hist[0])
    meta = torch.load(hist[0]["path"], weights_only=True)["meta"]
    assert meta["step"] == 0 and meta["test_accuracy"] == hist[0]["test_accuracy"]
    for optimizer in ("adamw", "adam", "sgd"):
        for loss in ("mse", "ce", "hinge"):
            torch.manual_seed(0)
            m = build_module("mlp:2-8-2:relu")
            h = train.fit(m, X, y, steps=40, lr=0.05, optimizer=optimizer, momentum=0.9, loss=loss,
                          checkpoint_steps=[0, 40], out_dir=tmp_path / f"{optimizer}_{loss}")
            assert h[-1]["loss"] < h[0]["loss"], (optimizer, loss)
    for kw, match in (({"optimizer": "lbfgs"}, "optimizer"), ({"loss": "l1"}, "loss"), ({"init_scale": 0}, "init")):
        with pytest.raises(ValueError, match=match):
            train.fit(build_module("mlp:2-8-2:relu"), X, y, steps=1, **kw)


def test_data_sets():
    X, y, Xt, _ = data.moons(100, 40, noise=0.05, seed=3)
    assert X.shape == (100, 2) and Xt.shape == (40, 2) and set(np.unique(y)) == {0, 1}
    np.testing.assert_array_equal(X, data.moons(100, 40, noise=0.05, seed=3)[0])
    Xs, ys = data.stripe(20, 4, seed=0)
    assert Xs.shape == (20, 4) and set(np.unique(ys)) <= {-1.0, 1.0}
    assert data.cylinder(10, 3)[0].shape == (10, 3)


def test_mnist1d_is_generated_locally_and_leaves_global_random_state_alone():
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    random.seed(123)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    X, y, Xt, yt = data.mnist1d(num_samples=200, seed=7)
    assert (np.random.random(), random.random()) == before
    assert X.shape == (160, 40) and Xt.shape == (40, 40) and X.dtype == np.float32
    assert set(np.unique(np.concatenate([y, yt]))) == set(range(10))
    np.testing.assert_array_equal(X, data.mnist1d(num_samples=200, seed=7)[0])
    with pytest.raises(ValueError, match="unknown mnist1d settings"):
        data.mnist1d(num_samples=200, wiggle=1)
