"""Tests of relugeo.nets: from_torch, architecture specs, checkpoints."""

from __future__ import annotations

import copy
import io
import json
import warnings
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from relugeo.errors import CheckpointError, InvalidNetworkError, UnsupportedLayerError
from relugeo.nets import (
    AffineLayer,
    PWANet,
    arch_of,
    arch_to_string,
    build_module,
    from_torch,
    load,
    load_module,
    parse_arch,
    save,
    torch_check,
    torch_program,
)


def _seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a module reproducible weights without touching the global RNG."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype))
    return model


def _torch_out(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The module's output in float64, evaluated on a float64 copy in eval mode."""
    ref = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return ref(torch.from_numpy(x)).numpy()


def _inputs(n: int, d: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


# ---------------------------------------------------------------------------
# from_torch: supported layers
# ---------------------------------------------------------------------------
NESTED = [
    pytest.param(
        lambda: nn.Sequential(nn.Linear(3, 7), nn.ReLU(), nn.Linear(7, 2)), (7,), id="flat"
    ),
    pytest.param(
        lambda: nn.Sequential(
            nn.Flatten(),
            nn.Sequential(nn.Linear(4, 6), nn.Sequential(nn.LeakyReLU(0.2), nn.Dropout(0.5))),
            nn.Sequential(nn.Sequential(nn.Identity(), nn.Linear(6, 5)), nn.ReLU()),
            nn.Linear(5, 3),
        ),
        (6, 5),
        id="nested-depth-3",
    ),
    pytest.param(
        lambda: nn.Sequential(
            nn.Linear(2, 9), nn.LeakyReLU(0.05), nn.AlphaDropout(0.2), nn.Linear(9, 9),
            nn.LeakyReLU(1.5), nn.Linear(9, 1),
        ),
        (9, 9),
        id="leaky-slopes",
    ),
]


@pytest.mark.parametrize("factory, widths", NESTED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_torch_matches_module_forward(factory, widths, dtype):
    model = _seeded(factory()).to(dtype)
    net = from_torch(model)
    assert isinstance(net, PWANet)
    assert net.widths == widths
    x = _inputs(300, net.input_dim)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-10)


def test_leaky_slopes_are_kept_per_layer():
    model = _seeded(nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(0.3), nn.Linear(4, 4),
                                  nn.ReLU(), nn.Linear(4, 1)))
    net = from_torch(model)
    assert [layer.negative_slope for layer in net.layers] == [0.3, 0.0, None]


def test_dropout_in_training_mode_is_identity():
    model = _seeded(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.9), nn.Linear(8, 2)))
    model.train()
    net = from_torch(model)
    x = _inputs(64, 3)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-12)
    assert model.training


def test_flatten_first_accepts_image_shaped_module_inputs():
    model = _seeded(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2)))
    net = from_torch(model)
    imgs = _inputs(10, 12).reshape(10, 1, 3, 4)
    with torch.no_grad():
        want = model.double()(torch.from_numpy(imgs)).numpy()
    np.testing.assert_allclose(net.forward(imgs.reshape(10, -1)), want, rtol=1e-12, atol=1e-12)


def test_bare_linear_is_one_affine_layer():
    lin = _seeded(nn.Linear(5, 3))
    net = from_torch(lin)
    assert len(net.layers) == 1 and net.widths == ()
    np.testing.assert_array_equal(net.layers[0].weight, lin.weight.detach().double().numpy())
    lin_nb = _seeded(nn.Linear(5, 3, bias=False))
    np.testing.assert_array_equal(from_torch(lin_nb).layers[0].bias, np.zeros(3))


