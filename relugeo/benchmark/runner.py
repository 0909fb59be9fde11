"""Run workloads: warm up, time the exact engine and its baselines, check every count.

Timing rules: every method is called ``rounds`` times and the median wall
time is reported (the CPU time of the process beside it). A warm-up pass
before any timing runs each workload on a small piece of its domain, so numba
compilation (or loading the compiled cache) is measured once, reported as
``warmup_seconds`` and kept out of every timed round.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import RelugeoError
from ..regions import local_complexity, partition
from ..regions.slices import Slice
from .baselines import grid_patterns, lc_grid_regions, pattern_set
from .baselines_kd import lp_partition
from .machine import machine_info, numba_cache_files
from .suite import SUITE_VERSION, Workload

METHODS = ("exact", "grid", "vertex")
DEVICES = ("cpu", "cuda")
FORMAT = "relugeo-bench"
FORMAT_VERSION = 1

# per suite: timed calls of exact and of each baseline; grid sampling of a 2-D slice (lattice side), of a
# segment (points), of each point's 2-D neighbourhood (lattice side) and 1-D neighbourhood (points)
SETTINGS = {
    "quick": {"rounds": 3, "baseline_rounds": 1, "grid": 512, "grid_1d": 32768, "lc_grid": 24, "lc_grid_1d": 512},
    "full": {"rounds": 5, "baseline_rounds": 3, "grid": 1024, "grid_1d": 65536, "lc_grid": 32, "lc_grid_1d": 1024},
}

# the per-cell LP baseline of k-D domains solves about two LPs per cell and neuron: beyond this many
# regions it takes minutes, so larger k-D cases time the exact engine alone
LP_MAX_REGIONS = 2_000

Progress = Callable[[int, int, str], None]


class BenchmarkError(RelugeoError, ValueError):
    """A benchmark cannot run as asked (an unknown method, an unusable device)."""


class BenchmarkMismatchError(RelugeoError):
    """A count differs from the recorded one, or a check of the exact engine failed."""


@dataclass
class BenchResult:
    """Everything one run measured; ``to_dict()`` is the JSON written by ``relugeo bench --json``."""

    cases: list[dict]
    settings: dict
    machine: dict
    warmup_seconds: float
    total_seconds: float
    started: str
    command: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """One line per failed check, naming the case: ``"<case>: <what> expected <a>, got <b>"``."""
        return [f"{c['name']}: {p}" for c in self.cases for p in c["problems"]]

    @property
    def ok(self) -> bool:
        return not self.problems

    def check(self) -> None:
        """Raise :class:`BenchmarkMismatchError` listing every failed check, if any."""
        if self.problems:
            raise BenchmarkMismatchError(
                f"{len(self.problems)} benchmark check(s) failed:\n  " + "\n  ".join(self.problems))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "suite_version": SUITE_VERSION,
            **self.settings,
            "command": self.command,
            "started": self.started,
            "ok": self.ok,
            "problems": self.problems,
            "warmup_seconds": self.warmup_seconds,
            "total_seconds": self.total_seconds,
            "timed_seconds": float(sum(sum(m["all_seconds"]) for c in self.cases for m in c["methods"].values())),
            "machine": self.machine,
            **self.extra,
            "cases": self.cases,
        }


def engine_options(device: str) -> dict:
    """Keyword arguments selecting ``device`` for ``partition`` and ``local_complexity``.

    ``"cuda"`` needs a GPU that numba.cuda can use; otherwise a
    :class:`BenchmarkError` says so, so a CUDA benchmark never silently runs
    on the CPU (``device="auto"`` is not offered for the same reason).
    """
    if device not in DEVICES:
        raise BenchmarkError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cuda":
        from .machine import gpu_info

        if not gpu_info()["cuda_available"]:
            raise BenchmarkError("--device cuda: numba.cuda finds no usable CUDA GPU on this machine "
                                 "(numba.cuda.is_available() is False); run with --device cpu")
    return {"device": device}


@contextlib.contextmanager
def thread_limits(threads: int | None) -> Iterator[None]:
    """Hold numba, BLAS and torch to ``threads`` threads (None: leave them as they are)."""
    if threads is None:
        yield
        return
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    top = numba.config.NUMBA_NUM_THREADS
    if not 1 <= int(threads) <= top:
        raise BenchmarkError(f"threads must be between 1 and {top} (NUMBA_NUM_THREADS); got {threads!r}")
    before = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(int(threads))
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads)):
            yield
    finally:
        numba.set_num_threads(before[0])
        torch.set_num_threads(before[1])


def parse_methods(methods: str | Sequence[str]) -> list[str]:
    """``"exact,grid"`` or a sequence -> the methods in the canonical order; exact is required."""
    wanted = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else [str(m) for m in methods]
    wanted = [m for m in wanted if m]
    bad = [m for m in wanted if m not in METHODS]
    if bad or not wanted:
        raise BenchmarkError(f"methods must be a comma-separated subset of {','.join(METHODS)}; got "
                             f"{','.join(wanted) or repr(methods)}")
    if "exact" not in wanted:
        raise BenchmarkError("methods must include exact: every count is checked, and every baseline timed, "
                             "against the exact engine")
    return [m for m in METHODS if m in wanted]


def _timed(fn: Callable, rounds: int):
    """Call ``fn`` ``rounds`` times; ``(last result, {"seconds": median wall, "cpu_seconds", "all_seconds"})``."""
    wall, cpu, out = [], [], None
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return out, {"seconds": float(np.median(wall)), "cpu_seconds": float(np.median(cpu)),
                 "all_seconds": [float(t) for t in wall], "rounds": rounds}


def _shrunk(sl: Slice, factor: float = 0.1) -> Slice:
    """The slice's domain scaled by ``factor`` about its centre: about 1% of its regions in 2-D, but still
    split by every layer, so every kernel the full domain needs runs (all of R^D stays as it is)."""
    if sl.is_full:
        return sl
    centre = 0.5 * (sl.vertices.min(axis=0) + sl.vertices.max(axis=0))
    return Slice(sl.origin, sl.basis, centre + factor * (sl.vertices - centre))


def warm_up(workloads: Sequence[Workload], methods: Sequence[str], engine_kw: dict) -> float:
    """Run every workload's compiled paths once on a small piece of its domain; the seconds it took.

    This is where numba compiles (first run on a machine) or loads its cache,
    and where torch sets up; none of it enters a timed round.
    """
    t0 = time.perf_counter()
    for w in workloads:
        if w.kind == "partition":
            partition(w.net, _shrunk(w.slice), **engine_kw).verify(raise_on_error=False)
        else:
            X = w.X[:4]
            local_complexity(w.net, X, w.radius, dim=w.dim, method="exact", **engine_kw)
            if "vertex" in methods:
                local_complexity(w.net, X, w.radius, method="vertex", **engine_kw)
    return time.perf_counter() - t0


def _expect(expected: dict | None, got: dict) -> list[str]:
    """``"<count> expected <a>, got <b>"`` for every recorded count that differs (none when nothing is recorded)."""
    if expected is None:
        return []
    return [f"{key} expected {expected[key]:,}, got {got[key]:,}" if key in got else
            f"{key} expected {expected[key]:,}, got nothing" for key in expected if got.get(key) != expected[key]]


def measure_partition(w: Workload, methods: Sequence[str], settings: dict, engine_kw: dict) -> dict:
    """Time exact and grid on one slice; check the count, the certificates and the grid's patterns."""
    part, t = _timed(lambda: partition(w.net, w.slice, **engine_kw), settings["rounds"])
    report = part.verify(raise_on_error=False)
    got = {"regions": int(part.n_regions)}
    problems = _expect(w.expected, got)
    if not report["ok"]:
        problems.append(f"verify() failed: {report}")
    out = {"exact": dict(t, regions=got["regions"], regions_per_s=got["regions"] / t["seconds"],
                         verified=bool(report["ok"]))}
    if "grid" in methods and (w.slice.is_full or w.k >= 3) and got["regions"] <= LP_MAX_REGIONS:
        # no dense sampling of a k-D domain: the naive per-cell LP enumerator is its baseline
        n_lp, g = _timed(lambda: lp_partition(w.net, w.slice), 1)
        if n_lp != got["regions"]:
            problems.append(f"the per-cell LP baseline counts {n_lp:,} regions, the exact engine {got['regions']:,}")
        out["lp"] = dict(g, regions=n_lp, regions_per_s=n_lp / g["seconds"], time_vs_exact=g["seconds"] / t["seconds"])
    elif "grid" in methods and w.k <= 2:
        side = settings["grid"] if w.k == 2 else settings["grid_1d"]
        found, g = _timed(lambda: grid_patterns(w.net, w.slice, side), settings["baseline_rounds"])
        extra = len(pattern_set(found) - pattern_set(part.patterns))
        if extra:
            problems.append(f"grid sampling found {extra} pattern(s) that are not regions of the exact partition")
        out["grid"] = dict(g, regions=len(found), missed=got["regions"] - len(found), grid=side,
                           regions_per_s=len(found) / g["seconds"], time_vs_exact=g["seconds"] / t["seconds"])
    return {"got": got, "methods": out, "problems": problems}


