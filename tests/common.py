"""A catalogue of named small nets and slices, as plain numpy layer lists.

A net is a list of ``(W, b, negative_slope)`` tuples in float64 (see
``tests/oracle.py``); a :class:`Case` adds the slice ``origin`` (D,),
``basis`` (D, k) and ``vertices`` (m, k) and, where it can be worked out by
hand, the expected number of regions. Nothing here imports relugeo, so the
oracle's own tests run without the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SQUARE = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


@dataclass(frozen=True)
class Case:
    """A net restricted to a slice.

    ``expected`` is the hand-derived region count, if known. ``area_atol`` is
    how far (as a fraction of the domain's area) a region's area may be off by
    the rounding of the inputs themselves, for comparisons between float64
    computations.
    """

    name: str
    layers: list
    origin: np.ndarray
    basis: np.ndarray
    vertices: np.ndarray
    expected: int | None = None
    area_atol: float = 1e-13

    @property
    def dim(self) -> int:
        return self.basis.shape[1]

    @property
    def input_dim(self) -> int:
        return self.origin.shape[0]

    def __repr__(self) -> str:
        return f"Case({self.name})"


def hidden(W, b, negative_slope=0.0):
    return (np.asarray(W, dtype=np.float64).reshape(len(b), -1), np.asarray(b, dtype=np.float64), float(negative_slope))


def logits(W, b):
    return (np.asarray(W, dtype=np.float64).reshape(len(b), -1), np.asarray(b, dtype=np.float64), None)


def readout(n_in, n_out=1, seed=0):
    """A fixed random logits layer."""
    rng = np.random.default_rng(10_000 + seed)
    return logits(rng.normal(size=(n_out, n_in)), rng.normal(size=n_out))


def plane(vertices=SQUARE):
    """A 2-D domain of a 2-input net: identity basis, origin 0."""
    return np.zeros(2), np.eye(2), np.asarray(vertices, dtype=np.float64)


def line_x(t0, t1):
    """A 1-D domain of a 2-input net: the x axis, ``u`` in [t0, t1]."""
    return np.zeros(2), np.array([[1.0], [0.0]]), np.array([[t0], [t1]], dtype=np.float64)


def square(half, centre=(0.0, 0.0)):
    return np.asarray(centre, dtype=np.float64) + half * SQUARE


def net_from_rows(rows, negative_slope=0.0, n_out=1):
    """One hidden layer whose neuron ``j`` is ``rows[j] = (wx, wy, b)``: z = wx x + wy y + b."""
    rows = np.asarray(rows, dtype=np.float64)
    return [hidden(rows[:, :2], rows[:, 2], negative_slope), readout(len(rows), n_out)]


# -- random nets and slices --------------------------------------------------------------


def random_net(seed, widths, input_dim=2, negative_slope=0.0, dtype=np.float64, n_out=1):
    """A random MLP ``input_dim - widths... - n_out`` (``widths`` are the hidden widths).

    Weights are N(0, 1 / fan_in), biases N(0, 0.25). With ``dtype=np.float32``
    every weight and bias is first rounded to float32, then converted back to
    float64, as for a net trained in float32.
    """
    rng = np.random.default_rng(seed)
    sizes = [input_dim, *widths, n_out]
    layers = []
    for i in range(len(sizes) - 1):
        W = rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i])
        b = rng.normal(size=sizes[i + 1]) * 0.5
        W = W.astype(dtype).astype(np.float64)
        b = b.astype(dtype).astype(np.float64)
        last = i == len(sizes) - 2
        layers.append((W, b, None if last else float(negative_slope)))
    return layers


def random_polygon(rng, half=1.0, n_points=9):
    """A random convex polygon (counter-clockwise) in ``[-half, half]^2``: the hull of random points."""
    return _convex_hull(rng.uniform(-half, half, size=(n_points, 2)))


def _convex_hull(points):
    """Andrew's monotone chain; counter-clockwise, no collinear vertices."""
    pts = sorted(map(tuple, np.asarray(points, dtype=np.float64)))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def random_slice(seed, input_dim, k):
    """A seeded slice of R^input_dim of dimension k: ``(origin, basis, vertices)``.

    For ``input_dim == k`` the slice is the whole input space (origin 0,
    identity basis); the domain is ``[-1, 1]^2`` (even seeds) or a random convex
    polygon (odd seeds); in 1-D a random segment in ``[-3, 3]^2``. For a higher-dimensional
    input the origin is random, the basis random and not orthonormal, and the
    domain a random polygon of size about 10 or a segment of length 8 to 16.
    """
    rng = np.random.default_rng(1_000 + seed)
    if input_dim == k == 2:
        origin, basis = np.zeros(2), np.eye(2)
        vertices = SQUARE.copy() if seed % 2 == 0 else random_polygon(rng, 1.2)
        return origin, basis, vertices
    if input_dim == 2 and k == 1:
        a, b = rng.uniform(-3, 3, size=(2, 2))
        d = b - a
        n = np.linalg.norm(d)
        return a, (d / n)[:, None], np.array([[0.0], [n]])
    origin = rng.normal(size=input_dim) * 0.3
    basis = np.linalg.qr(rng.normal(size=(input_dim, k)))[0] @ (np.eye(k) + 0.3 * rng.normal(size=(k, k)))
    if k == 2:
        return origin, basis, random_polygon(rng, 5.0)
    t0 = rng.uniform(-8, -4)
    return origin, basis, np.array([[t0], [t0 + rng.uniform(8, 16)]])


# -- torch -------------------------------------------------------------------------------


def to_torch(layers):
    """The equivalent float64 ``nn.Sequential`` of Linear / ReLU / LeakyReLU."""
    modules = []
    for W, b, slope in layers:
        lin = nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(W, dtype=np.float64)))
            lin.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float64)))
        modules.append(lin)
        if slope is not None:
            modules.append(nn.ReLU() if slope == 0 else nn.LeakyReLU(slope))
    return nn.Sequential(*modules)


