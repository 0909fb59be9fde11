"""Certified predicates on convolutions held as operators: the exact regions of the formed matrices.

The oracle's dense layers come from the module's own weights, written out
here position by position (no relugeo code), so the comparison also checks
that the operator's matrix is the convolution's.
"""

import numpy as np
import torch
from common import SQUARE
from exact_oracle import exact_partition
from test_partition import n_hidden, unpack
from torch import nn

import relugeo as rg
from relugeo.nets import torch_map


def _conv_matrix(w, b, side):
    """A stride-1, unpadded convolution (C_out, C_in, k, k) of a C_in x side x side image as a dense layer;
    rows and columns in (channel, row, column) order."""
    co, ci, k, _ = w.shape
    out = side - k + 1
    M = np.zeros((co * out * out, ci * side * side))
    for c in range(co):
        for i in range(out):
            for j in range(out):
                for d in range(ci):
                    for u in range(k):
                        for v in range(k):
                            M[(c * out + i) * out + j, (d * side + i + u) * side + j + v] = w[c, d, u, v]
    return M, np.repeat(b, out * out)


def _quantised_cnn(seed):
    """1x3x3 -> conv 2 (2x2) -> ReLU -> conv 2 (2x2) -> ReLU -> flatten -> 1; weights k/4, biases k/8."""
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Conv2d(2, 2, 2), nn.ReLU(), nn.Flatten(),
                           nn.Linear(2, 1)).double()
    with torch.no_grad():
        for m in module:
            if hasattr(m, "weight"):
                m.weight.copy_(torch.round(m.weight * 8) / 4)
                m.bias.copy_(torch.round(m.bias * 8) / 8)
    return module


def test_certified_convolution_operators_match_the_exact_oracle():
    module = _quantised_cnn(0)
    c1, c2, fc = module[0], module[2], module[5]
    layers = [(*_conv_matrix(c1.weight.detach().numpy(), c1.bias.detach().numpy(), 3), 0.0),
              (*_conv_matrix(c2.weight.detach().numpy(), c2.bias.detach().numpy(), 2), 0.0),
              (fc.weight.detach().numpy().copy(), fc.bias.detach().numpy().copy(), None)]
    rng = np.random.default_rng(5)
    origin = rng.integers(-4, 5, size=9) / 4
    basis = rng.integers(-4, 5, size=(9, 2)) / 4
    # the convolutions as operators (torch applies them; the engine never sees a matrix)
    conv = [torch_map(lambda t, m=m: m._conv_forward(t, m.weight, None), shape, n, f"conv{j}")
            for j, (m, shape, n) in enumerate([(c1, (1, 3, 3), 8), (c2, (2, 2, 2), 2)])]
    net = rg.PWANet([rg.AffineLayer(conv[0], layers[0][1], 0.0), rg.AffineLayer(conv[1], layers[1][1], 0.0),
                     rg.AffineLayer(layers[2][0], layers[2][1], None)])
    assert not net.layers[0].is_dense and not net.layers[1].is_dense
    want = exact_partition(layers, origin, basis, SQUARE)
    part = rg.partition(net, rg.Slice(origin, basis, SQUARE), predicates="certified")
    got = dict(zip(unpack(part.patterns, n_hidden(layers)), part.areas.tolist()))
    assert part.n_regions == len(got) == len(want) > 4
    assert set(got) == set(want)
    for pattern, area in want.items():
        assert abs(got[pattern] - float(area)) <= 1e-12 * 4
    part.verify()
    # local complexity on the same operators counts the same regions as a partition of each neighbourhood
    X = origin[None, :] + (basis @ np.array([[0.1, -0.2], [0.5, 0.25]]).T).T
    lc = rg.local_complexity(net, X, radius=0.25, dim=2, method="exact", predicates="certified")
    assert (lc.regions >= 1).all()
