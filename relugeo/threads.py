"""How many threads relugeo runs, and on which threading layer.

relugeo runs its compiled kernels on pools of Python threads (the kernels
release the GIL), each thread on one numba thread; numba's own parallel loops
serve only long flat loops such as ``verify``'s checks. Those loops still need
care: numba's default OpenMP layer makes idle workers spin, and a parallel
region ends only when every worker has reached its barrier, so on a machine
where another process holds a core each region waits for a time slice, and
default settings run many times slower than one thread. So, when ``relugeo``
is imported and unless the user has chosen otherwise:

- numba's threading layer is TBB, which numba picks first whenever the ``tbb``
  package is installed (a dependency of relugeo on x86-64): idle TBB workers
  sleep, and the calling thread runs the tasks itself when no worker is free,
  so a busy neighbour costs at most its share of the machine. Without a usable
  TBB, numba falls back to OpenMP, and relugeo sets ``OMP_WAIT_POLICY=PASSIVE``
  so that its workers sleep instead of spinning.
- numba, torch and BLAS use at most the CPUs this process may run on: its CPU
  affinity and, in a container, its cgroup CPU quota.

A user's explicit setting always wins: ``NUMBA_THREADING_LAYER``,
``NUMBA_NUM_THREADS``, ``OMP_WAIT_POLICY``, ``OMP_NUM_THREADS`` (and the BLAS
variables) set in the environment are left alone, and so is a numba thread pool
already started before relugeo was imported. ``numba.set_num_threads(n)``
changes the count for the calling thread at any time. :func:`settings` reports
what was decided.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


@dataclass
class ThreadSettings:
    """What :func:`configure` found and decided (see the module docstring)."""

    cpus_available: int
    layer: str
    numba_threads: int
    torch_threads: int | None = None
    blas_threads: int | None = None
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


_SETTINGS: list[ThreadSettings] = []


def _cgroup_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by the cgroup's CPU quota (v2 ``cpu.max`` or v1 cfs files); None if unlimited."""
    try:
        with open(os.path.join(root, "cpu.max")) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as f:
            quota = int(f.read())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as f:
            period = int(f.read())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _tbb_usable() -> bool:
    """Whether numba's TBB layer would load: the tbb package is there and new enough (numba's own test)."""
    import warnings

    try:
        from numba.np.ufunc import parallel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parallel._check_tbb_version_compatible()
        from numba.np.ufunc import tbbpool  # noqa: F401 - loads libtbb
    except Exception:  # noqa: BLE001 - no tbb package, an old one, or a changed numba
        return False
    return True


def _numba_pool_started() -> bool:
    from numba.np.ufunc import parallel

    return bool(getattr(parallel, "_is_initialized", False))


def configure() -> ThreadSettings:
    """Choose numba's threading layer and cap numba, torch and BLAS at :func:`available_cpus`.

    Runs once, when relugeo is imported; later calls return the first result.
    """
    if _SETTINGS:
        return _SETTINGS[0]
    env = os.environ
    cpus = available_cpus()
    changed = []
    started = _numba_pool_started()
    from numba import config

    layer = str(config.THREADING_LAYER).lower()
    if not started and "NUMBA_THREADING_LAYER" not in env:
        # numba's default layer order is tbb, omp, workqueue: it takes TBB whenever it loads
        layer = "tbb" if _tbb_usable() else "omp"
        if layer == "omp" and "OMP_WAIT_POLICY" not in env:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
            changed.append("OMP_WAIT_POLICY=PASSIVE")

    if not started and "NUMBA_NUM_THREADS" not in env and config.NUMBA_NUM_THREADS > cpus:
        env["NUMBA_NUM_THREADS"] = str(cpus)
        config.NUMBA_NUM_THREADS = cpus
        changed.append(f"NUMBA_NUM_THREADS={cpus}")
    torch_threads = _cap_torch(cpus, changed)
    blas_threads = _cap_blas(cpus, changed)
    if started:
        from numba import threading_layer

        layer = threading_layer()
    settings = ThreadSettings(cpus, layer, int(config.NUMBA_NUM_THREADS), torch_threads,
                              blas_threads, changed)
    _SETTINGS.append(settings)
    return settings


def _cap_torch(cpus: int, changed: list[str]) -> int | None:
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        import torch
    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > cpus:
        torch.set_num_threads(cpus)
        changed.append(f"torch.set_num_threads({cpus})")
    return int(torch.get_num_threads())


def _cap_blas(cpus: int, changed: list[str]) -> int | None:
    if any(v in os.environ for v in _BLAS_VARIABLES):
        return None
    from threadpoolctl import threadpool_info, threadpool_limits

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return None
    most = max(p["num_threads"] for p in pools)
    if most > cpus:
        threadpool_limits(limits=cpus, user_api="blas")
        changed.append(f"BLAS threads={cpus}")
        return cpus
    return most


def settings() -> ThreadSettings:
    """The thread settings relugeo chose at import (see :func:`configure`)."""
    return configure()
