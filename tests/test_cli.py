"""The `relugeo` command: lc and partition on saved checkpoints, errors, atomic output."""

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
    """Three checkpoints of a small MLP and a point file."""
    torch.manual_seed(0)
    model = build_module("mlp:6-12-12-3:relu")
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    for step in (0, 5, 20):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        rg.save(ckpts / f"step_{step}.pt", model, meta={"step": step})
    X = np.random.default_rng(0).normal(size=(15, 6))
    np.savez(tmp_path / "points.npz", X=X, y=np.arange(15) % 3, group=np.array(["train"] * 10 + ["test"] * 5))
    np.save(tmp_path / "points.npy", X)
    return tmp_path


def test_lc_on_one_checkpoint_matches_the_library(run_dir):
    out = run_dir / "lc.csv"
    res = runner.invoke(app, ["lc", str(run_dir / "ckpts" / "step_5.pt"), "--data", str(run_dir / "points.npy"),
                              "--radius", "0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "mean exact local complexity" in res.output
    table = pd.read_csv(out)
    lc = rg.local_complexity(rg.load(run_dir / "ckpts" / "step_5.pt"), np.load(run_dir / "points.npy"), 0.5)
    np.testing.assert_array_equal(table["lc"], lc.lc)
    np.testing.assert_array_equal(table["regions"], lc.regions)


def test_lc_on_a_directory_writes_one_table_with_a_checkpoint_column(run_dir):
    out = run_dir / "lc.csv"
    res = runner.invoke(app, ["lc", str(run_dir / "ckpts"), "--data", str(run_dir / "points.npz"),
                              "-r", "0.3", "-r", "0.6", "--method", "vertex", "-P", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert len(table) == 3 * 2 * 15
    assert list(table["checkpoint"].unique()) == ["step_0.pt", "step_5.pt", "step_20.pt"]
    assert sorted(table["step"].unique()) == [0, 5, 20]
    assert set(table["group"]) == {"train", "test"}
    assert set(table["radius"]) == {0.3, 0.6}


def test_partition_command_writes_the_arrays(run_dir):
    out = run_dir / "part.npz"
    res = runner.invoke(app, ["partition", str(run_dir / "ckpts" / "step_20.pt"), "--data",
                              str(run_dir / "points.npy"), "--through", "0,1,2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        assert z["ring_offsets"].shape[0] - 1 == z["patterns"].shape[0] > 1
        assert z["areas"].sum() == pytest.approx(float(np.abs(np.diff(z["domain"][[0, 2]], axis=0)).prod()))
        X = np.load(run_dir / "points.npy")
        direct = rg.partition(rg.load(run_dir / "ckpts" / "step_20.pt"), rg.Slice.through(*X[:3]))
        np.testing.assert_array_equal(z["patterns"], direct.patterns)


@pytest.mark.parametrize(
    "args,match",
    [
        (["--radius", "-1"], "radius"),
        (["--radius", "0.5", "--method", "sampled"], "method"),
        (["--radius", "0.5", "--dim", "9"], "dim"),
    ],
)
def test_lc_bad_options_fail_cleanly_and_write_nothing(run_dir, args, match):
    out = run_dir / "bad.csv"
    res = runner.invoke(app, ["lc", str(run_dir / "ckpts"), "--data", str(run_dir / "points.npy"), "--out",
                              str(out), *args])
    assert res.exit_code == 2
    assert match in res.output
    assert not out.exists()
    assert not list(run_dir.glob(".bad.csv*"))


def test_lc_reports_missing_and_mismatched_inputs(run_dir):
    res = runner.invoke(app, ["lc", str(run_dir / "nope.pt"), "--data", str(run_dir / "points.npy"), "-r", "1"])
    assert res.exit_code == 2 and "not found" in res.output
    np.save(run_dir / "wrong.npy", np.zeros((4, 5)))
    res = runner.invoke(app, ["lc", str(run_dir / "ckpts"), "--data", str(run_dir / "wrong.npy"), "-r", "1"])
    assert res.exit_code == 2 and "wrong.npy: its points have 5 coordinates, but the network" in res.output
    res = runner.invoke(app, ["partition", str(run_dir / "ckpts" / "step_0.pt"), "--data",
                              str(run_dir / "points.npy"), "--through", "0"])
    assert res.exit_code == 2 and "--through takes 2 to 9 row indices" in res.output


def test_an_existing_output_survives_a_failed_run(run_dir):
    out = run_dir / "lc.csv"
    out.write_text("previous result\n")
    res = runner.invoke(app, ["lc", str(run_dir / "ckpts"), "--data", str(run_dir / "points.npy"),
                              "-r", "0.0", "--out", str(out)])
    assert res.exit_code == 2
    assert out.read_text() == "previous result\n"


def test_local_complexity_fans_out_over_a_client():
    class InlineClient:
        """The two dask.distributed.Client methods local_complexity uses, run in-process."""

        def __init__(self):
            self.tasks = 0

        def map(self, fn, *iterables):
            self.tasks += len(iterables[0])
            return [fn(*args) for args in zip(*iterables)]

        def gather(self, futures):
            return list(futures)

    net = rg.from_torch(build_module("mlp:6-12-12-3:relu"))
    X = np.random.default_rng(2).normal(size=(30, 6))
    client = InlineClient()
    fanned = rg.local_complexity(net, X, 0.7, batch_size=7, client=client)
    local = rg.local_complexity(net, X, 0.7)
    assert client.tasks == 5
    np.testing.assert_array_equal(fanned.neurons, local.neurons)
    np.testing.assert_array_equal(fanned.regions, local.regions)
