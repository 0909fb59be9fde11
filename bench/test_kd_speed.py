"""k-D geometry: partitions of k = 3, 4, 5 cubes, the full complex of small-input nets, exact LC at P = 3.

The engine runs side by side with the naive per-cell LP baseline
(``baselines_kd.lp_partition``) on the cases small enough for it; the
baseline's region count must equal the engine's. The full complex of a
4 x 16 net in R^4 and R^5 is relucent's setting (Gaines & Bi). Exact P = 3
local complexity runs at 1,000 digits points beside the vertex estimator on
the same frame.
"""

import numpy as np
import pytest
from baselines_kd import lp_partition
from nets import digits_module, digits_points, mlp_module

import relugeo as rg

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


def cube_case(k, widths):
    net = rg.from_torch(mlp_module([k, *widths, 1], seed=0))
    return net, rg.Slice.cube(np.zeros(k), np.eye(k), 1.0)


def name(k, widths):
    return f"k={k} cube {'x'.join(map(str, widths))}"


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


@pytest.mark.parametrize("d", [4, 5])
def test_full_complex(bench, d):
    net = rg.from_torch(mlp_module([d, 16, 16, 16, 16, 1], seed=0))
    bench.label(SUITE, f"R^{d} full 4x16", "exact")
    part = bench(rg.partition, net, rg.Slice.full(d), max_regions=50_000_000, rounds=1, warmup=False)
    bench.counts(regions=part.n_regions, bounded=part.n_bounded)


@pytest.fixture(scope="module")
def digits():
    return rg.from_torch(digits_module()), digits_points()


@pytest.mark.parametrize("method", ["exact", "vertex"])
def test_lc_p3(bench, digits, method):
    net, X = digits
    bench.label(SUITE, "digits LC P=3 r=0.25", method)
    kw = dict(dim=3) if method == "exact" else dict(n_directions=3)
    lc = bench(rg.local_complexity, net, X, 0.25, method=method, rounds=3, **kw)
    bench.counts(points=len(X), mean_lc=float(lc.lc.mean()),
                 **({"mean_regions": float(lc.regions.mean())} if method == "exact" else {}))
