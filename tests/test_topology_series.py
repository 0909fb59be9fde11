"""Topology of the classes over checkpoints (track(topology=True)) and the topology command's new outputs."""

import numpy as np
import pandas as pd
import pytest
import torch
from test_topology import PLANE, annulus, blobs
from torch import nn
from typer.testing import CliRunner

import relugeo as rg
from relugeo.cli import app
from relugeo.regions.topology_series import slice_topology


def module(net):
    """The 2-4-4-1 torch module of a PWANet whose second layer has at most 4 neurons (padded with dead ones)."""
    m = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        for i, layer in zip((0, 2, 4), net.layers):
            w = np.zeros(tuple(m[i].weight.shape))
            b = np.full(m[i].bias.shape, -1.0 if i == 2 else 0.0)
            if i == 4:
                w[:, : layer.weight.shape[1]] = layer.weight
            else:
                w[: layer.weight.shape[0], : layer.weight.shape[1]] = layer.weight
            b[: len(layer.bias)] = layer.bias
            m[i].weight.copy_(torch.from_numpy(w))
            m[i].bias.copy_(torch.from_numpy(b))
    return m


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("topo")
    (root / "ckpt").mkdir()
    rg.save(root / "ckpt" / "step_0000.pt", module(annulus()))
    rg.save(root / "ckpt" / "step_0010.pt", module(blobs()))
    return root


def test_track_topology_table(ckpt, tmp_path):
    X = np.random.default_rng(0).uniform(-1, 1, size=(10, 2))
    res = rg.track(ckpt / "ckpt", X, slices=[PLANE], methods=(), points=4, topology=True, out=tmp_path)
    t = res.topology
    assert list(t.columns) == ["checkpoint", "step", "slice", "class", "b0", "b1", "area", "minima", "saddles",
                               "maxima"]
    assert t[["step", "class", "b0", "b1"]].values.tolist() == [[0, 0, 1, 1], [0, 1, 2, 1], [10, 0, 4, 0],
                                                                [10, 1, 1, 4]]
    # class 0 of the blobs net is most confident (-L largest) at the four blob centres
    assert t.loc[(t["step"] == 10) & (t["class"] == 0), "maxima"].item() == 4
    assert (t["minima"] - t["saddles"] + t["maxima"] == 1).all()  # Euler characteristic of the square
    for step, net in ((0, annulus()), (10, blobs())):
        direct = slice_topology(rg.partition(net, PLANE))
        got = t[t["step"] == step].drop(columns=["checkpoint", "step", "slice"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, direct, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "topology.csv"), t, check_dtype=False)
    # a second run resumes every checkpoint from disk and recomputes the partitions for the table
    again = rg.track(ckpt / "ckpt", X, slices=[PLANE], methods=(), points=4, topology=True, out=tmp_path)
    pd.testing.assert_frame_equal(again.topology, t)
    assert again.partitions is None
    assert rg.track(ckpt / "ckpt", X, slices=[PLANE], methods=(), points=4).topology is None


def test_cli_track_topology_writes_table_and_figure(ckpt, tmp_path):
    np.save(tmp_path / "pts.npy", np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["track", str(ckpt / "ckpt"), "--data", str(tmp_path / "pts.npy"),
                                      "--methods", "none", "--through", "0,1,2", "--animate", "0", "--topology",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "topology.csv")
    assert len(table) == 4 and (out / "topology.png").is_file()
    # the slice through the three corners covers the square [-1, 1]^2 (and a margin): the blobs are inside
    assert table.loc[(table["step"] == 10) & (table["class"] == 0), "b0"].item() == 4


def test_topology_over_steps_figure_rejects_other_tables():
    from relugeo.viz.topology_plot import topology_over_steps_figure

    with pytest.raises(ValueError, match=r"missing \['b0'"):
        topology_over_steps_figure(pd.DataFrame({"step": [0], "slice": [0], "class": [0]}))


def test_cli_topology_writes_critical_points_and_h1(ckpt, tmp_path):
    pytest.importorskip("gudhi")
    np.save(tmp_path / "pts.npy", np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]))
    out = tmp_path / "topo"
    result = CliRunner().invoke(app, ["topology", str(ckpt / "ckpt" / "step_0010.pt"), "--data",
                                      str(tmp_path / "pts.npy"), "--through", "0,1,2", "--levels", "5",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 minima" in result.output and "#min - #saddles + #max = 1" in result.output
    crit = pd.read_csv(out / "critical.csv")
    mins = crit[crit["kind"] == "minimum"].sort_values(["value", "x", "y"]).head(4)
    np.testing.assert_allclose(mins["value"], -0.3, atol=1e-9)
    d = pd.read_csv(out / "diagrams.csv")
    h1 = d[d["dim"] == 1]
    np.testing.assert_allclose(h1[["birth", "death"]].to_numpy(), [[0.2, 0.7]], atol=1e-9)
    np.testing.assert_allclose(d.loc[d["dim"] == 0, "birth"], -0.3, atol=1e-9)
    assert (out / "topology.png").is_file()


def test_cli_topology_without_gudhi_says_so(ckpt, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_gudhi(name, *args, **kwargs):
        if name == "gudhi":
            raise ImportError("no gudhi here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gudhi)
    np.save(tmp_path / "pts.npy", np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]))
    out = tmp_path / "topo"
    result = CliRunner().invoke(app, ["topology", str(ckpt / "ckpt" / "step_0010.pt"), "--data",
                                      str(tmp_path / "pts.npy"), "--through", "0,1,2", "--levels", "3",
                                      "--no-figure", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "H1 persistence skipped: it needs gudhi" in result.output
    assert (out / "critical.csv").is_file() and not (out / "diagrams.csv").exists()
