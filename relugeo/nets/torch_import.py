"""Convert PyTorch modules to :class:`~relugeo.nets.pwanet.PWANet`.

Three kinds of input are understood:

* ``nn.Sequential`` containers (nested to any depth) of the layers in
  ``SUPPORTED_LAYERS``, and bare supported layers, walked module by module;
* graphs produced by :func:`torch.export.export` (an ``ExportedProgram`` or
  the ``GraphModule`` returned by its ``.module()``), walked node by node;
* any other ``nn.Module`` (a ResNet with its own ``forward``): traced with
  :func:`torch.export.export` on an example input of the module's input
  shape, then walked as a graph.

Both walks record a program: value 0 is the network input, every step applies
one operation to earlier values. Operations are affine maps on flat vectors
(``Linear``), linear torch functions on images with a bias (convolution,
pooling, BatchNorm, padding, scaling), sums of two values (residual
additions), two-slope activations (ReLU, leaky ReLU) and max-poolings. Every
value is stored flat in C order, so ``flatten`` and ``view`` cost nothing.

A program that is a plain chain of affine maps and activations (an MLP) is
assembled by :func:`_assemble`: consecutive affine maps are multiplied into
one, consecutive activations merged into one, and a net that ends with an
activation gets an identity logits layer. Any other program is lowered by
:func:`_lower`, which keeps every live value as a dense affine map of the
current state vector (see its docstring); maps over :data:`MAX_DENSE_ENTRIES`
entries are refused, or with ``linear_maps=True`` kept as operators
(:class:`~relugeo.nets.linear_maps.LinearMap` weights).
"""

from __future__ import annotations

import copy
import math
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from ..errors import InvalidNetworkError, UnsupportedLayerError
from .linear_maps import LinearMap
from .pwanet import AffineLayer, PWANet

__all__ = ["MAX_DENSE_ENTRIES", "from_torch"]

SUPPORTED_LAYERS = (
    "Linear, ReLU, LeakyReLU, Flatten, Identity, Dropout, Conv1d, Conv2d, AvgPool1d, AvgPool2d, "
    "AdaptiveAvgPool1d, AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, MaxPool1d, MaxPool2d"
)
_SUPPORTED_OPS = (
    "linear, addmm, mm/matmul, conv1d/conv2d/convolution, avg_pool1d/2d, adaptive_avg_pool1d/2d, "
    "mean/sum over non-batch axes, pad, batch_norm (eval mode), max_pool1d/2d, relu, leaky_relu, "
    "add/sub of two values (residual connections), add/sub/mul/div by constants, "
    "flatten/view/reshape keeping the batch axis, dropout, and transposes/copies of weights"
)
MAX_DENSE_ENTRIES = 2 ** 27
"""Largest dense affine map (rows x columns, float64: 1 GiB) :func:`from_torch` forms."""

_DROPOUTS = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
_CONVS = (nn.Conv1d, nn.Conv2d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_IMAGE_LAYERS = (*_CONVS, *_AVG_POOLS, *_MAX_POOLS, nn.BatchNorm2d)
_LEAVES = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Flatten, nn.Identity, *_DROPOUTS,
           *_CONVS, *_AVG_POOLS, *_MAX_POOLS, *_NORMS)
_ROOT = "<model>"
_F64 = torch.float64


# ---------------------------------------------------------------------------
# intermediate representation
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Affine:
    """``x -> weight @ x + bias`` on flat vectors; weight (n_out, n_in), bias (n_out,), float64."""

    weight: np.ndarray
    bias: np.ndarray
    where: str


@dataclass(frozen=True)
class _Act:
    """Two-slope activation: identity where ``z > 0``, ``slope * z`` elsewhere."""

    slope: float
    where: str


