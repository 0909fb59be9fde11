"""Region correspondence between two 100,000-region partitions against the time to partition them.

The first net is the w = 256, depth-3 anchor net on [-1.2, 1.2]^2 (100,964
regions); the second is the same net after a step of training-sized noise
(every weight and bias moved by 1% of its tensor's mean absolute value), as
between two close checkpoints. Side by side in one run: partitioning both
slices, matching their regions (``correspond``: overlaps by grid and
vectorised clipping, fates, pattern match), and the overlaps by shapely's
R-tree and polygon intersections, checked once to give the same pairs and
areas.
"""

import numpy as np
import pytest
import shapely
import torch
from nets import anchor_module

import relugeo as rg
from relugeo.regions.correspondence import correspond, overlaps

SUITE = "correspondence"
CASE = "w256-d3 on [-1.2, 1.2]^2, a step apart"
HALF_WIDTH = 1.2


def nets():
    first = anchor_module(256, 3)
    second = anchor_module(256, 3)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in second.parameters():
            p.add_(0.01 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    return rg.from_torch(first), rg.from_torch(second)


SLICE = rg.Slice.square(np.zeros(2), np.eye(2), HALF_WIDTH)


@pytest.fixture(scope="module")
def pair():
    a, b = (rg.partition(net, SLICE) for net in nets())
    assert 95_000 <= a.n_regions <= 110_000, a.n_regions
    return a, b


def partition_both(net_a, net_b):
    return rg.partition(net_a, SLICE), rg.partition(net_b, SLICE)


def shapely_overlaps(a, b):
    pa, pb = a.to_shapely(), b.to_shapely()
    ia, ib = shapely.STRtree(pb).query(pa, predicate="intersects")
    area = shapely.area(shapely.intersection(pa[ia], pb[ib]))
    keep = area > 1e-12 * a.domain_area
    return ia[keep], ib[keep], area[keep]


def test_partition_both(bench, pair):
    bench.label(SUITE, CASE, "partition both")
    a, b = bench(partition_both, *nets(), rounds=3)
    assert (a.n_regions, b.n_regions) == (pair[0].n_regions, pair[1].n_regions)
    bench.counts(regions=a.n_regions + b.n_regions)


def test_correspond(bench, pair):
    a, b = pair
    bench.label(SUITE, CASE, "correspond")
    c = bench(correspond, a, b, rounds=3)
    m = c.matrix()
    np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), a.areas, rtol=1e-9, atol=1e-12 * a.domain_area)
    assert (np.asarray((m > 0).sum(axis=1)).ravel() >= 1).all()
    counts = c.counts()
    bench.counts(regions=a.n_regions + b.n_regions, pairs=len(c.a), **counts)


def test_shapely_overlaps(bench, pair):
    a, b = pair
    bench.label(SUITE, CASE, "shapely STRtree + intersection")
    ia, ib, area = bench(shapely_overlaps, a, b, rounds=1, warmup=False)
    ja, jb, ours = overlaps(a, b)
    big = ours > 1e-12 * a.domain_area  # overlaps also keeps each sliver region's largest overlap
    ja, jb, ours = ja[big], jb[big], ours[big]
    order = np.lexsort((ib, ia))
    assert (ia[order] == ja).all() and (ib[order] == jb).all()
    np.testing.assert_allclose(area[order], ours, rtol=1e-9, atol=1e-15)
    bench.counts(regions=a.n_regions + b.n_regions, pairs=len(ia))
