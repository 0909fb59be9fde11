"""from_torch on convolutional, pooling, BatchNorm, max-pool and residual networks."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from common import bn_resnet, maxpool_cnn, preact_resnet, small_cnn
from torch import nn
from torch.nn import functional as F

import relugeo as rg
from relugeo.errors import InvalidNetworkError, UnsupportedLayerError
from relugeo.nets import from_torch, torch_layers, torch_program


def _seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    """Reproducible weights (and BatchNorm statistics) without touching the global RNG."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype))
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model


def _torch_out(model: nn.Module, x: np.ndarray, shape: tuple) -> np.ndarray:
    """The module's output in float64 (eval mode, a copy) on flat inputs reshaped to ``shape``."""
    ref = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return ref(torch.from_numpy(x).reshape(len(x), *shape)).reshape(len(x), -1).numpy()


def _assert_matches(model: nn.Module, shape: tuple, **kw) -> rg.PWANet:
    net = from_torch(model, input_shape=shape, **kw)
    assert net.input_dim == int(np.prod(shape))
    x = np.random.default_rng(1).standard_normal((60, net.input_dim))
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x, shape), rtol=1e-10, atol=1e-10)
    return net


# ---------------------------------------------------------------------------
# every layer and option against torch's forward
# ---------------------------------------------------------------------------
def _head(n):
    return [nn.Flatten(), nn.Linear(n, 3)]


LAYERS = [
    pytest.param(lambda: nn.Conv2d(2, 3, 3), (2, 5, 5), id="conv"),
    pytest.param(lambda: nn.Conv2d(2, 3, 3, stride=2, padding=2), (2, 6, 5), id="conv-stride-pad"),
    pytest.param(lambda: nn.Conv2d(2, 4, 3, dilation=2, padding=1, bias=False), (2, 7, 7), id="conv-dilated-nobias"),
    pytest.param(lambda: nn.Conv2d(4, 6, (3, 2), groups=2, stride=(1, 2)), (4, 5, 6), id="conv-groups"),
    pytest.param(lambda: nn.Conv2d(2, 2, 3, groups=2, padding="same"), (2, 5, 5), id="conv-depthwise-same"),
    pytest.param(lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), (1, 5, 5), id="conv-reflect"),
    pytest.param(lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="replicate"), (1, 5, 5), id="conv-replicate"),
    pytest.param(lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), (1, 5, 5), id="conv-circular"),
    pytest.param(lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1), (2, 9), id="conv1d"),
    pytest.param(lambda: nn.AvgPool2d(2), (2, 5, 5), id="avgpool"),
    pytest.param(lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 6, 6), id="avgpool-ceil"),
    pytest.param(lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), (1, 6, 6), id="avgpool-exclude-pad"),
    pytest.param(lambda: nn.AvgPool2d(2, divisor_override=3), (1, 4, 4), id="avgpool-divisor"),
    pytest.param(lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 5, 7), id="adaptive-avgpool"),
    pytest.param(lambda: nn.AvgPool1d(3, stride=2), (2, 9), id="avgpool1d"),
    pytest.param(lambda: nn.AdaptiveAvgPool1d(4), (2, 9), id="adaptive-avgpool1d"),
    pytest.param(lambda: nn.BatchNorm2d(2), (2, 3, 3), id="batchnorm2d"),
    pytest.param(lambda: nn.BatchNorm2d(2, affine=False), (2, 3, 3), id="batchnorm2d-no-affine"),
    pytest.param(lambda: nn.BatchNorm1d(2), (2, 5), id="batchnorm1d-CL"),
    pytest.param(lambda: nn.MaxPool2d(2), (2, 5, 5), id="maxpool"),
    pytest.param(lambda: nn.MaxPool2d(3, stride=2, padding=1), (1, 6, 6), id="maxpool-pad"),
    pytest.param(lambda: nn.MaxPool2d(2, ceil_mode=True), (1, 5, 5), id="maxpool-ceil"),
    pytest.param(lambda: nn.MaxPool2d((2, 3), stride=(2, 1), dilation=(2, 1), padding=(1, 1)), (1, 7, 6),
                 id="maxpool-dilated"),
    pytest.param(lambda: nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True), (2, 8), id="maxpool1d"),
    pytest.param(lambda: nn.LeakyReLU(0.2), (2, 3, 3), id="leaky"),
]


