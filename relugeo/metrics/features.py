"""Per-layer features of a :class:`~relugeo.PWANet` or a PyTorch module, and input checks.

A *hidden layer* is the output of an activation. For a PWANet, hidden layer
``l`` is ``act(W_l h_{l-1} + b_l)`` for ``l = 0 .. len(net.hidden) - 1``; the last
hidden layer is the input of the last affine map (the penultimate features of
neural collapse). For a torch module, the hidden layers are its activation
modules (ReLU, LeakyReLU, Tanh, Sigmoid, GELU, ELU, SiLU, Softplus, Hardtanh,
...) in registration order, which is execution order for ``nn.Sequential``;
any submodule can also be named directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import RelugeoError
from ..nets.pwanet import PWANet
from ..nets.torch_run import ACTIVATIONS, Runner, RunnerError

__all__ = [
    "ACTIVATIONS",
    "MetricInputError",
    "classifier_weights",
    "hidden_layer_names",
    "layer_features",
    "model_outputs",
    "penultimate_features",
]


LayerSpec = None | int | str | Sequence[int | str]


class MetricInputError(RelugeoError, ValueError):
    """Features, labels or weights given to a metric have the wrong shape, values or classes."""


# ---------------------------------------------------------------------------
# input checks shared by the metrics
# ---------------------------------------------------------------------------
def check_features(H, name: str = "H") -> np.ndarray:
    """``H`` as a finite float64 array of shape (N, n); a clear error otherwise."""
    try:
        A = np.asarray(H, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"{name} must be a numeric array of shape (N, n); {exc}") from None
    if A.ndim != 2:
        raise MetricInputError(f"{name} must have shape (N, n) (one row per sample); got shape {A.shape}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise MetricInputError(f"{name} must have at least one row and one column; got shape {A.shape}")
    bad = ~np.isfinite(A).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise MetricInputError(
            f"{name} has NaN or inf in {len(rows)} of {len(A)} rows (first: row {rows[0]}); "
            f"metrics need finite features"
        )
    return A


def check_labels(y, n: int, name: str = "y", min_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Labels of ``n`` samples as ``(classes, codes)``: the sorted distinct labels and
    each sample's index into them (0 .. C-1). Requires ``min_classes`` distinct labels."""
    lab = np.asarray(y)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim != 1:
        raise MetricInputError(f"{name} must have shape (N,) (one label per sample); got shape {lab.shape}")
    if len(lab) != n:
        raise MetricInputError(f"{name} has {len(lab)} labels but the features have {n} rows")
    if lab.dtype.kind == "f":
        if not np.isfinite(lab).all():
            raise MetricInputError(f"{name} contains NaN or inf labels")
        if not np.array_equal(lab, np.round(lab)):
            raise MetricInputError(f"{name} must hold integer class labels; got non-integer values")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iub":
        raise MetricInputError(f"{name} must hold integer class labels; got dtype {lab.dtype}")
    classes, codes = np.unique(lab, return_inverse=True)
    if len(classes) < min_classes:
        raise MetricInputError(
            f"{name} must contain at least {min_classes} classes; got {len(classes)} "
            f"({classes.tolist()})"
        )
    return classes, codes.reshape(-1)


def check_features_labels(H, y, min_classes: int = 2, names=("H", "y")):
    """``(H, classes, codes)`` after :func:`check_features` and :func:`check_labels`."""
    A = check_features(H, names[0])
    classes, codes = check_labels(y, len(A), names[1], min_classes)
    return A, classes, codes