def test_consecutive_linears_are_composed():
    model = _seeded(nn.Sequential(
        nn.Linear(3, 5), nn.Linear(5, 4), nn.ReLU(),
        nn.Linear(4, 6), nn.Identity(), nn.Dropout(), nn.Linear(6, 2),
    ))
    net = from_torch(model)
    assert len(net.layers) == 2
    assert net.widths == (4,)
    w0, b0 = model[0].weight.detach().numpy().astype(float), model[0].bias.detach().numpy().astype(float)
    w1, b1 = model[1].weight.detach().numpy().astype(float), model[1].bias.detach().numpy().astype(float)
    np.testing.assert_allclose(net.layers[0].weight, w1 @ w0, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].bias, w1 @ b0 + b1, rtol=1e-12)
    x = _inputs(100, 3)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "acts, slope",
    [
        ((nn.ReLU(), nn.ReLU()), 0.0),
        ((nn.LeakyReLU(0.1), nn.LeakyReLU(0.2)), 0.1 * 0.2),
        ((nn.ReLU(), nn.LeakyReLU(0.3)), 0.0),
        ((nn.LeakyReLU(0.3), nn.ReLU()), 0.0),
        ((nn.LeakyReLU(-0.5), nn.ReLU()), -0.5),
        ((nn.LeakyReLU(-0.5), nn.LeakyReLU(0.1)), -0.5),
    ],
)
def test_consecutive_activations_merge_exactly(acts, slope):
    model = _seeded(nn.Sequential(nn.Linear(2, 6), *acts, nn.Linear(6, 2)))
    net = from_torch(model)
    assert net.widths == (6,)
    assert net.layers[0].negative_slope == pytest.approx(slope)
    x = _inputs(400, 2)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-12)


def test_trailing_and_leading_activations():
    model = _seeded(nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(3, 4), nn.ReLU()))
    net = from_torch(model)
    assert net.widths == (3, 4)
    np.testing.assert_array_equal(net.layers[0].weight, np.eye(3))
    np.testing.assert_array_equal(net.layers[-1].weight, np.eye(4))
    x = _inputs(50, 3)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-12)


def test_weights_are_copied_not_shared():
    model = _seeded(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))).double()
    net = from_torch(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not np.allclose(net.layers[0].weight, model[0].weight.detach().numpy())


# ---------------------------------------------------------------------------
# from_torch: errors
# ---------------------------------------------------------------------------
class Custom(nn.Module):
    def forward(self, x):
        return x


class Doubled(nn.Sequential):
    def forward(self, x):
        return 2 * super().forward(x)


@pytest.mark.parametrize(
    "model, path, kind",
    [
        (nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Tanh())), "1.1", "Tanh"),
        (nn.Sequential(nn.Linear(2, 3), nn.Sigmoid()), "1", "Sigmoid"),
        (nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3), nn.Linear(3, 1)), "1", "LayerNorm"),
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(Custom())), "2.0", "Custom"),
        (nn.Sequential(nn.Linear(2, 2), nn.ModuleList([nn.ReLU()])), "1", "ModuleList"),
        (nn.Sequential(nn.Linear(2, 2), Doubled(nn.ReLU())), "1", "Doubled"),
        (nn.Sequential(nn.Flatten(0), nn.Linear(2, 2)), "0", "Flatten"),
        (nn.Tanh(), "<model>", "Tanh"),
    ],
)
def test_unsupported_layer_is_named_with_its_path(model, path, kind):
    with pytest.raises(UnsupportedLayerError) as err:
        from_torch(model)
    msg = str(err.value)
    assert f"'{path}'" in msg and f"({kind})" in msg


def test_unsupported_message_lists_supported_layers():
    want = r"unsupported layer '3\.1' \(Tanh\): relugeo supports Linear, ReLU"
    with pytest.raises(UnsupportedLayerError, match=want):
        from_torch(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2),
                                 nn.Sequential(nn.ReLU(), nn.Tanh())))


@pytest.mark.parametrize("bad, name", [("weight", "2.weight"), ("bias", "2.bias")])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_parameter_is_named(bad, name, value):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        getattr(model[2], bad).view(-1)[0] = value
    with pytest.raises(InvalidNetworkError, match=rf"parameter '{name}'"):
        from_torch(model)


@pytest.mark.parametrize(
    "model",
    [nn.Sequential(), nn.Sequential(nn.Sequential()), nn.Sequential(nn.ReLU(), nn.Identity())],
    ids=["empty", "empty-nested", "no-linear"],
)
def test_empty_or_linear_free_net_is_invalid(model):
    with pytest.raises(InvalidNetworkError):
        from_torch(model)


def test_shapes_that_do_not_chain_are_invalid():
    with pytest.raises(InvalidNetworkError, match=r"layer '2' expects 4 input features"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(4, 1)))


def test_check_catches_a_wrong_conversion(monkeypatch):
    monkeypatch.setattr(torch_program, "_merge_slopes", lambda a, b: a + b)
    model = _seeded(nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.1), nn.LeakyReLU(0.2), nn.Linear(8, 1)))
    with pytest.raises(InvalidNetworkError, match="max abs difference"):
        from_torch(model)
    from_torch(model, check=False)  # the same conversion goes through unchecked