def _out_size(layer, shape):
    with torch.no_grad():
        return int(np.prod(layer.double()(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:]))


@pytest.mark.parametrize("factory, shape", LAYERS)
def test_layer_matches_torch_forward(factory, shape):
    layer = _seeded(factory()).double()
    model = nn.Sequential(nn.Identity(), layer, *_head(_out_size(layer, shape)))
    _assert_matches(_seeded(model, 3), shape)


@pytest.mark.parametrize("factory, shape", LAYERS)
def test_layer_inside_a_traced_module_matches_torch_forward(factory, shape):
    layer = factory()

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer
            self.fc = nn.Linear(_out_size(copy.deepcopy(layer), shape), 3)

        def forward(self, x):
            return self.fc(torch.relu(self.layer(x)).flatten(1))

    _assert_matches(_seeded(Wrapped(), 4), shape)


def test_input_is_the_c_order_flattening():
    model = _seeded(nn.Sequential(nn.Conv2d(2, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 3 * 2, 4)))
    net = from_torch(model, input_shape=(2, 4, 3))
    imgs = np.random.default_rng(0).standard_normal((7, 2, 4, 3))
    with torch.no_grad():
        want = model.double()(torch.from_numpy(imgs)).numpy()
    np.testing.assert_allclose(net.forward(imgs.reshape(7, -1)), want, rtol=1e-12, atol=1e-12)


def test_conv_layers_compose_into_one_dense_map():
    model = _seeded(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2), nn.BatchNorm2d(2),
                                  nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)))
    net = from_torch(model, input_shape=(1, 4, 4))
    assert net.widths == (8,) and net.is_mlp
    assert net.layers[0].weight.shape == (8, 16)


# ---------------------------------------------------------------------------
# max-pooling windows
# ---------------------------------------------------------------------------
def test_maxpool_windows_by_hand():
    win, out = torch_layers._max_windows((1, 3, 3), 2, 2, 1, 1, False, "pool")
    assert out == (1, 2, 2)
    np.testing.assert_array_equal(win, [[-1, -1, -1, 0], [-1, -1, 1, 2], [-1, 3, -1, 6], [4, 5, 7, 8]])
    win, out = torch_layers._max_windows((2, 3), 2, 2, 0, 1, True, "pool")
    assert out == (2, 2)  # ceil_mode adds a last, half-empty window
    np.testing.assert_array_equal(win, [[0, 1], [2, -1], [3, 4], [5, -1]])


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    (2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2), ((2, 3), (1, 2), (1, 0), (1, 2)), (3, 3, 1, 1),
])
@pytest.mark.parametrize("ceil", [False, True])
def test_maxpool_windows_match_torch(kernel, stride, padding, dilation, ceil):
    shape = (2, 7, 8)
    z = np.random.default_rng(0).standard_normal(shape)
    win, out = torch_layers._max_windows(shape, kernel, stride, padding, dilation, ceil, "pool")
    want, idx = F.max_pool2d(torch.from_numpy(z)[None], kernel, stride, padding, dilation, ceil,
                             return_indices=True)
    assert out == tuple(want.shape[1:])
    vals = np.where(win >= 0, z.ravel()[np.maximum(win, 0)], -np.inf)
    np.testing.assert_array_equal(vals.max(axis=1), want.numpy().ravel())
    winner = np.take_along_axis(win, vals.argmax(axis=1)[:, None], 1)[:, 0]
    plane = np.arange(shape[0]).repeat(np.prod(out[1:])) * shape[1] * shape[2]
    np.testing.assert_array_equal(winner, idx.numpy().ravel() + plane)