def measure_lc(w: Workload, methods: Sequence[str], settings: dict, engine_kw: dict) -> dict:
    """Time exact, grid and vertex local complexity at the points; check the counts and the bounds."""
    n = len(w.X)
    lc, t = _timed(lambda: local_complexity(w.net, w.X, w.radius, dim=w.dim, method="exact", **engine_kw),
                   settings["rounds"])
    got = {"regions": int(lc.regions.sum()), "neurons": int(lc.lc.sum())}
    problems = _expect(w.expected, got)
    out = {"exact": dict(t, regions=got["regions"], neurons=got["neurons"], points=n,
                         regions_per_s=got["regions"] / t["seconds"], points_per_s=n / t["seconds"])}
    if "grid" in methods:
        g_side = settings["lc_grid"] if w.dim == 2 else settings["lc_grid_1d"]
        counts, g = _timed(lambda: lc_grid_regions(w.net, w.X, w.radius, w.dim, g_side),
                           settings["baseline_rounds"])
        over = int((counts > lc.regions).sum())
        if over:
            problems.append(f"grid sampling found more regions than the exact count at {over} point(s)")
        found = int(counts.sum())
        out["grid"] = dict(g, regions=found, missed=got["regions"] - found, points=n, grid=g_side,
                           regions_per_s=found / g["seconds"], points_per_s=n / g["seconds"],
                           time_vs_exact=g["seconds"] / t["seconds"])
    if "vertex" in methods:
        vx, v = _timed(lambda: local_complexity(w.net, w.X, w.radius, method="vertex", **engine_kw),
                       settings["baseline_rounds"])
        # the estimator on the exact method's own neighbourhood: P = dim, the same frame
        same = local_complexity(w.net, w.X, w.radius, method="vertex", n_directions=w.dim, **engine_kw)
        over = int((same.lc > lc.lc).sum())
        if over:
            problems.append(f"the vertex estimator on the same {w.dim}-D neighbourhood counts more neurons than "
                            f"the exact method at {over} point(s)")
        out["vertex"] = dict(v, neurons=int(vx.lc.sum()), n_directions=int(vx.dim), points=n,
                             points_per_s=n / v["seconds"], time_vs_exact=v["seconds"] / t["seconds"],
                             same_neighbourhood_neurons=int(same.lc.sum()),
                             same_neighbourhood_missed=got["neurons"] - int(same.lc.sum()))
    return {"got": got, "methods": out, "problems": problems}


