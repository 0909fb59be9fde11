"""k-D geometry: partitions of k = 3, 4, 5 cubes, the full complex of small-input nets, exact LC at P = 2..6.

- Cubes [-1, 1]^k of seeded MLPs; the naive per-cell LP baseline
  (``baselines_kd.lp_partition``) runs in the same session on the cases small
  enough for it, and its region count must equal the engine's.
- The full complex of R^d (``Slice.full``) of d-16-16-16-16-1 nets, relucent's
  setting (Gaines & Bi): built by ``rg.partition`` for d = 3, 4 and counted
  without building the regions (``count_full``) for d = 3, 4, 5. Each count
  must equal the partition's and be at least the count on the cube [-1, 1]^d.
- relucent (``pip install relugeo[relucent]``; skipped when absent) counts the
  same complexes by local search; its count must equal relugeo's.
- Exact local complexity at P = 2..6 on the digits MLP beside the vertex
  estimator with the same P (same frame): exact neurons >= vertex neurons at
  every point, equal on layer 1. P = 5, 6 run at fewer points.
"""

import resource

import numpy as np
import pytest
from baselines_kd import lp_partition
from nets import digits_module, digits_points, mlp_module

import relugeo as rg
from relugeo.regions.full_space import count_full

SUITE = "kd"
# (k, hidden widths, run the LP baseline too)
CUBES = [
    (3, (8, 8), True),
    (3, (32, 32, 32), False),
    (3, (64, 64), False),
    (4, (8, 8), True),
    (4, (16, 16, 16, 16), False),
    (5, (8, 8), True),
    (5, (16, 16, 16), False),
]
RELUCENT_SHAPE = (16, 16, 16, 16)
# (d, hidden widths): full complexes built by rg.partition, and counted by count_full
FULL = [(3, (8, 8)), (3, RELUCENT_SHAPE), (4, RELUCENT_SHAPE)]
FULL_COUNTS = [(3, (8, 8)), (3, RELUCENT_SHAPE), (4, RELUCENT_SHAPE), (5, RELUCENT_SHAPE)]
# P: digits points of the exact P-dim LC (the first n of the 1,000)
LC_POINTS = {2: 1000, 3: 1000, 4: 1000, 5: 100, 6: 10}
BOX = 1.0

_full_counts: dict = {}


def cube_case(k, widths):
    net = rg.from_torch(mlp_module([k, *widths, 1], seed=0))
    return net, rg.Slice.cube(np.zeros(k), np.eye(k), 1.0)


def name(k, widths):
    return f"k={k} cube {'x'.join(map(str, widths))}"


def full_name(d, widths):
    return f"R^{d} full {'x'.join(map(str, widths))}"


def full_module(d, widths):
    return mlp_module([d, *widths, 1], seed=0)


@pytest.mark.parametrize("k, widths, lp", CUBES, ids=[name(k, w) for k, w, _ in CUBES])
def test_cube_exact(bench, k, widths, lp):
    net, sl = cube_case(k, widths)
    bench.label(SUITE, name(k, widths), "exact")
    part = bench(rg.partition, net, sl, rounds=3)
    if part.n_regions <= 50_000:
        assert part.verify()["ok"]
    bench.counts(regions=part.n_regions)


@pytest.mark.parametrize("k, widths", [(k, w) for k, w, lp in CUBES if lp], ids=[name(k, w) for k, w, lp in CUBES if lp])
def test_cube_lp_baseline(bench, k, widths):
    net, sl = cube_case(k, widths)
    bench.label(SUITE, name(k, widths), "naive LP per cell")
    n = bench(lp_partition, net, sl, rounds=1, warmup=False)
    assert n == rg.partition(net, sl).n_regions
    bench.counts(regions=n)


def box_count(net, d) -> int:
    """Regions of the box [-BOX, BOX]^d: a lower bound on the full count (each meets one region of R^d)."""
    return rg.partition(net, rg.Slice.cube(np.zeros(d), np.eye(d), BOX), max_regions=50_000_000).n_regions


