"""What a benchmark JSON records about the machine: CPU, cores, threads, libraries, BLAS, GPU."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# environment variables that change what a benchmark measures
ENVIRONMENT = ("NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR", "NUMBA_THREADING_LAYER", "OMP_NUM_THREADS",
               "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "CUDA_VISIBLE_DEVICES")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS), else the platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=5, check=False)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def gpu_info() -> dict:
    """``{"cuda_available": bool, "devices": [{"name", "compute_capability", "memory_gib"}, ...]}``.

    Asked of ``numba.cuda``, the backend of relugeo's CUDA kernels; a machine
    without a usable driver reports no devices.
    """
    try:
        from numba import cuda

        available = bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA install must not stop a CPU benchmark
        return {"cuda_available": False, "devices": []}
    devices = []
    if available:
        try:
            for gpu in cuda.gpus:
                with gpu:
                    ctx = cuda.current_context()
                    devices.append({
                        "name": gpu.name.decode() if isinstance(gpu.name, bytes) else str(gpu.name),
                        "compute_capability": ".".join(map(str, gpu.compute_capability)),
                        "memory_gib": round(ctx.get_memory_info().total / 2**30, 1),
                    })
        except Exception as exc:  # noqa: BLE001 - report what went wrong rather than fail the run
            devices.append({"error": f"{type(exc).__name__}: {exc}"})
    return {"cuda_available": available, "devices": devices}


def machine_info() -> dict:
    """CPU model and cores, thread counts, Python and library versions, BLAS libraries, GPU."""
    import numba
    import numpy as np
    import sklearn
    import torch
    from threadpoolctl import threadpool_info

    from .. import __version__

    pools = threadpool_info()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "versions": {"relugeo": __version__, "numpy": np.__version__, "numba": numba.__version__,
                     "torch": torch.__version__, "scikit-learn": sklearn.__version__},
        "threads": {"numba": int(numba.get_num_threads()), "torch": int(torch.get_num_threads()),
                    "blas": max((p["num_threads"] for p in pools if p.get("user_api") == "blas"), default=None),
                    "numba_layer": _threading_layer()},
        "blas": [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                 for p in pools if p.get("user_api") == "blas"],
        "gpu": gpu_info(),
        "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
    }


def numba_cache_files() -> int:
    """Compiled relugeo kernels in numba's on-disk cache (index files); 0 means the next run compiles them all."""
    import numba

    from .. import kernels

    if numba.config.CACHE_DIR:
        return sum(1 for _ in Path(numba.config.CACHE_DIR).rglob("*.nbi"))
    return sum(1 for _ in (Path(kernels.__file__).parent / "__pycache__").glob("*.nbi"))


def _threading_layer() -> str | None:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return None
