"""Migration of regions between checkpoints: hand-computed strips, and track(match=True)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import relugeo as rg
from relugeo.regions.migration import migration, nearest_boundary_points

SQUARE = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])
PLANE = rg.Slice(np.zeros(2), np.eye(2), SQUARE)


def strips_module(shift):
    """Lines x = -0.5 + shift and x = 0.5 + shift; the logit is x - shift on the middle strip, so the
    decision boundary is the line x = shift."""
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64))
        m[0].bias.copy_(torch.tensor([0.5 - shift, -0.5 - shift], dtype=torch.float64))
        m[2].weight.copy_(torch.tensor([[1.0, -2.0]], dtype=torch.float64))
        m[2].bias.copy_(torch.tensor([-0.5], dtype=torch.float64))
    return m


def value(table, measure):
    row = table[(table["measure"] == measure) & (table["bin"] < 0)]
    assert len(row) == 1, measure
    return float(row["value"].iloc[0])


def test_strips_moved_right_by_hand():
    a = rg.partition(rg.from_torch(strips_module(0.0)), PLANE)
    b = rg.partition(rg.from_torch(strips_module(0.1)), PLANE)
    t = migration(a, b)
    assert value(t, "persisted") == 3 and value(t, "born") == value(t, "died") == 0
    # strips of area 1, 2, 1 move by 0.05, 0.1, 0.05 (the slice scale is 1)
    assert value(t, "displacement") == pytest.approx((0.05 + 0.2 + 0.05) / 4)
    # the new boundary x = 0.1 lies right of the left and middle centroids, left of the right one
    assert value(t, "toward_boundary") == pytest.approx((0.05 + 0.2 - 0.05) / 4)
    assert value(t, "toward_boundary_share") == pytest.approx(0.75)
    # distances 0.75, 0, 0.75 become 0.8, 0, 0.7
    assert value(t, "boundary_distance_change") == pytest.approx(0.0, abs=1e-12)
    band = t[t["measure"] == "band_persisted"].sort_values("bin")
    assert band["value"].tolist() == [1, 0, 0, 2, 0]  # bands 0-0.1, ..., 0.5-1, >= 1
    assert t[t["measure"].str.startswith("band_")]["value"].sum() == 3


def test_nearest_boundary_points():
    part = rg.partition(rg.from_torch(strips_module(0.1)), PLANE)
    near, dist = nearest_boundary_points(part, [[-0.7, 0.2], [0.9, -0.3]])
    np.testing.assert_allclose(near, [[0.1, 0.2], [0.1, -0.3]], atol=1e-12)
    np.testing.assert_allclose(dist, [0.8, 0.8])
    flat = rg.partition(rg.from_torch(strips_module(5.0)), PLANE)  # one class everywhere
    assert np.isnan(nearest_boundary_points(flat, [[0.0, 0.0]])[1]).all()


def test_track_match_writes_the_migration_table(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for step, shift in ((0, 0.0), (10, 0.1), (20, 0.15)):
        rg.save(ckpt / f"step_{step:04d}.pt", strips_module(shift))
    X = np.random.default_rng(0).uniform(-1, 1, size=(20, 2))
    res = rg.track(ckpt, X, slices=[PLANE], methods=(), points=5, match=True, out=tmp_path / "out",
                   distance_bins=[0, 0.5, np.inf])
    m = res.migration
    assert set(m["step_from"]) == {0, 10} and set(m["slice"]) == {0}
    first = m[m["step_from"] == 0]
    direct = migration(rg.partition(rg.from_torch(strips_module(0.0)), PLANE),
                       rg.partition(rg.from_torch(strips_module(0.1)), PLANE), bands=[0, 0.5, np.inf])
    np.testing.assert_allclose(first["value"].to_numpy(), direct["value"].to_numpy())
    back = pd.read_csv(tmp_path / "out" / "migration.csv")
    assert len(back) == len(m) and list(back.columns) == list(m.columns)
    assert res.partitions is None


def test_migration_rejects_bad_bands():
    a = rg.partition(rg.from_torch(strips_module(0.0)), PLANE)
    with pytest.raises(ValueError, match="bands must be increasing"):
        migration(a, a, bands=[0.5, 1])
    with pytest.raises(TypeError, match="corr must be a Correspondence"):
        migration(a, a, "x")


def test_cli_track_match_writes_table_and_figures(tmp_path):
    from typer.testing import CliRunner

    from relugeo.cli import app

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for step, shift in ((0, 0.0), (10, 0.1)):
        rg.save(ckpt / f"step_{step:04d}.pt", strips_module(shift))
    np.save(tmp_path / "pts.npy", np.array([[-0.9, -0.9], [0.9, -0.8], [0.1, 0.9], [0.3, 0.2]]))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["track", str(ckpt), "--data", str(tmp_path / "pts.npy"), "--methods", "none",
                                      "--through", "0,1,2", "--animate", "0", "--match", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("migration.csv", "flow.png", "events.png"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "migration.csv")
    assert value(table, "persisted") == 3


def test_flow_map_draws_one_arrow_per_persisted_region():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from relugeo.regions.correspondence import correspond
    from relugeo.viz.flow_plot import plot_events_by_band, plot_flow

    a = rg.partition(rg.from_torch(strips_module(0.0)), PLANE)
    b = rg.partition(rg.from_torch(strips_module(0.1)), PLANE)
    ax = plot_flow(a, b, correspond(a, b))
    quiver = [c for c in ax.collections if type(c).__name__ == "Quiver"]
    assert len(quiver) == 1 and quiver[0].N == 3
    np.testing.assert_allclose(np.sort(quiver[0].U), [0.05, 0.05, 0.1])
    plt.close(ax.figure)
    table = migration(a, b).assign(step_from=0)
    ax = plot_events_by_band(table, events=("persisted",))
    assert sum(p.get_height() for p in ax.patches) == 3
    with pytest.raises(ValueError, match="events must be among"):
        plot_events_by_band(table, events=("moved",))
    plt.close("all")
