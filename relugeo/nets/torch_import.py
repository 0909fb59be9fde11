"""Convert PyTorch modules to :class:`~relugeo.nets.pwanet.PWANet`.

Three kinds of input are understood:

* ``nn.Sequential`` containers (nested to any depth) of the layers in
  ``SUPPORTED_LAYERS``, and bare supported layers, walked module by module
  (:mod:`~relugeo.nets.torch_layers`);
* graphs produced by :func:`torch.export.export` (an ``ExportedProgram`` or
  the ``GraphModule`` returned by its ``.module()``), walked node by node
  (:mod:`~relugeo.nets.torch_graph`);
* any other ``nn.Module`` (a ResNet with its own ``forward``): traced with
  :func:`torch.export.export` on an example input of the module's input
  shape, then walked as a graph.

Both walks record a program (:mod:`~relugeo.nets.torch_program`): value 0 is
the network input, every step applies
one operation to earlier values. Operations are affine maps on flat vectors
(``Linear``), linear torch functions on images with a bias (convolution,
pooling, BatchNorm, padding, scaling), sums of two values (residual
additions), two-slope activations (ReLU, leaky ReLU) and max-poolings. Every
value is stored flat in C order, so ``flatten`` and ``view`` cost nothing.

A program that is a plain chain of affine maps and activations (an MLP) is
assembled by :func:`~relugeo.nets.torch_program._assemble`: consecutive affine maps are multiplied into
one, consecutive activations merged into one, and a net that ends with an
activation gets an identity logits layer. Any other program is lowered by
:func:`~relugeo.nets.torch_program._lower`, which keeps every live value as a dense affine map of the
current state vector (see its docstring); maps over :data:`MAX_DENSE_ENTRIES`
entries are refused, or with ``linear_maps=True`` kept as operators
(:class:`~relugeo.nets.linear_maps.LinearMap` weights).

This module holds :func:`from_torch` itself, the inference of a model's input
shape, and the checks of its arguments; the forward-pass check against the
module is in :mod:`~relugeo.nets.torch_check`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidNetworkError, UnsupportedLayerError
from .pwanet import PWANet
from .torch_check import _check_module, _Reference
from .torch_graph import _from_graph_module, _GraphWalker
from .torch_layers import (
    _CONVS,
    _NORMS,
    _ROOT,
    SUPPORTED_LAYERS,  # noqa: F401 -- re-exported: the public list of layers
    _has_layers,
    _is_user_module,
    _module_ops,
    _needs_image,
)
from .torch_program import MAX_DENSE_ENTRIES, _build, _Program

__all__ = ["MAX_DENSE_ENTRIES", "from_torch"]


# ---------------------------------------------------------------------------
# the input-shape probe and the arguments
# ---------------------------------------------------------------------------
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
