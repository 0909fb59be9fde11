"""Peak memory of a large exact partition (a few hundred thousand regions).

Run from the repository root::

    python bench/memory.py [--half-width 4.0]

It partitions the square of the given half-width of a 2-256-256-256-256-1
ReLU MLP (torch default init, seed 0), verifies the result, and prints the
region count, the time and the process's peak resident memory after each step.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from torch import nn

import relugeo as rg


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--half-width", type=float, default=4.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    layers = [nn.Linear(2, 256), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    net = rg.from_torch(nn.Sequential(*layers, nn.Linear(256, 1)))
    print(f"before: peak {peak_gib():.2f} GiB")
    t = time.perf_counter()
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), args.half_width))
    print(f"partition: {part.n_regions:,} regions in {time.perf_counter() - t:.1f} s, peak {peak_gib():.2f} GiB")
    t = time.perf_counter()
    report = part.verify()
    print(f"verify: ok={report['ok']} in {time.perf_counter() - t:.1f} s, peak {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
