"""Convert PyTorch modules to :class:`~relugeo.nets.pwanet.PWANet`.

Two kinds of input are understood:

* ``nn.Sequential`` containers (nested to any depth) and bare ``nn.Linear``
  layers, walked module by module;
* graphs produced by :func:`torch.export.export` (an ``ExportedProgram`` or
  the ``GraphModule`` returned by its ``.module()``), walked node by node.

Both walks produce the same intermediate list of affine maps and activations,
which :func:`_assemble` composes into a PWANet: consecutive affine maps are
multiplied into one, consecutive activations are merged into one, and a net
that ends with an activation gets an identity affine map as its logits layer.
"""

from __future__ import annotations

import copy
import math
import operator
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InvalidNetworkError, UnsupportedLayerError
from .pwanet import AffineLayer, PWANet

__all__ = ["from_torch"]

SUPPORTED_LAYERS = "Linear, ReLU, LeakyReLU, Flatten, Identity, Dropout"
_SUPPORTED_OPS = (
    "linear, addmm, mm/matmul, add/sub/mul/div by constants, relu, leaky_relu, "
    "flatten/view/reshape to (batch, features), dropout, and transposes/copies of weights"
)
_DROPOUTS = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
_ROOT = "<model>"


# ---------------------------------------------------------------------------
# intermediate representation
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Affine:
    """``x -> weight @ x + bias``; weight (n_out, n_in), bias (n_out,), float64."""

    weight: np.ndarray
    bias: np.ndarray
    where: str


@dataclass(frozen=True)
class _Act:
    """Two-slope activation: identity where ``z > 0``, ``slope * z`` elsewhere."""

    slope: float
    where: str


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
    """Compose a flat list of affine maps and activations into a PWANet."""
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


# ---------------------------------------------------------------------------
# nn.Module walk
# ---------------------------------------------------------------------------
def _leaf_ops(module: nn.Module, path: str) -> list[_Affine | _Act]:
    """Operations of one supported leaf module (not a container)."""
    for base in (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Flatten, nn.Identity, *_DROPOUTS):
        if isinstance(module, base) and not _is_plain(module, base):
            raise _unsupported(
                path, module, f"it subclasses {base.__name__} but overrides forward()"
            )
    if isinstance(module, nn.Linear):
        w = _array(module.weight, _join(path, "weight"))
        if module.bias is None:
            b = np.zeros(w.shape[0])
        else:
            b = _array(module.bias, _join(path, "bias"))
        return [_Affine(w, b, path)]
    if isinstance(module, nn.ReLU):
        return [_Act(0.0, path)]
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        if not math.isfinite(slope):
            raise InvalidNetworkError(
                f"layer '{path}' (LeakyReLU): negative_slope must be finite; got {slope}"
            )
        return [_Act(slope, path)]
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise _unsupported(
                path,
                module,
                f"only Flatten(start_dim=1, end_dim=-1) keeps the batch axis; got "
                f"start_dim={module.start_dim}, end_dim={module.end_dim}",
            )
        return []
    if isinstance(module, (nn.Identity, *_DROPOUTS)):
        return []
    raise _unsupported(path, module)


def _module_ops(module: nn.Module, path: str, ops: list) -> None:
    if isinstance(module, nn.Sequential):
        if not _is_plain(module, nn.Sequential):
            raise _unsupported(path, module, "it subclasses Sequential but overrides forward()")
        for name, child in module.named_children():
            _module_ops(child, _join(path, name), ops)
        return
    ops.extend(_leaf_ops(module, path))


def _has_layers(module: nn.Module) -> bool:
    return not isinstance(module, nn.Sequential) or any(
        _has_layers(child) for child in module.children()
    )


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


def _run_module(model: nn.Module, batches: list[np.ndarray]) -> tuple[list[np.ndarray], torch.dtype]:
    """Outputs of ``model`` in eval mode on each batch, without changing ``model``.

    A float64 deep copy (hooks removed) is run when one can be made; otherwise
    the module itself runs in its own dtype with every submodule's training
    flag restored afterwards.
    """
    try:
        ref = copy.deepcopy(model)
        _strip_hooks(ref)
        ref = ref.to(device="cpu", dtype=torch.float64)
        ref.eval()
        dtype, device, flags = torch.float64, torch.device("cpu"), None
    except Exception:  # a module that cannot be copied or cast: run it in place
        ref = model
        dtype, device = _float_dtype(model)
        flags = [(m, m.training) for m in model.modules()]
    try:
        if flags is not None:
            model.eval()
        outs = []
        with torch.no_grad():
            for x in batches:
                y = ref(torch.from_numpy(x).to(device=device, dtype=dtype))
                outs.append(_output_array(y))
    finally:
        if flags is not None:
            for m, flag in flags:
                m.training = flag
    return outs, dtype


