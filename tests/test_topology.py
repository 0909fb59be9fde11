"""Betti numbers of decision regions and sublevel sets, and H0 persistence, on nets with known answers."""

import numpy as np
import pytest
import shapely

import relugeo as rg
from relugeo.regions.topology import betti_numbers, critical_values, sublevel_betti, sublevel_persistence

SQUARE = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])
PLANE = rg.Slice(np.zeros(2), np.eye(2), SQUARE)
ABS = rg.AffineLayer(np.array([[1, 0], [-1, 0], [0, 1], [0, -1.0]]), np.zeros(4), 0.0)  # relu(+-x), relu(+-y)


def annulus():
    """L = | |x| + |y| - 0.6 | - 0.2: class 0 (L <= 0) is the diamond annulus 0.4 <= |x| + |y| <= 0.8."""
    return rg.PWANet([ABS, rg.AffineLayer(np.array([[1, 1, 1, 1], [-1, -1, -1, -1.0]]), np.array([-0.6, 0.6]), 0.0),
                      rg.AffineLayer(np.array([[1, 1.0]]), np.array([-0.2]), None)])


def blobs():
    """L = | |x| - 0.5 | + | |y| - 0.5 | - 0.3: class 0 is four diamonds of radius 0.3 around (+-0.5, +-0.5)."""
    W = np.array([[1, 1, 0, 0], [-1, -1, 0, 0], [0, 0, 1, 1], [0, 0, -1, -1.0]])
    return rg.PWANet([ABS, rg.AffineLayer(W, np.array([-0.5, 0.5, -0.5, 0.5]), 0.0),
                      rg.AffineLayer(np.ones((1, 4)), np.array([-0.3]), None)])


def shapely_betti(part, c, maps=None):
    """(b0, b1) of class c from shapely alone: each region clipped by the half-planes where c wins
    (``maps``: the scores on each region, default the logits), the pieces united (snapped to a fine
    grid), then polygons and holes counted."""
    maps = part.logit_maps if maps is None else maps
    if maps.shape[2] == 1:
        maps = np.concatenate([-maps, maps], axis=2)
    big = 100.0
    pieces = []
    for r, poly in enumerate(part.to_shapely()):
        G, o = maps[r, :2], maps[r, 2]
        for j in range(maps.shape[2]):
            if j == c:
                continue
            g, k = G[:, c] - G[:, j], o[c] - o[j]
            n = np.hypot(*g)
            if n == 0:
                poly = poly if k >= 0 else shapely.Polygon()
                continue
            g, k = g / n, k / n
            p = -k * g  # on the line g.u + k = 0; keep the side g.u + k >= 0
            t = np.array([-g[1], g[0]])
            half = shapely.Polygon([p - big * t, p + big * t, p + big * t + big * g, p - big * t + big * g])
            poly = shapely.intersection(poly, half)
        if poly.area > 1e-12:
            pieces.append(poly)
    union = shapely.union_all(pieces, grid_size=1e-9)
    parts = [g for g in shapely.get_parts(union) if g.area > 1e-9]
    holes = sum(sum(1 for ring in g.interiors if shapely.Polygon(ring).area > 1e-9) for g in parts)
    return len(parts), holes


def test_annulus_has_one_component_and_one_hole():
    part = rg.partition(annulus(), PLANE)
    t = betti_numbers(part).set_index("class")
    assert (t.loc[0, "b0"], t.loc[0, "b1"]) == (1, 1)
    # class 1: the inner diamond and the outer ring, which encloses the annulus
    assert (t.loc[1, "b0"], t.loc[1, "b1"]) == (2, 1)
    assert t.loc[0, "area"] == pytest.approx(2 * (0.8**2 - 0.4**2))
    assert t["area"].sum() == pytest.approx(4.0)
    for c in (0, 1):
        assert shapely_betti(part, c) == (t.loc[c, "b0"], t.loc[c, "b1"])


