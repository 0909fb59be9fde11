"""Certified against tolerance predicates, timed alternately: one table row per case.

Run from ``bench/``::

    NUMBA_NUM_THREADS=1 python certified.py [--rounds N] [CASE ...]

Prints, per partition case (and a quantised anchor net and a max-pool CNN), or only the named
ones, the region counts of both modes, the median wall seconds of each (``N``
alternating rounds, default 3), their ratio, the ratio of the median CPU
seconds (the process's, so other jobs on a shared machine count less), how
many cells certified mode handed to exact arithmetic and the 1-minute load
average after the row. ``test_certified_speed.py`` measures the same under
pytest-benchmark.
"""

import argparse
import os
import time

import numpy as np
import torch
from nets import Case, partition_cases
from test_certified_speed import quantised_case
from torch import nn

import relugeo as rg


def maxpool_case() -> Case:
    """A 1x8x8 conv8-maxpool2-fc32-10 ReLU CNN (seed 0) on the square through three digit zeros."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(8 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10))
    X = load_digits().data / 16.0
    net = rg.from_torch(module, input_shape=(1, 8, 8))
    return Case("digits cnn c8-maxpool2-fc32", module, net, rg.Slice.through(*X[[0, 10, 20]]))


def alternate_cpu(fns, rounds: int) -> tuple[list[float], list[float]]:
    """Median wall and CPU seconds of each function, timed in turn ``rounds`` times."""
    wall = [[] for _ in fns]
    cpu = [[] for _ in fns]
    for _ in range(rounds):
        for fn, w, c in zip(fns, wall, cpu):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            w.append(time.perf_counter() - t0)
            c.append(time.process_time() - c0)
    return [float(np.median(t)) for t in wall], [float(np.median(t)) for t in cpu]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for case in partition_cases() + [quantised_case(), maxpool_case()]:
        if args.cases and case.name not in args.cases:
            continue
        cert = rg.partition(case.net, case.slice, predicates="certified")
        tol = rg.partition(case.net, case.slice)
        (tol_s, cert_s), (tol_c, cert_c) = alternate_cpu(
            [lambda case=case: rg.partition(case.net, case.slice),
             lambda case=case: rg.partition(case.net, case.slice, predicates="certified")], args.rounds)
        print(f"| {case.name} | {cert.n_regions:,} / {tol.n_regions:,} | {tol_s:.4f} | {cert_s:.4f} | "
              f"{cert_s / tol_s:.2f}x | {cert_c / tol_c:.2f}x | {cert.n_exact_cells} | {os.getloadavg()[0]:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