def test_maxpool_is_a_max_layer_with_its_windows():
    net = from_torch(_seeded(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2),
                                           nn.Flatten(), nn.Linear(8, 2))), input_shape=(1, 4, 4))
    pool = net.layers[0]
    assert pool.is_max and pool.windows.shape == (8, 4) and len(pool.keep) == 0
    assert net.widths == (32,)  # one pattern bit per (window, slot)


# ---------------------------------------------------------------------------
# BatchNorm folding
# ---------------------------------------------------------------------------
def test_batchnorm_is_folded_with_running_stats_in_either_mode():
    model = _seeded(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(8, 3), nn.BatchNorm1d(3)))
    stats = [t.clone() for t in model[1].buffers()]
    model.train()
    a = from_torch(model, input_shape=(1, 4, 4))
    assert model.training and model[1].training  # flags kept
    for before, after in zip(stats, model[1].buffers()):
        assert torch.equal(before, after)  # running statistics untouched
    b = from_torch(model.eval(), input_shape=(1, 4, 4))
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
    x = np.random.default_rng(2).standard_normal((20, 16))
    np.testing.assert_allclose(a.forward(x), _torch_out(model, x, (1, 4, 4)), rtol=1e-11, atol=1e-11)


def test_batchnorm_in_an_mlp_keeps_it_an_mlp():
    model = _seeded(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1)))
    net = from_torch(model)
    assert net.is_mlp and net.widths == (3,)


def test_batchnorm_without_running_stats_is_unsupported():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False),
                          nn.Flatten(), nn.Linear(8, 1))
    with pytest.raises(UnsupportedLayerError, match=r"'1' \(BatchNorm2d\).*batch statistics"):
        from_torch(model, input_shape=(1, 4, 4))


# ---------------------------------------------------------------------------
# residual networks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("builder", [preact_resnet, bn_resnet])
def test_resnets_load_and_match(builder):
    model, shape = builder(0)
    net = from_torch(model)  # the input shape is found by trial
    assert net.input_dim == int(np.prod(shape))
    x = np.random.default_rng(3).standard_normal((40, net.input_dim))
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x, shape), rtol=1e-10, atol=1e-10)
    slopes = [layer.slopes for layer in net.hidden]
    n_skip = int(np.prod(shape[1:])) * 2  # the skip value rides along as slope-1 neurons
    assert any((s == 1.0).sum() == n_skip for s in slopes)
    assert all(set(np.unique(s)) <= {0.0, 1.0} for s in slopes)


def test_traced_resnet_in_training_mode_converts_with_eval_semantics():
    model, _ = bn_resnet(0)
    want = from_torch(model)
    model.train()
    got = from_torch(model)
    assert model.training and model.block.bn1.training
    for a, b in zip(want.layers, got.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)


class Wrapper(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x)


def test_user_block_inside_a_sequential_needs_the_wrapper():
    from common import PreActBlock

    seq = _seeded(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), PreActBlock(2), nn.ReLU(),
                                nn.Flatten(), nn.Linear(32, 2)))
    with pytest.raises(UnsupportedLayerError, match=r"'1' \(PreActBlock\).*wrap the Sequential"):
        from_torch(seq)
    _assert_matches(Wrapper(seq), (1, 4, 4))


@pytest.mark.parametrize("decompose", [False, True], ids=["training-ir", "core-aten"])
@pytest.mark.parametrize("builder", [bn_resnet, maxpool_cnn])
def test_exported_programs_load(builder, decompose):
    model, shape = builder(1)
    program = torch.export.export(model, (torch.zeros(3, *shape, dtype=torch.float64),))
    if decompose:
        with warnings.catch_warnings():  # torch-internal LeafSpec deprecation
            warnings.simplefilter("ignore", FutureWarning)
            program = program.run_decompositions()
    net = from_torch(program)
    x = np.random.default_rng(4).standard_normal((30, net.input_dim))
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x, shape), rtol=1e-10, atol=1e-10)


