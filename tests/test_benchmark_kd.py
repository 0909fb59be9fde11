"""`relugeo bench` on 3-D domains: the naive per-cell LP baseline runs beside the exact engine and agrees."""

import dataclasses

import pytest

from relugeo import benchmark
from relugeo.benchmark import suite as bench_suite


@pytest.fixture()
def small_kd_cases():
    """The suite's k-D cases on a 3-4-4-1 net (the recorded counts are those of the real cases)."""
    cases = [dataclasses.replace(c, arch="mlp:3-4-4-1:relu", expected={}) for c in bench_suite.CASES
             if c.name in ("3d cube w8-d2", "full R^3 w8-d2")]
    assert len(cases) == 2
    return cases


def test_kd_cases_time_the_lp_baseline_and_match_its_count(small_kd_cases):
    result = benchmark.run([c.build() for c in small_kd_cases], methods="exact,grid")
    assert result.ok, result.problems
    for c in result.cases:
        ex, lp = c["methods"]["exact"], c["methods"]["lp"]
        assert c["dim"] == 3 and "grid" not in c["methods"]
        assert lp["regions"] == ex["regions"] > 4 and lp["time_vs_exact"] > 0
    rows = benchmark.table.rows(result)
    assert all(row[4].endswith("x") for row in rows)
    full = result.cases[1]
    assert "all of R^3" in full["description"]


def test_full_suite_lists_the_kd_cases():
    names = [c.name for c in benchmark.cases("full")]
    assert {"3d cube w8-d2", "3d cube w32-d3", "full R^3 w8-d2"} <= set(names)
    assert not {"3d cube w8-d2", "full R^3 w8-d2"} & {c.name for c in benchmark.cases("quick")}