@pytest.mark.parametrize("d, widths", FULL, ids=[full_name(d, w) for d, w in FULL])
def test_full_complex(bench, d, widths):
    net = rg.from_torch(full_module(d, widths))
    bench.label(SUITE, full_name(d, widths), "exact")
    part = bench(rg.partition, net, rg.Slice.full(d), max_regions=50_000_000, rounds=1, warmup=d == 3)
    if part.n_regions <= 50_000:
        assert part.verify()["ok"]
    _full_counts[d, widths] = part.n_regions, part.n_bounded
    bench.counts(regions=part.n_regions, bounded=part.n_bounded)


@pytest.mark.parametrize("d, widths", FULL_COUNTS, ids=[full_name(d, w) for d, w in FULL_COUNTS])
def test_full_complex_count(bench, d, widths):
    net = rg.from_torch(full_module(d, widths))
    bench.label(SUITE, full_name(d, widths), "exact, count only")
    n, bounded = bench(count_full, net, max_regions=50_000_000, rounds=1, warmup=d == 3)
    if (d, widths) in _full_counts:
        assert (n, bounded) == _full_counts[d, widths]
    box = box_count(net, d)
    assert n >= box
    _full_counts[d, widths] = n, bounded
    bench.counts(regions=n, bounded=bounded, box_regions=box, box_half_width=BOX)


def relucent_count(module, workers: int) -> int:
    """Regions of the full complex by relucent's breadth-first local search (one LP per region and facet)."""
    import relucent

    cplx = relucent.Complex(module)
    cplx.bfs(nworkers=workers, verbose=0)
    return len(cplx)


@pytest.mark.parametrize("d, widths", FULL, ids=[full_name(d, w) for d, w in FULL])
def test_full_complex_relucent(bench, d, widths):
    pytest.importorskip("relucent")
    workers = 1
    bench.label(SUITE, full_name(d, widths), f"relucent ({workers} worker)")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = bench(relucent_count, full_module(d, widths), workers, rounds=1, warmup=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # relucent's workers are processes: their CPU time counts too
    bench.benchmark.extra_info["cpu_median_s"] += (after.ru_utime + after.ru_stime
                                                   - children.ru_utime - children.ru_stime)
    expected = _full_counts.get((d, widths)) or count_full(rg.from_torch(full_module(d, widths)))
    assert n == expected[0]
    bench.counts(regions=n)


@pytest.fixture(scope="module")
def digits():
    net = rg.from_torch(digits_module())
    X = digits_points()
    rg.local_complexity(net, X[:2], 0.25, dim=3)  # compile the k-D kernels outside the timings
    return net, X


@pytest.mark.parametrize("P", sorted(LC_POINTS))
def test_lc_exact(bench, digits, P):
    net, X = digits
    X = X[: LC_POINTS[P]]
    bench.label(SUITE, f"digits LC P={P} r=0.25", "exact")
    lc = bench(rg.local_complexity, net, X, 0.25, dim=P, method="exact", rounds=1, warmup=False)
    vertex = rg.local_complexity(net, X, 0.25, method="vertex", n_directions=P)
    assert (lc.neurons >= vertex.neurons).all()
    np.testing.assert_array_equal(lc.neurons[:, 0], vertex.neurons[:, 0])
    bench.counts(points=len(X), dim=P, mean_lc=float(lc.lc.mean()), mean_regions=float(lc.regions.mean()),
                 regions=int(lc.regions.sum()))


@pytest.mark.parametrize("P", sorted(LC_POINTS))
def test_lc_vertex(bench, digits, P):
    net, X = digits
    X = X[: LC_POINTS[P]]
    bench.label(SUITE, f"digits LC P={P} r=0.25", "vertex")
    lc = bench(rg.local_complexity, net, X, 0.25, method="vertex", n_directions=P, rounds=3)
    bench.counts(points=len(X), dim=P, mean_lc=float(lc.lc.mean()))
