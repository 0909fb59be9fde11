"""Compiling the kernels once per machine, and saying so.

numba compiles relugeo's kernels on their first call and caches the machine
code on disk: next to the package (``relugeo/kernels/__pycache__``), or, when
that folder is read-only, in numba's user-wide cache directory (or
``NUMBA_CACHE_DIR`` when set). The first compilation takes about a minute and
happens inside the first call that needs a kernel, which otherwise looks like a
hang. So the first :func:`~relugeo.partition` or
:func:`~relugeo.local_complexity` of a process checks the cache once and, when
it is cold, says so on stderr and compiles every kernel in a few small stages
with a progress line each. ``relugeo compile`` does the same ahead of time.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np

_DONE: list[bool] = []


def cache_is_warm() -> bool:
    """Whether numba's on-disk cache holds this source's kernels (checked on one of them)."""
    from ..kernels import cpu

    try:
        return bool(cpu.split_cells_count._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - numba's cache layout changed: assume warm and stay quiet
        return True


def _say(message: str) -> None:
    print(f"relugeo: {message}", file=sys.stderr, flush=True)


def _tiny_net(sizes, slope: float = 0.0, seed: int = 0):
    from ..nets.pwanet import AffineLayer, PWANet

    rng = np.random.default_rng(seed)
    layers = []
    for i in range(len(sizes) - 1):
        W = rng.standard_normal((sizes[i + 1], sizes[i]))
        b = rng.standard_normal(sizes[i + 1]) * 0.1
        layers.append(AffineLayer(W, b, slope if i < len(sizes) - 2 else None))
    return PWANet(layers)


def _stages() -> list[tuple[str, Callable[[], None]]]:
    from .complexity import local_complexity
    from .partition import partition
    from .slices import Slice

    deep = _tiny_net((2, 4, 4, 4, 2))
    wide = _tiny_net((3, 5, 5, 5, 3))
    X = np.zeros((2, 3))

    def part2():
        p = partition(deep, Slice.square(np.zeros(2), np.eye(2), 1.0))
        p.verify()
        p.decision_boundary

    def part1():
        p = partition(deep, Slice.segment(np.array([-1.0, 0.0]), np.array([1.0, 0.5])))
        p.verify()
        p.decision_boundary

    def lc2():
        local_complexity(wide, X, 0.5, dim=2)
        local_complexity(wide, X, 0.5, dim=2, layers="all")
        local_complexity(_tiny_net((3, 5, 3)), X, 0.5, dim=2)

    def lc1():
        local_complexity(wide, X, 0.5, dim=1)
        local_complexity(wide, X, 0.5, dim=1, layers="all")

    return [("2-D partition", part2), ("1-D partition", part1), ("2-D local complexity", lc2),
            ("1-D local complexity", lc1)]


def compile_kernels(log: Callable[[str], None] = _say) -> float:
    """Compile (or load from the cache) the kernels of partitions and local complexity in 1-D and 2-D.

    Returns the seconds it took; ``log`` gets one line per stage.
    """
    _DONE.append(True)  # the stages call partition and local_complexity, which must not come back here
    t0 = time.perf_counter()
    stages = _stages()
    for i, (name, run) in enumerate(stages, 1):
        t = time.perf_counter()
        run()
        log(f"  [{i}/{len(stages)}] {name}: {time.perf_counter() - t:.0f} s")
    return time.perf_counter() - t0


def ensure_compiled() -> None:
    """Once per process: when the kernels are not in numba's cache, compile them with a word on stderr."""
    if _DONE:
        return
    _DONE.append(True)
    if cache_is_warm():
        return
    _say("compiling numba kernels for this machine; this happens once and takes about a minute "
         "(later runs load them from the cache)")
    seconds = compile_kernels()
    _say(f"kernels compiled in {seconds:.0f} s")
