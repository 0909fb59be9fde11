"""The nets, slices and points every bench suite measures.

All modules are built at torch's default initialisation from a fixed seed, so
every run of the suites, and every suite in one run, sees the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import relugeo as rg

# (width, depth, regions of [-1, 1]^2 at seed 0): the anchor nets and their known counts
ANCHORS = [(16, 3, 178), (32, 3, 1180), (32, 5, 1460), (64, 3, 6668), (128, 3, 20714)]

MNIST_SIZES = (784, 128, 128, 128, 1)
MNIST_HALF_WIDTH = 8.0
DIGITS_SIZES = (64, 200, 200, 200, 10)
DIGITS_POINTS = 1000


@dataclass(frozen=True)
class Case:
    """One 2-D partition workload: a network restricted to a slice.

    ``expected`` is the known region count where one is established (the
    anchor nets), otherwise ``None``.
    """

    name: str
    module: nn.Sequential
    net: rg.PWANet
    slice: rg.Slice
    expected: int | None = None


def anchor_module(width: int, depth: int, seed: int = 0) -> nn.Sequential:
    """A 2-``width``-...-``width``-1 ReLU MLP with ``depth`` hidden layers.

    The modules are constructed in the order Linear(2, w), ReLU, then
    ``depth - 1`` times Linear(w, w), ReLU, then Linear(w, 1), right after
    ``torch.manual_seed(seed)``; the known region counts depend on that order.
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers += [nn.Linear(width, 1)]
    return nn.Sequential(*layers)


def mlp_module(sizes, seed: int = 0, slope: float = 0.0) -> nn.Sequential:
    """A ReLU MLP (leaky ReLU with ``slope`` > 0) with layer sizes ``sizes`` at torch's default initialisation."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope) if slope else nn.ReLU())
    return nn.Sequential(*layers)


def unit_square() -> rg.Slice:
    """The domain [-1, 1]^2 of a 2-input net (identity basis)."""
    return rg.Slice.square(np.zeros(2), np.eye(2), 1.0)


def anchor_case(width: int, depth: int, expected: int | None = None, seed: int = 0) -> Case:
    module = anchor_module(width, depth, seed)
    return Case(f"w{width}-d{depth}", module, rg.from_torch(module), unit_square(), expected)


def mnist_case(seed: int = 0) -> Case:
    """A 784-128-128-128-1 MLP on the square of half-width 8 of a seeded 2-D slice through 0.

    The basis is ``rg.regions.frame(784, 2, seed)``, orthonormal, so slice
    units are input units.
    """
    module = mlp_module(MNIST_SIZES, seed)
    basis = rg.regions.frame(MNIST_SIZES[0], 2, seed)
    sl = rg.Slice.square(np.zeros(MNIST_SIZES[0]), basis, MNIST_HALF_WIDTH)
    return Case("784-128x3-1 r8", module, rg.from_torch(module), sl)


def partition_cases() -> list[Case]:
    """The anchor nets on [-1, 1]^2, then the 784-input slice."""
    return [anchor_case(w, d, n) for w, d, n in ANCHORS] + [mnist_case()]


def digits_module(seed: int = 0) -> nn.Sequential:
    """The 64-200-200-200-10 digits MLP at default initialisation (float32, as torch builds it)."""
    return mlp_module(DIGITS_SIZES, seed)


def digits_points(n: int = DIGITS_POINTS) -> np.ndarray:
    """The first ``n`` scikit-learn digits scaled to [0, 1]: ``load_digits().data / 16.0``."""
    from sklearn.datasets import load_digits

    return np.ascontiguousarray(load_digits().data[:n] / 16.0, dtype=np.float64)
