"""The program a PyTorch model is read into, and its assembly into a :class:`PWANet`.

Both walks of :mod:`relugeo.nets.torch_import` (the nn.Module walk of
:mod:`~relugeo.nets.torch_layers` and the graph walk of
:mod:`~relugeo.nets.torch_graph`) record a :class:`_Program`: value 0 is the
network input, every step applies one op (:class:`_Affine`, :class:`_Act`,
:class:`_Map`, :class:`_Max`, :class:`_Add`) to earlier values. This module
holds those ops, the helpers that make them from torch parameters and
functions, and :func:`_build`, which turns a program into a PWANet: an MLP
chain by :func:`_assemble`, anything else by :func:`_lower`, with dense
weights up to :data:`MAX_DENSE_ENTRIES` entries and
:class:`~relugeo.nets.linear_maps.LinearMap` weights beyond (when allowed).
It walks neither modules nor graphs, so both walks can share it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidNetworkError
from .linear_maps import LinearMap
from .pwanet import AffineLayer, PWANet

__all__ = ["MAX_DENSE_ENTRIES"]

MAX_DENSE_ENTRIES = 2 ** 27
"""Largest dense affine map (rows x columns, float64: 1 GiB) :func:`from_torch` forms."""

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
# program ops from torch parameters and functions
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
