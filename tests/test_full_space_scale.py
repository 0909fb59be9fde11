"""Slice.full at scale: the count-only walk and the walk on a dask cluster give the serial partition's regions."""

from math import comb

import numpy as np
import pytest
from common import random_net

import relugeo as rg
from relugeo.regions.full_space import count_full

distributed = pytest.importorskip("distributed")


def to_pwanet(layers):
    return rg.PWANet([rg.AffineLayer(W, b, act) for W, b, act in layers])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("d, widths, slope", [(3, (8, 8, 8), 0.0), (4, (6, 6), 0.1), (2, (5,), 0.0)])
def test_full_space_on_a_cluster_and_count_only_equal_the_serial_walk(client, d, widths, slope):
    net = to_pwanet(random_net(d + 20, widths, input_dim=d, negative_slope=slope))
    serial = rg.partition(net, rg.Slice.full(d))
    remote = rg.partition(net, rg.Slice.full(d), client=client)
    assert remote.n_regions == serial.n_regions > 1
    np.testing.assert_array_equal(remote.patterns, serial.patterns)
    np.testing.assert_array_equal(remote.bounded, serial.bounded)
    np.testing.assert_allclose(remote.volumes, serial.volumes, rtol=1e-9)
    assert remote.verify()["ok"]
    expected = (serial.n_regions, serial.n_bounded)
    assert count_full(net) == expected
    assert count_full(net, client=client) == expected


def test_count_only_gives_zaslavskys_count():
    """n hyperplanes in general position in R^d: sum_{i <= d} C(n, i) regions, C(n - 1, d) of them bounded."""
    net = to_pwanet(random_net(3, (9,), input_dim=4))
    assert count_full(net) == (sum(comb(9, i) for i in range(5)), comb(8, 4))


def test_client_and_count_bad_input(client):
    net = to_pwanet(random_net(0, (8, 8), input_dim=3))
    with pytest.raises(rg.RegionLimitError, match="max_regions = 20"):
        rg.partition(net, rg.Slice.full(3), max_regions=20, client=client)
    with pytest.raises(rg.RegionLimitError, match="max_regions = 20"):
        count_full(net, max_regions=20)
    with pytest.raises(ValueError, match="Slice.full only"):
        rg.partition(net, rg.Slice.cube(np.zeros(3), np.eye(3), 1.0), client=client)
    with pytest.raises(rg.InvalidSliceError, match="at most 8 inputs"):
        count_full(to_pwanet(random_net(0, (4,), input_dim=9)))
