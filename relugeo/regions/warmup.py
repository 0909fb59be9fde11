"""Compiling the kernels once per machine, and saying so.

numba compiles relugeo's kernels on their first call and caches the machine
code on disk: next to the package (``relugeo/kernels/__pycache__``), or, when
that folder is read-only, in numba's user-wide cache directory (or
``NUMBA_CACHE_DIR`` when set). The first compilation takes about a minute and
happens inside the first call that needs a kernel, which otherwise looks like a
hang. So the first :func:`~relugeo.partition` or
:func:`~relugeo.local_complexity` of a process checks the cache once and, when
it is cold, says so on stderr and compiles every kernel in a few small stages
with a progress line each. The k-D kernels and those of the certified predicates
are families of their own, compiled and announced the first time they are
needed. ``relugeo compile`` compiles every family ahead of time.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np

_DONE: set[str] = set()


FAMILIES = ("planar", "k-D", "certified")
"""Kernel families compiled and announced separately: 1-D and 2-D cells (every partition and LC of a
segment or a polygon), k-D cells (dimension 3..8 and ``Slice.full``) and the certified predicates."""

_WHAT = {"planar": "numba kernels", "k-D": "the k-D kernels (dimension 3 to 8)",
         "certified": "the certified-predicate kernels"}


def _probe(family: str):
    """One compiled kernel of the family, whose cache index says whether the family is on disk."""
    from ..kernels import certified, cpu, cpu_kd

    return {"planar": cpu.split_cells_count, "k-D": cpu_kd.split_polytopes_count,
            "certified": certified.split_cells_count_cert}[family]


def cache_is_warm(family: str = "planar") -> bool:
    """Whether numba's on-disk cache holds this source's kernels of ``family`` (checked on one of them)."""
    try:
        return bool(_probe(family)._cache._cache_file._load_index())
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


def _tiny_pooled_net():
    """A ReLU layer of 4, a max layer of two windows of 2, 2 logits."""
    from ..nets.pwanet import AffineLayer, PWANet

    first, last = _tiny_net((2, 4, 2)).layers
    pool = AffineLayer(np.eye(4), np.zeros(4), None, np.array([[0, 1], [2, 3]]), np.zeros(0, dtype=np.int64))
    return PWANet([first, pool, AffineLayer(last.weight[:, :2].copy(), last.bias, None)])


def _stages(family: str = "planar") -> list[tuple[str, Callable[[], None]]]:
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

    def part3():
        p = partition(wide, Slice.cube(np.zeros(3), np.eye(3), 1.0))
        p.verify()

    def lc3():
        local_complexity(wide, X, 0.5, dim=3)

    def cert2():
        partition(deep, Slice.square(np.zeros(2), np.eye(2), 1.0), predicates="certified").verify()
        partition(deep, Slice.segment(np.array([-1.0, 0.0]), np.array([1.0, 0.5])), predicates="certified")
        local_complexity(wide, X, 0.5, dim=2, predicates="certified")
        pooled = _tiny_pooled_net()
        partition(pooled, Slice.square(np.zeros(2), np.eye(2), 1.0), predicates="certified")
        partition(pooled, Slice.segment(np.array([-1.0, 0.0]), np.array([1.0, 0.5])), predicates="certified")

    return {
        "planar": [("2-D partition", part2), ("1-D partition", part1), ("2-D local complexity", lc2),
                   ("1-D local complexity", lc1)],
        "k-D": [("3-D partition", part3), ("3-D local complexity", lc3)],
        "certified": [("certified predicates", cert2)],
    }[family]


def compile_kernels(log: Callable[[str], None] = _say, families=("planar",)) -> float:
    """Compile (or load from the cache) the kernels of ``families`` (see :data:`FAMILIES`).

    Returns the seconds it took; ``log`` gets one line per stage.
    """
    _DONE.update(families)  # the stages call partition and local_complexity, which must not come back here
    t0 = time.perf_counter()
    stages = [stage for family in families for stage in _stages(family)]
    for i, (name, run) in enumerate(stages, 1):
        t = time.perf_counter()
        run()
        log(f"  [{i}/{len(stages)}] {name}: {time.perf_counter() - t:.0f} s")
    return time.perf_counter() - t0


def ensure_compiled(family: str = "planar") -> None:
    """Once per process and family: when its kernels are not in numba's cache, compile them with a
    word on stderr."""
    if family in _DONE:
        return
    _DONE.add(family)
    if cache_is_warm(family):
        return
    _say(f"compiling {_WHAT[family]} for this machine; this happens once and takes about a minute "
         "(later runs load them from the cache)")
    seconds = compile_kernels(families=(family,))
    _say(f"kernels compiled in {seconds:.0f} s")
