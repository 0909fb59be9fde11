"""Shared fixtures of the bench suites: thread limits, warmed-up timing, exact references.

Run the suites (they are not part of ``tests/``) with::

    NUMBA_NUM_THREADS=1 python -m pytest bench -q --benchmark-json bench/results.json
    python bench/report.py bench/results.json

``NUMBA_NUM_THREADS`` sets the thread count of the whole run: the BLAS pool
and torch's intra-op pool are held to the same number, so ``=1`` gives
one-core numbers for every method alike.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import numba
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import relugeo as rg
from relugeo.benchmark.machine import cpu_model

_SESSION = {}


def n_threads() -> int:
    return int(numba.get_num_threads())


@pytest.fixture(scope="session", autouse=True)
def thread_limits():
    """Hold BLAS and torch to numba's thread count for the whole session."""
    n = n_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    with threadpool_limits(limits=n):
        yield {
            "numba_threads": n,
            "blas_threads": max((p["num_threads"] for p in threadpool_info()), default=n),
            "torch_threads": torch.get_num_threads(),
        }
    torch.set_num_threads(before)


class Bench:
    """Label a measurement, time it after one untimed call, attach its counts and rates.

    The untimed call keeps numba compilation (and torch.jit scripting) out of
    the numbers; pass ``warmup=False`` for pure NumPy baselines that compile
    nothing. Every round is one call; the report uses the median over rounds
    because the machine is shared. The thread counts and the median CPU time
    of the process per round go into ``extra_info``: with one thread, wall time
    well above CPU time means other work held the core.
    """

    def __init__(self, benchmark, threads: dict):
        self.benchmark = benchmark
        self.threads = threads

    def label(self, suite: str, case: str, method: str) -> None:
        """Group the measurement by suite and case (set before timing: the group is read then)."""
        self.benchmark.group = f"{suite}: {case}"
        self.benchmark.extra_info.update(suite=suite, case=case, method=method, **self.threads)

    def __call__(self, fn, *args, rounds: int = 3, warmup: bool = True, **kwargs):
        if warmup:
            fn(*args, **kwargs)
        cpu = []

        def timed(*a, **k):
            t0 = time.process_time()
            out = fn(*a, **k)
            cpu.append(time.process_time() - t0)
            return out

        result = self.benchmark.pedantic(timed, args=args, kwargs=kwargs, rounds=rounds, iterations=1)
        # CPU seconds of this process per round: beside the wall-clock median, it shows contention
        self.benchmark.extra_info["cpu_median_s"] = float(np.median(cpu))
        return result

    @property
    def median(self) -> float:
        return self.benchmark.stats.stats.median

    def counts(self, **counts) -> None:
        """Record counts (``regions=``, ``points=``, ...) and each one per second at the median time."""
        self.benchmark.extra_info.update(counts)
        for key in ("regions", "points"):
            if key in counts:
                self.benchmark.extra_info[f"{key}_per_s"] = counts[key] / self.median


@pytest.fixture
def bench(benchmark, thread_limits):
    """A :class:`Bench` around pytest-benchmark's fixture."""
    return Bench(benchmark, thread_limits)


@pytest.fixture(scope="session")
def exact_partition():
    """``exact_partition(case)``: the engine's partition of a bench case, computed once per session."""
    cache: dict[str, rg.Partition] = {}

    def get(case):
        if case.name not in cache:
            cache[case.name] = rg.partition(case.net, case.slice)
        return cache[case.name]

    return get


# -- what the JSON records about the run ------------------------------------


def pytest_sessionstart(session):
    _SESSION["start"] = time.perf_counter()
    _SESSION["load_start"] = os.getloadavg()
    _SESSION["outcomes"] = {}


def pytest_runtest_logreport(report):
    """Keep every test's outcome: a failed check must show in the report, not only in the log."""
    outcomes = _SESSION.setdefault("outcomes", {})
    first = outcomes.get(report.nodeid) in (None, "passed")
    if first and (report.when == "call" or report.outcome != "passed"):
        outcomes[report.nodeid] = report.outcome


def pytest_benchmark_update_machine_info(config, machine_info):
    import sklearn

    machine_info["cpu_model"] = cpu_model()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["python"] = sys.version.split()[0]
    machine_info["versions"] = {
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "relugeo": rg.__version__,
    }
    machine_info["blas"] = [
        {k: p.get(k) for k in ("internal_api", "version", "architecture")} for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]


def _modified_files(root) -> list[str]:
    """Tracked files that differ from the commit (the code measured is the working tree)."""
    try:
        out = subprocess.run(["git", "diff", "--name-only", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return out.stdout.split() if out.returncode == 0 else []


def pytest_benchmark_update_json(config, benchmarks, output_json):
    env = [f"{k}={os.environ[k]}" for k in ("NUMBA_NUM_THREADS",) if k in os.environ]
    args = [shlex.quote(a) for a in config.invocation_params.args]
    output_json["command"] = " ".join(env + ["python", "-m", "pytest", *args])
    output_json["cwd"] = str(config.invocation_params.dir)
    output_json["session_seconds"] = time.perf_counter() - _SESSION.get("start", time.perf_counter())
    output_json["modified_files"] = _modified_files(config.rootpath)
    output_json["outcomes"] = dict(_SESSION.get("outcomes", {}))
    output_json["load_average"] = {"start": list(_SESSION.get("load_start", ())), "end": list(os.getloadavg())}
