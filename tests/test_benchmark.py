"""`relugeo bench` and relugeo.benchmark: the suite's counts are checked, mismatches fail loudly,
the JSON carries the machine, user networks run the same measurements, bad input is refused."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import relugeo as rg
from relugeo import benchmark
from relugeo.benchmark import suite as bench_suite
from relugeo.cli import app
from relugeo.nets import build_module

runner = CliRunner()

# small, fast cases: one of each kind of domain
SMALL = ["2d w16-d3", "1d digits 0-1", "lc2d digits200 r0.25"]


def bench_args(*cases: str) -> list[str]:
    return ["bench", *[a for c in cases for a in ("--case", c)]]


@pytest.fixture()
def user_files(tmp_path):
    """A bare state_dict of a small MLP (needs --arch) and a point file."""
    torch.manual_seed(0)
    model = build_module("mlp:6-12-12-3:relu")
    torch.save(model.state_dict(), tmp_path / "model.pt")
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(15, 6)))
    return tmp_path


def test_suite_cases_are_named_once_recorded_and_nested():
    full, quick = benchmark.cases("full"), benchmark.cases("quick")
    names = [c.name for c in full]
    assert len(set(names)) == len(names)
    assert {c.name for c in quick} <= set(names)
    assert all(c.expected and all(v > 0 for v in c.expected.values()) for c in full)
    assert {c.build().kind for c in quick} == {"partition", "lc"}
    assert {c.build().k for c in quick} == {1, 2}
    with pytest.raises(ValueError, match="suite must be one of"):
        benchmark.cases("huge")


def test_seeded_nets_match_bench_anchor_construction():
    torch.manual_seed(0)
    expected = build_module("mlp:2-16-16-16-1:relu")
    state = torch.random.get_rng_state()
    bench_suite.seeded_net.cache_clear()
    net = benchmark.seeded_net("mlp:2-16-16-16-1:relu", 0)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone
    np.testing.assert_array_equal(net.layers[0].weight, expected[0].weight.detach().double().numpy())


def test_cli_runs_a_subset_checks_counts_and_writes_the_json(tmp_path):
    out = tmp_path / "bench.json"
    res = runner.invoke(app, [*bench_args(*SMALL), "--json", str(out)])
    assert res.exit_code == 0, res.output
    for name in SMALL:
        assert name in res.output
    assert "warm-up" in res.output
    data = json.loads(out.read_text())
    assert data["format"] == "relugeo-bench" and data["suite_version"] == benchmark.SUITE_VERSION
    assert data["ok"] is True and data["problems"] == []
    assert data["methods"] == ["exact", "grid", "vertex"] and data["device"] == "cpu"
    assert data["warmup_seconds"] >= 0 and data["total_seconds"] > 0
    m = data["machine"]
    for key in ("cpu_model", "cpu_count", "python", "blas", "gpu", "threads"):
        assert key in m
    assert {"numpy", "numba", "torch", "relugeo"} <= set(m["versions"])
    assert isinstance(m["gpu"]["cuda_available"], bool)
    by_name = {c["name"]: c for c in data["cases"]}
    assert list(by_name) == SMALL
    for c in data["cases"]:
        assert c["ok"] and c["got"] == c["expected"]
        ex = c["methods"]["exact"]
        assert ex["rounds"] == len(ex["all_seconds"]) and ex["regions"] == c["got"]["regions"]
        assert 0 <= c["methods"]["grid"]["missed"] <= ex["regions"]
        assert c["methods"]["grid"]["time_vs_exact"] > 0
    part = by_name["2d w16-d3"]
    assert part["kind"] == "partition" and part["dim"] == 2 and "vertex" not in part["methods"]
    assert part["methods"]["exact"]["verified"] is True
    lc = by_name["lc2d digits200 r0.25"]
    vx = lc["methods"]["vertex"]
    assert lc["kind"] == "lc" and vx["n_directions"] == 25
    assert 0 <= vx["same_neighbourhood_missed"] <= lc["got"]["neurons"]


def test_a_changed_recorded_count_fails_loudly_naming_the_case(tmp_path, monkeypatch):
    cases = tuple(dataclasses.replace(c, expected={"regions": 177}) if c.name == "2d w16-d3" else c
                  for c in bench_suite.CASES)
    monkeypatch.setattr(bench_suite, "CASES", cases)
    out = tmp_path / "bench.json"
    res = runner.invoke(app, [*bench_args("2d w16-d3", "1d digits 0-1"), "--methods", "exact", "--json", str(out)])
    assert res.exit_code == 1
    assert "2d w16-d3: regions expected 177, got 178" in res.output
    failed = [line for line in res.output.splitlines() if line.startswith("FAILED ")]
    assert failed == ["FAILED 2d w16-d3: regions expected 177, got 178"]
    data = json.loads(out.read_text())
    assert data["ok"] is False
    assert data["problems"] == ["2d w16-d3: regions expected 177, got 178"]
    # the library: run() reports, check() raises with the same words
    result = benchmark.run([c.build() for c in cases if c.name == "2d w16-d3"], methods="exact")
    with pytest.raises(benchmark.BenchmarkMismatchError, match="2d w16-d3: regions expected 177, got 178"):
        result.check()


def test_lc_counts_are_checked_too():
    case = next(c for c in benchmark.cases("quick") if c.name == "lc2d digits200 r0.25")
    w = dataclasses.replace(case, expected={**case.expected, "neurons": case.expected["neurons"] + 1}).build()
    result = benchmark.run([w], methods="exact")
    assert not result.ok
    expected, got = case.expected["neurons"] + 1, case.expected["neurons"]
    assert result.problems == [f"{case.name}: neurons expected {expected:,}, got {got:,}"]


def test_counts_do_not_depend_on_the_thread_count():
    import numba

    workloads = [c.build() for c in benchmark.cases("quick") if c.name in ("2d digits 0,1,2", "lc2d digits200 r0.25")]
    for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
        result = benchmark.run(workloads, methods="exact", threads=threads)
        assert result.ok, result.problems
        assert result.machine["threads"]["numba"] == threads


def test_user_network_gets_the_same_measurements(user_files, tmp_path):
    out = tmp_path / "mine.json"
    res = runner.invoke(app, ["bench", "--model", str(user_files / "model.pt"), "--arch", "mlp:6-12-12-3:relu",
                              "--data", str(user_files / "points.npy"), "--slices", "2", "--segments", "1",
                              "--points", "10", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    kinds = [(c["kind"], c["dim"]) for c in data["cases"]]
    assert kinds == [("partition", 2), ("partition", 2), ("partition", 1), ("lc", 2)]
    assert all(c["ok"] and c["expected"] is None for c in data["cases"])
    assert "verified" in res.output
    X = np.load(user_files / "points.npy")
    net = rg.load(user_files / "model.pt", "mlp:6-12-12-3:relu")
    first = data["cases"][0]
    rows = [int(i) for i in first["name"].split()[-1].split(",")]
    assert first["got"]["regions"] == rg.partition(net, rg.Slice.through(*X[rows], pad=0.1)).n_regions
    lc = data["cases"][-1]
    assert lc["points"] == 10 and lc["radius"] == pytest.approx(benchmark.default_radius(X))


@pytest.mark.parametrize(
    "args,match",
    [
        (["--methods", "grid,vertex"], "must include exact"),
        (["--methods", "exact,sampled"], "subset of exact,grid,vertex"),
        (["--suite", "huge"], "--suite must be one of quick, full"),
        (["--device", "tpu"], "device must be one of cpu, cuda"),
        (["--case", "no such case"], "unknown --case 'no such case'"),
        (["--data", "points.npy"], "pass them with --model"),
        (["--threads", "0"], "threads must be between 1"),
    ],
)
def test_bad_options_fail_cleanly(args, match):
    res = runner.invoke(app, ["bench", *args])
    assert res.exit_code == 2, res.output
    assert match in res.output


def test_bad_user_inputs_fail_cleanly(user_files):
    model, points = str(user_files / "model.pt"), str(user_files / "points.npy")
    res = runner.invoke(app, ["bench", "--model", model, "--arch", "mlp:6-12-12-3:relu"])
    assert res.exit_code == 2 and "--model needs --data" in res.output
    np.save(user_files / "wrong.npy", np.zeros((5, 4)))
    res = runner.invoke(app, ["bench", "--model", model, "--arch", "mlp:6-12-12-3:relu", "--data",
                              str(user_files / "wrong.npy")])
    assert res.exit_code == 2 and "wrong.npy: its points have 4 coordinates, but the network" in res.output
    res = runner.invoke(app, ["bench", "--model", str(user_files / "nope.pt"), "--data", points])
    assert res.exit_code == 2 and "nope.pt" in res.output
    res = runner.invoke(app, ["bench", "--model", model, "--arch", "mlp:6-12-12-3:relu", "--data", points,
                              "--radius", "-1"])
    assert res.exit_code == 2 and "radius" in res.output
    np.save(user_files / "two.npy", np.random.default_rng(1).normal(size=(2, 6)))
    res = runner.invoke(app, ["bench", "--model", model, "--arch", "mlp:6-12-12-3:relu", "--data",
                              str(user_files / "two.npy")])
    assert res.exit_code == 2 and "need at least 3 points" in res.output


def test_cuda_is_refused_rather_than_run_on_the_cpu(monkeypatch):
    monkeypatch.setattr("relugeo.benchmark.machine.gpu_info", lambda: {"cuda_available": False, "devices": []})
    res = runner.invoke(app, ["bench", "--device", "cuda", "--case", "2d w16-d3"])
    assert res.exit_code == 2 and "no usable CUDA GPU" in res.output
    with pytest.raises(benchmark.BenchmarkError, match="no usable CUDA GPU"):
        benchmark.engine_options("cuda")
    assert benchmark.engine_options("cpu") == {"device": "cpu"}
    with pytest.raises(benchmark.BenchmarkError, match="device must be one of"):
        benchmark.engine_options("auto")


def test_list_prints_every_case_with_its_counts():
    res = runner.invoke(app, ["bench", "--list", "--suite", "full"])
    assert res.exit_code == 0
    for c in benchmark.cases("full"):
        assert c.name in res.output
    assert "20,714" in res.output


def test_grid_baselines_find_only_true_regions():
    net = benchmark.seeded_net("mlp:2-16-16-16-1:relu", 0)
    for sl in (rg.Slice.square(np.zeros(2), np.eye(2), 1.0), rg.Slice.segment([-1.0, -0.5], [1.0, 0.7])):
        exact = rg.partition(net, sl)
        found = benchmark.grid_patterns(net, sl, 64)
        assert 0 < len(found) <= exact.n_regions
        assert benchmark.pattern_set(found) <= benchmark.pattern_set(exact.patterns)
    X = benchmark.digits(20)
    big = benchmark.seeded_net("mlp:64-32-32-10:relu", 0)
    for dim in (1, 2):
        lc = rg.local_complexity(big, X, 0.5, dim=dim)
        counts = benchmark.lc_grid_regions(big, X, 0.5, dim, 16)
        assert np.all(counts >= 1) and np.all(counts <= lc.regions)
