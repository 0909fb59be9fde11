"""torch.export / fx graphs to program ops: the node-by-node graph walk.

:class:`_GraphWalker` reads an exported ``GraphModule`` (from an
``ExportedProgram``, or traced by :func:`~relugeo.nets.torch_import.from_torch`
from a module with its own ``forward``) into a
:class:`~relugeo.nets.torch_program._Program`, folding constant subgraphs and
handing ``call_module`` nodes to the nn.Module walk of
:mod:`~relugeo.nets.torch_layers`. :func:`_from_graph_module` builds the
PWANet and checks it against the graph itself (training-mode dropout removed).
"""

from __future__ import annotations

import copy
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InvalidNetworkError, UnsupportedLayerError
from .pwanet import PWANet
from .torch_check import _compare, _output_array
from .torch_layers import _ROOT, _max_windows, _module_ops, _needs_image
from .torch_program import (
    _F64,
    _Act,
    _Add,
    _Affine,
    _array,
    _build,
    _linear_map,
    _Max,
    _Program,
    _scale_map,
)

_SUPPORTED_OPS = (
    "linear, addmm, mm/matmul, conv1d/conv2d/convolution, avg_pool1d/2d, adaptive_avg_pool1d/2d, "
    "mean/sum over non-batch axes, pad, batch_norm (eval mode), max_pool1d/2d, relu, leaky_relu, "
    "add/sub of two values (residual connections), add/sub/mul/div by constants, "
    "flatten/view/reshape keeping the batch axis, dropout, and transposes/copies of weights"
)


# ---------------------------------------------------------------------------
# torch.export graph walk
# ---------------------------------------------------------------------------
aten = torch.ops.aten


@dataclass(frozen=True)
class _Data:
    """A value computed from the network input: its id in the program, its shape (batch first)."""

    vid: int
    shape: tuple | None


@dataclass(frozen=True)
class _Const:
    """A tensor that does not depend on the input (a weight, a buffer, a folded op)."""

    value: torch.Tensor


@dataclass(frozen=True)
class _Tuple:
    """A multi-output op on the data path: its first output, and what the others are."""

    data: _Data
    rest: str
    op: str


class _Other:
    """Shape bookkeeping, masks and anything else that must not reach the data path."""

    def __init__(self, what: str):
        self.what = what


_IDENTITY_OPS = {
    aten.alias, aten.clone, aten.contiguous, aten.detach, aten._to_copy, aten.to,
    aten.lift_fresh_copy,
}
_DROPOUT_OPS = {aten.dropout, aten.feature_dropout, aten.alpha_dropout, aten.feature_alpha_dropout}
_RESHAPE_OPS = {aten.flatten, aten.view, aten.reshape, aten._unsafe_view}
_FOLDABLE = _IDENTITY_OPS | _RESHAPE_OPS | {
    aten.t, aten.permute, aten.transpose, aten.unsqueeze, aten.squeeze, aten.expand,
    aten.add, aten.sub, aten.mul, aten.div, aten.neg, aten.reciprocal, aten.sqrt, aten.rsqrt,
}
_BOOKKEEPING = {
    aten.sym_size, aten.sym_numel, aten.sym_stride, aten.sym_storage_offset,
    aten._assert_scalar, aten._assert_async, aten._assert_tensor_metadata,
    aten.sym_constrain_range, aten.sym_constrain_range_for_size,
}
_CONV_OPS = {aten.conv1d, aten.conv2d, aten.convolution, aten._convolution,
             aten.conv_transpose1d, aten.conv_transpose2d}
_POOL_OPS = {aten.avg_pool1d, aten.avg_pool2d, aten.adaptive_avg_pool1d, aten.adaptive_avg_pool2d,
             aten._adaptive_avg_pool2d, aten.mean, aten.sum}
_LINEAR_PADS = {aten.reflection_pad1d, aten.reflection_pad2d, aten.replication_pad1d,
                aten.replication_pad2d, aten._pad_circular}
_CONST_PADS = {aten.pad, aten.constant_pad_nd}
_BATCH_NORMS = {aten.batch_norm, aten._native_batch_norm_legit_no_training, aten.native_batch_norm,
                aten._native_batch_norm_legit, aten._native_batch_norm_legit_functional}
