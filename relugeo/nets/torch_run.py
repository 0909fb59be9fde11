"""Running a torch module on batches with forward hooks, leaving the caller's module unchanged.

Shared by the per-layer features of the metrics and by the vertex estimator of
local complexity on modules that are not piecewise affine.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import RelugeoError

__all__ = ["ACTIVATIONS", "Runner", "param_device", "param_dtype", "strip_hooks"]

ACTIVATIONS = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU,
    nn.SELU, nn.CELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
    nn.LogSigmoid, nn.Tanhshrink, nn.Softsign,
)


def strip_hooks(module: nn.Module) -> None:
    """Drop the forward hooks of ``module`` and its submodules (on a private copy)."""
    for m in module.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
                     "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs"):
            hooks = getattr(m, attr, None)
            if hasattr(hooks, "clear"):
                hooks.clear()


def param_dtype(model: nn.Module) -> torch.dtype:
    """dtype of the first floating-point parameter or buffer (torch's default if none)."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def param_device(model: nn.Module) -> torch.device:
    """Device of the first parameter or buffer (CPU if none)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _first_tensor(value) -> torch.Tensor:
    """A hooked value: the tensor itself, or the first element of a tuple (attention's output)."""
    return value[0] if isinstance(value, (tuple, list)) else value


class Runner:
    """Run a module on batches with hooks, without changing the caller's module.

    A deep copy (hooks stripped) is made and cast to ``dtype``; if the module
    cannot be copied, hooks go on the module itself and are removed (and its
    training flags restored) afterwards.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype | None):
        self.original = model
        try:
            ref = copy.deepcopy(model)
            strip_hooks(ref)
            if dtype is not None:
                ref = ref.to(dtype=dtype)
            self.model, self.owned = ref, True
        except Exception:  # a module that cannot be copied or cast runs in place
            self.model, self.owned = model, False
        self.dtype = dtype if (self.owned and dtype is not None) else param_dtype(self.model)
        self.device = param_device(self.model)

    def run(self, X: np.ndarray, batch_size: int, names: Sequence[str] = (),
            pre: bool | Collection[str] = False):
        """``(outputs, {name: features})`` over all batches, float64 numpy, rows flattened.

        ``pre`` chooses, for every name (a bool) or per name (the names in the
        collection), the module's input instead of its output.
        """
        store: dict[str, list] = {n: [] for n in names}
        modules = dict(self.model.named_modules())
        handles = []
        for n in names:
            if pre is True or (not isinstance(pre, bool) and n in pre):
                handles.append(modules[n].register_forward_pre_hook(
                    lambda m, inp, n=n: store[n].append(_first_tensor(inp).detach())))
            else:
                handles.append(modules[n].register_forward_hook(
                    lambda m, inp, out, n=n: store[n].append(_first_tensor(out).detach())))
        flags = [(m, m.training) for m in self.model.modules()]
        outs = []
        try:
            self.model.eval()
            with torch.no_grad():
                for i in range(0, len(X), batch_size):
                    xb = torch.as_tensor(np.ascontiguousarray(X[i:i + batch_size])).to(
                        device=self.device, dtype=self.dtype)
                    outs.append(_first_tensor(self.model(xb)).detach())
        finally:
            for h in handles:
                h.remove()
            for m, flag in flags:
                m.training = flag

        def cat(ts):
            return torch.cat([t.reshape(len(t), -1) for t in ts]).to("cpu", torch.float64).numpy()

        feats = {n: cat(v) for n, v in store.items()}
        for n, f in feats.items():
            if len(f) != len(X):
                raise RunnerError(
                    f"submodule {n!r} gave {len(f)} rows for {len(X)} inputs: it runs more than once per "
                    f"forward pass (or changes the batch size), so its output is not one feature row per sample"
                )
        return cat(outs), feats


class RunnerError(RelugeoError, ValueError):
    """A hooked submodule does not give one row per input sample."""