class Branches(nn.Module):
    """Two max-pool branches subtracted, scaled, with a skip around them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(18, 2)

    def forward(self, x):
        h = F.leaky_relu(self.conv(x), 0.1)
        a = F.max_pool2d(h, 2)
        b = F.avg_pool2d(h, 2)
        return self.fc((0.5 * (a - b) + 1.0).flatten(1))


def test_branches_merging_by_sub_and_constants():
    _assert_matches(_seeded(Branches()), (1, 6, 6))


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------
class SigmoidBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.act = nn.Sigmoid()
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(16, 1)

    def forward(self, x):
        h = self.conv(x)
        return self.fc(torch.cat([h, torch.relu(h)], 1).flatten(1))


@pytest.mark.parametrize("model, pattern", [
    (SigmoidBlock(), r"op 'aten\.sigmoid.*' at node 'sigmoid' \(module 'act', Sigmoid\)"),
    (Concat(), r"op 'aten\.cat.*' at node '\w+'"),
])
def test_unsupported_graph_op_is_named_with_node_and_module(model, pattern):
    with pytest.raises(UnsupportedLayerError, match=pattern):
        from_torch(model, input_shape=(1, 4, 4))


@pytest.mark.parametrize("model, path, kind", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(8, 1)), "1", "Sigmoid"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, return_indices=True)), "1", "MaxPool2d"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2)), "1", "Upsample"),
])
def test_unsupported_layer_is_named_with_its_path(model, path, kind):
    with pytest.raises(UnsupportedLayerError) as err:
        from_torch(model, input_shape=(1, 4, 4))
    assert f"'{path}' ({kind})" in str(err.value)


@pytest.mark.parametrize("model, shape, pattern", [
    (nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(8, 1)), (1, 4, 4),
     r"layer '0' \(Conv2d\) needs inputs of shape \(C, H, W\) with C = 3; .* \(1, 4, 4\)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.MaxPool2d(2)), (1, 4, 4),
     r"layer '2' \(MaxPool2d\) needs inputs of shape \(C, H, W\); .* \(4,\)"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(9, 1)), (1, 4, 4),
     r"layer '2' expects 9 input features but the layers before it give 8"),
])
def test_shapes_that_do_not_chain_are_named(model, shape, pattern):
    with pytest.raises(InvalidNetworkError, match=pattern):
        from_torch(model, input_shape=shape)


def test_nan_conv_weight_is_named():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1))
    with torch.no_grad():
        model[0].weight[1, 0, 2, 2] = float("nan")
    with pytest.raises(InvalidNetworkError, match=r"parameter '0\.weight'.*1 NaN"):
        from_torch(model, input_shape=(1, 4, 4))
    block = SigmoidBlock()
    block.act = nn.ReLU()
    with torch.no_grad():
        block.conv.bias[0] = float("inf")
    with pytest.raises(InvalidNetworkError, match=r"bias of node '\w+'"):
        from_torch(block, input_shape=(1, 4, 4))


def test_too_big_dense_map_is_refused_or_kept_as_an_operator():
    model = _seeded(nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(64 * 64 * 64, 1)))
    with pytest.raises(InvalidNetworkError, match=r"'0'.*262144 x 4096.*2\*\*27.*linear_maps=True"):
        from_torch(model, input_shape=(1, 64, 64), check=False)
    net = from_torch(model, input_shape=(1, 64, 64), linear_maps=True, n_check=16)
    assert not net.layers[0].is_dense and net.layers[0].weight.shape == (262144, 4096)


@pytest.mark.parametrize("builder", [maxpool_cnn, bn_resnet])
def test_linear_maps_equal_the_dense_maps(monkeypatch, builder):
    model, _ = builder(0)
    dense = from_torch(model)
    monkeypatch.setattr(torch_program, "MAX_DENSE_ENTRIES", 2000)
    ops = from_torch(model, linear_maps=True)
    assert not any(layer.is_dense for layer in ops.layers[:-1])
    for a, b in zip(dense.layers, ops.layers):
        np.testing.assert_allclose(b.dense_weight(), a.weight, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(b.bias, a.bias)
    rng = np.random.default_rng(6)
    basis = np.linalg.qr(rng.standard_normal((dense.input_dim, 2)))[0]
    sl = rg.Slice.square(rng.standard_normal(dense.input_dim), basis, 0.7)
    want, got = rg.partition(dense, sl), rg.partition(ops, sl)
    assert got.verify()["ok"]
    assert {p.tobytes() for p in got.patterns} == {p.tobytes() for p in want.patterns}


def test_input_shape_is_inferred_or_asked_for():
    model = _seeded(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(18, 2)))
    assert from_torch(model).input_dim == 25
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1))
    with pytest.raises(InvalidNetworkError, match=r"cannot tell the input shape.*input_shape="):
        from_torch(pooled)
    assert from_torch(pooled, input_shape=(1, 5, 5)).input_dim == 25
    conv1d = _seeded(nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(21, 2)))
    assert from_torch(conv1d).input_dim == 18
    with pytest.raises(InvalidNetworkError, match=r"input_shape \(1, 3, 3\) has 9 values"):
        from_torch(nn.Sequential(nn.Flatten(), nn.Linear(4, 1)), input_shape=(1, 3, 3))


def test_linear_maps_must_be_a_bool():
    with pytest.raises(TypeError, match="linear_maps"):
        from_torch(nn.Linear(2, 2), linear_maps="yes")


@pytest.mark.parametrize("bad", [(0, 3), (1.5, 2), "abc", ()])
def test_bad_input_shape(bad):
    with pytest.raises(ValueError, match="input_shape"):
        from_torch(nn.Linear(2, 2), input_shape=bad)


def test_wrong_lowering_is_caught_by_the_check(monkeypatch):
    model, _ = maxpool_cnn(0)
    real = torch_layers._max_windows

    def rolled(*args):
        win, out = real(*args)
        return np.roll(win, 1, axis=0), out  # every window one place off

    monkeypatch.setattr(torch_layers, "_max_windows", rolled)
    with pytest.raises(InvalidNetworkError, match="max abs difference"):
        from_torch(model)
    from_torch(model, check=False)  # the same conversion goes through unchecked


# ---------------------------------------------------------------------------
# end to end: exact partitions of the slices of small conv nets
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("builder", [small_cnn, maxpool_cnn, preact_resnet, bn_resnet])
def test_partition_of_a_conv_net_slice_verifies(builder):
    net = from_torch(builder(2)[0])
    rng = np.random.default_rng(5)
    basis = np.linalg.qr(rng.standard_normal((net.input_dim, 2)))[0]
    part = rg.partition(net, rg.Slice.square(rng.standard_normal(net.input_dim), basis, 1.0))
    assert part.n_regions > 5
    assert part.areas.sum() == pytest.approx(4.0, rel=1e-9)
    report = part.verify()
    assert report["ok"] and report["certificate_failures"] == 0


class Functional(nn.Module):
    """A conv, then one functional op, then a Linear head."""

    def __init__(self, op, c_out, n_feat):
        super().__init__()
        self.op = op
        self.conv = nn.Conv2d(1, c_out, 3)
        self.fc = nn.Linear(n_feat, 2)

    def forward(self, x):
        return self.fc(self.op(torch.relu(self.conv(x))).flatten(1))


@pytest.mark.parametrize("op, c_out, n_feat", [
    (nn.ConvTranspose2d(2, 3, 3, stride=2), 2, 75),
    (lambda h: F.pad(h, (1, 1, 1, 1), value=0.5), 2, 32),
    (lambda h: F.pad(h, (1, 0, 0, 1), mode="reflect"), 2, 18),
    (lambda h: h.mean((2, 3)), 4, 4),
    (lambda h: 2.0 * h.sum(-1) - 1.0, 2, 4),
], ids=["conv-transpose", "constant-pad", "reflect-pad", "mean", "sum-affine"])
def test_functional_ops_in_a_traced_module(op, c_out, n_feat):
    _assert_matches(_seeded(Functional(op, c_out, n_feat)), (1, 4, 4))