def from_module(module):
    """The numpy layer list of a Sequential of Linear / ReLU / LeakyReLU (float64 copies)."""
    layers = []
    for m in module:
        if isinstance(m, nn.Linear):
            layers.append([m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy(), None])
        elif isinstance(m, nn.ReLU):
            layers[-1][2] = 0.0
        elif isinstance(m, nn.LeakyReLU):
            layers[-1][2] = float(m.negative_slope)
        else:
            raise TypeError(f"from_module handles Linear, ReLU and LeakyReLU; got {type(m).__name__}")
    return [tuple(layer) for layer in layers]


# (width, depth, regions of [-1, 1]^2 at seed 0), agreed by four independent exact methods
ANCHORS = [(16, 3, 178), (32, 3, 1180), (32, 5, 1460), (64, 3, 6668), (128, 3, 20714)]


def anchor_module(w, depth, seed=0):
    """A 2-w-...-w-1 ReLU MLP with ``depth`` hidden layers at torch's default initialisation.

    Right after ``torch.manual_seed(seed)`` the modules are constructed one
    after another: Linear(2, w), then ``depth - 1`` separate Linear(w, w), then
    Linear(w, 1). The known counts (``ANCHORS``) depend on that order; the
    literal ``[Linear(w, w), ReLU()] * (depth - 1)``, which repeats one module
    and so shares its weights, gives other nets (222 regions instead of 178
    for w=16, depth 3).
    """
    torch.manual_seed(seed)
    modules = [nn.Linear(2, w), nn.ReLU()]
    for _ in range(depth - 1):
        modules += [nn.Linear(w, w), nn.ReLU()]
    modules.append(nn.Linear(w, 1))
    return nn.Sequential(*modules)


# -- the degenerate catalogue ------------------------------------------------------------


def _vertex_touch_50d():
    """A 50-D slice whose triangle is touched at one vertex by one hyperplane (rounding only)
    and cut through that vertex and the centroid by another."""
    rng = np.random.default_rng(7)
    D = 50
    origin = rng.normal(size=D) * 0.3
    basis = np.linalg.qr(rng.normal(size=(D, 2)))[0]
    tri = np.array([[-1.0, -0.8], [1.2, -0.5], [0.1, 1.1]])
    g_touch = np.array([0.3, 1.0])
    v0 = tri[np.argmax(tri @ g_touch)]
    centre = tri.mean(axis=0)
    d = centre - v0
    g_cut = np.array([-d[1], d[0]])
    rows, biases = [], []
    for g in (g_touch, g_cut):
        w = np.linalg.pinv(basis).T @ g  # w @ basis == g
        w = w + (np.eye(D) - basis @ basis.T) @ rng.normal(size=D)  # off-slice part: no effect on the slice
        rows.append(w)
        biases.append(-(w @ (origin + basis @ v0)))
    layers = [hidden(np.array(rows), np.array(biases)), readout(2)]
    return Case("vertex_touch_50d", layers, origin, basis, tri, expected=2)