def _output_array(y: Any) -> np.ndarray:
    if isinstance(y, (tuple, list)) and len(y) == 1:
        y = y[0]
    if not isinstance(y, torch.Tensor):
        raise InvalidNetworkError(
            f"the module's forward must return one tensor; got {type(y).__name__}"
        )
    return y.detach().to(device="cpu", dtype=torch.float64).numpy()


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


def _check_args(check: bool, n_check: int, seed: int) -> None:
    if not isinstance(check, (bool, np.bool_)):
        raise TypeError(f"check must be a bool; got {check!r}")
    if isinstance(n_check, bool) or not isinstance(n_check, (int, np.integer)) or n_check < 1:
        raise ValueError(f"n_check must be a positive integer; got {n_check!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer; got {seed!r}")


# ---------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------
def from_torch(model, *, check: bool = True, n_check: int = 256, seed: int = 0) -> PWANet:
    """Convert a PyTorch MLP into a :class:`PWANet`.

    Parameters
    ----------
    model : torch.nn.Module or torch.export.ExportedProgram
        One of

        * an ``nn.Sequential`` (nested to any depth) of ``Linear``, ``ReLU``,
          ``LeakyReLU``, ``Flatten``, ``Identity`` and ``Dropout`` (every
          dropout variant is the identity, as in eval mode), or a bare
          ``nn.Linear``;
        * an ``ExportedProgram`` from :func:`torch.export.export`, or the
          ``GraphModule`` its ``.module()`` returns, whose graph uses only the
          ops listed under Notes.

        Consecutive affine maps are composed into one; consecutive activations
        are merged into one (``ReLU(ReLU(x)) = ReLU(x)``); a net that ends with
        an activation gets an identity logits layer. Inputs are flat vectors;
        a leading ``Flatten`` is allowed.
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
        Weights are float64 copies; the model is not modified.

    Raises
    ------
    UnsupportedLayerError
        A layer (or graph op) relugeo cannot represent; the message gives its
        path in the module (e.g. ``'3.1'``) or graph node, and its type.
    InvalidNetworkError
        The net is empty, has no Linear, has NaN/inf weights (the message
        names the parameter), shapes that do not chain, or (with ``check``) a
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
    weight, ``add``/``sub``/``mul``/``div`` by constants broadcast along the
    features, ``relu``, ``leaky_relu``, ``flatten``/``view``/``reshape`` to
    ``(batch, features)``, ``dropout``/``native_dropout`` (treated as the
    identity: a program exported in training mode is converted with eval
    semantics, and the check runs it with dropout removed), copies and
    transposes of weights, and shape bookkeeping (``sym_size``, asserts).

    Examples
    --------
    >>> import torch
    >>> from relugeo.nets import from_torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(),
    ...                             torch.nn.Linear(8, 3))
    >>> from_torch(model)
    PWANet(2-8-3, negative_slopes=[0.0])
    """
    _check_args(check, n_check, seed)
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    if isinstance(model, torch.fx.GraphModule):
        return _from_graph_module(model, check=check, n_check=int(n_check), seed=int(seed))
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module or torch.export.ExportedProgram; "
            f"got {type(model).__name__}"
        )
    if not _has_layers(model):
        raise InvalidNetworkError(
            f"model is an empty {type(model).__name__}; a network needs at least one Linear layer"
        )
    ops: list[_Affine | _Act] = []
    _module_ops(model, "" if isinstance(model, nn.Sequential) else _ROOT, ops)
    net = _assemble(ops, f"model ({type(model).__name__})")
    if check:
        rng = np.random.default_rng(int(seed))
        x = rng.standard_normal((int(n_check), net.input_dim))
        try:
            refs, dtype = _run_module(model, [x])
        except InvalidNetworkError:
            raise
        except Exception as exc:
            raise InvalidNetworkError(
                f"from_torch check: the module's forward pass failed on inputs of shape "
                f"{x.shape}: {type(exc).__name__}: {exc}"
            ) from exc
        _compare(net, [x], refs, dtype, "from_torch check")
    return net


# ---------------------------------------------------------------------------
# torch.export graph walk
# ---------------------------------------------------------------------------
aten = torch.ops.aten


