"""The published vertex estimator of local complexity on any torch module, through forward hooks.

Humayun et al. (2024) need only forward passes: the 2P vertices x +- r v_p of
each point's cross-polytope go through the network, and a neuron counts when
its pre-activation's sign differs between some vertex and the first. Nothing
here asks the module to be piecewise affine, so GELU MLPs, LayerNorm and
attention are measured as the paper measures its GPT. The frame and the vertex
order are those of :func:`relugeo.local_complexity` on a :class:`PWANet`, so
on a piecewise-affine module both give the same counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..nets.torch_import import from_torch
from ..nets.torch_run import ACTIVATIONS, Runner
from .complexity import LCResult, frame

__all__ = ["hooked_layers", "module_local_complexity"]


def hooked_layers(module: nn.Module, layers) -> tuple[list[str], set[str], bool]:
    """The tensors the estimator reads: ``(names, names read at their input, logits too)``.

    ``layers`` is ``"hidden"`` (the input of every activation module, in
    registration order), ``"all"`` (those and the module's output, the logits)
    or a sequence of submodules or their qualified names. A named activation
    module is read at its input (its pre-activation); any other submodule
    (Linear, LayerNorm, attention, ...) at its output, the first element of a
    tuple output.
    """
    named = dict(module.named_modules())
    if isinstance(layers, str):
        if layers not in ("hidden", "all"):
            raise ValueError(f"layers must be 'hidden', 'all' or a list of submodules; got {layers!r}")
        names = [n for n, m in named.items() if isinstance(m, ACTIVATIONS)]
        if not names and layers == "hidden":
            raise ValueError(
                f"{type(module).__name__} has no activation modules to hook (functional activations in "
                f"forward() are invisible); pass layers= the submodules whose outputs are pre-activations, "
                f"e.g. {[n for n in named if n][:4]}"
            )
        return names, set(names), layers == "all"
    items = list(layers) if isinstance(layers, Sequence) else [layers]
    if not items:
        raise ValueError("layers must name at least one submodule; got an empty list")
    by_id = {id(m): n for n, m in named.items()}
    names = []
    for item in items:
        if isinstance(item, nn.Module):
            if id(item) not in by_id or by_id[id(item)] == "":
                raise ValueError(f"layers: {type(item).__name__} module is not a submodule of "
                                 f"{type(module).__name__}")
            name = by_id[id(item)]
        elif isinstance(item, str) and item in named and item != "":
            name = item
        else:
            raise ValueError(f"layers: {item!r} is not a submodule of {type(module).__name__}; "
                             f"its submodules are {[n for n in named if n]}")
        if name in names:
            raise ValueError(f"layers: {name!r} is given twice")
        names.append(name)
    return names, {n for n in names if isinstance(named[n], ACTIVATIONS)}, False


def module_local_complexity(
    module: nn.Module,
    X,
    radius: float,
    *,
    dim: int = 2,
    method: str = "vertex",
    n_directions: int | None = None,
    seed: int = 0,
    layers="hidden",
    batch_size: int = 1024,
    groups=None,
    progress: Callable[[int, int], None] | None = None,
    client=None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float64,
    density_kd: bool = False,
    predicates: str = "tolerance",
) -> LCResult:
    """Local complexity of a torch module around every point of ``X`` (see :func:`relugeo.local_complexity`).

    ``method="vertex"`` runs on any module through forward hooks on a float64
    copy (``dtype``) in eval mode; ``X`` of shape (N, ...) is one input per
    row, in any shape the module takes, and the frame lives in the flattened
    input space of dimension D = prod(shape[1:]) (default P = min(25, D)).
    ``layers`` is read by :func:`hooked_layers`; the result's ``layer_names``
    are the hooked submodules' names, and ``logits`` for the output.
    ``batch_size`` points (at most 16384 vertices) go through each forward pass.

    ``method="exact"`` converts the module with :func:`relugeo.from_torch`
    (which refuses a layer that is not piecewise affine and names it) and runs
    the exact method on the flattened inputs (``client`` and ``device`` go
    to it, and ``density_kd`` and ``predicates``; the vertex method runs where the module's parameters are).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"net must be a PWANet or a torch.nn.Module; got {type(module).__name__}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 2 or X.shape[0] == 0 or X[0].size == 0:
        raise ValueError(f"X must have shape (N, ...) with N >= 1 inputs of at least one value; got {X.shape}")
    if method == "exact":
        if not isinstance(layers, str):
            raise ValueError("layers as a list of submodules is for method='vertex'; the exact method takes "
                             f"'hidden' or 'all'; got {layers!r}")
        from .complexity import local_complexity

        net = from_torch(module, input_shape=X.shape[1:])
        return local_complexity(net, X.reshape(len(X), -1), radius, dim=dim, method="exact",
                                n_directions=n_directions, seed=seed, layers=layers, batch_size=batch_size,
                                groups=groups, progress=progress, client=client, device=device,
                                predicates=predicates, density_kd=density_kd)
    if method != "vertex":
        raise ValueError(f"method must be one of ['exact', 'vertex']; got {method!r}")
    if client is not None:
        raise ValueError("client= fans out the PWANet methods only; the vertex method on a torch module "
                         "runs in this process (pass client=None)")
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))
        raise ValueError(f"X contains NaN or inf in {len(bad)} rows (first: {bad[:5].tolist()})")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0; got {radius!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (X.shape[0],):
            raise ValueError(f"groups must have shape ({X.shape[0]},); got {groups.shape}")
    N, shape = X.shape[0], X.shape[1:]
    D = int(np.prod(shape))
    P = min(25, D) if n_directions is None else int(n_directions)
    if not 1 <= P <= D:
        raise ValueError(f"n_directions must be between 1 and the input dimension {D}; got {n_directions!r}")
    names, at_input, with_logits = hooked_layers(module, layers)
    V = frame(D, P, seed)
    # vertices x + r v_1, x - r v_1, x + r v_2, ... ; the first is x + r v_1
    offsets = float(radius) * np.stack([V.T, -V.T], axis=1).reshape(2 * P, D)
    runner = Runner(module, dtype)
    flat = X.reshape(N, D)
    out = np.zeros((N, len(names) + with_logits), dtype=np.int64)
    step = max(1, min(int(batch_size), 16384 // (2 * P)))  # points per forward pass, as for a PWANet
    t0 = time.perf_counter()
    for s0 in range(0, N, step):
        xs = flat[s0:s0 + step]
        pts = (xs[:, None, :] + offsets[None]).reshape((-1,) + shape)
        logits, feats = runner.run(pts, len(pts), names, pre=at_input)
        zs = [feats[n] for n in names] + ([logits] if with_logits else [])
        for j, z in enumerate(zs):
            s = (z > 0).reshape(len(xs), 2 * P, -1)
            out[s0:s0 + step, j] = (s != s[:, :1]).any(axis=1).sum(axis=1)
        if progress is not None:
            progress(min(s0 + step, N), N)
    return LCResult("vertex", float(radius), P, int(seed), layers if isinstance(layers, str) else "modules",
                    out, None, None, names + (["logits"] if with_logits else []), V,
                    time.perf_counter() - t0, groups)
