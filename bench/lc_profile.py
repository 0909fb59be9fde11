"""Where exact 2-D local complexity spends its time, beside the vertex estimator on the same points.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/lc_profile.py --points 1000 --radius 0.25

Runs both methods once to compile, then once more timed (CPU seconds of this
process), and splits the exact method's time over the engine's steps by
wrapping them: the next-layer products, the kernels that count, write and
split-and-count cells, and the rest (Python and numpy around them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from nets import digits_module, digits_points  # noqa: E402

import relugeo as rg  # noqa: E402
from relugeo.kernels import cpu  # noqa: E402

STEPS = ["split_cells_count", "split_cells_write", "split_cells_reduce", "reduce_last_layer", "add_split_counts"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--radius", type=float, default=0.25)
    parser.add_argument("--directions", type=int, default=25, help="P of the vertex estimator")
    args = parser.parse_args(argv)
    net = rg.from_torch(digits_module())
    X = digits_points()[: args.points]
    spent: dict[str, float] = {}

    def timed(name, fn):
        def run(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - t
        return run

    for name in STEPS:
        setattr(cpu, name, timed(name, getattr(cpu, name)))
    for layer in net.layers:
        object.__setattr__(layer, "linear", timed("next-layer products", layer.linear))
    exact = lambda: rg.local_complexity(net, X, args.radius, dim=2, method="exact")  # noqa: E731
    vertex = lambda: rg.local_complexity(net, X, args.radius, method="vertex", n_directions=args.directions)  # noqa: E731
    exact(), vertex()
    spent.clear()
    t = time.process_time()
    lc = exact()
    t_exact = time.process_time() - t
    steps = dict(spent)
    t = time.process_time()
    vertex()
    t_vertex = time.process_time() - t
    regions = int(lc.regions.sum())
    print(f"{args.points} points, r = {args.radius}: exact (dim 2) {t_exact:.3f} s CPU, {regions:,} regions "
          f"({regions / t_exact:,.0f} regions/s); vertex (P = {args.directions}) {t_vertex:.3f} s CPU; "
          f"exact / vertex = {t_exact / t_vertex:.2f}")
    for name, s in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"  {name:22s} {s:7.3f} s  {s / t_exact:6.1%}")
    rest = t_exact - sum(steps.values())
    print(f"  {'rest':22s} {rest:7.3f} s  {rest / t_exact:6.1%}")


if __name__ == "__main__":
    main()