@dataclass(frozen=True)
class _Map:
    """``x -> fn(x) + bias``: ``fn`` linear from (N, *in_shape) to (N, *out_shape) float64 tensors.

    ``bias`` is flat, (prod(out_shape),) float64.
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    bias: np.ndarray
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    where: str


@dataclass(frozen=True)
class _Max:
    """Max over windows of a flat value: windows (n_windows, m) int64, -1 = padding."""

    windows: np.ndarray
    where: str


@dataclass(frozen=True)
class _Add:
    """``a + alpha * b`` of two values of the same size."""

    alpha: float
    where: str


class _Program:
    """Values computed from the input: value 0 is the input, value ``k`` is ``steps[k - 1]``.

    A step is ``(op, sources)``, ``sources`` a tuple of earlier value ids.
    """

    def __init__(self) -> None:
        self.steps: list[tuple[Any, tuple[int, ...]]] = []

    def add(self, op: Any, *sources: int) -> int:
        self.steps.append((op, tuple(sources)))
        return len(self.steps)

    def chain(self, src: int, ops: Sequence[Any]) -> int:
        for op in ops:
            src = self.add(op, src)
        return src

    def needed(self, out: int) -> list[int]:
        """Ids of the values ``out`` depends on, itself included, ascending."""
        seen, todo = {out}, [out]
        while todo:
            v = todo.pop()
            if v == 0:
                continue
            for s in self.steps[v - 1][1]:
                if s not in seen:
                    seen.add(s)
                    todo.append(s)
        return sorted(seen)

    def as_chain(self, out: int) -> list | None:
        """The ops of a chain of ``_Affine`` / ``_Act`` from the input to ``out``, else None."""
        order = self.needed(out)
        ops = []
        for prev, v in pairwise(order):
            op, srcs = self.steps[v - 1]
            if not isinstance(op, (_Affine, _Act)) or srcs != (prev,):
                return None
            ops.append(op)
        return ops


def _merge_slopes(first: float, second: float) -> float:
    """Negative slope of ``act(second) o act(first)``.

    For ``z <= 0`` the first activation gives ``first * z``. When ``first >= 0``
    that value is ``<= 0`` and the second activation scales it again; when
    ``first < 0`` it is ``>= 0`` and passes unchanged. Either way the
    composition is again a two-slope activation with its kink at 0, so
    ``ReLU(ReLU(x)) = ReLU(x)`` and ``leaky(a2)(leaky(a1)(x)) = leaky(a1 a2)(x)``.
    """
    return first * second if first >= 0 else first


def _assemble(ops: Sequence[_Affine | _Act], what: str) -> PWANet:
    """Compose a flat list of affine maps and activations (an MLP) into a PWANet."""
    affines = [op for op in ops if isinstance(op, _Affine)]
    if not affines:
        raise InvalidNetworkError(
            f"{what} has no Linear layer, so it defines no affine map and no input "
            f"dimension; relugeo needs at least one Linear"
        )
    n_in = affines[0].weight.shape[1]
    hidden: list[list[Any]] = []  # [weight, bias, slope]
    pending: tuple[np.ndarray, np.ndarray] | None = None
    for op in ops:
        if isinstance(op, _Affine):
            width = pending[0].shape[0] if pending is not None else (
                hidden[-1][0].shape[0] if hidden else n_in
            )
            if op.weight.shape[1] != width:
                raise InvalidNetworkError(
                    f"layer '{op.where}' expects {op.weight.shape[1]} input features but "
                    f"the layers before it give {width}"
                )
            if pending is None:
                pending = (op.weight, op.bias)
            else:
                w, b = pending
                pending = (op.weight @ w, op.weight @ b + op.bias)
        elif pending is not None:
            hidden.append([pending[0], pending[1], op.slope])
            pending = None
        elif hidden:
            hidden[-1][2] = _merge_slopes(hidden[-1][2], op.slope)
        else:  # an activation applied to the raw input
            hidden.append([np.eye(n_in), np.zeros(n_in), op.slope])
    if pending is None:
        width = hidden[-1][0].shape[0]
        pending = (np.eye(width), np.zeros(width))
    layers = [AffineLayer(w, b, float(s)) for w, b, s in hidden]
    layers.append(AffineLayer(pending[0], pending[1], None))
    return PWANet(layers)


# ---------------------------------------------------------------------------
# general lowering: live values as affine maps of the state
# ---------------------------------------------------------------------------
class _Rows:
    """A linear map of the state too large to hold, given by its action on state batches.

    ``fn`` takes X (N, n_state) and returns ``X @ A.T``, (N, n); ``shape`` is (n, n_state).
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], shape: tuple[int, int]):
        self.fn = fn
        self.shape = shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


def _rows(a: np.ndarray | _Rows) -> Callable[[np.ndarray], np.ndarray]:
    """``X -> X @ a.T`` for a dense map or a :class:`_Rows`."""
    return a if isinstance(a, _Rows) else (lambda x: x @ a.T)


class _Budget:
    """Decides whether a map of ``rows x cols`` entries is formed densely.

    Over :data:`MAX_DENSE_ENTRIES` entries a map is kept as an operator when
    ``operators`` is true, and refused with InvalidNetworkError otherwise.
    """

    def __init__(self, operators: bool):
        self.operators = operators

    def dense(self, rows: int, cols: int, where: str) -> bool:
        if rows * cols <= MAX_DENSE_ENTRIES:
            return True
        if self.operators:
            return False
        raise InvalidNetworkError(
            f"layer '{where}': its dense affine map would hold {rows} x {cols} = {rows * cols:,} "
            f"entries, over relugeo's limit of 2**27 = {MAX_DENSE_ENTRIES:,} (1 GiB in "
            f"float64); use a smaller input or fewer channels, or pass linear_maps=True to "
            f"apply such layers as operators"
        )