@pytest.mark.parametrize("kw", [{"n_check": 0}, {"n_check": 2.5}, {"check": "yes"}, {"seed": 1.5}])
def test_bad_check_arguments(kw):
    with pytest.raises((TypeError, ValueError), match=next(iter(kw))):
        from_torch(nn.Linear(2, 2), **kw)


# ---------------------------------------------------------------------------
# from_torch leaves the module and the global RNG alone
# ---------------------------------------------------------------------------
def _fingerprint(model):
    return (
        [(n, m.training) for n, m in model.named_modules()],
        [(n, p.dtype, p.detach().clone()) for n, p in model.named_parameters()],
    )


def _assert_same(before, after):
    assert before[0] == after[0]
    for (n1, d1, p1), (n2, d2, p2) in zip(before[1], after[1]):
        assert (n1, d1) == (n2, d2)
        assert torch.equal(p1, p2)


@pytest.mark.parametrize("copyable", [True, False], ids=["float64-copy", "in-place-fallback"])
def test_module_is_not_modified(monkeypatch, copyable):
    model = _seeded(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.1)), nn.Linear(4, 2)))
    model.train()
    model[3].eval()  # mixed flags must come back exactly
    if not copyable:
        def no_copy(obj, memo=None):
            raise RuntimeError("not copyable")
        monkeypatch.setattr(torch_check.copy, "deepcopy", no_copy)
    before = _fingerprint(model)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    from_torch(model)
    _assert_same(before, _fingerprint(model))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()
    assert model[0].weight.dtype == torch.float32


def test_recording_hooks_are_not_run_by_the_check():
    model = _seeded(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    seen = []
    model[1].register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    from_torch(model)
    assert seen == []


def test_check_is_seeded():
    model = _seeded(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    a = from_torch(model, seed=3, n_check=10)
    b = from_torch(model, seed=3, n_check=10)
    np.testing.assert_array_equal(a.layers[0].weight, b.layers[0].weight)


def test_low_precision_module_checks_against_exact_weights():
    model = _seeded(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))).to(torch.bfloat16)
    net = from_torch(model)
    np.testing.assert_array_equal(net.layers[0].weight, model[0].weight.detach().double().numpy())
    assert model[0].weight.dtype == torch.bfloat16


# ---------------------------------------------------------------------------
# architecture specs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, sizes, act, slope",
    [
        ("mlp:64-200-200-200-10:relu", [64, 200, 200, 200, 10], "relu", 0.0),
        ("mlp:2-16-16-1:leaky_relu", [2, 16, 16, 1], "leaky_relu", 0.01),
        ("mlp:2-16-1:leaky_relu(0.2)", [2, 16, 1], "leaky_relu", 0.2),
        (" MLP: 2 - 3 : Leaky_ReLU( 1e-3 ) ", [2, 3], "leaky_relu", 1e-3),
        ("mlp:5-1", [5, 1], "relu", 0.0),
    ],
)
def test_spec_strings_parse(text, sizes, act, slope):
    a = parse_arch(text)
    assert a == {"format": "relugeo-arch", "version": 1, "type": "mlp", "sizes": sizes,
                 "activation": act, "negative_slope": slope}
    assert parse_arch(arch_to_string(a)) == a
    json.dumps(a)


@pytest.mark.parametrize(
    "text",
    [
        "mlp:2-16-1:tanh", "mlp:2:relu", "mlp:2-0-1:relu", "mlp:2-x-1:relu", "mlp::relu",
        "cnn:2-3:relu", "mlp:2-3:relu(0.1)", "mlp:2-3:leaky_relu(abc)", "mlp:2-3:leaky_relu(nan)",
        "mlp:2-3:", "2-16-1", "",
    ],
)
def test_bad_spec_strings_name_spec_and_grammar(text):
    with pytest.raises(CheckpointError) as err:
        parse_arch(text)
    msg = str(err.value)
    assert repr(text) in msg and "mlp:<n_in>-<hidden>" in msg


