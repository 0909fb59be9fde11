"""Running a PyTorch module without changing it, and checking a conversion against it.

:func:`~relugeo.nets.torch_import.from_torch` compares the :class:`PWANet` it
built with the module's own forward pass. :class:`_Reference` runs a float64
deep copy in eval mode with hooks removed (or the module itself, flags
restored); :func:`_compare` is the tolerance test, shared with the graph walk
of :mod:`~relugeo.nets.torch_graph`, which is why these live apart from
``torch_import`` (which imports the graph walk).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidNetworkError
from .pwanet import PWANet


# ---------------------------------------------------------------------------
# running the module
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

    def __enter__(self) -> "_Reference":
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


# ---------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------
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
