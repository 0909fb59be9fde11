"""Exact P-dimensional local complexity of the digits MLP: CPU and wall time of one call.

    NUMBA_NUM_THREADS=1 python bench/kd_lc_time.py --points 1000 --dim 3
    python bench/kd_lc_time.py --points 1000 --dim 3          # the default threads

Compiles the kernels on two points first, then times one call of
``rg.local_complexity(net, X, 0.25, dim=P, method="exact")`` on the first
``--points`` digits: this process's CPU seconds (all threads), the wall-clock
seconds, the cost per point and the regions counted per CPU second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numba  # noqa: E402
from nets import digits_module, digits_points  # noqa: E402

import relugeo as rg  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=3)
    parser.add_argument("--radius", type=float, default=0.25)
    args = parser.parse_args(argv)
    net = rg.from_torch(digits_module())
    X = digits_points()[: args.points]
    rg.local_complexity(net, X[:2], args.radius, dim=args.dim)
    c0, w0 = time.process_time(), time.perf_counter()
    lc = rg.local_complexity(net, X, args.radius, dim=args.dim, method="exact")
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = len(X)
    print(f"relugeo from {Path(rg.__file__).parent}")
    print(f"P={args.dim} points={n} threads={numba.get_num_threads()}: {cpu:.2f} s CPU, {wall:.2f} s wall, "
          f"{cpu / n * 1e3:.2f} ms CPU / point, mean regions {lc.regions.mean():.1f}, "
          f"{lc.regions.sum() / cpu:,.0f} regions / CPU s")


if __name__ == "__main__":
    main()