def degenerate_cases_2d():
    """Named 2-D cases with degenerate geometry."""
    cases = [
        # x + y + 2 touches the square only at (-1, -1); x - y runs corner to corner;
        # x + 0.3 meets it at (-0.3, -0.3)
        Case("line_through_vertex", net_from_rows([[1, 1, 2], [1, -1, 0], [1, 0, 0.3]]), *plane(), expected=4),
        Case(
            "line_along_edge",  # y + 1 is zero on the bottom edge; x - 1 on the right edge
            net_from_rows([[0, 1, 1], [1, 0, -1], [1, 1, 0.1]]), *plane(), expected=2,
        ),
        Case(
            "duplicate_neurons",  # one line four times (also scaled and negated) and one more line
            net_from_rows([[1, -0.2, 0.1], [1, -0.2, 0.1], [2, -0.4, 0.2], [-1, 0.2, -0.1], [0, 1, -0.3]]),
            *plane(), expected=4,
        ),
        Case(
            "zero_rows",  # z = 0 (never active), z = 0.5 (always), z = -0.5 (never), one real line
            net_from_rows([[0, 0, 0], [0, 0, 0.5], [0, 0, -0.5], [1, 0, -0.1]]), *plane(), expected=2,
        ),
        Case(
            "parallel_lines",  # x = -0.5, 0, 0.5, 0.6 and one line across them
            net_from_rows([[1, 0, 0.5], [1, 0, 0], [1, 0, -0.5], [2, 0, -1.2], [0.1, 1, -0.1]]),
            *plane(), expected=10,
        ),
        Case(
            "sliver_parallel",  # y = 0 and y = 1e-6 + 1e-7 x: a strip 1e-6 wide, no crossing inside
            net_from_rows([[0, 1, 0], [-1e-7, 1, -1e-6]]), *plane(), expected=3,
        ),
        Case(
            "sliver_wedge",  # y = 0 and y = 1e-6 x cross at the origin: two thin wedges
            net_from_rows([[0, 1, 0], [-1e-6, 1, 0]]), *plane(), expected=4,
        ),
        Case(
            "dead_layer",  # layer 2 is inactive everywhere, so layer 3 is constant: the 4 quadrants
            [
                hidden([[1, 0], [0, 1]], [0, 0]),
                hidden([[1, 1], [1, -1], [-1, 0.5]], [-10, -10, -10]),
                hidden([[1, 2, 3], [-1, 1, 0]], [0.5, -0.5]),
                logits([[1, -1]], [0.0]),
            ],
            *plane(), expected=4,
        ),
        Case(
            "dead_first_layer",  # nothing is ever active: one region
            [hidden([[1, 1], [-1, 0.5]], [-5, -5]), hidden([[1, 1]], [0.2]), logits([[1.0]], [0.0])],
            *plane(), expected=1,
        ),
        Case(
            # layer 2's neurons are identically zero on whole cells of layer 1 (no line there)
            "zero_on_a_cell",
            [hidden([[1, 0], [0, 1]], [0, 0]), hidden([[1, 0], [0, 1], [1, -1]], [0, 0, 0]), logits([[1, 1, 1]], [0.0])],
            *plane(), expected=5,
        ),
        Case(
            "leaky_negative_layer",  # layer 2 is negative everywhere but leaks; layer 3 still bends
            [
                hidden([[1, 0], [0, 1]], [0, 0], 0.1),
                hidden([[1, 1], [1, -1]], [-10, -10], 0.1),
                hidden([[-5, 3], [4, 1], [0.3, -0.2]], [-5, -5.5, -1.1], 0.1),
                logits([[1, -1, 1]], [0.0]),
            ],
            *plane(),
        ),
        Case(
            "duplicate_neurons_deep",  # a second layer with repeated and zero rows
            [
                hidden([[1, 0.3], [-0.4, 1], [0.7, 0.7]], [0.1, -0.2, 0.05]),
                hidden([[1, -1, 0.5], [1, -1, 0.5], [0, 0, 0], [-1, 1, -0.5]], [0.05, 0.05, 0.0, -0.05]),
                logits([[1, 1, 1, 1]], [0.0]),
            ],
            *plane(),
        ),
        Case(
            "concurrent_lines",  # three lines through (0.1, 0.2): six sectors
            net_from_rows([[1, 0, -0.1], [0, 1, -0.2], [1, 1, -0.3]]), *plane(), expected=6,
        ),
        Case(
            # width 1e-9 around (0.3, -0.2) in slice coordinates, two lines through its centre. Rounding
            # W x + b at |x| ~ 0.3 moves a line by ~1e-17, 1e-8 of the width: areas agree to ~1e-7 only.
            "tiny_domain",
            _tiny_rows(), *plane(square(0.5e-9, TINY_CENTRE)), expected=4, area_atol=1e-6,
        ),
        Case(
            "tiny_domain_centred",  # the same square, with the slice's origin at its centre
            _tiny_rows(), np.array(TINY_CENTRE), np.eye(2), square(0.5e-9), expected=4,
        ),
        Case(
            # a random 3-layer net on a width-1e-9 square around where two of its lines meet. Rounding
            # W x + b (|b| ~ 0.5) moves a line by ~1e-16, 1e-7 of the width: areas agree to ~1e-7 only.
            "tiny_domain_deep",
            random_net(3, [8, 8, 8]), _meeting_point(random_net(3, [8, 8, 8])), np.eye(2), square(0.5e-9),
            expected=4, area_atol=1e-6,
        ),
        Case(
            "huge_domain",  # width 1e6, the net's lines spread over it
            scale_input(random_net(4, [6, 6]), 1e-5), *plane(square(5e5)),
        ),
        Case(
            "huge_domain_one_layer",  # width 1e6, general position: 1 + 8 + 28 regions
            scale_input(random_net(5, [8]), 1e-5), *plane(square(5e5)),
        ),
        _vertex_touch_50d(),
    ]
    return cases


