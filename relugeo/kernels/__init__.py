"""Compiled core (numba). Pure arrays in, arrays out: no torch, no matplotlib.

``cpu`` (njit) and ``cuda`` (numba.cuda) export the same kernels;
:func:`backend` picks one by device name.
"""

from __future__ import annotations

import functools
from types import ModuleType

from numba import config

from . import cpu

DEVICES = ("cpu", "cuda", "auto")


@functools.cache
def _cuda_available() -> bool:
    """Whether numba.cuda can run kernels: a GPU, or the simulator. Asked once per process, since the
    engine resolves its device for every batch and neither can appear later."""
    if config.ENABLE_CUDASIM:
        return True
    try:
        from numba import cuda as nb_cuda
    except Exception:  # noqa: BLE001 - numba built without CUDA support
        return False
    return bool(nb_cuda.is_available())


def resolve_device(device: str) -> str:
    """The backend that ``device`` names: ``"cpu"`` or ``"cuda"``.

    ``"auto"`` picks ``"cuda"`` only when numba sees a GPU (or runs its CUDA
    simulator, ``NUMBA_ENABLE_CUDASIM=1``). An explicit ``"cuda"`` raises
    ``RuntimeError`` when neither is there; it never falls back.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}; got {device!r} instead")
    if device == "cpu":
        return "cpu"
    if _cuda_available():
        return "cuda"
    if device == "auto":
        return "cpu"
    raise RuntimeError(
        "device='cuda' was asked for but numba sees no CUDA GPU (numba.cuda.is_available() is False) "
        "and NUMBA_ENABLE_CUDASIM is not set; use device='cpu' or device='auto'"
    )


def backend(device: str = "cpu") -> ModuleType:
    """The kernel module for ``device`` (see :func:`resolve_device`): ``kernels.cpu`` or ``kernels.cuda``."""
    if resolve_device(device) == "cpu":
        return cpu
    from . import cuda

    return cuda
