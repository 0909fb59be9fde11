"""The fixed, versioned benchmark suite: seeded nets, domains and their recorded exact counts.

Every net is built by :func:`relugeo.nets.build_module` right after
``torch.manual_seed(seed)`` (torch's default initialisation, each
``nn.Linear`` constructed in turn), so the weights, and therefore the counts,
are the same on every machine. Points are scikit-learn's bundled digits,
``load_digits().data / 16.0``; high-dimensional slices use the seeded frame
``relugeo.regions.frame``. Each case's ``expected`` counts were recorded once
from the exact engine; a run compares its counts with them.

Changing a case, its net or its domain changes what the counts mean:
add a new case, or bump :data:`SUITE_VERSION` and record the counts again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import torch

from ..nets.pwanet import PWANet
from ..nets.spec import build_module
from ..nets.torch_import import from_torch
from ..regions.complexity import frame
from ..regions.slices import Slice

SUITE_VERSION = 1
SUITES = ("quick", "full")


@dataclass
class Workload:
    """One measurement: a network and either a slice (partition) or points (local complexity).

    ``expected`` maps a count name to its recorded value: ``{"regions": R}``
    for a partition, ``{"regions": R, "neurons": L}`` for local complexity
    (sums over the points of ``LCResult.regions`` and ``LCResult.lc``), or
    None when nothing is recorded (a user's own network).
    """

    name: str
    net: PWANet
    description: str
    slice: Slice | None = None
    X: np.ndarray | None = None
    radius: float | None = None
    dim: int = 2
    expected: dict[str, int] | None = None
    arch: str | None = None
    seed: int | None = None

    @property
    def kind(self) -> str:
        """``"partition"`` or ``"lc"``."""
        return "partition" if self.slice is not None else "lc"

    @property
    def k(self) -> int:
        """Dimension of the domain (the slice, or each point's neighbourhood)."""
        return self.slice.dim if self.slice is not None else self.dim


@dataclass(frozen=True)
class Case:
    """A suite entry: the net (arch string and seed), the domain, and the recorded counts.

    ``domain`` is one of
    ``("square", half_width)`` -- ``[-h, h]^2`` of the input plane (2 inputs) or of
    the plane spanned by ``frame(D, 2, seed)`` through 0;
    ``("segment", half_length)`` -- ``[-h, h]`` along the diagonal ``(1, 1) / sqrt(2)``
    (2 inputs) or along ``frame(D, 1, seed)`` through 0;
    ``("through", i, j, k)`` -- ``Slice.through`` three digits, pad 0.1;
    ``("between", i, j)`` -- ``Slice.segment`` from digit i to digit j;
    ``("lc", n_points, radius, dim)`` -- exact local complexity at the first
    ``n_points`` digits;
    ``("cube", half_width)`` -- ``[-h, h]^k`` of a k-input net (k = 3..8);
    ``("full",)`` -- all of R^D (:meth:`Slice.full`), unbounded regions included.
    """

    name: str
    arch: str
    domain: tuple
    expected: dict[str, int]
    suites: tuple[str, ...] = SUITES
    seed: int = 0

    def build(self) -> Workload:
        net = seeded_net(self.arch, self.seed)
        kind, *args = self.domain
        w = Workload(self.name, net, self.describe(), expected=dict(self.expected), arch=self.arch,
                     seed=self.seed)
        if kind == "lc":
            n, w.radius, w.dim = args
            w.X = digits(n)
        else:
            w.slice = _slice(kind, args, net.input_dim, self.seed)
        return w

    def describe(self) -> str:
        kind, *args = self.domain
        net = f"{self.arch} (seed {self.seed})"
        if kind == "square":
            where = "[-1, 1]^2" if args[0] == 1 else f"[-{args[0]:g}, {args[0]:g}]^2"
            return f"{net} on {where}" + ("" if self.arch.startswith("mlp:2-") else " of a seeded plane through 0")
        if kind == "segment":
            if self.arch.startswith("mlp:2-"):
                return f"{net} on the diagonal of [-{args[0] / np.sqrt(2):g}, {args[0] / np.sqrt(2):g}]^2"
            return f"{net} on a segment of length {2 * args[0]:g} through 0 in a seeded direction"
        if kind == "through":
            return f"{net} on the square through digits {args[0]}, {args[1]}, {args[2]}"
        if kind == "between":
            return f"{net} on the segment from digit {args[0]} to digit {args[1]}"
        if kind == "cube":
            return f"{net} on [-{args[0]:g}, {args[0]:g}]^{self.arch.split(':')[1].split('-')[0]}"
        if kind == "full":
            return f"{net} on all of R^{self.arch.split(':')[1].split('-')[0]}"
        n, r, dim = args
        return f"{net}, exact {dim}-D local complexity at {n} digits, radius {r:g}"


def _slice(kind: str, args: list, input_dim: int, seed: int) -> Slice:
    if kind == "square":
        basis = np.eye(2) if input_dim == 2 else frame(input_dim, 2, seed)
        return Slice.square(np.zeros(input_dim), basis, args[0])
    if kind == "segment":
        d = np.full(2, np.sqrt(0.5)) if input_dim == 2 else frame(input_dim, 1, seed)[:, 0]
        return Slice.segment(-args[0] * d, args[0] * d)
    if kind == "cube":
        return Slice.cube(np.zeros(input_dim), np.eye(input_dim), args[0])
    if kind == "full":
        return Slice.full(input_dim)
    X = digits(max(args) + 1)
    if kind == "through":
        return Slice.through(*X[list(args)], pad=0.1)
    if kind == "between":
        return Slice.segment(X[args[0]], X[args[1]])
    raise ValueError(f"unknown domain kind {kind!r}")


@cache
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return np.ascontiguousarray(load_digits().data / 16.0, dtype=np.float64)


def digits(n: int) -> np.ndarray:
    """The first ``n`` scikit-learn digits scaled to [0, 1], (n, 64) float64."""
    return _digits()[:n].copy()


@lru_cache(maxsize=16)
def seeded_net(arch: str, seed: int = 0) -> PWANet:
    """``from_torch(build_module(arch))`` built right after ``torch.manual_seed(seed)``.

    The global torch RNG is restored afterwards, so building a suite net
    changes nothing else in the caller's process.
    """
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return from_torch(build_module(arch))
    finally:
        torch.random.set_rng_state(state)


def _mlp(n_in: int, width: int, depth: int, n_out: int) -> str:
    return "mlp:" + "-".join(map(str, [n_in] + [width] * depth + [n_out])) + ":relu"


DIGITS_MLP = _mlp(64, 200, 3, 10)
QUICK = ("quick", "full")
FULL = ("full",)

CASES: tuple[Case, ...] = (
    # 2-D: 2-input nets on [-1, 1]^2 (the anchor nets of bench/nets.py)
    Case("2d w16-d3", _mlp(2, 16, 3, 1), ("square", 1.0), {"regions": 178}, QUICK),
    Case("2d w32-d3", _mlp(2, 32, 3, 1), ("square", 1.0), {"regions": 1180}, QUICK),
    Case("2d w32-d5", _mlp(2, 32, 5, 1), ("square", 1.0), {"regions": 1460}, QUICK),
    Case("2d w64-d3", _mlp(2, 64, 3, 1), ("square", 1.0), {"regions": 6668}, QUICK),
    Case("2d w128-d3", _mlp(2, 128, 3, 1), ("square", 1.0), {"regions": 20714}, QUICK),
    Case("2d w64-d8", _mlp(2, 64, 8, 1), ("square", 1.0), {"regions": 8392}, FULL),
    Case("2d w128-d5", _mlp(2, 128, 5, 1), ("square", 1.0), {"regions": 33533}, FULL),
    Case("2d w256-d3", _mlp(2, 256, 3, 1), ("square", 1.0), {"regions": 79783}, FULL),
    Case("2d w64-d3 leaky", "mlp:2-64-64-64-1:leaky_relu(0.1)", ("square", 1.0), {"regions": 6693}, FULL),
    # 2-D slices of high-dimensional inputs
    Case("2d 784-128x3 r8", _mlp(784, 128, 3, 1), ("square", 8.0), {"regions": 24514}, QUICK),
    Case("2d 784-256x3 r8", _mlp(784, 256, 3, 10), ("square", 8.0), {"regions": 131862}, FULL),
    Case("2d digits 0,1,2", DIGITS_MLP, ("through", 0, 1, 2), {"regions": 24513}, QUICK),
    Case("2d digits 10,500,1000", DIGITS_MLP, ("through", 10, 500, 1000), {"regions": 23888}, FULL),
    # 1-D segments
    Case("1d w128-d3 diagonal", _mlp(2, 128, 3, 1), ("segment", np.sqrt(2.0)), {"regions": 214}, QUICK),
    Case("1d digits 0-1", DIGITS_MLP, ("between", 0, 1), {"regions": 166}, QUICK),
    Case("1d 784-512x4 len100", _mlp(784, 512, 4, 10), ("segment", 50.0), {"regions": 1820}, QUICK),
    Case("1d 784-256x3 len100", _mlp(784, 256, 3, 10), ("segment", 50.0), {"regions": 722}, FULL),
    # k-D: cubes of 3-input nets and the full complex of R^3, beside the naive per-cell LP baseline
    Case("3d cube w8-d2", _mlp(3, 8, 2, 1), ("cube", 1.0), {"regions": 107}, FULL),
    Case("3d cube w32-d3", _mlp(3, 32, 3, 1), ("cube", 1.0), {"regions": 20724}, FULL),
    Case("full R^3 w8-d2", _mlp(3, 8, 2, 1), ("full",), {"regions": 772}, FULL),
    # local complexity at digits
    Case("lc2d digits200 r0.25", DIGITS_MLP, ("lc", 200, 0.25, 2), {"regions": 37419, "neurons": 5654}, QUICK),
    Case("lc1d digits1000 r0.25", DIGITS_MLP, ("lc", 1000, 0.25, 1), {"regions": 19797, "neurons": 18684}, QUICK),
    Case("lc2d digits1000 r0.25", DIGITS_MLP, ("lc", 1000, 0.25, 2), {"regions": 181367, "neurons": 27961}, FULL),
    Case("lc2d digits200 r1", DIGITS_MLP, ("lc", 200, 1.0, 2), {"regions": 515395, "neurons": 21940}, FULL),
    Case("lc1d digits1000 r1", DIGITS_MLP, ("lc", 1000, 1.0, 1), {"regions": 76259, "neurons": 73182}, FULL),
)


def cases(suite: str = "quick") -> list[Case]:
    """The cases of ``suite`` ("quick" or "full"; full holds every quick case), in a fixed order."""
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}; got {suite!r}")
    return [c for c in CASES if suite in c.suites]
