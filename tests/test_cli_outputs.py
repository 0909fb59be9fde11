"""Outputs that survive and read back: writers checked before computing, unreadable checkpoints skipped,
saved partitions drawn again, and points drawn only near the plane."""

import sys

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
    """Three checkpoints of a 6-10-10-3 MLP, labelled points, and one file that is no checkpoint."""
    torch.manual_seed(0)
    model = build_module("mlp:6-10-10-3:relu")
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    for step in (0, 10, 20):
        rg.save(ckpts / f"step_{step}.pt", model)
    X = np.random.default_rng(0).normal(size=(12, 6))
    np.savez(tmp_path / "points.npz", X=X, y=np.arange(12) % 3)
    return tmp_path


def test_parquet_without_pyarrow_fails_before_computing(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = run_dir / "lc.parquet"
    res = runner.invoke(app, ["lc", str(run_dir / "ckpts"), "--data", str(run_dir / "points.npz"), "-r", "0.5",
                              "--out", str(out)])
    assert res.exit_code == 2
    assert res.output == (f"error: --out {out} needs pyarrow to write Parquet: pip install 'relugeo[parquet]', or "
                          f"write a .csv\n")
    res = runner.invoke(app, ["metrics", str(run_dir / "ckpts"), "--data", str(run_dir / "points.npz"),
                              "--out", str(out)])
    assert res.exit_code == 2 and "needs pyarrow" in res.output
    assert not out.exists()


def test_lc_on_a_directory_skips_an_unreadable_checkpoint_and_exits_1(run_dir):
    (run_dir / "ckpts" / "step_15.pt").write_bytes(b"\x00" * 64)
    out = run_dir / "lc.csv"
    res = runner.invoke(app, ["lc", str(run_dir / "ckpts"), "--data", str(run_dir / "points.npz"), "-r", "0.5",
                              "--method", "vertex", "-P", "3", "--out", str(out)])
    assert res.exit_code == 1
    assert "warning: skipped step_15.pt: checkpoint" in res.output
    assert ("error: 1 of 4 checkpoints could not be read and are not in the table: step_15.pt" in res.output)
    table = pd.read_csv(out)
    assert list(table["checkpoint"].unique()) == ["step_0.pt", "step_10.pt", "step_20.pt"]
    assert len(table) == 3 * 12


def test_a_saved_partition_reads_back_and_verifies(run_dir):
    X = np.load(run_dir / "points.npz")["X"]
    net = rg.load(run_dir / "ckpts" / "step_20.pt")
    part = rg.partition(net, rg.Slice.through(X[0], X[1], X[2]))
    part.save(run_dir / "part.npz")
    back = rg.Partition.load(run_dir / "part.npz")
    for name in ("vertices", "ring_offsets", "edge_layer", "edge_neuron", "patterns", "logit_maps"):
        np.testing.assert_array_equal(getattr(back, name), getattr(part, name))
    np.testing.assert_array_equal(back.areas, part.areas)
    np.testing.assert_array_equal(back.decision_boundary, part.decision_boundary)
    np.testing.assert_array_equal(back.slice.anchors, part.slice.anchors)
    np.testing.assert_array_equal(back.net.forward(X), net.forward(X))
    assert back.verify()["ok"]
    np.savez(run_dir / "other.npz", X=X)
    with pytest.raises(rg.RelugeoError, match="is not a saved relugeo partition"):
        rg.Partition.load(run_dir / "other.npz")
    np.savez(run_dir / "pickled.npz", format=np.array(["relugeo-partition", None], dtype=object))
    with pytest.raises(rg.RelugeoError, match="Object arrays cannot be loaded when allow_pickle=False"):
        rg.Partition.load(run_dir / "pickled.npz")


def test_relugeo_partition_writes_what_relugeo_plot_draws(run_dir):
    part_file, png = run_dir / "part.npz", run_dir / "part.png"
    res = runner.invoke(app, ["partition", str(run_dir / "ckpts" / "step_20.pt"), "--data", str(run_dir / "points.npz"),
                              "--through", "0,1,2", "--out", str(part_file)])
    assert res.exit_code == 0, res.output
    n_regions = rg.Partition.load(part_file).n_regions
    assert res.output.startswith(f"{n_regions} regions in ")
    res = runner.invoke(app, ["plot", str(part_file), "--dpi", "50", "--out", str(png)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"{n_regions} regions in ") and png.read_bytes()[:4] == b"\x89PNG"
    res = runner.invoke(app, ["plot", str(part_file), "--data", str(run_dir / "points.npz"), "--points",
                              "--max-distance", "1e-9", "--dpi", "50", "--out", str(png)])
    assert res.exit_code == 0, res.output
    assert ("drew the 3 of 12 points within 1e-09 of the slice's plane (--max-distance), projected onto it"
            in res.output)
    res = runner.invoke(app, ["partition", str(run_dir / "ckpts" / "step_20.pt"), "--data", str(run_dir / "points.npz"),
                              "--through", "0,1,2", "--out", str(run_dir / "part.csv")])
    assert res.exit_code == 2 and res.output == "error: --out must end in .npz; got 'part.csv'\n"


def test_plot_points_default_to_those_near_the_plane(run_dir):
    png = run_dir / "p.png"
    res = runner.invoke(app, ["plot", str(run_dir / "ckpts" / "step_20.pt"), "--data", str(run_dir / "points.npz"),
                              "--through", "0,1,2", "--points", "--dpi", "50", "--out", str(png)])
    assert res.exit_code == 0, res.output
    X = np.load(run_dir / "points.npz")["X"]
    sl = rg.Slice.through(X[0], X[1], X[2], pad=0.1)
    _, dist = rg.viz.slice_coordinates(sl, X, return_distance=True)
    limit = 0.1 * np.ptp(sl.vertices[:, 0])
    assert f"drew the {int((dist <= limit).sum())} of 12 points within {limit:.3g} of the slice's plane" in res.output
    assert 3 <= (dist <= limit).sum() < 12


def test_demo_refuses_a_directory_with_other_files_and_replaces_only_its_own(tmp_path):
    from relugeo.demo import clear_previous_run

    mine = tmp_path / "notes.txt"
    mine.write_text("keep me")
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--steps", "1"])
    assert res.exit_code == 2
    assert res.output == (f"error: --out {tmp_path} holds files the demo does not write (notes.txt); choose a new or "
                          f"empty directory\n")
    assert mine.read_text() == "keep me"
    previous = tmp_path / "previous"
    (previous / "checkpoints").mkdir(parents=True)
    for name in ("partition.png", "lc.png", "lc.csv", "summary.txt", "checkpoints/step_0.pt", "checkpoints/step_9.pt"):
        (previous / name).write_text("old")
    assert clear_previous_run(previous) == 6
    assert [p.name for p in previous.rglob("*")] == ["checkpoints"]
    (previous / "checkpoints" / "mine.pt").write_text("x")
    with pytest.raises(ValueError, match=r"holds files the demo does not write \(checkpoints/mine.pt\)"):
        clear_previous_run(previous)


def test_messages_use_the_commands_spellings():
    from relugeo.cli import _cli_words

    assert _cli_words("pass trust=True only if you trust the file's origin") == (
        "pass --trust only if you trust the file's origin")
    assert _cli_words("use another directory, or resume=False to recompute everything") == (
        "use another directory, or --no-resume to recompute everything")
    assert _cli_words("pass arch='mlp:4-8-3:relu'; drop arch= or pass the matching spec") == (
        "pass --arch 'mlp:4-8-3:relu'; drop --arch or pass the matching spec")
    assert _cli_words("name its class with arch='module:model.py:Net' (or 'module:pkg.mod:Net')") == (
        "name its class with --module 'model.py:Net' (or 'pkg.mod:Net')")


def test_metrics_layers_are_numbered_from_1(run_dir):
    out = run_dir / "m.csv"
    res = runner.invoke(app, ["metrics", str(run_dir / "ckpts" / "step_0.pt"), "--data", str(run_dir / "points.npz"),
                              "--metrics", "inversion", "--layers", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(out, dtype={"layer": str})["layer"].dropna()) == {"2"}
    res = runner.invoke(app, ["metrics", str(run_dir / "ckpts" / "step_0.pt"), "--data", str(run_dir / "points.npz"),
                              "--metrics", "inversion", "--layers", "0", "--out", str(out)])
    assert res.exit_code == 2 and "(1 is the first hidden layer); got '0'" in res.output


def test_track_prints_progress_like_the_command(run_dir, capsys):
    X = np.load(run_dir / "points.npz")["X"]
    rg.track(run_dir / "ckpts", {"data": X}, slices=0, radius={"vertex": [0.5]}, n_directions=2, points=6)
    assert capsys.readouterr().err.splitlines() == ["  1/3 checkpoints", "  2/3 checkpoints", "  3/3 checkpoints"]
    rg.track(run_dir / "ckpts", {"data": X}, slices=0, radius={"vertex": [0.5]}, n_directions=2, points=6,
             progress=False)
    assert capsys.readouterr().err == ""
