"""CUDA kernels against the CPU kernels under numba's simulator.

The simulator must be switched on before numba.cuda is first imported, so
the comparisons (``tests/cuda_sim/compare.py``) run in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

HERE = Path(__file__).parent


# the comparisons in groups of about equal time, so that pytest-xdist's workers share them
SIMULATED_GROUPS = {
    "second-layer": "split_cells_second_layer",
    "rest": "not split_cells_second_layer",
}


@pytest.mark.parametrize("group", sorted(SIMULATED_GROUPS))
def test_cuda_kernels_match_cpu_under_simulator(group):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", SIMULATED_GROUPS[group],
                          str(HERE / "cuda_sim" / "compare.py")], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]  # 5: the group selected no test


def test_cuda_without_gpu_raises_clearly():
    from relugeo.kernels import resolve_device

    if os.environ.get("NUMBA_ENABLE_CUDASIM") or resolve_device("auto") == "cuda":
        pytest.skip("a GPU or the simulator is present")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")


I8, I4, U8, F8, W8 = "int64[::1]", "int32[::1]", "uint8[:, ::1]", "float64[::1]", "uint64[:, ::1]"
F2, F3, C4, I2 = "float64[:, ::1]", "float64[:, :, ::1]", "int32[:, ::1]", "int64[:, ::1]"
KERNEL_SIGNATURES = {
    "_scan_blocks": [I8, I8, I8],
    "_add_block_offsets": [I8, I8],
    "_pack_signs_kernel": [F2, W8],
    "_area_kernel": [I8, F8, F8, F8, F2],
    "_cell_signs_kernel": [F3, I8, F8, F8, F8, "float64", F8, U8, C4, I8, F3],
    "_count_pieces": ["int64", I8, I8, F8, F8, F3, C4, I8, F8, "float64", I8, I8],
    "_write_pieces": ["int64", "int64", I8, I8, F8, F8, I4, I4, W8, F3, C4, I8, F8, "float64", I8, I8,
                      I8, I8, F8, F8, I4, I4, W8],
    "_first_piece": [I8, I8],
    "_cell_totals": [I8, I8, I8, I8],
    "_finish_children": [I8, I8, I8, F8, F8, I4, I4, W8, F3, U8, C4, I8, F8, W8, "int64", F3, F2, I8, I8,
                         I8, F8, F8, I4, I4, W8, F3, I8],
    "_piece_cells": [I8, I8],
    "_reduce_leaves_kernel": [I8, F8, F8, I4, I4, I8, F3, I8, "int64", "boolean", F8, "float64", U8, F8],
    "_interval_count_kernel": [F3, I8, F8, F8, "float64", F8, U8, C4, I8, I8, I8, F3, F2, C4, I2],
    "_interval_write_kernel": [F3, I8, F8, I4, I4, F8, "float64", "int64", F8, W8, "int64", U8, C4, I8, I8, I8,
                               F3, F2, I8, F8, F8, I4, I4, W8, F3, I8, F2, I2, W8],
    "_new_edge_lengths": [I8, I8, I8, F8, F8, I4, "int64", F8],
    "_ring_edge_lengths": [I8, F8, F8, I4, "boolean", F8],
    "_parent_next_maps": [F3, F2, F8, F3],
    "_piece_next_maps": [I8, W8, F3, C4, I8, F8, F3, F2, F8, F3, F8],
    "_reduce_children": [I8, I8, F8, F8, I4, C4, I8, I8, F8, I8, F8, U8],
}


def _nvvm_missing() -> str:
    if os.environ.get("NUMBA_ENABLE_CUDASIM"):
        return "the CUDA simulator is on"
    try:
        from numba.cuda.cudadrv import nvvm

        return "" if nvvm.is_available() else "libNVVM is not installed"
    except Exception as err:  # a numba built without CUDA support
        return f"numba.cuda cannot load libNVVM: {err}"


@pytest.mark.parametrize("name", sorted(KERNEL_SIGNATURES))
def test_kernel_compiles_to_ptx_for_sm_90(name, monkeypatch):
    reason = _nvvm_missing()
    if reason:
        pytest.skip(reason)
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    from relugeo.kernels import cuda as gk

    if not cuda.is_available():
        # numba compiles called device functions for the current device; with no GPU, name sm_90
        monkeypatch.setattr(dispatcher, "get_current_device", lambda: types.SimpleNamespace(compute_capability=(9, 0)))

    kernel = getattr(gk, name)
    sig = "void(" + ", ".join(KERNEL_SIGNATURES[name]) + ")"
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
    assert ".target sm_90" in ptx and ".entry" in ptx
    # every product rounds on its own, as on the CPU, so the float results can be identical
    assert "fma.rn.f64" not in ptx


def test_every_kernel_has_a_ptx_signature():
    import numba.cuda.dispatcher as dispatcher

    from relugeo.kernels import cuda as gk

    kernels = {n for n, v in vars(gk).items() if isinstance(v, dispatcher.CUDADispatcher) and not v.targetoptions.get("device")}
    assert kernels == set(KERNEL_SIGNATURES)
