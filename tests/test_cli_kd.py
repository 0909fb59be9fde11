"""`relugeo partition` on k-D slices: through four points, around one point (the LC neighbourhood),
the saved arrays and region tables, and bad input refused with nothing written."""

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import relugeo as rg
from relugeo.cli import app
from relugeo.nets import build_module

runner = CliRunner()


@pytest.fixture()
def run_dir(tmp_path):
    torch.manual_seed(0)
    rg.save(tmp_path / "net.pt", build_module("mlp:6-8-8-3:relu"), meta={"step": 0})
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(6, 6)))
    return tmp_path


def test_partition_through_four_points_writes_a_kd_partition(run_dir):
    out = run_dir / "part.npz"
    res = runner.invoke(app, ["partition", str(run_dir / "net.pt"), "--data", str(run_dir / "points.npy"),
                              "--through", "0,1,2,3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "of a 3-D domain" in res.output
    saved = rg.PartitionKD.load(out)
    X = np.load(run_dir / "points.npy")
    sl = rg.Slice.through_points(X[:4])
    direct = rg.partition(rg.load(run_dir / "net.pt"), sl)
    assert saved.n_regions == direct.n_regions > 5
    np.testing.assert_array_equal(saved.patterns, direct.patterns)
    np.testing.assert_allclose(saved.volumes, direct.volumes, rtol=1e-12)
    assert saved.verify()["ok"]
    # the four points lie in the slice, inside the cube
    u = sl.anchors
    np.testing.assert_allclose(sl.to_input(u), X[:4], atol=1e-12)
    assert (np.abs(u) < sl.scale).all()
    with pytest.raises(rg.RelugeoError, match="PartitionKD.load"):
        rg.Partition.load(out)
    png = run_dir / "sections.png"
    res = runner.invoke(app, ["plot", str(out), "--out", str(png), "--dpi", "50"])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000


def test_partition_around_a_point_is_the_lc_neighbourhood(run_dir):
    pytest.importorskip("pyarrow")
    out = run_dir / "regions.parquet"
    res = runner.invoke(app, ["partition", str(run_dir / "net.pt"), "--data", str(run_dir / "points.npy"),
                              "--around", "2", "--dim", "3", "--radius", "0.8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out)
    net = rg.load(run_dir / "net.pt")
    X = np.load(run_dir / "points.npy")
    lc = rg.local_complexity(net, X[2:3], 0.8, dim=3)
    assert len(table) == lc.regions[0] > 1
    assert table["volume"].sum() == pytest.approx((2 * 0.8) ** 3 / 6, rel=1e-9)
    assert list(table.columns[:5]) == ["region", "volume", "n_vertices", "n_facets", "prediction"]
    assert table["pattern"].str.len().eq(16).all() and table["pattern"].is_unique


@pytest.mark.parametrize("args, message", [
    (["--through", "0,1,2,3", "--out", "part.txt"], "must end in .npz, .csv or .parquet"),
    (["--through", "0,1,2,3", "--around", "0"], "exactly one of"),
    (["--through", "0,1,2,9"], "only 6 rows"),
    (["--through", "0,1,2,3", "--max-regions", "2"], "max_regions = 2"),
    (["--around", "0", "--dim", "9"], "--dim must be from 1 to 8"),
])
def test_partition_kd_bad_input(run_dir, args, message):
    args = [a if a != "part.txt" else str(run_dir / a) for a in args]
    out = ["--out", str(run_dir / "part.npz")] if "--out" not in args else []
    res = runner.invoke(app, ["partition", str(run_dir / "net.pt"), "--data", str(run_dir / "points.npy"),
                              *args, *out])
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert not (run_dir / "part.npz").exists() and not (run_dir / "part.txt").exists()
