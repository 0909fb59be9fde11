"""nn.Module layers to program ops: the walk of ``nn.Sequential`` containers.

:func:`_module_ops` walks a (nested) ``nn.Sequential`` of the layers in
:data:`SUPPORTED_LAYERS`, or one such layer, and appends the
:mod:`~relugeo.nets.torch_program` ops of each (Linear, activations,
convolutions, average and max pooling with its windows, BatchNorm) while it
tracks the per-example shape. It is used by
:func:`~relugeo.nets.torch_import.from_torch` for Sequential models and by
the graph walk of
:mod:`~relugeo.nets.torch_graph` for submodule calls; :func:`_max_windows`
serves both walks' max-poolings.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import InvalidNetworkError, UnsupportedLayerError
from .torch_program import _Act, _Affine, _array, _linear_map, _Max, _scale_map

__all__ = ["SUPPORTED_LAYERS"]

SUPPORTED_LAYERS = (
    "Linear, ReLU, LeakyReLU, Flatten, Identity, Dropout, Conv1d, Conv2d, AvgPool1d, AvgPool2d, "
    "AdaptiveAvgPool1d, AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, MaxPool1d, MaxPool2d"
)

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


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _join(path: str, name: str) -> str:
    return name if path in ("", _ROOT) else f"{path}.{name}"


def _is_plain(module: nn.Module, base: type) -> bool:
    """``module`` is a ``base`` whose forward is ``base``'s own."""
    return isinstance(module, base) and type(module).forward is base.forward


def _unsupported(path: str, module: nn.Module, reason: str | None = None) -> UnsupportedLayerError:
    why = reason or f"relugeo supports {SUPPORTED_LAYERS}"
    return UnsupportedLayerError(f"unsupported layer '{path}' ({type(module).__name__}): {why}")


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