@pytest.mark.parametrize(
    "d",
    [
        {"type": "mlp", "sizes": [2, 3], "activation": "relu", "negative_slope": 0.5},
        {"type": "conv", "sizes": [2, 3]},
        {"type": "mlp", "sizes": [2, True]},
        {"type": "mlp", "sizes": [2, 3], "activaton": "relu"},
        {"format": "other", "type": "mlp", "sizes": [2, 3]},
        {"version": 2, "type": "mlp", "sizes": [2, 3]},
    ],
)
def test_bad_spec_dicts(d):
    with pytest.raises(CheckpointError):
        parse_arch(d)


def test_spec_dict_json_text_and_file(tmp_path):
    a = parse_arch("mlp:3-8-2:leaky_relu(0.25)")
    assert parse_arch(dict(a)) == a
    assert parse_arch({"type": "mlp", "sizes": [3, 8, 2], "activation": "leaky_relu",
                       "negative_slope": 0.25}) == a
    assert parse_arch(json.dumps(a)) == a
    f = tmp_path / "mlp_arch.json"
    f.write_text(json.dumps(a))
    assert parse_arch(f) == a and parse_arch(str(f)) == a
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match="bad.json"):
        parse_arch(bad)
    with pytest.raises(CheckpointError, match="missing.json"):
        parse_arch(str(tmp_path / "missing.json"))
    with pytest.raises(TypeError, match="spec must be"):
        parse_arch(3)


def test_arch_to_string_round_trips_slopes():
    assert arch_to_string("mlp:2-16-1:leaky_relu(0.01)") == "mlp:2-16-1:leaky_relu"
    s = arch_to_string({"type": "mlp", "sizes": [2, 1], "activation": "leaky_relu",
                        "negative_slope": 0.1 + 0.2})
    assert parse_arch(s)["negative_slope"] == 0.1 + 0.2


def test_build_module_layout_and_arch_of():
    m = build_module("mlp:2-16-8-1:leaky_relu(0.2)")
    assert [type(x) for x in m] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert m[1].negative_slope == 0.2
    assert arch_of(m) == parse_arch("mlp:2-16-8-1:leaky_relu(0.2)")
    assert arch_of(build_module("mlp:4-3")) == parse_arch("mlp:4-3:relu")
    assert from_torch(m).widths == (16, 8)


@pytest.mark.parametrize(
    "model, what",
    [
        (nn.Sequential(nn.Linear(2, 3), nn.Dropout(), nn.Linear(3, 1)), "Dropout"),
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.LeakyReLU(),
                       nn.Linear(3, 1)), "slope"),
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU()), "odd"),
        (nn.Sequential(nn.Linear(2, 3, bias=False)), "bias"),
        (nn.Linear(2, 3), "Linear"),
    ],
)
def test_arch_of_rejects_other_layouts(model, what):
    with pytest.raises(CheckpointError, match=what):
        arch_of(model)


# ---------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------
def _mlp(spec="mlp:3-8-8-2:leaky_relu(0.1)", seed=0, dtype=torch.float32):
    return _seeded(build_module(spec), seed).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_save_load_round_trip(tmp_path, dtype):
    model = _mlp(dtype=dtype)
    meta = {"step": 7, "lr": np.float32(0.5), "tags": ["a"], "w": np.arange(3.0)}
    path = save(tmp_path / "ckpt.pt", model, meta=meta)
    assert path == tmp_path / "ckpt.pt"
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "relugeo-checkpoint" and raw["version"] == 1
    assert raw["arch"] == parse_arch("mlp:3-8-8-2:leaky_relu(0.1)")
    assert raw["meta"].keys() == meta.keys() and raw["meta"]["lr"] == 0.5
    assert raw["meta"]["tags"] == ["a"] and raw["meta"]["w"].tolist() == [0.0, 1.0, 2.0]
    net = load(path)
    x = _inputs(100, 3)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-12)
    state = torch.get_rng_state()
    mod = load_module(str(path))
    save(tmp_path / "ckpt.pt", mod)
    assert torch.equal(torch.get_rng_state(), state)  # no initialisation draws
    assert mod[0].weight.dtype == dtype
    assert all(torch.equal(a, b) for a, b in zip(mod.state_dict().values(), model.state_dict().values()))
    assert [f.name for f in tmp_path.iterdir()] == ["ckpt.pt"]