def small_feature_cases():
    """Domains of width 1e6 whose bends all lie within a few units of the origin.

    Their smallest regions are below the oracle's area floor (1e-14 of the
    domain's area), so the oracle cannot resolve them on the whole domain.
    Every region does meet the inner square ``[-1e3, 1e3]^2`` (``inner``),
    where the oracle resolves them all; a one-layer net also has the closed
    form ``expected``.
    """
    big = square(5e5)
    return [
        Case("huge_domain_near_origin", random_net(4, [6, 6]), *plane(big)),
        Case("huge_domain_near_origin_one_layer", random_net(5, [8]), *plane(big), expected=37),
    ]


INNER = square(1e3)
TINY_CENTRE = (0.3, -0.2)


def _tiny_rows():
    x, y = TINY_CENTRE
    return net_from_rows([[1, 0.7, -(x + 0.7 * y)], [-0.4, 1, -(-0.4 * x + y)], [1, 1, 3]])


def _meeting_point(layers):
    """Where the zero lines of neurons 0 and 1 of the first layer meet."""
    W, b, _ = layers[0]
    return np.linalg.solve(W[:2], -b[:2])


def scale_input(layers, s):
    """The net ``x -> net(s * x)``: its geometry magnified ``1 / s`` times."""
    W, b, slope = layers[0]
    return [(W * s, b, slope), *layers[1:]]


