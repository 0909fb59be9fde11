"""Partitions in pieces, a bounded walk, and local complexity that does not depend on the thread count."""

import weakref

import numba
import numpy as np
import pytest
from common import random_net, to_torch

import relugeo as rg
from relugeo.regions import engine


def _pattern_rows(patterns):
    return {p.tobytes() for p in patterns}


@pytest.fixture(scope="module")
def net():
    return rg.from_torch(to_torch(random_net(3, [24, 24, 24])))


def test_pieces_hold_every_region_once(net):
    sl = rg.Slice.square(np.zeros(2), np.eye(2), 1.5)
    whole = rg.partition(net, sl)
    pieces = list(rg.iter_regions(net, sl, batch_regions=100, batch_cells=16))
    assert len(pieces) > 3
    assert all(p.is_part for p in pieces)
    assert sum(p.n_regions for p in pieces) == whole.n_regions
    assert set().union(*(_pattern_rows(p.patterns) for p in pieces)) == _pattern_rows(whole.patterns)
    assert np.isclose(sum(p.areas.sum() for p in pieces), whole.domain_area, rtol=1e-9)
    for p in pieces:
        assert p.verify()["ok"]
        assert p.n_regions >= 100 or p is pieces[-1]


def test_a_piece_is_not_a_whole_partition(net):
    sl = rg.Slice.square(np.zeros(2), np.eye(2), 1.5)
    piece = next(rg.iter_regions(net, sl, batch_regions=50, batch_cells=8))
    piece.is_part = False
    assert not piece.verify(raise_on_error=False)["ok"]  # its areas are a share of the domain


def test_iter_regions_rejects_a_bad_knob(net):
    with pytest.raises(ValueError, match="batch_regions must be a positive integer; got 0"):
        next(rg.iter_regions(net, rg.Slice.square(np.zeros(2), np.eye(2), 1.0), batch_regions=0))


def test_the_walk_holds_few_cells_at_a_time(net, monkeypatch):
    """Children are written group by group as the walk reaches them, so however many groups a batch
    splits into, the batches alive at once are at most about two per layer of depth."""
    created = []
    split = engine.split_batch

    def tracked_split(*args, **kwargs):
        out = split(*args, **kwargs)
        created.append(weakref.ref(out))
        return out

    monkeypatch.setattr(engine, "split_batch", tracked_split)
    sl = rg.Slice.square(np.zeros(2), np.eye(2), 1.5)
    roots = engine.root_batch(net, sl.origin[None], sl.basis, sl.vertices)
    n_leaves, most = 0, 0
    for leaves in engine.iter_leaves(net, roots, batch_cells=4):
        n_leaves += leaves.n_cells
        del leaves  # batches hold no reference cycles: dropping the last reference frees them
        most = max(most, sum(ref() is not None for ref in created))
    assert n_leaves == rg.partition(net, sl).n_regions > 400
    assert most <= 2 * len(net.hidden) + 1


@pytest.mark.parametrize("dim", [1, 2])
def test_local_complexity_is_the_same_on_one_thread_and_on_all(dim):
    net = rg.from_torch(to_torch(random_net(1, [16, 16, 16], input_dim=8, n_out=3)))
    X = np.random.default_rng(0).standard_normal((70, 8))
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = rg.local_complexity(net, X, 0.7, dim=dim)
    finally:
        numba.set_num_threads(before)
    every = rg.local_complexity(net, X, 0.7, dim=dim, batch_size=33)
    np.testing.assert_array_equal(one.neurons, every.neurons)
    np.testing.assert_array_equal(one.regions, every.regions)
    np.testing.assert_allclose(one.boundary_density, every.boundary_density, rtol=1e-12)


@pytest.mark.parametrize("threads", [2, 3])
def test_partition_on_threads_is_the_partition_on_one(threads, monkeypatch):
    """Subtrees walked on a pool of threads give the same regions, in the same order, as one thread."""
    net = rg.from_torch(to_torch(random_net(5, [20, 20, 20], negative_slope=0.1, n_out=3)))
    sl = rg.Slice.square(np.zeros(2), np.eye(2), 2.0)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = rg.partition(net, sl, batch_cells=8)
    finally:
        numba.set_num_threads(before)
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)  # more subtrees than this machine has cores
    many = rg.partition(net, sl, batch_cells=8, parallel=True)
    assert many.n_regions == one.n_regions > 500
    np.testing.assert_array_equal(many.patterns, one.patterns)
    np.testing.assert_array_equal(many.vertices, one.vertices)
    np.testing.assert_array_equal(many.ring_offsets, one.ring_offsets)
    assert many.verify()["ok"]


def test_region_limit_holds_on_threads(monkeypatch):
    net = rg.from_torch(to_torch(random_net(5, [20, 20, 20])))
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    with pytest.raises(rg.RegionLimitError, match="more than max_regions = 100 regions"):
        rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 2.0), batch_cells=8, max_regions=100,
                     parallel=True)


@pytest.mark.parametrize("dim", [1, 2])
def test_maps_written_a_range_at_a_time_are_the_same(dim, monkeypatch):
    """A cell cut into many pieces gets its children's maps a range at a time (children_maps): the
    partition is the one written in one go, bit for bit."""
    net = rg.from_torch(to_torch(random_net(7, [40, 12, 12], negative_slope=0.05, n_out=2)))
    sl = (rg.Slice.square(np.zeros(2), np.eye(2), 3.0) if dim == 2
          else rg.Slice.segment(np.array([-3.0, -1.0]), np.array([3.0, 2.0])))
    ranges = []  # children per range given its maps later
    with_maps = engine._with_maps
    monkeypatch.setattr(engine, "_with_maps",
                        lambda net, item: ranges.append(item[8] - item[7]) or with_maps(net, item))
    numba.set_num_threads(1)
    try:
        small = rg.partition(net, sl, batch_cells=2)
        assert len(ranges) > 1
        ranges.clear()
        whole = rg.partition(net, sl, batch_cells=100_000)
        assert len(ranges) <= 1  # 2-D: the domain's children all at once (engine._split_once)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(small.patterns, whole.patterns)
    np.testing.assert_array_equal(small.vertices, whole.vertices)
    np.testing.assert_array_equal(small.logit_maps, whole.logit_maps)
    assert small.verify()["ok"]
