"""The vertex estimator on any torch module: equal to method="vertex" on PWA nets, to a direct
reimplementation on a GELU net, and the exact method still refuses what is not piecewise affine."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import relugeo as rg
from relugeo.regions.complexity import frame


def relu_mlp(sizes, seed, slope=0.0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if slope == 0 else nn.LeakyReLU(slope))
    return nn.Sequential(*layers).double()


def gelu_mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 12), nn.GELU(), nn.Linear(12, 9), nn.GELU(), nn.Linear(9, 3)).double()


@pytest.mark.parametrize("seed,sizes,slope", [(0, [5, 16, 16, 3], 0.0), (1, [8, 24, 24, 24, 2], 0.1),
                                              (2, [20, 32, 16, 4], 0.0)])
@pytest.mark.parametrize("layers", ["hidden", "all"])
def test_hooks_equal_the_vertex_method_on_pwa_nets(seed, sizes, slope, layers):
    module = relu_mlp(sizes, seed, slope)
    net = rg.from_torch(module)
    X = np.random.default_rng(seed).normal(size=(30, sizes[0]))
    P = min(4, sizes[0])
    ref = rg.local_complexity(net, X, 0.6, method="vertex", n_directions=P, seed=seed, layers=layers)
    got = rg.local_complexity(module, X, 0.6, method="vertex", n_directions=P, seed=seed, layers=layers,
                              batch_size=7)
    np.testing.assert_array_equal(got.neurons, ref.neurons)
    np.testing.assert_array_equal(got.frame, ref.frame)
    assert ref.neurons.sum() > 0
    # naming the Linear layers reads the same tensors as their activations' inputs
    linears = [m for m in module if isinstance(m, nn.Linear)]
    named = rg.local_complexity(module, X, 0.6, method="vertex", n_directions=P, seed=seed,
                                layers=linears if layers == "all" else linears[:-1])
    np.testing.assert_array_equal(named.neurons, ref.neurons)


def _gelu(z):
    return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def test_hooks_equal_a_direct_reimplementation_on_a_gelu_net():
    module = gelu_mlp(3)
    Ws = [m.weight.detach().numpy() for m in module if isinstance(m, nn.Linear)]
    bs = [m.bias.detach().numpy() for m in module if isinstance(m, nn.Linear)]
    X = np.random.default_rng(3).normal(size=(6, 5))
    P, r, seed = 3, 0.8, 11
    V = frame(5, P, seed)
    expected = np.zeros((len(X), 3), dtype=np.int64)
    for i, x in enumerate(X):
        vertices = []
        for p in range(P):
            vertices += [x + r * V[:, p], x - r * V[:, p]]
        signs = []
        for v in vertices:
            h, zs = v, []
            for k, (W, b) in enumerate(zip(Ws, bs)):
                z = W @ h + b
                zs.append(z > 0)
                h = _gelu(z)
            signs.append(zs)
        for layer in range(3):
            first = signs[0][layer]
            expected[i, layer] = sum(any(s[layer][j] != first[j] for s in signs) for j in range(len(first)))
    got = rg.local_complexity(module, X, r, method="vertex", n_directions=P, seed=seed, layers="all")
    np.testing.assert_array_equal(got.neurons, expected)
    assert got.layer_names == ["1", "3", "logits"]
    assert expected[:, :2].sum() > 0


class TinyBlock(nn.Module):
    """Embedding of one-hot pairs, one attention layer, LayerNorm and a GELU MLP."""

    def __init__(self, p=5, d=8):
        super().__init__()
        self.p = p
        self.embed = nn.Linear(p, d, bias=False)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 16), nn.GELU(), nn.Linear(16, d))
        self.out = nn.Linear(d, p)

    def forward(self, x):
        h = self.embed(x.view(len(x), 2, self.p))
        h = h + self.attn(h, h, h, need_weights=False)[0]
        h = self.norm(h)
        h = h + self.mlp(h)
        return self.out(h[:, -1])


def test_attention_and_layernorm_modules_are_hooked_and_left_unchanged():
    torch.manual_seed(0)
    model = TinyBlock()
    model.train()
    X = np.eye(5)[np.random.default_rng(0).integers(0, 5, (8, 2))].reshape(8, 10)
    lc = rg.local_complexity(model, X, 0.5, method="vertex", layers=[model.attn, "norm", "mlp.1"])
    assert lc.layer_names == ["attn", "norm", "mlp.1"] and lc.dim == 10
    widths = [2 * 8, 2 * 8, 2 * 16]
    assert ((lc.neurons >= 0) & (lc.neurons <= widths)).all() and lc.neurons.sum() > 0
    default = rg.local_complexity(model, X, 0.5, method="vertex")
    np.testing.assert_array_equal(default.neurons[:, 0], lc.neurons[:, 2])
    assert model.training and all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    again = rg.local_complexity(model, X, 0.5, method="vertex", layers=["mlp.1"], batch_size=3)
    np.testing.assert_array_equal(again.neurons[:, 0], lc.neurons[:, 2])


def test_exact_method_converts_pwa_modules_and_refuses_others_naming_the_layer():
    module = relu_mlp([4, 10, 10, 2], 0)
    X = np.random.default_rng(0).normal(size=(10, 4))
    ref = rg.local_complexity(rg.from_torch(module), X, 0.5)
    np.testing.assert_array_equal(rg.local_complexity(module, X, 0.5).neurons, ref.neurons)
    with pytest.raises(rg.UnsupportedLayerError, match=r"'1' \(GELU\)"):
        rg.local_complexity(gelu_mlp(0), np.zeros((2, 5)), 0.5, method="exact")



def test_exact_method_on_a_module_passes_predicates_on():
    module = relu_mlp([3, 6, 5, 2], 1)
    with torch.no_grad():  # weights on a 1/4 grid: exact coincidences the certified predicates decide
        for p in module.parameters():
            p.copy_(torch.round(4 * p) / 4)
    X = np.random.default_rng(1).integers(-4, 5, size=(4, 3)) / 4.0
    ref = rg.local_complexity(rg.from_torch(module), X, 0.5, predicates="certified")
    lc = rg.local_complexity(module, X, 0.5, method="exact", predicates="certified")
    np.testing.assert_array_equal(lc.regions, ref.regions)
    np.testing.assert_array_equal(lc.neurons, ref.neurons)
    with pytest.raises(ValueError, match="predicates must be 'tolerance' or 'certified'"):
        rg.local_complexity(module, X, 0.5, method="exact", predicates="exact")

@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(layers=["nope"]), "not a submodule"),
        (dict(layers=[]), "at least one"),
        (dict(layers=["0", "0"]), "twice"),
        (dict(layers="logits"), "layers must be"),
        (dict(layers=["0"], method="exact"), "list of submodules is for method='vertex'"),
        (dict(method="sampled"), "method must be one of"),
        (dict(radius=0.0), "radius"),
        (dict(n_directions=6), "n_directions"),
        (dict(X=np.full((2, 5), np.nan)), "NaN"),
        (dict(X=np.zeros((0, 5))), r"shape \(N, \.\.\.\)"),
        (dict(groups=["a"]), "groups"),
        (dict(client=object()), "client"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, match):
    args = dict(X=np.zeros((2, 5)), radius=0.5, method="vertex")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rg.local_complexity(gelu_mlp(0), args.pop("X"), args.pop("radius"), **args)


def test_modules_without_activation_modules_need_named_layers():
    with pytest.raises(ValueError, match="no activation modules"):
        rg.local_complexity(nn.Linear(3, 2), np.zeros((2, 3)), 0.5, method="vertex")
    with pytest.raises(TypeError, match="PWANet or a torch.nn.Module"):
        rg.local_complexity("net", np.zeros((2, 3)), 0.5)