def test_save_validates_before_writing(tmp_path):
    target = tmp_path / "x.pt"
    with pytest.raises(CheckpointError, match="Dropout"):
        save(target, nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 1)))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        save(target, _mlp(), arch="mlp:3-8-8-3:leaky_relu(0.1)")
    with pytest.raises(CheckpointError, match="meta"):
        save(target, _mlp(), meta={"fn": print})
    with pytest.raises(CheckpointError, match="does not exist"):
        save(tmp_path / "nodir" / "x.pt", _mlp())
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save(path, _mlp(seed=1), meta={"step": 1})
    old = path.read_bytes()
    fresh = tmp_path / "fresh.pt"

    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        save(path, _mlp(seed=2), meta={"step": 2})
    with pytest.raises(OSError, match="disk full"):
        save(fresh, _mlp(seed=2))
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert not fresh.exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["ckpt.pt"]
    assert load_module(path)[0].weight.shape == (8, 3)


def test_bare_state_dict_needs_arch(tmp_path):
    model = _mlp()
    path = tmp_path / "sd.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = str(err.value)
    assert "sd.pt" in msg and "arch" in msg and "'mlp:3-8-8-2:relu'" in msg
    spec = "mlp:3-8-8-2:leaky_relu(0.1)"
    x = _inputs(50, 3)
    want = _torch_out(model, x)
    for arch in (spec, parse_arch(spec)):
        np.testing.assert_allclose(load(path, arch=arch).forward(x), want, rtol=1e-12, atol=1e-12)
    spec_file = tmp_path / "arch.json"
    spec_file.write_text(json.dumps(parse_arch(spec)))
    np.testing.assert_allclose(load(path, arch=spec_file).forward(x), want, rtol=1e-12, atol=1e-12)


def test_wrapped_and_prefixed_state_dicts(tmp_path):
    model = _mlp()
    spec = "mlp:3-8-8-2:leaky_relu(0.1)"
    path = tmp_path / "wrapped.pt"
    prefixed = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "model_state_dict": prefixed}, path)
    x = _inputs(20, 3)
    np.testing.assert_allclose(load(path, arch=spec).forward(x), _torch_out(model, x),
                               rtol=1e-12, atol=1e-12)


def test_state_dict_that_does_not_match_arch(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(_mlp("mlp:3-8-2:relu").state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load(path, arch="mlp:4-8-2:relu")
    msg = str(err.value)
    assert "sd.pt" in msg and "'0.weight': checkpoint (8, 3) vs arch (8, 4)" in msg
    with pytest.raises(CheckpointError, match=r"missing keys \['4.weight', '4.bias'\]"):
        load(path, arch="mlp:3-8-8-2:relu")


def test_own_checkpoint_disagreeing_with_given_arch(tmp_path):
    path = save(tmp_path / "c.pt", _mlp())
    with pytest.raises(CheckpointError, match="disagrees"):
        load(path, arch="mlp:3-8-8-2:relu")
    assert load(path, arch="mlp:3-8-8-2:leaky_relu(0.1)").widths == (8, 8)


def test_truncated_and_corrupt_files(tmp_path):
    good = save(tmp_path / "good.pt", _mlp())
    data = good.read_bytes()
    half = tmp_path / "half.pt"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"half\.pt.*truncated or corrupt"):
        load(half)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load(junk)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load(empty)
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="directory"):
        load(tmp_path)


def test_pickled_module_needs_trust(tmp_path):
    model = _seeded(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Dropout(0.1), nn.Linear(5, 2)))
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = str(err.value)
    assert "whole.pt" in msg and "arbitrary code" in msg and "trust=True" in msg
    net = load(path, trust=True)
    x = _inputs(40, 3)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-12)
    assert isinstance(load_module(path, trust=True), nn.Sequential)


# ---------------------------------------------------------------------------
# torch.export archives
# ---------------------------------------------------------------------------
def _export(model, example, path, decompose=False, **kw):
    program = torch.export.export(model, (example,), **kw)
    if decompose:
        with warnings.catch_warnings():  # torch-internal LeafSpec deprecation
            warnings.simplefilter("ignore", FutureWarning)
            program = program.run_decompositions()
    torch.export.save(program, path)
    return path


@pytest.mark.parametrize("decompose", [False, True], ids=["training-ir", "core-aten"])
def test_export_archive_loads_and_matches(tmp_path, decompose):
    model = _seeded(nn.Sequential(
        nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.2),
        nn.Sequential(nn.Linear(8, 8, bias=False), nn.LeakyReLU(0.2)), nn.Linear(8, 3),
    )).eval()
    path = _export(model, torch.randn(4, 1, 2, 3), tmp_path / "m.pt2", decompose)
    net = load(path)
    assert net.widths == (8, 8)
    x = _inputs(60, 6)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-10)
    assert isinstance(load_module(path), torch.fx.GraphModule)