def _torch_rows(op: _Map, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``op.fn`` on rows: x (N, prod(in_shape)) -> (N, prod(out_shape)) float64."""
    n_out = int(np.prod(op.out_shape))
    out = np.empty((len(x), n_out))
    x = np.ascontiguousarray(x, dtype=np.float64)
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            t = torch.from_numpy(x[s : s + chunk]).reshape(-1, *op.in_shape)
            out[s : s + chunk] = op.fn(t).reshape(len(t), n_out).numpy()
    return out


def _apply_map(op: _Map, a: np.ndarray | _Rows, c: np.ndarray,
               budget: _Budget) -> tuple[np.ndarray | _Rows, np.ndarray]:
    """``op`` applied to the affine map ``(a, c)``: a (n_in, S) -> (n_out, S), c (n_in,) -> (n_out,)."""
    n_in = int(np.prod(op.in_shape))
    n_out = int(np.prod(op.out_shape))
    if a.shape[0] != n_in:
        raise InvalidNetworkError(
            f"layer '{op.where}' expects {n_in} input values (shape {op.in_shape}) but the "
            f"layers before it give {a.shape[0]}"
        )
    c_out = _torch_rows(op, c[None])[0] + op.bias
    if isinstance(a, np.ndarray) and budget.dense(n_out, a.shape[1], op.where):
        return np.ascontiguousarray(_torch_rows(op, a.T).T), c_out
    f = _rows(a)
    return _Rows(lambda x: _torch_rows(op, f(x)), (n_out, a.shape[1])), c_out


def _compose(op: Any, sources: list[tuple], budget: _Budget) -> tuple[np.ndarray | _Rows, np.ndarray]:
    """The affine map of an affine op's output, from its sources' maps (each (n_v, S), (n_v,))."""
    if isinstance(op, _Affine):
        a, c = sources[0]
        w = op.weight
        if w.shape[1] != a.shape[0]:
            raise InvalidNetworkError(
                f"layer '{op.where}' expects {w.shape[1]} input features but the "
                f"layers before it give {a.shape[0]}"
            )
        if isinstance(a, np.ndarray) and budget.dense(w.shape[0], a.shape[1], op.where):
            return w @ a, w @ c + op.bias
        f = _rows(a)
        return _Rows(lambda x: f(x) @ w.T, (w.shape[0], a.shape[1])), w @ c + op.bias
    if isinstance(op, _Map):
        return _apply_map(op, *sources[0], budget)
    if isinstance(op, _Add):
        (a1, c1), (a2, c2) = sources
        if a1.shape != a2.shape:
            raise InvalidNetworkError(
                f"'{op.where}' adds values of {a1.shape[0]} and {a2.shape[0]} entries; relugeo "
                f"adds values of the same shape only"
            )
        c = c1 + op.alpha * c2
        if isinstance(a1, np.ndarray) and isinstance(a2, np.ndarray):
            return a1 + op.alpha * a2, c
        f1, f2, alpha = _rows(a1), _rows(a2), op.alpha
        return _Rows(lambda x: f1(x) + alpha * f2(x), a1.shape), c
    raise TypeError(f"not an affine op: {op!r}")


def _weight(parts: list[np.ndarray | _Rows], where: str, budget: _Budget) -> np.ndarray | LinearMap:
    """The stacked maps of ``parts`` as a dense weight or, over the budget, a LinearMap."""
    rows, cols = sum(p.shape[0] for p in parts), parts[0].shape[1]
    if all(isinstance(p, np.ndarray) for p in parts) and budget.dense(rows, cols, where):
        return np.vstack(parts)
    fns = [_rows(p) for p in parts]
    return LinearMap(lambda x: np.hstack([f(x) for f in fns]), (rows, cols), f"'{where}'")


def _selections(sizes: list[int], n_state: int, where: str, budget: _Budget) -> list[np.ndarray | _Rows]:
    """Maps picking consecutive blocks of ``sizes`` entries out of a state of ``n_state``."""
    out, start = [], 0
    for n in sizes:
        if budget.dense(n, n_state, where):
            sel = np.zeros((n, n_state))
            sel[np.arange(n), start + np.arange(n)] = 1.0
            out.append(sel)
        else:
            out.append(_Rows(lambda x, s=start, n=n: x[:, s : s + n], (n, n_state)))
        start += n
    return out


def _emit(op: _Act | _Max, src: int, maps: dict, live: list[int],
          budget: _Budget) -> tuple[AffineLayer, tuple, dict]:
    """The hidden layer for a nonlinearity on value ``src``, its output's map and the live values' maps.

    Its pre-activations are ``src``'s map stacked over the maps of ``live``
    (values still needed later). ``src``'s part gets the activation; the rest
    passes through (slope 1 or ``keep``), so afterwards every live value is a
    selection of the new state.
    """
    parts = [src, *live]
    a = _weight([maps[v][0] for v in parts], op.where, budget)
    b = np.concatenate([maps[v][1] for v in parts])
    n_src = len(maps[src][1])
    n_rest = len(b) - n_src
    if isinstance(op, _Act):
        slope: float | np.ndarray = op.slope
        if n_rest:
            slope = np.concatenate([np.full(n_src, op.slope), np.ones(n_rest)])
        layer = AffineLayer(a, b, slope)
        n_head = n_src
    else:
        layer = AffineLayer(a, b, None, op.windows, np.arange(n_src, n_src + n_rest, dtype=np.int64))
        n_head = len(op.windows)
    sizes = [n_head] + [len(maps[v][1]) for v in live]
    sel = _selections(sizes, n_head + n_rest, op.where, budget)
    new = {v: (m, np.zeros(n)) for v, m, n in zip(live, sel[1:], sizes[1:])}
    return layer, (sel[0], np.zeros(n_head)), new


def _lower(prog: _Program, out: int, n_in: int, operators: bool = False) -> PWANet:
    """A PWANet from any program of affine ops, activations, max-poolings and sums.

    Every live value ``v`` is held as an affine map ``(A_v, c_v)`` of the
    state (the network input, then the outputs of the last hidden layer),
    A_v of shape (n_v, n_state). Affine ops compose into these maps. At an
    activation or max-pooling of value ``u`` a hidden layer is emitted whose
    pre-activations are ``[u ; the other values needed later]``: the
    nonlinearity acts on ``u``'s part and the rest passes through unchanged
    (slope-1 neurons, or ``keep`` of a max layer). The output's map is the
    logits layer. Maps are dense matrices up to :data:`MAX_DENSE_ENTRIES`
    entries; a larger one raises InvalidNetworkError, or with ``operators``
    is kept as a function of the state (and its layer's weight is a
    :class:`LinearMap`).
    """
    budget = _Budget(operators)
    order = prog.needed(out)
    last_use = {v: -1 for v in order}
    for v in order[1:]:
        for s in prog.steps[v - 1][1]:
            last_use[s] = max(last_use[s], v)
    last_use[out] = len(prog.steps) + 1
    maps: dict[int, tuple] = {0: (_selections([n_in], n_in, "input", budget)[0], np.zeros(n_in))}
    layers: list[AffineLayer] = []
    for v in order[1:]:
        op, srcs = prog.steps[v - 1]
        if isinstance(op, (_Act, _Max)):
            src = srcs[0]
            live = [w for w in maps if w != src and last_use[w] > v]
            if last_use[src] > v:
                live.append(src)
            layer, head, maps = _emit(op, src, maps, live, budget)
            layers.append(layer)
            maps[v] = head
        else:
            maps[v] = _compose(op, [maps[s] for s in srcs], budget)
        maps = {w: m for w, m in maps.items() if last_use[w] > v or w == v}
    a, c = maps[out]
    layers.append(AffineLayer(_weight([a], "output", budget), c, None))
    return PWANet(layers)


def _build(prog: _Program, out: int, n_in: int | None, what: str, operators: bool = False) -> PWANet:
    """``_assemble`` for an MLP chain (its exact historic form), ``_lower`` otherwise."""
    chain = prog.as_chain(out)
    if chain is not None:
        return _assemble(chain, what)
    if n_in is None:
        raise InvalidNetworkError(f"{what}: the input size is unknown; pass input_shape")
    return _lower(prog, out, n_in, operators)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _array(t: torch.Tensor, name: str) -> np.ndarray:
    """A float64 numpy copy of a parameter, checked to be finite."""
    if isinstance(t, nn.parameter.UninitializedParameter):
        raise InvalidNetworkError(
            f"parameter '{name}' is uninitialised (a lazy module that never ran); "
            f"run one forward pass before converting"
        )
    if t.is_complex():
        raise InvalidNetworkError(f"parameter '{name}' must be real; got dtype {t.dtype}")
    a = t.detach().to(device="cpu", dtype=torch.float64, copy=True).numpy()
    if not np.isfinite(a).all():
        n_bad = int((~np.isfinite(a)).sum())
        raise InvalidNetworkError(
            f"parameter '{name}' must be finite; it holds {n_bad} NaN or inf "
            f"value(s) out of {a.size}"
        )
    return a


def _join(path: str, name: str) -> str:
    return name if path in ("", _ROOT) else f"{path}.{name}"


def _is_plain(module: nn.Module, base: type) -> bool:
    """``module`` is a ``base`` whose forward is ``base``'s own."""
    return isinstance(module, base) and type(module).forward is base.forward


def _unsupported(path: str, module: nn.Module, reason: str | None = None) -> UnsupportedLayerError:
    why = reason or f"relugeo supports {SUPPORTED_LAYERS}"
    return UnsupportedLayerError(f"unsupported layer '{path}' ({type(module).__name__}): {why}")


def _channel_vector(v: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """A per-channel vector (C,) broadcast over an output of shape (C, ...), flat."""
    return np.broadcast_to(v.reshape(-1, *[1] * (len(out_shape) - 1)), out_shape).ravel().copy()


def _out_shape(fn: Callable[[torch.Tensor], torch.Tensor], in_shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(fn(torch.zeros((1, *in_shape), dtype=_F64)).shape[1:])


def _linear_map(fn, in_shape: tuple[int, ...], where: str, bias: np.ndarray | None = None,
                channel_bias: np.ndarray | None = None) -> tuple[_Map, tuple[int, ...]]:
    """A ``_Map`` of the linear ``fn`` with a flat or per-channel bias, and its output shape."""
    out_shape = _out_shape(fn, in_shape)
    n_out = int(np.prod(out_shape))
    if channel_bias is not None:
        bias = _channel_vector(channel_bias, out_shape)
    if bias is None:
        bias = np.zeros(n_out)
    return _Map(fn, np.asarray(bias, dtype=np.float64), tuple(in_shape), out_shape, where), out_shape


def _scale_map(scale: np.ndarray, shift: np.ndarray, in_shape: tuple[int, ...], where: str) -> _Map:
    """``x -> scale * x + shift`` elementwise, scale and shift broadcast to ``in_shape``."""
    s = torch.from_numpy(np.broadcast_to(scale, in_shape).copy())
    bias = np.broadcast_to(shift, in_shape).ravel().copy()
    return _Map(lambda t: t * s, bias, tuple(in_shape), tuple(in_shape), where)


# ---------------------------------------------------------------------------
# pooling windows
# ---------------------------------------------------------------------------
def _pool_axis(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> np.ndarray:
    """Input positions (out, k) of each window along one axis, -1 outside the input.

    Output size as in torch: ``floor_or_ceil((n + 2p - d(k - 1) - 1) / s) + 1``,
    less one when ``ceil_mode`` would start the last window in the right padding.
    """
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return np.zeros((0, k), dtype=np.int64)
    out = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    pos = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
    return np.where((pos >= 0) & (pos < n), pos, -1).astype(np.int64)


def _max_windows(shape: tuple[int, ...], kernel, stride, padding, dilation, ceil: bool,
                 where: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Windows (n_windows, m) of a max-pooling of a (C, *spatial) value, and its output shape."""
    c, spatial = shape[0], tuple(shape[1:])
    nd = len(spatial)

    def per_axis(v):
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return [int(x) for x in (v * nd if len(v) == 1 else v)]

    kernel = per_axis(kernel)
    stride = per_axis(stride) if stride not in (None, [], ()) else kernel
    axes = [_pool_axis(n, k, s, p, d, ceil) for n, k, s, p, d in
            zip(spatial, kernel, stride, per_axis(padding), per_axis(dilation))]
    if any(len(ax) == 0 for ax in axes):
        raise InvalidNetworkError(f"'{where}': the max-pooling windows do not fit an input of shape {shape}")
    strides = np.cumprod((1, *spatial[::-1]))[:-1][::-1]
    idx = np.zeros([1] * (2 * nd), dtype=np.int64)
    valid = np.ones([1] * (2 * nd), dtype=bool)
    for i, ax in enumerate(axes):
        view = [1] * (2 * nd)
        view[i], view[nd + i] = ax.shape
        ax = ax.reshape(view)
        idx = idx + ax * strides[i]
        valid = valid & (ax >= 0)
    per_channel = np.where(valid, idx, -1).reshape(int(np.prod([len(a) for a in axes])), -1)
    plane = int(np.prod(spatial))
    win = per_channel[None] + (np.arange(c) * plane)[:, None, None]
    win = np.where(per_channel[None] >= 0, win, -1).reshape(-1, per_channel.shape[1])
    return win, (c, *(len(a) for a in axes))


# ---------------------------------------------------------------------------
# nn.Module walk
# ---------------------------------------------------------------------------
def _need_image(path: str, module: nn.Module, shape: tuple | None, ndim: int, channels: int) -> tuple:
    if shape is None or len(shape) != ndim or (channels and shape[0] != channels):
        want = "(C, L)" if ndim == 2 else "(C, H, W)"
        wanted = f"{want} with C = {channels}" if channels else want
        raise InvalidNetworkError(f"layer '{path}' ({type(module).__name__}) needs inputs of shape "
                                  f"{wanted}; the layers before it give {shape}")
    return tuple(int(s) for s in shape)


def _conv_ops(module: nn.Module, path: str, shape: tuple | None):
    nd = 2 if isinstance(module, nn.Conv1d) else 3
    shape = _need_image(path, module, shape, nd, module.in_channels)
    w = torch.from_numpy(_array(module.weight, _join(path, "weight")))
    b = None if module.bias is None else _array(module.bias, _join(path, "bias"))
    op, out = _linear_map(lambda t: module._conv_forward(t, w, None), shape, path, channel_bias=b)
    return [op], out


def _norm_ops(module: nn.Module, path: str, shape: tuple | None):
    """BatchNorm folded with its running statistics (eval semantics, whatever its mode)."""
    if module.running_mean is None or module.running_var is None:
        raise _unsupported(path, module, "without running statistics (track_running_stats=False) it "
                                         "normalises by batch statistics, which is not a fixed map")
    c = module.num_features
    mean = _array(module.running_mean, _join(path, "running_mean"))
    var = _array(module.running_var, _join(path, "running_var"))
    gamma = _array(module.weight, _join(path, "weight")) if module.weight is not None else np.ones(c)
    beta = _array(module.bias, _join(path, "bias")) if module.bias is not None else np.zeros(c)
    if not np.all(var + module.eps > 0):
        raise InvalidNetworkError(f"layer '{path}' ({type(module).__name__}): running_var + eps must be "
                                  f"positive; got min {float(np.min(var + module.eps)):.3g}")
    scale = gamma / np.sqrt(var + module.eps)
    shift = beta - mean * scale
    if shape is None or len(shape) == 1:
        if shape is not None and shape[0] != c:
            raise _unsupported(path, module, f"it normalises {c} features; the layers before it give {shape[0]}")
        return [_Affine(np.diag(scale), shift, path)], shape
    nd = 3 if isinstance(module, nn.BatchNorm2d) else 2
    shape = _need_image(path, module, shape, nd, c)
    view = (c, *[1] * (nd - 1))
    return [_scale_map(scale.reshape(view), shift.reshape(view), shape, path)], shape


def _pool_ops(module: nn.Module, path: str, shape: tuple | None):
    nd = 2 if isinstance(module, (nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.MaxPool1d)) else 3
    shape = _need_image(path, module, shape, nd, 0)
    if isinstance(module, _AVG_POOLS):
        op, out = _linear_map(module, shape, path)
        return [op], out
    if module.return_indices:
        raise _unsupported(path, module, "return_indices=True also returns the argmax positions, "
                                         "which are not a piecewise-affine value")
    win, out = _max_windows(shape, module.kernel_size, module.stride, module.padding,
                            module.dilation, bool(module.ceil_mode), path)
    return [_Max(win, path)], out


def _linear_ops(module: nn.Linear, path: str, shape: tuple | None):
    w = _array(module.weight, _join(path, "weight"))
    b = np.zeros(w.shape[0]) if module.bias is None else _array(module.bias, _join(path, "bias"))
    if shape is None or len(shape) == 1:
        return [_Affine(w, b, path)], (None if shape is None else (w.shape[0],))
    wt = torch.from_numpy(w)
    bias = np.broadcast_to(b, (*shape[:-1], w.shape[0])).ravel().copy()
    op, out = _linear_map(lambda t: torch.nn.functional.linear(t, wt), shape, path, bias=bias)
    return [op], out


def _leaf_ops(module: nn.Module, path: str, shape: tuple | None = None) -> tuple[list, tuple | None]:
    """Operations of one supported leaf module (not a container), and its output shape.

    ``shape`` is the per-example input shape, None for flat inputs of unknown size.
    """
    for base in _LEAVES:
        if isinstance(module, base) and not _is_plain(module, base):
            raise _unsupported(
                path, module, f"it subclasses {base.__name__} but overrides forward()"
            )
    if isinstance(module, nn.Linear):
        return _linear_ops(module, path, shape)
    if isinstance(module, nn.ReLU):
        return [_Act(0.0, path)], shape
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        if not math.isfinite(slope):
            raise InvalidNetworkError(
                f"layer '{path}' (LeakyReLU): negative_slope must be finite; got {slope}"
            )
        return [_Act(slope, path)], shape
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise _unsupported(
                path,
                module,
                f"only Flatten(start_dim=1, end_dim=-1) keeps the batch axis; got "
                f"start_dim={module.start_dim}, end_dim={module.end_dim}",
            )
        return [], (None if shape is None else (int(np.prod(shape)),))
    if isinstance(module, (nn.Identity, *_DROPOUTS)):
        return [], shape
    if isinstance(module, _CONVS):
        return _conv_ops(module, path, shape)
    if isinstance(module, _NORMS):
        return _norm_ops(module, path, shape)
    if isinstance(module, (*_AVG_POOLS, *_MAX_POOLS)):
        return _pool_ops(module, path, shape)
    if _is_user_module(module):
        raise _unsupported(path, module, (
            f"relugeo supports {SUPPORTED_LAYERS} inside an nn.Sequential; a module with its own "
            f"forward() is traced only as the whole model, so wrap the Sequential in a module"))
    raise _unsupported(path, module)


def _module_ops(module: nn.Module, path: str, ops: list, shape: tuple | None = None) -> tuple | None:
    """Append the ops of ``module`` (a Sequential or a leaf) to ``ops``; return the output shape."""
    if isinstance(module, nn.Sequential):
        if not _is_plain(module, nn.Sequential):
            raise _unsupported(path, module, "it subclasses Sequential but overrides forward()")
        for name, child in module.named_children():
            shape = _module_ops(child, _join(path, name), ops, shape)
        return shape
    leaf, shape = _leaf_ops(module, path, shape)
    ops.extend(leaf)
    return shape


def _has_layers(module: nn.Module) -> bool:
    return not isinstance(module, nn.Sequential) or any(
        _has_layers(child) for child in module.children()
    )


def _needs_image(module: nn.Module) -> bool:
    """The module holds a layer that needs an image-shaped (not flat) input."""
    return any(isinstance(m, _IMAGE_LAYERS) for m in module.modules())


def _is_user_module(module: nn.Module) -> bool:
    """A module with its own forward, to be traced as a graph (not a torch.nn layer or Sequential)."""
    if isinstance(module, (nn.Sequential, torch.fx.GraphModule)):
        return False
    return not type(module).__module__.startswith("torch.")


# ---------------------------------------------------------------------------
# running the module: the check and the input-shape probe
# ---------------------------------------------------------------------------
def _strip_hooks(module: nn.Module) -> None:
    """Drop forward hooks from a private copy so the check has no side effects."""
    for m in module.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                     "_backward_pre_hooks", "_forward_hooks_with_kwargs",
                     "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called"):
            hooks = getattr(m, attr, None)
            if hasattr(hooks, "clear"):
                hooks.clear()


def _float_dtype(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.get_default_dtype(), torch.device("cpu")


class _Reference:
    """``model`` in eval mode, for running without changing it.

    A float64 deep copy (hooks removed) when one can be made; otherwise the
    module itself in its own dtype, every submodule's training flag restored
    on exit.
    """

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self) -> Self:
        try:
            ref = copy.deepcopy(self.model)
            _strip_hooks(ref)
            self.module = ref.to(device="cpu", dtype=torch.float64).eval()
            self.dtype, self.device, self.flags = torch.float64, torch.device("cpu"), None
        except Exception:  # a module that cannot be copied or cast: run it in place
            self.module = self.model
            self.dtype, self.device = _float_dtype(self.model)
            self.flags = [(m, m.training) for m in self.model.modules()]
            self.model.eval()
        return self

    def __exit__(self, *exc) -> None:
        if self.flags is not None:
            for m, flag in self.flags:
                m.training = flag

    def __call__(self, x: np.ndarray) -> Any:
        with torch.no_grad():
            return self.module(torch.from_numpy(x).to(device=self.device, dtype=self.dtype))


def _run_module(model: nn.Module, batches: list[np.ndarray]) -> tuple[list[np.ndarray], torch.dtype]:
    """Outputs of ``model`` in eval mode on each batch, without changing ``model`` (see _Reference)."""
    with _Reference(model) as ref:
        return [_output_array(ref(x)) for x in batches], ref.dtype


def _output_array(y: Any) -> np.ndarray:
    if isinstance(y, (tuple, list)) and len(y) == 1:
        y = y[0]
    if not isinstance(y, torch.Tensor):
        raise InvalidNetworkError(
            f"the module's forward must return one tensor; got {type(y).__name__}"
        )
    return y.detach().to(device="cpu", dtype=torch.float64).numpy()


def _first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, *_CONVS, *_NORMS)):
            return name, m
    return None


def _channels(layer: nn.Module) -> int:
    return int(layer.in_channels if isinstance(layer, _CONVS) else layer.num_features)


_PROBE_SIDES = range(1, 65)
_PROBE_LENGTHS = range(1, 257)


def _infer_input_shape(model: nn.Module) -> tuple[int, ...]:
    """The per-example input shape of ``model``, from its first layer and trial runs.

    A first Linear gives ``(in_features,)`` (if it runs). A first Conv2d / BatchNorm2d with
    C channels: the square sizes (C, s, s), s = 1..64, that run through the
    model; a Conv1d: (C, L), L = 1..256. Exactly one size must run.
    """
    first = _first_layer(model)
    hint = "pass input_shape=(C, H, W) (one example, without the batch axis)"
    if first is None:
        raise InvalidNetworkError(f"cannot tell the input shape of model ({type(model).__name__}): it "
                                  f"has no Linear, convolution or BatchNorm layer; {hint}")
    name, layer = first
    if isinstance(layer, nn.Linear):
        candidates = [(int(layer.in_features),)]
    elif isinstance(layer, (nn.Conv1d, nn.BatchNorm1d)):
        candidates = [(_channels(layer), n) for n in _PROBE_LENGTHS]
    else:
        candidates = [(_channels(layer), s, s) for s in _PROBE_SIDES]
    runs = []
    with _Reference(model) as ref, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for shape in candidates:
            try:
                ref(np.zeros((2, *shape)))
            except Exception:  # noqa: BLE001, S112 -- any failure means: not this size
                continue
            runs.append(shape)
            if len(runs) > 1:
                break
    where = f"model ({type(model).__name__}, first layer '{name or _ROOT}')"
    if not runs:
        tried = candidates[0] if len(candidates) == 1 else f"{candidates[0]} to {candidates[-1]}"
        raise InvalidNetworkError(f"cannot tell the input shape of {where}: no input of shape "
                                  f"{tried} runs through it; {hint}")
    if len(runs) > 1:
        raise InvalidNetworkError(f"cannot tell the input shape of {where}: inputs of shapes {runs[0]} "
                                  f"and {runs[1]} both run through it; {hint}")
    return runs[0]


def _compare(net: PWANet, xs: list[np.ndarray], refs: list[np.ndarray], dtype: torch.dtype,
             what: str) -> None:
    """Raise InvalidNetworkError if the PWANet and the reference outputs disagree."""
    x = np.concatenate([b.reshape(len(b), -1) for b in xs])
    ref = np.concatenate([r.reshape(len(r), -1) for r in refs])
    got = net.forward(x)
    if ref.shape != got.shape:
        raise InvalidNetworkError(
            f"{what}: the module returns outputs of shape {ref.shape[1:]} per input but "
            f"the converted network gives {got.shape[1:]}"
        )
    if not np.isfinite(ref).all():
        raise InvalidNetworkError(f"{what}: the module's forward pass returned NaN or inf")
    diff = float(np.max(np.abs(ref - got), initial=0.0))
    scale = float(np.max(np.abs(ref), initial=0.0))
    tol = math.sqrt(torch.finfo(dtype).eps) * (1.0 + scale)
    if not diff <= tol:
        raise InvalidNetworkError(
            f"{what}: the converted network disagrees with the module's own forward pass "
            f"on {len(x)} random inputs: max abs difference {diff:.3g} exceeds the "
            f"{dtype} tolerance {tol:.3g}"
        )


def _check_module(net: PWANet, model: nn.Module, shape: tuple[int, ...], n_check: int, seed: int,
                  what: str) -> None:
    """Compare ``net`` with ``model`` on ``n_check`` standard normal inputs of ``shape``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_check, *shape))
    try:
        refs, dtype = _run_module(model, [x])
    except InvalidNetworkError:
        raise
    except Exception as exc:
        raise InvalidNetworkError(
            f"{what}: the module's forward pass failed on inputs of shape "
            f"{x.shape}: {type(exc).__name__}: {exc}"
        ) from exc
    _compare(net, [x], refs, dtype, what)


def _check_args(check: bool, n_check: int, seed: int, input_shape: Any,
                linear_maps: bool = False) -> tuple[int, ...] | None:
    for name, flag in (("check", check), ("linear_maps", linear_maps)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool; got {flag!r}")
    if isinstance(n_check, bool) or not isinstance(n_check, (int, np.integer)) or n_check < 1:
        raise ValueError(f"n_check must be a positive integer; got {n_check!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer; got {seed!r}")
    if input_shape is None:
        return None
    try:
        shape = tuple(int(s) for s in input_shape)
        ok = len(shape) >= 1 and all(s > 0 and s == d for s, d in zip(shape, input_shape))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"input_shape must be a tuple of positive integers (one example, without "
                         f"the batch axis, e.g. (1, 8, 8)); got {input_shape!r}")
    return shape


# ---------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------
def from_torch(model, *, input_shape: Sequence[int] | None = None, linear_maps: bool = False,
               check: bool = True, n_check: int = 256, seed: int = 0) -> PWANet:
    """Convert a PyTorch piecewise-affine network into a :class:`PWANet`.

    Parameters
    ----------
    model : torch.nn.Module or torch.export.ExportedProgram
        One of

        * an ``nn.Sequential`` (nested to any depth) of ``Linear``, ``ReLU``,
          ``LeakyReLU``, ``Flatten``, ``Identity``, ``Dropout`` (every
          dropout variant is the identity, as in eval mode), ``Conv1d`` /
          ``Conv2d`` (any stride, padding and padding mode, dilation,
          groups, with or without bias), ``AvgPool1d`` / ``AvgPool2d`` (incl.
          ``ceil_mode``, ``count_include_pad``, ``divisor_override``),
          ``AdaptiveAvgPool1d`` / ``AdaptiveAvgPool2d``, ``BatchNorm1d`` /
          ``BatchNorm2d`` and ``MaxPool1d`` / ``MaxPool2d`` (kernel, stride,
          padding, dilation, ``ceil_mode``), or one such layer alone (a
          user-defined module inside the Sequential is refused);
        * any other module whose ``forward`` uses these layers, their
          functional forms, ``torch.relu``, ``flatten``/``view`` and sums of
          two tensors (residual connections): it is traced with
          :func:`torch.export.export` on an input of ``input_shape`` and
          walked as a graph;
        * an ``ExportedProgram`` from :func:`torch.export.export`, or the
          ``GraphModule`` its ``.module()`` returns, whose graph uses only the
          ops listed under Notes.

        BatchNorm is folded with its running statistics: a module in training
        mode is converted with eval semantics (as dropout is), and the check
        runs it in eval mode.
    input_shape : tuple of int, optional
        Shape of one input without the batch axis, e.g. ``(1, 8, 8)``. By
        default it is read from an exported graph, is ``(in_features,)`` when
        the first layer is a Linear, and otherwise is the one square size
        ``(C, s, s)``, s = 1..64 (or length ``(C, L)``, L = 1..256, for 1-D
        convolutions), that runs through the module, C being the first
        layer's channels.
    linear_maps : bool, default False
        Convolutions, pooling and BatchNorm are composed into dense weight
        matrices of at most :data:`MAX_DENSE_ENTRIES` = 2**27 entries (1 GiB
        in float64). A larger one raises InvalidNetworkError by default; with
        ``linear_maps=True`` that layer's weight is a
        :class:`~relugeo.nets.linear_maps.LinearMap` instead, which applies
        the torch operators to each batch of vectors and is never formed.
    check : bool, default True
        Run the module's own forward pass (eval mode, no grad) on ``n_check``
        random inputs and compare with :meth:`PWANet.forward`.
    n_check : int, default 256
        Number of random inputs for the check, drawn from a standard normal
        distribution by a local generator.
    seed : int, default 0
        Seed of that generator; the global RNGs are never touched.

    Returns
    -------
    PWANet
        Weights are float64 copies; the model is not modified. Its input is
        the flattened input in C order, as ``torch.flatten`` gives it: pass
        images as ``x.reshape(N, -1)``. Convolutions, pooling and
        BatchNorm are composed into dense weight matrices (or LinearMaps,
        see ``linear_maps``); a skip connection
        rides through the layers of its block as linear pass-through neurons
        (slope 1); a max-pooling is a max layer.

    Raises
    ------
    UnsupportedLayerError
        A layer (or graph op) relugeo cannot represent; the message gives its
        path in the module (e.g. ``'3.1'`` or ``'block.act'``) or graph node,
        and its type.
    InvalidNetworkError
        The net is empty, has no Linear, has NaN/inf weights (the message
        names the parameter), shapes that do not chain, an input shape that
        cannot be told (pass ``input_shape``), a dense map of more than
        :data:`MAX_DENSE_ENTRIES` = 2**27 entries without ``linear_maps``
        (the message names the layer and the size), or (with ``check``) a
        forward pass that disagrees with the conversion beyond
        ``sqrt(eps) * (1 + max |output|)`` for the dtype the check ran in.

    Notes
    -----
    The check runs a float64 deep copy of the module with its forward hooks
    removed, so the user's module keeps its dtype, training flags and hooks,
    and hooks that record activations see nothing. A module that cannot be
    deep-copied runs in its own dtype and eval mode, and every training flag
    is restored afterwards.

    Graph ops understood: ``aten.linear``, ``addmm``, ``mm``/``matmul`` by a
    weight, ``conv1d``/``conv2d``/``convolution``, ``avg_pool1d``/``2d``,
    ``adaptive_avg_pool1d``/``2d``, ``mean``/``sum`` over non-batch axes,
    ``pad``/``constant_pad_nd``, ``batch_norm`` and
    ``_native_batch_norm_legit_no_training`` (eval mode), ``max_pool1d``/``2d``
    (with or without indices, the indices unused), ``relu``, ``leaky_relu``,
    ``add``/``sub`` of two values computed from the input (residual
    connections), ``add``/``sub``/``mul``/``div`` by constants that broadcast
    over one example, ``flatten``/``view``/``reshape`` keeping the batch
    axis, ``dropout``/``native_dropout`` (treated as the identity: a program
    exported in training mode is converted with eval semantics, and the check
    runs it with dropout removed), copies and transposes of weights, and
    shape bookkeeping (``sym_size``, asserts).

    Examples
    --------
    >>> import torch
    >>> from relugeo.nets import from_torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(),
    ...                             torch.nn.Linear(8, 3))
    >>> from_torch(model)
    PWANet(2-8-3, negative_slopes=[0.0])
    >>> cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(),
    ...                           torch.nn.Flatten(), torch.nn.Linear(8, 3))
    >>> from_torch(cnn).input_dim          # a 1x4x4 image, flattened
    16
    """
    shape = _check_args(check, n_check, seed, input_shape, linear_maps)
    n_check, seed, operators = int(n_check), int(seed), bool(linear_maps)
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    if isinstance(model, torch.fx.GraphModule):
        return _from_graph_module(model, shape, operators, check=check, n_check=n_check, seed=seed)
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module or torch.export.ExportedProgram; "
            f"got {type(model).__name__}"
        )
    if _is_user_module(model):
        return _from_traced_module(model, shape, operators, check=check, n_check=n_check, seed=seed)
    if not _has_layers(model):
        raise InvalidNetworkError(
            f"model is an empty {type(model).__name__}; a network needs at least one Linear layer"
        )
    if shape is None and _needs_image(model):
        shape = _infer_input_shape(model)
    ops: list = []
    _module_ops(model, "" if isinstance(model, nn.Sequential) else _ROOT, ops, shape)
    prog = _Program()
    out = prog.chain(0, ops)
    what = f"model ({type(model).__name__})"
    n_in = None if shape is None else int(np.prod(shape))
    net = _build(prog, out, n_in, what, operators)
    if shape is not None and n_in != net.input_dim:
        raise InvalidNetworkError(f"{what}: input_shape {shape} has {n_in} values but the first "
                                  f"layer expects {net.input_dim}")
    if check:
        _check_module(net, model, shape or (net.input_dim,), n_check, seed, "from_torch check")
    return net


def _from_traced_module(model: nn.Module, shape: tuple[int, ...] | None, operators: bool, *,
                        check: bool, n_check: int, seed: int) -> PWANet:
    """Trace a module with its own forward by torch.export and walk the graph."""
    if shape is None:
        shape = _infer_input_shape(model)
    what = f"model ({type(model).__name__})"
    with _Reference(model) as ref, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        example = torch.zeros((2, *shape), dtype=ref.dtype, device=ref.device)
        try:
            program = torch.export.export(ref.module, (example,))
        except Exception as exc:
            raise UnsupportedLayerError(
                f"{what} has its own forward(), and torch.export could not trace it on an input "
                f"of shape {(2, *shape)}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
    walker = _GraphWalker(program.module(), "the traced graph of " + what)
    prog, out, _ = walker.run()
    net = _build(prog, out, int(np.prod(shape)), what, operators)
    if check:
        _check_module(net, model, shape, n_check, seed, "from_torch check")
    return net


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