_MAX_POOL_OPS = {aten.max_pool1d, aten.max_pool2d, aten.max_pool1d_with_indices,
                 aten.max_pool2d_with_indices}
_RESIDUAL_OPS = {aten.add, aten.add_, aten.sub, aten.sub_}


def _packet(target) -> Any:
    return getattr(target, "overloadpacket", None)


def _op_name(target) -> str:
    if hasattr(target, "name") and callable(target.name):
        try:
            return str(target.name()).replace("::", ".")
        except Exception:
            pass
    mod = getattr(target, "__module__", None) or ""
    return f"{mod}.{getattr(target, '__name__', repr(target))}".lstrip(".")


def _bind(node: torch.fx.Node) -> dict[str, Any]:
    """Arguments of an aten node by schema name, defaults filled in."""
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        out = {f"arg{i}": a for i, a in enumerate(node.args)}
        out.update(node.kwargs)
        return out
    out = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args) and not arg.kwarg_only:
            out[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            out[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            out[arg.name] = arg.default_value
    return out


def _meta_shape(node: torch.fx.Node) -> tuple | None:
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor):
        return tuple(val.shape)
    return None


def _concrete(d) -> int | None:
    if isinstance(d, int):
        return d
    hint = getattr(getattr(d, "node", None), "hint", None)
    return int(hint) if isinstance(hint, int) else None


def _fetch_attr(gm: torch.fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _module_of(node: torch.fx.Node) -> str:
    """`` (module 'block.conv1', Conv2d)`` from the node's module stack, or ''."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path, kind = list(stack.values())[-1]
    kind = kind.rsplit(".", 1)[-1] if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    return f" (module '{path or _ROOT}', {kind})"


class _GraphWalker:
    """Symbolic walk of an exported graph into a :class:`_Program`."""

    def __init__(self, gm: torch.fx.GraphModule, what: str = "the exported graph"):
        self.gm = gm
        self.what = what
        self.prog = _Program()
        self.values: dict[torch.fx.Node, Any] = {}
        self.input_node: torch.fx.Node | None = None
        self.stochastic: list[str] = []

    def fail(self, node: torch.fx.Node, reason: str) -> UnsupportedLayerError:
        op = _op_name(node.target) if node.op == "call_function" else f"{node.op} {node.target}"
        return UnsupportedLayerError(
            f"unsupported op '{op}' at node '{node.name}'{_module_of(node)} of {self.what}: {reason}"
        )

    def resolve(self, a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            return self.values[a]
        if isinstance(a, (list, tuple)):
            return type(a)(self.resolve(x) for x in a)
        return a

    def run(self) -> tuple[_Program, int, tuple | None]:
        """The program, the id of the output value and the input's shape (batch first)."""
        for node in self.gm.graph.nodes:
            if node.op == "output":
                out = self.output(node)
                return self.prog, out, (_meta_shape(self.input_node) if self.input_node else None)
            self.values[node] = self.visit(node)
        raise InvalidNetworkError(f"{self.what} has no output node")

    # -- node kinds ---------------------------------------------------------
    def visit(self, node: torch.fx.Node) -> Any:
        if node.op == "placeholder":
            if self.input_node is not None:
                raise self.fail(node, "the graph has more than one input; relugeo needs one input tensor")
            self.input_node = node
            return _Data(0, _meta_shape(node))
        if node.op == "get_attr":
            obj = _fetch_attr(self.gm, node.target)
            return _Const(obj) if isinstance(obj, torch.Tensor) else _Other(f"attribute {node.target}")
        if node.op == "call_module":
            return self.call_module(node)
        if node.op == "call_function":
            return self.call_function(node)
        raise self.fail(node, f"relugeo converts {_SUPPORTED_OPS}")

    def output(self, node: torch.fx.Node) -> int:
        outs = node.args[0]
        flat = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if len(flat) != 1:
            raise self.fail(
                node, f"the graph returns {len(flat)} values; relugeo needs exactly one output tensor"
            )
        val = self.resolve(flat[0])
        if not isinstance(val, _Data):
            raise self.fail(node, "the graph output does not depend on its input")
        return val.vid

    def call_module(self, node: torch.fx.Node) -> Any:
        target = str(node.target)
        if target.startswith("_guards"):
            return _Other("guards")
        args = [self.resolve(a) for a in node.args]
        sub = self.gm.get_submodule(target)
        if len(args) != 1 or not isinstance(args[0], _Data) or node.kwargs:
            raise self.fail(node, "a submodule call must take the data tensor as its only argument")
        x = args[0]
        per = None if x.shape is None else tuple(_concrete(d) for d in x.shape[1:])
        if per is not None and (None in per or (len(per) < 2 and not _needs_image(sub))):
            per = None  # a flat input of unknown or plain width: the MLP walk
        ops: list = []
        _module_ops(sub, target, ops, per)
        return self.push(node, x, *ops)

    def call_function(self, node: torch.fx.Node) -> Any:
        target = node.target
        if target is operator.getitem:
            container, index = self.resolve(node.args[0]), node.args[1]
            if isinstance(container, _Tuple):
                return container.data if index == 0 else _Other(container.rest)
            if isinstance(container, (list, tuple)):
                return container[index]
            if isinstance(container, _Data):
                raise self.fail(node, "indexing the data tensor is not an affine layer")
            return _Other("item")
        packet = _packet(target)
        if packet in _BOOKKEEPING:
            return _Other("shape bookkeeping")
        bound = _bind(node)
        values = {k: self.resolve(v) for k, v in bound.items()}
        flat = [v for v in values.values() for v in (v if isinstance(v, (list, tuple)) else [v])]
        data = [v for v in flat if isinstance(v, (_Data, _Tuple))]
        if packet is None and getattr(target, "__module__", "") in ("_operator", "operator", "math"):
            if data:
                raise self.fail(node, "Python arithmetic on the data tensor is not an aten op "
                                      "relugeo can read")
            return _Other("shape bookkeeping")
        for v in flat:
            if isinstance(v, _Other) and v.what in ("dropout mask", "max-pool indices",
                                                    "batch-norm statistics"):
                raise self.fail(node, f"it uses a {v.what}")
        if not data:
            if packet in _FOLDABLE:
                return self.fold(node)
            raise self.fail(node, f"relugeo converts {_SUPPORTED_OPS}")
        for v in data:
            if isinstance(v, _Tuple):
                raise self.fail(node, f"it uses the raw output tuple of {v.op}")
        if len(data) > 1:
            if packet in _RESIDUAL_OPS and len(data) == 2 and values["self"] is data[0] \
                    and values["other"] is data[1]:
                return self.residual(node, packet, values)
            raise self.fail(node, "it combines two tensors computed from the input in a way other "
                                  "than adding or subtracting them (residual connections)")
        return self.data_op(node, packet, values, data[0])

    def fold(self, node: torch.fx.Node) -> _Const:
        def unwrap(v):
            if isinstance(v, _Const):
                return v.value
            if isinstance(v, (list, tuple)):
                return type(v)(unwrap(x) for x in v)
            if isinstance(v, _Other):
                raise self.fail(node, f"it computes a weight from {v.what}")
            return v

        args = tuple(unwrap(self.resolve(a)) for a in node.args)
        kwargs = {k: unwrap(self.resolve(v)) for k, v in node.kwargs.items()}
        with torch.no_grad():
            out = node.target(*args, **kwargs)
        return _Const(out)

    # -- helpers -------------------------------------------------------------
    def width(self, node: torch.fx.Node, x: _Data) -> int:
        shape = x.shape
        if shape is None or len(shape) != 2 or not isinstance(shape[1], int):
            raise self.fail(node, f"it needs a (batch, features) tensor with a fixed number of "
                                  f"features; got shape {shape}")
        return int(shape[1])

    def example_shape(self, node: torch.fx.Node, x: _Data) -> tuple[int, ...]:
        """The concrete shape of one example of ``x`` (the batch axis removed)."""
        dims = None if x.shape is None else [_concrete(d) for d in x.shape[1:]]
        if dims is None or None in dims:
            raise self.fail(node, f"it needs an input of known shape; got {x.shape}")
        return tuple(int(d) for d in dims)

    def need_matrix(self, node: torch.fx.Node, x: _Data) -> None:
        if x.shape is not None and len(x.shape) != 2:
            raise self.fail(node, f"it acts on a tensor of shape {tuple(x.shape)}; relugeo needs "
                                  f"(batch, features) (flatten the input first)")

    def const(self, node: torch.fx.Node, v: Any, what: str) -> np.ndarray:
        if isinstance(v, _Const):
            return _array(v.value, f"{what} of node '{node.name}'")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            a = np.asarray(float(v))
            if not np.isfinite(a):
                raise InvalidNetworkError(f"{what} of node '{node.name}' must be finite; got {v}")
            return a
        raise self.fail(node, f"its {what} is not a constant tensor or number")

    def plain(self, node: torch.fx.Node, v: Any, what: str) -> Any:
        """A non-data argument as a torch value (tensors as float64)."""
        if isinstance(v, _Const):
            return torch.from_numpy(self.const(node, v, what)) if v.value.is_floating_point() else v.value
        if isinstance(v, (list, tuple)):
            return type(v)(self.plain(node, a, what) for a in v)
        if isinstance(v, (_Data, _Tuple, _Other)):
            raise self.fail(node, f"its {what} is not a constant")
        return v

    def vector(self, node: torch.fx.Node, c: np.ndarray, width: int, what: str) -> np.ndarray:
        """Broadcast a constant along the feature axis of a (batch, width) tensor."""
        if c.ndim == 2 and c.shape[0] == 1:
            c = c[0]
        if c.ndim > 1 or (c.ndim == 1 and c.shape[0] not in (1, width)):
            raise self.fail(node, f"its {what} of shape {c.shape} does not broadcast along the "
                                  f"{width} features alone")
        return np.broadcast_to(c, (width,)).astype(np.float64)

    def example_const(self, node: torch.fx.Node, c: np.ndarray, per: tuple[int, ...], what: str) -> np.ndarray:
        """Broadcast a constant over one example of shape ``per``."""
        try:
            ok = np.broadcast_shapes(c.shape, (1, *per)) == (1, *per)
        except ValueError:
            ok = False
        if not ok:
            raise self.fail(node, f"its {what} of shape {c.shape} does not broadcast over one "
                                  f"example of shape {per} alone")
        return np.broadcast_to(c, (1, *per))[0].copy()

    def push(self, node: torch.fx.Node, x: _Data, *ops) -> _Data:
        return _Data(self.prog.chain(x.vid, ops), _meta_shape(node) or x.shape)

    def affine(self, node, x, weight: np.ndarray, bias: np.ndarray | None) -> _Data:
        self.need_matrix(node, x)
        if weight.ndim != 2:
            raise self.fail(node, f"its weight has shape {weight.shape}; expected a matrix")
        b = np.zeros(weight.shape[0]) if bias is None else self.vector(node, bias, weight.shape[0], "bias")
        shape = _meta_shape(node) or (None, weight.shape[0])
        return _Data(self.prog.add(_Affine(weight, b, node.name), x.vid), shape)

    def linear_op(self, node: torch.fx.Node, x: _Data, fn: Callable, bias: np.ndarray | None = None,
                  channel_bias: np.ndarray | None = None) -> _Data:
        """A linear torch function of one example plus a bias, as a ``_Map`` step."""
        op, _ = _linear_map(fn, self.example_shape(node, x), node.name, bias, channel_bias)
        return self.push(node, x, op)

    # -- ops on the data path ----------------------------------------------
    def data_op(self, node: torch.fx.Node, packet, v: dict, x: _Data) -> Any:
        first = next(iter(v.values()), None)
        if packet in _IDENTITY_OPS:
            return self.push(node, x)
        if packet in _DROPOUT_OPS or packet is aten.native_dropout:
            if first is not x:
                raise self.fail(node, "dropout of a constant")
            p, train = float(v.get("p", 0.0)), bool(v.get("train", False))
            if train and p > 0:
                self.stochastic.append(node.name)
            if packet is aten.native_dropout:
                return _Tuple(self.push(node, x), "dropout mask", "native_dropout")
            return self.push(node, x)
        if packet in _RESHAPE_OPS:
            return self.reshape(node, x)
        if packet in (aten.relu, aten.relu_):
            return self.push(node, x, _Act(0.0, node.name))
        if packet in (aten.leaky_relu, aten.leaky_relu_):
            slope = float(self.const(node, v.get("negative_slope", 0.01), "negative_slope"))
            return self.push(node, x, _Act(slope, node.name))
        if packet in (aten.clamp_min, aten.clamp_min_) and first is x:
            lo = v.get("min")
            if isinstance(lo, (int, float)) and lo == 0:
                return self.push(node, x, _Act(0.0, node.name))
        if packet is aten.linear and v["input"] is x:
            w = self.const(node, v["weight"], "weight")
            b = None if v.get("bias") is None else self.const(node, v["bias"], "bias")
            return self.affine(node, x, w, b)
        if packet in (aten.mm, aten.matmul) and v["self"] is x:
            m = self.const(node, v["other"] if "other" in v else v["mat2"], "weight")
            return self.affine(node, x, m.T, None)
        if packet is aten.addmm and v["mat1"] is x:
            m = self.const(node, v["mat2"], "weight")
            alpha = float(self.const(node, v.get("alpha", 1), "alpha"))
            beta = float(self.const(node, v.get("beta", 1), "beta"))
            bias = self.const(node, v["self"], "bias")
            return self.affine(node, x, alpha * m.T, beta * bias)
        if packet in _CONV_OPS and v.get("input") is x:
            return self.conv(node, v, x)
        if packet in _POOL_OPS | _LINEAR_PADS | _CONST_PADS and first is x:
            return self.pool_or_pad(node, packet, v, x)
        if packet in _BATCH_NORMS and v.get("input") is x:
            return self.batch_norm(node, packet, v, x)
        if packet in _MAX_POOL_OPS and v.get("self") is x:
            return self.max_pool(node, packet, v, x)
        if packet in (aten.add, aten.sub, aten.add_, aten.sub_, aten.mul, aten.mul_, aten.div,
                      aten.div_, aten.neg):
            return self.arithmetic(node, packet, v, x)
        raise self.fail(node, f"relugeo converts {_SUPPORTED_OPS}")

    def arithmetic(self, node: torch.fx.Node, packet, v: dict, x: _Data) -> _Data:
        """``x + c``, ``c + x``, ``x - c``, ``c - x``, ``c * x``, ``x / c``, ``-x`` for constants ``c``."""
        flat = x.shape is None or len(x.shape) == 2
        if packet is aten.neg:
            return self.scaled(node, x, np.asarray(-1.0), np.asarray(0.0), flat)
        if packet in (aten.mul, aten.mul_):
            other = v["other"] if v["self"] is x else v["self"]
            return self.scaled(node, x, self.const(node, other, "factor"), np.asarray(0.0), flat)
        if packet in (aten.div, aten.div_):
            if v["self"] is not x or v.get("rounding_mode") is not None:
                raise self.fail(node, f"relugeo converts {_SUPPORTED_OPS}")
            c = self.const(node, v["other"], "divisor")
            if not np.all(c != 0):
                raise InvalidNetworkError(f"node '{node.name}' divides by zero")
            return self.scaled(node, x, 1.0 / c, np.asarray(0.0), flat)
        alpha = float(self.const(node, v.get("alpha", 1), "alpha"))
        sign = -1.0 if packet in (aten.sub, aten.sub_) else 1.0
        if v["self"] is x:  # x + alpha * c
            c = self.const(node, v["other"], "constant")
            return self.scaled(node, x, np.asarray(1.0), sign * alpha * c, flat)
        c = self.const(node, v["self"], "constant")
        return self.scaled(node, x, np.asarray(sign * alpha), c, flat)

    def scaled(self, node: torch.fx.Node, x: _Data, scale: np.ndarray, shift: np.ndarray,
               flat: bool) -> _Data:
        """``scale * x + shift`` elementwise, as an ``_Affine`` on (batch, features), else a ``_Map``."""
        if flat:
            n = self.width(node, x)
            s = self.vector(node, scale, n, "factor" if scale.ndim else "constant")
            c = self.vector(node, shift, n, "constant")
            return self.push(node, x, _Affine(np.diag(s), c, node.name))
        per = self.example_shape(node, x)
        s = self.example_const(node, scale, per, "factor")
        c = self.example_const(node, shift, per, "constant")
        return self.push(node, x, _scale_map(s, c, per, node.name))

    def residual(self, node: torch.fx.Node, packet, v: dict) -> _Data:
        a, b = v["self"], v["other"]
        if a.shape is not None and b.shape is not None and tuple(map(str, a.shape)) != tuple(map(str, b.shape)):
            raise self.fail(node, f"it adds tensors of shapes {tuple(a.shape)} and {tuple(b.shape)}; "
                                  f"relugeo adds tensors of the same shape only")
        alpha = float(self.const(node, v.get("alpha", 1), "alpha"))
        sign = -1.0 if packet in (aten.sub, aten.sub_) else 1.0
        return _Data(self.prog.add(_Add(sign * alpha, node.name), a.vid, b.vid), _meta_shape(node) or a.shape)

    def conv(self, node: torch.fx.Node, v: dict, x: _Data) -> _Data:
        kw = {k: self.plain(node, a, k) for k, a in v.items() if k not in ("input", "bias")}
        b = None if v.get("bias") is None else self.const(node, v["bias"], "bias")
        target = node.target
        return self.linear_op(node, x, lambda t: target(input=t, bias=None, **kw), channel_bias=b)

    def pool_or_pad(self, node: torch.fx.Node, packet, v: dict, x: _Data) -> _Data:
        name = next(iter(v))
        kw = {k: self.plain(node, a, k) for k, a in v.items() if k != name}
        target = node.target
        if packet in (aten.mean, aten.sum):
            nd = len(x.shape)
            dims = kw.get("dim")
            if kw.get("dtype") is not None or not dims or any(int(d) % nd == 0 for d in dims):
                raise self.fail(node, "only a mean or sum over non-batch axes is linear per example")
        if packet in _CONST_PADS:
            if kw.get("mode", "constant") != "constant":
                return self.linear_op(node, x, lambda t: target(t, **kw))
            zero = {**kw, "value": 0.0}
            with torch.no_grad():
                bias = target(torch.zeros((1, *self.example_shape(node, x)), dtype=_F64), **kw)
            return self.linear_op(node, x, lambda t: target(t, **zero), bias=bias.reshape(-1).numpy())
        return self.linear_op(node, x, lambda t: target(t, **kw))

    def batch_norm(self, node: torch.fx.Node, packet, v: dict, x: _Data) -> Any:
        if bool(v.get("training", False)):
            raise self.fail(node, "batch norm in training mode normalises by batch statistics; "
                                  "export the module in eval mode (model.eval())")
        if v.get("running_mean") is None or v.get("running_var") is None:
            raise self.fail(node, "batch norm without running statistics is not a fixed map")
        per = self.example_shape(node, x)
        c = per[0]
        mean = self.const(node, v["running_mean"], "running_mean")
        var = self.const(node, v["running_var"], "running_var")
        gamma = np.ones(c) if v.get("weight") is None else self.const(node, v["weight"], "weight")
        beta = np.zeros(c) if v.get("bias") is None else self.const(node, v["bias"], "bias")
        eps = float(v["eps"])
        if not np.all(var + eps > 0):
            raise InvalidNetworkError(f"node '{node.name}': running_var + eps must be positive")
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        view = (c, *[1] * (len(per) - 1))
        out = self.push(node, x, _scale_map(scale.reshape(view), shift.reshape(view), per, node.name))
        if packet is aten.batch_norm:
            return out
        return _Tuple(_Data(out.vid, x.shape), "batch-norm statistics", _op_name(node.target))

    def max_pool(self, node: torch.fx.Node, packet, v: dict, x: _Data) -> Any:
        per = self.example_shape(node, x)
        win, out_shape = _max_windows(per, v["kernel_size"], v.get("stride"), v.get("padding", 0),
                                      v.get("dilation", 1), bool(v.get("ceil_mode", False)), node.name)
        meta = _meta_shape(node) if packet in (aten.max_pool1d, aten.max_pool2d) else None
        if meta is not None and tuple(_concrete(d) for d in meta[1:]) != out_shape:
            raise InvalidNetworkError(f"node '{node.name}': max-pool windows give shape {out_shape} "
                                      f"but the graph says {tuple(meta[1:])}")
        batch = x.shape[0] if x.shape is not None else None
        out = _Data(self.prog.add(_Max(win, node.name), x.vid), (batch, *out_shape))
        if packet in (aten.max_pool1d, aten.max_pool2d):
            return out
        return _Tuple(out, "max-pool indices", _op_name(node.target))

    def reshape(self, node: torch.fx.Node, x: _Data) -> _Data:
        """Accept reshapes that keep the batch axis (values are stored flat in C order)."""
        out = _meta_shape(node)
        if out is None or x.shape is None:
            raise self.fail(node, "a reshape without shape metadata cannot be checked")
        if len(out) < 2 or len(x.shape) < 1 or str(out[0]) != str(x.shape[0]):
            raise self.fail(node, f"it reshapes {tuple(x.shape)} to {tuple(out)}; relugeo accepts "
                                  f"only reshapes that keep the batch axis")
        return _Data(x.vid, out)


def _input_shape(shape: tuple | None, n_in: int, n_check: int) -> tuple[int, ...]:
    """A concrete input shape (batch first) for the check."""
    if shape is None:
        return (min(n_check, 64), n_in)
    dims = [_concrete(d) for d in shape]
    if any(d is None for d in dims) or len(dims) < 2:
        raise InvalidNetworkError(
            f"the exported graph's input shape {shape} has no concrete size to check with"
        )
    feat = int(np.prod(dims[1:]))
    if feat != n_in:
        raise InvalidNetworkError(
            f"the exported graph's input of shape {tuple(shape)} has {feat} features per "
            f"example but its first affine map expects {n_in}"
        )
    return tuple(dims)


def _graph_reference(gm: torch.fx.GraphModule, stochastic: Sequence[str]) -> tuple[Callable, torch.dtype]:
    """A float64 copy of ``gm`` with training-mode dropout removed, or ``gm`` itself."""
    try:
        with warnings.catch_warnings():
            # torch's own pytree specs warn about their deprecated LeafSpec when copied
            warnings.simplefilter("ignore", FutureWarning)
            ref = copy.deepcopy(gm)
        if stochastic:
            names = set(stochastic)
            for node in list(ref.graph.nodes):
                if node.name not in names:
                    continue
                src = node.args[0] if node.args else node.kwargs["input"]
                if _packet(node.target) is aten.native_dropout:
                    for user in list(node.users):
                        if user.target is operator.getitem and user.args[1] == 0:
                            user.replace_all_uses_with(src)
                        if not user.users:
                            ref.graph.erase_node(user)
                    if node.users:
                        continue
                else:
                    node.replace_all_uses_with(src)
                ref.graph.erase_node(node)
            ref.recompile()
        ref = ref.to(torch.float64)
        return ref, torch.float64
    except Exception:
        dtype = torch.float32
        for node in gm.graph.nodes:
            if node.op == "placeholder" and isinstance(node.meta.get("val"), torch.Tensor):
                dtype = node.meta["val"].dtype
        return gm, dtype


def _from_graph_module(gm: torch.fx.GraphModule, input_shape: tuple[int, ...] | None, operators: bool,
                       *, check: bool, n_check: int, seed: int) -> PWANet:
    walker = _GraphWalker(gm)
    prog, out, in_shape = walker.run()
    if in_shape is None and input_shape is not None:
        in_shape = (min(n_check, 64), *input_shape)
    n_in = None if in_shape is None else int(np.prod([_concrete(d) or 0 for d in in_shape[1:]])) or None
    net = _build(prog, out, n_in, "the exported graph", operators)
    if in_shape is not None:
        _input_shape(in_shape, net.input_dim, n_check)
    if not check:
        return net
    shape = _input_shape(in_shape, net.input_dim, n_check)
    n_batches = -(-n_check // shape[0])
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal(shape) for _ in range(n_batches)]
    ref, dtype = _graph_reference(gm, walker.stochastic)
    outs = []
    try:
        with torch.no_grad():
            for b in batches:
                outs.append(_output_array(ref(torch.from_numpy(b).to(dtype))))
    except InvalidNetworkError:
        raise
    except Exception as exc:
        raise InvalidNetworkError(
            f"from_torch check: the exported module's forward pass failed on inputs of shape "
            f"{shape}: {type(exc).__name__}: {exc}"
        ) from exc
    _compare(net, batches, outs, dtype, "from_torch check (exported graph)")
    return net