# ---------------------------------------------------------------------------
# torch helpers
# ---------------------------------------------------------------------------
def hidden_layer_names(model: nn.Module) -> list[str]:
    """Qualified names of the activation modules of ``model``, in registration order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return [name for name, m in model.named_modules() if isinstance(m, ACTIVATIONS)]


def _resolve_torch_layers(model: nn.Module, layers: LayerSpec) -> list[tuple[object, str]]:
    """``[(key, module name)]`` for the requested layers of a torch module."""
    acts = hidden_layer_names(model)
    named = dict(model.named_modules())
    if layers is None:
        if not acts:
            raise MetricInputError(
                f"{type(model).__name__} has no activation modules to hook (functional activations "
                f"in forward() are invisible); pass layers= the names of submodules, e.g. "
                f"{[n for n in named if n][:4]}"
            )
        return list(enumerate(acts))
    items = [layers] if isinstance(layers, (int, str, np.integer)) else list(layers)
    if not items:
        raise MetricInputError("layers must name at least one layer; got an empty list")
    out = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            k = int(item)
            if not -len(acts) <= k < len(acts):
                raise MetricInputError(
                    f"layers: index {k} is out of range; the model has {len(acts)} hidden layers "
                    f"(activation modules {acts})"
                )
            k %= len(acts)
            out.append((k, acts[k]))
        elif isinstance(item, str):
            if item not in named or item == "":
                raise MetricInputError(
                    f"layers: {item!r} is not a submodule of {type(model).__name__}; "
                    f"its submodules are {[n for n in named if n]}"
                )
            out.append((item, item))
        else:
            raise MetricInputError(f"layers must hold ints or module names; got {item!r}")
    return out


def _resolve_net_layers(net: PWANet, layers: LayerSpec) -> list[int]:
    n = len(net.hidden)
    if n == 0:
        raise MetricInputError("the network has no hidden layer; it is a single affine map")
    if layers is None:
        return list(range(n))
    items = [layers] if isinstance(layers, (int, str, np.integer)) else list(layers)
    if not items:
        raise MetricInputError("layers must name at least one layer; got an empty list")
    out = []
    for item in items:
        if isinstance(item, (str, bool)) or not isinstance(item, (int, np.integer)):
            raise MetricInputError(
                f"layers of a PWANet are hidden-layer indices 0..{n - 1} (negative counts from the "
                f"end); got {item!r}"
            )
        k = int(item)
        if not -n <= k < n:
            raise MetricInputError(f"layers: index {k} is out of range; the network has {n} hidden layers")
        out.append(k % n)
    return out


def _as_inputs(X, n_in: int | None) -> np.ndarray:
    A = np.asarray(X)
    if A.ndim == 1:
        A = A[None, :]
    if A.ndim < 2 or len(A) == 0:
        raise MetricInputError(f"X must have shape (N, ...) with N >= 1; got shape {A.shape}")
    if n_in is not None and (A.ndim != 2 or A.shape[1] != n_in):
        raise MetricInputError(f"X must have shape (N, {n_in}) for this network; got shape {A.shape}")
    return A


def _check_batch(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MetricInputError(f"batch_size must be a positive integer; got {batch_size!r}")
    return int(batch_size)


def _torch_dtype(dtype) -> torch.dtype | None:
    if dtype is None:
        return None
    table = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
    try:
        return table[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise MetricInputError(f"dtype must be float64, float32 or None; got {dtype!r}") from None


def _run(model: nn.Module, X: np.ndarray, batch_size: int, dtype, names=(), pre: bool = False):
    """:meth:`Runner.run` on a copy of ``model`` cast to ``dtype``, its errors as MetricInputError."""
    try:
        return Runner(model, _torch_dtype(dtype)).run(X, batch_size, names, pre)
    except RunnerError as exc:
        raise MetricInputError(str(exc)) from None


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------
def layer_features(model, X, layers: LayerSpec = None, *, batch_size: int = 1024,
                   dtype=np.float64) -> dict:
    """Post-activation features of chosen hidden layers, computed in batches.

    Parameters
    ----------
    model : PWANet or torch.nn.Module
        A PWANet runs in float64 NumPy. A torch module runs on a deep copy
        (hooks removed, cast to ``dtype``, eval mode, ``torch.no_grad``);
        the caller's module is left unchanged.
    X : array_like of shape (N, n_in)
        Inputs (for a torch module any shape the module accepts, batch first).
    layers : int, str or sequence of them, optional
        Hidden-layer indices (0 = first hidden layer, negative counts from
        the end, so -1 is the penultimate layer of an MLP) or, for a torch
        module, qualified submodule names whose outputs are taken. ``None``:
        every hidden layer.
    batch_size : int, default 1024
        Samples per forward pass; bounds memory.
    dtype : numpy float dtype or None, default np.float64
        Precision of the forward pass of a torch module (``None`` keeps the
        module's own). The result is always float64.

    Returns
    -------
    dict
        Layer key (the index as a non-negative int, or the name given) to an
        ndarray of shape (N, width), dtype=np.float64, rows flattened.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    >>> {k: v.shape for k, v in layer_features(m, np.zeros((5, 3))).items()}
    {0: (5, 4)}
    """
    batch_size = _check_batch(batch_size)
    if isinstance(model, PWANet):
        keys = _resolve_net_layers(model, layers)
        A = _as_inputs(X, model.input_dim).astype(np.float64)
        if not np.isfinite(A).all():
            raise MetricInputError("X contains NaN or inf")
        chunks: dict[int, list] = {k: [] for k in keys}
        last = max(keys)
        for i in range(0, len(A), batch_size):
            h = A[i:i + batch_size]
            for k, layer in enumerate(model.hidden[: last + 1]):
                z = layer.apply(h)
                h = layer.activate(z)
                if k in chunks:
                    chunks[k].append(h)
        return {k: np.concatenate(chunks[k]) for k in keys}
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a PWANet or a torch.nn.Module; got {type(model).__name__}")
    pairs = _resolve_torch_layers(model, layers)
    A = _as_inputs(X, None)
    _, feats = _run(model, A, batch_size, dtype, names=sorted({n for _, n in pairs}))
    return {key: feats[name] for key, name in pairs}


def _last_linear_name(model: nn.Module) -> str:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise MetricInputError(f"{type(model).__name__} has no nn.Linear layer to act as the classifier")
    return names[-1]


def penultimate_features(model, X, *, batch_size: int = 1024, dtype=np.float64) -> np.ndarray:
    """The input of the last affine map (the features of neural collapse), (N, n) float64.

    For a PWANet this is the last hidden layer's output; for a torch module,
    the input of its last ``nn.Linear`` (captured with a forward pre-hook).
    """
    batch_size = _check_batch(batch_size)
    if isinstance(model, PWANet):
        if len(model.hidden) == 0:
            return _as_inputs(X, model.input_dim).astype(np.float64)
        return layer_features(model, X, -1, batch_size=batch_size)[len(model.hidden) - 1]
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a PWANet or a torch.nn.Module; got {type(model).__name__}")
    name = _last_linear_name(model)
    _, feats = _run(model, _as_inputs(X, None), batch_size, dtype, names=[name], pre=True)
    return feats[name]


def model_outputs(model, X, *, batch_size: int = 1024, dtype=np.float64) -> np.ndarray:
    """The model's outputs (logits), shape (N, n_out), float64."""
    batch_size = _check_batch(batch_size)
    if isinstance(model, PWANet):
        A = _as_inputs(X, model.input_dim)
        return np.concatenate([model.forward(A[i:i + batch_size]) for i in range(0, len(A), batch_size)])
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a PWANet or a torch.nn.Module; got {type(model).__name__}")
    out, _ = _run(model, _as_inputs(X, None), batch_size, dtype)
    return out


def classifier_weights(model) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of the last affine map: W of shape (C, n), b of shape (C,), float64.

    For a torch module, the last ``nn.Linear`` in registration order (a
    missing bias gives zeros).
    """
    if isinstance(model, PWANet):
        last = model.layers[-1]
        return last.weight.copy(), last.bias.copy()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a PWANet or a torch.nn.Module; got {type(model).__name__}")
    lin = dict(model.named_modules())[_last_linear_name(model)]
    W = lin.weight.detach().to("cpu", torch.float64).numpy().copy()
    b = (lin.bias.detach().to("cpu", torch.float64).numpy().copy() if lin.bias is not None
         else np.zeros(W.shape[0]))
    return W, b
