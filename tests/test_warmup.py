"""The first call of a process says when numba compiles, and compiles every stage once."""

import numpy as np
import pytest

import relugeo as rg
from relugeo.regions import warmup


def test_cache_is_warm_once_the_kernels_ran():
    net = warmup._tiny_net((2, 3, 1))
    rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 1.0))
    assert warmup.cache_is_warm()


def test_cold_cache_is_announced_with_a_line_per_stage(monkeypatch, capsys):
    monkeypatch.setattr(warmup, "_DONE", set())
    monkeypatch.setattr(warmup, "cache_is_warm", lambda family="planar": False)
    warmup.ensure_compiled()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("relugeo: compiling numba kernels for this machine; this happens once")
    stages = [line for line in err if line.startswith("relugeo:   [")]
    assert [s.split("] ")[1].split(":")[0] for s in stages] == [
        "2-D partition", "1-D partition", "2-D local complexity", "1-D local complexity"]
    assert err[-1].startswith("relugeo: kernels compiled in ")
    warmup.ensure_compiled()  # once per process
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("family, what, stages", [
    ("k-D", "the k-D kernels (dimension 3 to 8)", ["3-D partition", "3-D local complexity"]),
    ("certified", "the certified-predicate kernels", ["certified predicates"]),
])
def test_other_families_are_announced_when_first_needed(family, what, stages, monkeypatch, capsys):
    monkeypatch.setattr(warmup, "_DONE", {"planar"})
    monkeypatch.setattr(warmup, "cache_is_warm", lambda f="planar": f != family)
    net = warmup._tiny_net((3, 4, 2))
    if family == "k-D":
        rg.partition(net, rg.Slice.cube(np.zeros(3), np.eye(3), 1.0))
    else:
        rg.local_complexity(net, np.zeros((1, 3)), 0.5, predicates="certified")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"relugeo: compiling {what} for this machine; this happens once")
    assert [line.split("] ")[1].split(":")[0] for line in err if line.startswith("relugeo:   [")] == stages
    assert family in warmup._DONE and warmup.cache_is_warm("planar")


def test_warm_cache_is_silent(monkeypatch, capsys):
    monkeypatch.setattr(warmup, "_DONE", set())
    monkeypatch.setattr(warmup, "cache_is_warm", lambda family="planar": True)
    warmup.ensure_compiled()
    assert capsys.readouterr().err == ""


def test_compile_command_reports_threads_and_stages():
    from typer.testing import CliRunner

    from relugeo.cli import app

    out = CliRunner().invoke(app, ["compile"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("threads: ") and "CPUs available" in lines[0]
    assert sum(line.startswith("  [") for line in lines) == 7  # every family: planar, k-D, certified
    assert lines[-1].startswith("kernels ")
