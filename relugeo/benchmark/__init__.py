"""``relugeo bench``: a fixed, versioned region-counting benchmark that checks its counts.

>>> from relugeo import benchmark
>>> res = benchmark.run(benchmark.suite_workloads("quick"), methods="exact,grid")  # doctest: +SKIP
>>> res.check()  # raises BenchmarkMismatchError naming every case whose count changed  # doctest: +SKIP
"""

from . import table
from .baselines import grid_patterns, lc_grid_regions, pack_bits, pattern_set
from .machine import machine_info
from .runner import (
    METHODS,
    SETTINGS,
    BenchmarkError,
    BenchmarkMismatchError,
    BenchResult,
    engine_options,
    parse_methods,
    run,
)
from .suite import (
    CASES,
    SUITE_VERSION,
    SUITES,
    Case,
    Workload,
    cases,
    digits,
    seeded_net,
)
from .user import default_radius, user_workloads


def suite_workloads(suite: str = "quick") -> list[Workload]:
    """The built workloads of ``suite`` ("quick" or "full"), each with its recorded counts."""
    return [c.build() for c in cases(suite)]


__all__ = [
    "CASES",
    "METHODS",
    "SETTINGS",
    "SUITES",
    "SUITE_VERSION",
    "BenchResult",
    "BenchmarkError",
    "BenchmarkMismatchError",
    "Case",
    "Workload",
    "cases",
    "default_radius",
    "digits",
    "engine_options",
    "grid_patterns",
    "lc_grid_regions",
    "machine_info",
    "pack_bits",
    "parse_methods",
    "pattern_set",
    "run",
    "seeded_net",
    "suite_workloads",
    "table",
    "user_workloads",
]