def test_export_in_training_mode_with_dynamic_batch(tmp_path):
    model = _seeded(nn.Sequential(nn.Linear(3, 6), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                  nn.Linear(6, 6), nn.ReLU(), nn.ReLU(), nn.Linear(6, 2))).train()
    batch = torch.export.Dim("batch", min=2, max=4096)
    path = _export(model, torch.randn(5, 3), tmp_path / "m.pt2", decompose=True,
                   dynamic_shapes={"input": {0: batch}})
    net = load(path)
    x = _inputs(30, 3)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-10)


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("scale", torch.tensor([1.0, -2.0, 0.5]))

    def forward(self, x):
        return nn.functional.leaky_relu(self.fc(x / 255.0 - 0.5) * self.scale, 0.3) + 1.0


def test_export_of_affine_arithmetic(tmp_path):
    model = _seeded(Scaled())
    net = load(_export(model, torch.randn(2, 4), tmp_path / "s.pt2"))
    x = _inputs(40, 4) * 100
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-10)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return x * torch.relu(self.fc(x))


@pytest.mark.parametrize(
    "model, op",
    [
        (nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)), "aten.tanh"),
        (Gated(), "aten.mul"),
    ],
)
def test_export_with_unsupported_op_names_op_and_node(tmp_path, model, op):
    path = _export(_seeded(model), torch.randn(2, 3), tmp_path / "u.pt2")
    with pytest.raises(UnsupportedLayerError, match=rf"op '{op}.*' at node '\w+'") as err:
        load(path)
    assert "u.pt2" in str(err.value)


def _rewrite_zip(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, edit(info.filename, zin.read(info.filename)))


def test_export_archive_with_pickled_weight_needs_trust(tmp_path):
    model = _seeded(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))).eval()
    src = _export(model, torch.randn(2, 3), tmp_path / "m.pt2")
    with zipfile.ZipFile(src) as z:
        cfg_name = next(n for n in z.namelist() if n.endswith("_weights_config.json"))
        cfg = json.loads(z.read(cfg_name))
    fqn, entry = next(iter(cfg["config"].items()))
    buf = io.BytesIO()
    torch.save(nn.Parameter(model.state_dict()[fqn].detach().clone()), buf)
    entry["use_pickle"] = True

    def edit(name, data):
        if name == cfg_name:
            return json.dumps(cfg).encode()
        if name.endswith("/data/weights/" + entry["path_name"]):
            return buf.getvalue()
        return data

    pickled = tmp_path / "pickled.pt2"
    _rewrite_zip(src, pickled, edit)
    with pytest.raises(CheckpointError, match=rf"pickled\.pt2.*'{fqn}' as a pickle.*trust=True"):
        load(pickled)
    x = _inputs(20, 3)
    np.testing.assert_allclose(load(pickled, trust=True).forward(x), _torch_out(model, x),
                               rtol=1e-12, atol=1e-12)


def test_truncated_export_archive(tmp_path):
    src = _export(_seeded(nn.Sequential(nn.Linear(2, 2))), torch.randn(2, 2), tmp_path / "m.pt2")
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"m\.pt2.*truncated or corrupt"):
        load(src)


def test_export_archive_arch_must_agree(tmp_path):
    model = _seeded(build_module("mlp:3-5-2:relu")).eval()
    path = _export(model, torch.randn(2, 3), tmp_path / "m.pt2")
    assert load(path, arch="mlp:3-5-2:relu").widths == (5,)
    with pytest.raises(CheckpointError, match="disagrees"):
        load(path, arch="mlp:3-6-2:relu")


def test_from_torch_accepts_exported_program():
    model = _seeded(nn.Sequential(nn.Linear(2, 5), nn.LeakyReLU(0.1), nn.Linear(5, 1))).eval()
    program = torch.export.export(model, (torch.randn(3, 2),))
    net = from_torch(program)
    x = _inputs(30, 2)
    np.testing.assert_allclose(net.forward(x), _torch_out(model, x), rtol=1e-12, atol=1e-12)


def test_affine_layer_is_reexported():
    layer = AffineLayer(np.eye(2), np.zeros(2), None)
    assert PWANet([layer]).output_dim == 2
