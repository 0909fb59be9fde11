"""The first call of a process says when numba compiles, and compiles every stage once."""

import numpy as np

import relugeo as rg
from relugeo.regions import warmup


def test_cache_is_warm_once_the_kernels_ran():
    net = warmup._tiny_net((2, 3, 1))
    rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 1.0))
    assert warmup.cache_is_warm()


def test_cold_cache_is_announced_with_a_line_per_stage(monkeypatch, capsys):
    monkeypatch.setattr(warmup, "_DONE", [])
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: False)
    warmup.ensure_compiled()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("relugeo: compiling numba kernels for this machine; this happens once")
    stages = [line for line in err if line.startswith("relugeo:   [")]
    assert [s.split("] ")[1].split(":")[0] for s in stages] == [
        "2-D partition", "1-D partition", "2-D local complexity", "1-D local complexity"]
    assert err[-1].startswith("relugeo: kernels compiled in ")
    warmup.ensure_compiled()  # once per process
    assert capsys.readouterr().err == ""


def test_warm_cache_is_silent(monkeypatch, capsys):
    monkeypatch.setattr(warmup, "_DONE", [])
    monkeypatch.setattr(warmup, "cache_is_warm", lambda: True)
    warmup.ensure_compiled()
    assert capsys.readouterr().err == ""


def test_compile_command_reports_threads_and_stages():
    from typer.testing import CliRunner

    from relugeo.cli import app

    out = CliRunner().invoke(app, ["compile"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("threads: ") and "CPUs available" in lines[0]
    assert sum(line.startswith("  [") for line in lines) == 4
    assert lines[-1].startswith("kernels ")