def test_four_blobs_and_their_sublevel_sets():
    part = rg.partition(blobs(), PLANE)
    t = betti_numbers(part).set_index("class")
    assert (t.loc[0, "b0"], t.loc[0, "b1"]) == (4, 0)
    assert (t.loc[1, "b0"], t.loc[1, "b1"]) == (1, 4)
    assert t.loc[0, "area"] == pytest.approx(4 * 2 * 0.3**2)
    for c in (0, 1):
        assert shapely_betti(part, c) == (t.loc[c, "b0"], t.loc[c, "b1"])
    # below -0.3 nothing; the four diamonds grow and meet at L = 0.2, enclosing the centre, which fills at 0.7
    s = sublevel_betti(part, [-0.4, -0.2, 0.1, 0.3, 0.69, 0.71])
    assert s[["b0", "b1"]].values.tolist() == [[0, 0], [4, 0], [4, 0], [1, 1], [1, 1], [1, 0]]
    # H0: four minima at -0.3; three die where the diamonds meet
    d = sublevel_persistence(part)
    np.testing.assert_allclose(d, [[-0.3, 0.2]] * 3 + [[-0.3, np.inf]], atol=1e-12)
    assert np.isclose(critical_values(part), 0.2).any() and critical_values(part).min() == pytest.approx(-0.3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_betti_numbers_agree_with_shapely_union(seed):
    rng = np.random.default_rng(seed)
    layers = [rg.AffineLayer(rng.normal(size=(10, 2)), rng.normal(size=10) * 0.5, 0.0),
              rg.AffineLayer(rng.normal(size=(10, 10)) / np.sqrt(10), rng.normal(size=10) * 0.5, 0.0),
              rg.AffineLayer(rng.normal(size=(3, 10)), rng.normal(size=3) * 0.3, None)]
    part = rg.partition(rg.PWANet(layers), rg.Slice(np.zeros(2), np.eye(2), 2 * SQUARE))
    t = betti_numbers(part)
    assert t["area"].sum() == pytest.approx(part.domain_area)
    for c in range(3):
        assert shapely_betti(part, c) == tuple(t.loc[c, ["b0", "b1"]]), c
    # the sublevel set of a logit at its largest value is the whole domain
    top = critical_values(part, logit=1).max()
    assert sublevel_betti(part, [top + 1], logit=1)[["b0", "b1"]].values.tolist() == [[1, 0]]
    d = sublevel_persistence(part, logit=1)
    assert np.isinf(d[:, 1]).sum() == 1 and (d[:, 1] >= d[:, 0]).all()
    # H0 counted by the diagram equals b0 of the sublevel sets at levels between critical values
    levels = critical_values(part, logit=1)
    gap = np.diff(levels) > 1e-6 * (levels[-1] - levels[0])  # levels well between two critical values
    mids = (0.5 * (levels[1:] + levels[:-1]))[gap][:: max(1, gap.sum() // 15)]
    sub = sublevel_betti(part, mids, logit=1)
    alive = ((d[:, 0][None, :] <= mids[:, None]) & (d[:, 1][None, :] > mids[:, None])).sum(axis=1)
    np.testing.assert_array_equal(sub["b0"].to_numpy(), alive)
    # and both Betti numbers of a few sublevel sets against shapely
    f = part.logit_maps[:, :, 1]
    check = np.r_[np.flatnonzero(sub["b1"] > 0)[:2], np.arange(0, len(sub), max(1, len(sub) // 3))]
    for level, b0, b1 in sub.values[check]:
        maps = np.stack([level - f, f - level], axis=2)
        maps[:, :2] = np.stack([-f[:, :2], f[:, :2]], axis=2)
        assert shapely_betti(part, 0, maps) == (b0, b1), level
    assert sub["b1"].max() >= 1 or seed != 0  # seed 0's filtration encloses a hole, checked above


def test_a_sliver_region_is_neither_a_component_nor_a_hole():
    # three lines bound a triangle of area 5e-19 at the origin, inside class 0 (L0 = relu(x) + 0.3 > relu(y))
    net = rg.PWANet([rg.AffineLayer(np.array([[1, 0], [0, 1], [1, 1.0]]), np.array([0, 0, -1e-9]), 0.0),
                     rg.AffineLayer(np.array([[1, 0, 0], [0, 1, 0.0]]), np.array([0.3, 0.0]), None)])
    part = rg.partition(net, PLANE)
    assert part.areas.min() < 1e-18
    t = betti_numbers(part)
    assert t[["b0", "b1"]].values.tolist() == [[1, 0], [1, 0]]
    assert t["area"].sum() == pytest.approx(4.0)


def test_topology_rejects_bad_input():
    part = rg.partition(blobs(), PLANE)
    with pytest.raises(ValueError, match=r"logit must be an integer in \[0, 1\); got 3"):
        sublevel_persistence(part, logit=3)
    with pytest.raises(ValueError, match="levels must be finite"):
        sublevel_betti(part, [np.nan])
    with pytest.raises(TypeError, match="part must be a relugeo.Partition"):
        betti_numbers("x")


def test_cli_topology_writes_tables_and_figure(tmp_path):
    import pandas as pd
    import torch
    from torch import nn
    from typer.testing import CliRunner

    from relugeo.cli import app

    net = blobs()
    m = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        for i, layer in zip((0, 2, 4), net.layers):
            m[i].weight.copy_(torch.from_numpy(layer.weight))
            m[i].bias.copy_(torch.from_numpy(layer.bias))
    rg.save(tmp_path / "blobs.pt", m)
    np.save(tmp_path / "pts.npy", np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]))
    out = tmp_path / "topo"
    result = CliRunner().invoke(app, ["topology", str(tmp_path / "blobs.pt"), "--data", str(tmp_path / "pts.npy"),
                                      "--through", "0,1,2", "--levels", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "class 0: b0 = 4, b1 = 0" in result.output
    betti = pd.read_csv(out / "betti.csv")
    assert betti[["b0", "b1"]].values.tolist() == [[4, 0], [1, 4]]
    assert len(pd.read_csv(out / "sublevel.csv")) == 7
    diagram = pd.read_csv(out / "persistence.csv")
    np.testing.assert_allclose(diagram["birth"], -0.3, atol=1e-12)
    assert (out / "topology.png").is_file()
    bad = CliRunner().invoke(app, ["topology", str(tmp_path / "blobs.pt"), "--data", str(tmp_path / "pts.npy"),
                                   "--through", "0,1,2", "--logit", "2", "--out", str(out)])
    assert bad.exit_code == 2 and "logit must be an integer" in bad.output


@pytest.mark.parametrize("make, curves", [(annulus, 2), (blobs, 4)])
def test_decision_boundary_graph_has_one_closed_curve_per_loop(make, curves):
    from scipy.sparse.csgraph import connected_components

    part = rg.partition(make(), PLANE)
    g = part.decision_boundary_graph()
    assert g.shape == (len(part.decision_boundary),) * 2
    assert connected_components(g, directed=False)[0] == curves
    assert (np.asarray(g.sum(axis=1)).ravel() == 2).all()  # closed curves: every piece meets two others