def degenerate_cases_1d():
    """Named 1-D cases with degenerate geometry."""
    return [
        Case(
            "breakpoints_at_ends",  # x = 0 and x = 1 are the ends of [0, 1]; x = 0.5 splits
            net_from_rows([[1, 0, 0], [1, 0, -1], [-1, 0, 0.5]]), *line_x(0.0, 1.0), expected=2,
        ),
        Case(
            "duplicate_breakpoints",  # one breakpoint three times, and one more
            net_from_rows([[1, 0.3, -0.2], [2, 0.5, -0.4], [-1, 0, 0.2], [1, 0, 0.6]]), *line_x(-1.0, 1.0), expected=3,
        ),
        Case(
            "zero_rows",
            net_from_rows([[0, 0, 0], [0, 1, 0.5], [0, 0, -0.5], [1, 0, -0.1]]), *line_x(-1.0, 1.0), expected=2,
        ),
        Case(
            "close_breakpoints",  # 1e-7 apart
            net_from_rows([[1, 0, -0.25], [1, 0, -0.25 - 1e-7]]), *line_x(-1.0, 1.0), expected=3,
        ),
        Case(
            "dead_layer",
            [hidden([[1, 0], [-1, 0]], [0, 0]), hidden([[1, 1]], [-10]), hidden([[1.0]], [0.5]), logits([[1.0]], [0.0])],
            *line_x(-1.0, 1.0), expected=2,
        ),
        Case(
            "zero_on_a_cell",  # relu(x), relu(-x); then z = h1, h2 (zero on half the segment) and h1 + h2 - 0.5
            [hidden([[1, 0], [-1, 0]], [0, 0]), hidden([[1, 0], [0, 1], [1, 1]], [0, 0, -0.5]), logits([[1, 1, 1]], [0.0])],
            *line_x(-1.0, 1.0), expected=4,
        ),
        Case("tiny_segment", net_from_rows([[1, 0, -0.3], [1, 1, 3]]), *line_x(0.3 - 0.5e-9, 0.3 + 0.5e-9), expected=2),
        Case("tiny_segment_deep", random_net(6, [8, 8, 8]), *line_x(0.3 - 0.5e-9, 0.3 + 0.5e-9)),
        Case("huge_segment", random_net(7, [6, 6, 6]), *line_x(-5e5, 5e5)),
    ]


# -- convolutional, max-pool and residual torch modules ----------------------------------
# Each builder returns ``(module, input_shape)``: a float64 module in eval mode with
# seeded weights (the global RNG is untouched) and the (C, H, W) shape of one input.
# The heads flatten into a Linear and nothing rounds a size down (no strided layer), so
# exactly one input size runs through each module and ``rg.from_torch(module)`` finds it.


def _seeded_module(seed, build):
    """``build()`` under a forked torch RNG seeded with ``seed``, as float64 in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build()
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                with torch.no_grad():
                    m.running_mean.normal_(0.0, 0.3)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.2)
    return module.double().eval()


def small_cnn(seed=0):
    """1x6x6 -> conv3 (3x3, pad 1) -> ReLU -> conv2 (3x3) -> ReLU -> flatten -> 3."""
    return _seeded_module(seed, lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(),
        nn.Conv2d(3, 2, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(32, 3),
    )), (1, 6, 6)


def maxpool_cnn(seed=0):
    """1x6x6 -> conv2 (3x3, pad 1) -> ReLU -> MaxPool2d(2, stride 1) -> flatten -> 8 -> ReLU -> 3."""
    return _seeded_module(seed, lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=1),
        nn.Flatten(), nn.Linear(50, 8), nn.ReLU(), nn.Linear(8, 3),
    )), (1, 6, 6)


class PreActBlock(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))``, channels kept."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.conv1(torch.relu(x))))


class PreActResNet(nn.Module):
    """Stem conv, one pre-activation block, ReLU, flatten, Linear; no BatchNorm."""

    def __init__(self, c=2, side=6, n_out=3):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.block = PreActBlock(c)
        self.fc = nn.Linear(c * side * side, n_out)

    def forward(self, x):
        h = torch.relu(self.block(self.stem(x)))
        return self.fc(torch.flatten(h, 1))


class BNBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + x)``."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class BNResNet(nn.Module):
    """Stem conv-bn-relu, one BatchNorm residual block, flatten, Linear."""

    def __init__(self, c=2, side=6, n_out=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.block = BNBlock(c)
        self.fc = nn.Linear(c * side * side, n_out)

    def forward(self, x):
        return self.fc(self.block(self.stem(x)).flatten(1))


def preact_resnet(seed=0):
    """A pre-activation ResNet without BatchNorm on 1x6x6 inputs (2 channels)."""
    return _seeded_module(seed, PreActResNet), (1, 6, 6)


def bn_resnet(seed=0):
    """A ResNet with BatchNorm (random running statistics) on 1x6x6 inputs (2 channels)."""
    return _seeded_module(seed, BNResNet), (1, 6, 6)