@dataclass(frozen=True)
class _Data:
    """The value flowing from the network input: the ops applied so far."""

    ops: tuple
    shape: tuple | None


@dataclass(frozen=True)
class _Const:
    """A tensor that does not depend on the input (a weight, a buffer, a folded op)."""

    value: torch.Tensor


@dataclass(frozen=True)
class _DropoutPair:
    """Result of ``native_dropout``: (output, mask)."""

    data: _Data


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
    aten.add, aten.sub, aten.mul, aten.div, aten.neg, aten.reciprocal,
}
_BOOKKEEPING = {
    aten.sym_size, aten.sym_numel, aten.sym_stride, aten.sym_storage_offset,
    aten._assert_scalar, aten._assert_async, aten._assert_tensor_metadata,
    aten.sym_constrain_range, aten.sym_constrain_range_for_size,
}


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


class _GraphWalker:
    """Symbolic walk of an exported graph into the intermediate op list."""

    def __init__(self, gm: torch.fx.GraphModule):
        self.gm = gm
        self.values: dict[torch.fx.Node, Any] = {}
        self.input_node: torch.fx.Node | None = None
        self.stochastic: list[str] = []

    def fail(self, node: torch.fx.Node, reason: str) -> UnsupportedLayerError:
        op = _op_name(node.target) if node.op == "call_function" else f"{node.op} {node.target}"
        return UnsupportedLayerError(
            f"unsupported op '{op}' at node '{node.name}' of the exported graph: {reason}"
        )

    def resolve(self, a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            return self.values[a]
        if isinstance(a, (list, tuple)):
            return type(a)(self.resolve(x) for x in a)
        return a

    def run(self) -> tuple[list, tuple | None]:
        for node in self.gm.graph.nodes:
            if node.op == "output":
                return self.output(node), (_meta_shape(self.input_node) if self.input_node else None)
            self.values[node] = self.visit(node)
        raise InvalidNetworkError("the exported graph has no output node")

    # -- node kinds ---------------------------------------------------------
    def visit(self, node: torch.fx.Node) -> Any:
        if node.op == "placeholder":
            if self.input_node is not None:
                raise self.fail(node, "the graph has more than one input; relugeo needs one input tensor")
            self.input_node = node
            return _Data((), _meta_shape(node))
        if node.op == "get_attr":
            obj = _fetch_attr(self.gm, node.target)
            return _Const(obj) if isinstance(obj, torch.Tensor) else _Other(f"attribute {node.target}")
        if node.op == "call_module":
            return self.call_module(node)
        if node.op == "call_function":
            return self.call_function(node)
        raise self.fail(node, f"relugeo converts {_SUPPORTED_OPS}")

    def output(self, node: torch.fx.Node) -> list:
        outs = node.args[0]
        flat = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if len(flat) != 1:
            raise self.fail(
                node, f"the graph returns {len(flat)} values; relugeo needs exactly one output tensor"
            )
        val = self.resolve(flat[0])
        if not isinstance(val, _Data):
            raise self.fail(node, "the graph output does not depend on its input")
        return list(val.ops)

    def call_module(self, node: torch.fx.Node) -> Any:
        target = str(node.target)
        if target.startswith("_guards"):
            return _Other("guards")
        args = [self.resolve(a) for a in node.args]
        sub = self.gm.get_submodule(target)
        if len(args) != 1 or not isinstance(args[0], _Data) or node.kwargs:
            raise self.fail(node, "a submodule call must take the data tensor as its only argument")
        ops: list = []
        _module_ops(sub, target, ops)
        return _Data(args[0].ops + tuple(ops), _meta_shape(node))

    def call_function(self, node: torch.fx.Node) -> Any:
        target = node.target
        if target is operator.getitem:
            container, index = self.resolve(node.args[0]), node.args[1]
            if isinstance(container, _DropoutPair):
                return container.data if index == 0 else _Other("dropout mask")
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
        data = [v for v in flat if isinstance(v, (_Data, _DropoutPair))]
        if packet is None and getattr(target, "__module__", "") in ("_operator", "operator", "math"):
            if data:
                raise self.fail(node, "Python arithmetic on the data tensor is not an aten op "
                                      "relugeo can read")
            return _Other("shape bookkeeping")
        if any(isinstance(v, _Other) and v.what == "dropout mask" for v in flat):
            raise self.fail(node, "it uses a dropout mask")
        if not data:
            if packet in _FOLDABLE:
                return self.fold(node)
            raise self.fail(node, f"relugeo converts {_SUPPORTED_OPS}")
        if len(data) > 1:
            raise self.fail(node, "it combines two tensors computed from the input (a residual "
                                  "or merge); relugeo converts feed-forward chains only")
        x = data[0]
        if not isinstance(x, _Data):
            raise self.fail(node, "it uses the raw output tuple of native_dropout")
        return self.data_op(node, packet, values, x)

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

    # -- ops on the data path ----------------------------------------------
    def width(self, node: torch.fx.Node, x: _Data) -> int:
        shape = x.shape
        if shape is None or len(shape) != 2 or not isinstance(shape[1], int):
            raise self.fail(node, f"it needs a (batch, features) tensor with a fixed number of "
                                  f"features; got shape {shape}")
        return int(shape[1])

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

    def vector(self, node: torch.fx.Node, c: np.ndarray, width: int, what: str) -> np.ndarray:
        """Broadcast a constant along the feature axis of a (batch, width) tensor."""
        if c.ndim == 2 and c.shape[0] == 1:
            c = c[0]
        if c.ndim > 1 or (c.ndim == 1 and c.shape[0] not in (1, width)):
            raise self.fail(node, f"its {what} of shape {c.shape} does not broadcast along the "
                                  f"{width} features alone")
        return np.broadcast_to(c, (width,)).astype(np.float64)

    def push(self, node: torch.fx.Node, x: _Data, *ops) -> _Data:
        return _Data(x.ops + ops, _meta_shape(node) or x.shape)

    def affine(self, node, x, weight: np.ndarray, bias: np.ndarray | None) -> _Data:
        self.need_matrix(node, x)
        if weight.ndim != 2:
            raise self.fail(node, f"its weight has shape {weight.shape}; expected a matrix")
        b = np.zeros(weight.shape[0]) if bias is None else self.vector(node, bias, weight.shape[0], "bias")
        shape = _meta_shape(node) or (None, weight.shape[0])
        return _Data(x.ops + (_Affine(weight, b, node.name),), shape)

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
            return _DropoutPair(x) if packet is aten.native_dropout else self.push(node, x)
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
        if packet in (aten.add, aten.sub, aten.add_, aten.sub_):
            n = self.width(node, x)
            alpha = float(self.const(node, v.get("alpha", 1), "alpha"))
            sign = -1.0 if packet in (aten.sub, aten.sub_) else 1.0
            if v["self"] is x:  # x + alpha * c
                c = self.vector(node, self.const(node, v["other"], "constant"), n, "constant")
                return self.push(node, x, _Affine(np.eye(n), sign * alpha * c, node.name))
            c = self.vector(node, self.const(node, v["self"], "constant"), n, "constant")
            return self.push(node, x, _Affine(sign * alpha * np.eye(n), c, node.name))
        if packet in (aten.mul, aten.mul_):
            n = self.width(node, x)
            other = v["other"] if v["self"] is x else v["self"]
            c = self.vector(node, self.const(node, other, "factor"), n, "factor")
            return self.push(node, x, _Affine(np.diag(c), np.zeros(n), node.name))
        if packet in (aten.div, aten.div_) and v["self"] is x and v.get("rounding_mode") is None:
            n = self.width(node, x)
            c = self.vector(node, self.const(node, v["other"], "divisor"), n, "divisor")
            if not np.all(c != 0):
                raise InvalidNetworkError(f"node '{node.name}' divides by zero")
            return self.push(node, x, _Affine(np.diag(1.0 / c), np.zeros(n), node.name))
        if packet is aten.neg:
            n = self.width(node, x)
            return self.push(node, x, _Affine(-np.eye(n), np.zeros(n), node.name))
        raise self.fail(node, f"relugeo converts {_SUPPORTED_OPS}")

    def reshape(self, node: torch.fx.Node, x: _Data) -> _Data:
        """Accept reshapes that flatten to (batch, features) and keep the batch axis."""
        out = _meta_shape(node)
        if out is None or x.shape is None:
            raise self.fail(node, "a reshape without shape metadata cannot be checked")
        if len(out) != 2 or len(x.shape) < 1 or str(out[0]) != str(x.shape[0]):
            raise self.fail(node, f"it reshapes {tuple(x.shape)} to {tuple(out)}; relugeo accepts "
                                  f"only flattening to (batch, features)")
        return _Data(x.ops, out)


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


def _from_graph_module(gm: torch.fx.GraphModule, *, check: bool, n_check: int, seed: int) -> PWANet:
    walker = _GraphWalker(gm)
    ops, in_shape = walker.run()
    net = _assemble(ops, "the exported graph")
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