def run(
    workloads: Sequence[Workload],
    *,
    methods: str | Sequence[str] = METHODS,
    suite: str = "quick",
    device: str = "cpu",
    threads: int | None = None,
    progress: Progress | None = None,
) -> BenchResult:
    """Warm up, then measure every workload with every method; never raises on a wrong count.

    Parameters
    ----------
    workloads : sequence of Workload
        From :func:`relugeo.benchmark.suite_workloads` or :func:`relugeo.benchmark.user_workloads`.
    methods : str or sequence of str
        A subset of ``exact, grid, vertex`` holding ``exact``. ``vertex``
        applies to local-complexity workloads only.
    suite : {"quick", "full"}
        Selects the rounds and grid resolutions (:data:`SETTINGS`).
    device : {"cpu", "cuda"}
        Where the exact engine (and the vertex estimator) runs; see :func:`engine_options`.
    threads : int, optional
        Hold numba, BLAS and torch to this many threads.
    progress : callable(done, total, label), optional

    Returns
    -------
    BenchResult
        Its ``problems`` list every count that differs from the recorded one
        and every failed check; ``check()`` raises on them.
    """
    methods = parse_methods(methods)
    if suite not in SETTINGS:
        raise BenchmarkError(f"suite must be one of {', '.join(SETTINGS)}; got {suite!r}")
    engine_kw = engine_options(device)
    settings = SETTINGS[suite]
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    with thread_limits(threads):
        total = len(workloads) + 1
        if progress:
            progress(0, total, "warm-up (numba compile or cache load)")
        cached = numba_cache_files()
        warm = warm_up(workloads, methods, engine_kw)
        results = []
        for i, w in enumerate(workloads):
            if progress:
                progress(i + 1, total, w.name)
            results.append(_measure(w, methods, settings, engine_kw))
        if progress:
            progress(total, total, "done")
        machine = machine_info()
    return BenchResult(
        cases=results,
        settings={"suite": suite, "device": device, "methods": methods, **settings},
        machine=machine,
        warmup_seconds=warm,
        total_seconds=time.perf_counter() - t0,
        started=started,
        extra={"numba_cache_files_before": cached},
    )


def _measure(w: Workload, methods: Sequence[str], settings: dict, engine_kw: dict) -> dict:
    head = {"name": w.name, "kind": w.kind, "dim": w.k, "description": w.description, "arch": w.arch,
            "seed": w.seed, "input_dim": w.net.input_dim, "expected": w.expected}
    if w.kind == "lc":
        head.update(points=len(w.X), radius=w.radius)
    measure = measure_partition if w.kind == "partition" else measure_lc
    try:
        res = measure(w, methods, settings, engine_kw)
    except (RelugeoError, ValueError) as exc:
        res = {"got": {}, "methods": {}, "problems": [f"{type(exc).__name__}: {exc}"]}
    return {**head, **res, "ok": not res["problems"]}
