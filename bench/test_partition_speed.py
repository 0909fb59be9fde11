"""2-D partition: the exact engine against grid sampling, the naive implementation and the matmul floor.

Every case runs every method side by side in one session. Each baseline's
answer is checked once against the engine's: the grid never finds more
patterns than there are regions and finds no pattern that is not a region;
the naive implementation finds exactly the engine's patterns; the floor's
last cell count is the engine's region count.
"""

import time

import numpy as np
import pytest
from baselines import MatmulFloor, floor_cells, grid_patterns, naive_partition, pattern_set
from nets import partition_cases

import relugeo as rg

SUITE = "partition"
GRID = 1024
CASES = partition_cases()
IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exact(bench, case):
    bench.label(SUITE, case.name, "exact")
    part = bench(rg.partition, case.net, case.slice, rounds=10)
    report = part.verify()
    assert report["ok"], report
    if case.expected is not None:
        assert part.n_regions == case.expected
    bench.counts(regions=part.n_regions)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grid(bench, case, exact_partition):
    bench.label(SUITE, case.name, f"grid {GRID}^2")
    found = bench(grid_patterns, case.net, case.slice, GRID, rounds=3, warmup=False)
    exact = exact_partition(case)
    assert len(found) <= exact.n_regions
    assert pattern_set(found) <= pattern_set(exact.patterns)
    bench.counts(regions=len(found), missed=exact.n_regions - len(found))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_naive(bench, case, exact_partition):
    bench.label(SUITE, case.name, "naive")
    patterns, areas = bench(naive_partition, case.net, case.slice, rounds=3, warmup=False)
    exact = exact_partition(case)
    assert len(patterns) == exact.n_regions
    assert pattern_set(patterns) == pattern_set(exact.patterns)
    assert areas.sum() == pytest.approx(case.slice.area, rel=1e-9)
    bench.counts(regions=len(patterns))


def alternate(fns, rounds: int) -> list[float]:
    """Median seconds of each function, timed in turn ``rounds`` times: one window, the same load."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matmul_floor(bench, case, exact_partition):
    floor = floor_cells(case.net, case.slice)
    assert floor.cells[-1] == exact_partition(case).n_regions
    assert np.all(np.diff(floor.cells) >= 0)
    bench.label(SUITE, case.name, "matmul floor")
    matmuls = MatmulFloor(case.net, floor)
    bench(matmuls, rounds=10)
    # the engine against the floor timed alternately, so a change of load hits both alike
    floor_s, exact_s = alternate([matmuls, lambda: rg.partition(case.net, case.slice)], rounds=7)
    bench.counts(
        paired_floor_s=floor_s,
        paired_exact_s=exact_s,
        regions=floor.cells[-1],
        cells=floor.cells,
        shapes=[list(s) for s in floor.shapes],
        flops=floor.flops,
        total_flops=floor.total_flops,
        gflops_per_s=floor.total_flops / bench.median / 1e9,
    )
