"""2-D partition of a small CNN on 8x8 digits: the exact engine against per-region NumPy clipping.

The net is 1x8x8 -> Conv2d(1, 8, 3, padding=1) -> ReLU -> Conv2d(8, 8, 3,
padding=1) -> ReLU -> flatten -> Linear(512, 32) -> ReLU -> Linear(32, 10) at
torch's default initialisation from seed 0, converted by ``rg.from_torch``
(the convolutions become dense 512-row layers). The slice is the plane through
the first three zeros of scikit-learn's digits (rows 0, 10 and 20, scaled to
[0, 1] like ``relugeo.data.digits``), cut to the square ``Slice.through``
gives with its default pad: about 12,000 regions. For scale, SplineCam is
reported to take about 50 s for about 13,000 regions of such a slice (an
external figure, not measured here).

The naive implementation must find exactly the engine's patterns, and its
areas must sum to the square's.
"""

import numpy as np
import pytest
import torch
from baselines import naive_partition, pattern_set
from torch import nn

import relugeo as rg

SUITE = "cnn partition"
CASE = "digits cnn c8-c8-fc32 through three zeros"
DIGIT_ROWS = (0, 10, 20)


def cnn_module(seed: int = 0) -> nn.Sequential:
    """The 1x8x8 conv8-conv8-fc32-10 ReLU CNN, built right after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10),
    )


@pytest.fixture(scope="module")
def case():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    net = rg.from_torch(cnn_module(), input_shape=(1, 8, 8))
    return net, rg.Slice.through(*X[list(DIGIT_ROWS)])


@pytest.fixture(scope="module")
def exact(case):
    return rg.partition(*case)


def test_exact(bench, case):
    bench.label(SUITE, CASE, "exact")
    part = bench(rg.partition, *case, rounds=10)
    report = part.verify()
    assert report["ok"], report
    bench.counts(regions=part.n_regions)


def test_naive(bench, case, exact):
    bench.label(SUITE, CASE, "naive")
    patterns, areas = bench(naive_partition, *case, rounds=3, warmup=False)
    assert len(patterns) == exact.n_regions
    assert pattern_set(patterns) == pattern_set(exact.patterns)
    assert areas.sum() == pytest.approx(case[1].area, rel=1e-9)
    bench.counts(regions=len(patterns))


def test_net_is_the_dense_form_of_the_module(case):
    net, sl = case
    x = sl.to_input(np.random.default_rng(0).uniform(-1, 1, size=(50, 2)))
    with torch.no_grad():
        want = cnn_module().double()(torch.from_numpy(x).reshape(-1, 1, 8, 8)).numpy()
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-10, atol=1e-10)
    assert net.widths == (512, 512, 32)
