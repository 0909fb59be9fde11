"""k-D partitions and full-space counts walked on one thread and with ``parallel=True`` (a pool of
numba's thread count): wall and CPU seconds, best of three (one for R^5), same regions.

    python bench/parallel_kd.py bench/kd-parallel.json
    python bench/parallel_kd.py --r5      # adds R^5 of relucent's 5-16x4-1 shape, one round (about 8 min)

Run it on an idle machine and without NUMBA_NUM_THREADS; bench/report.py puts the JSON in
bench/RESULTS.md ("Parallel k-D walks").
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

import relugeo as rg
from relugeo.regions import count_full


def mlp(d: int, width: int, depth: int, seed: int = 0) -> rg.PWANet:
    """A d-width^depth-1 ReLU MLP at torch's default init."""
    torch.manual_seed(seed)
    mods = []
    for i in range(depth):
        mods += [torch.nn.Linear(d if i == 0 else width, width), torch.nn.ReLU()]
    return rg.from_torch(torch.nn.Sequential(*mods, torch.nn.Linear(width, 1)))


CASES = {
    "count_full R^3, 3-16x4-1": lambda par: count_full(mlp(3, 16, 4), parallel=par)[0],
    "partition [-1, 1]^3, 3-32x3-1": lambda par: rg.partition(
        mlp(3, 32, 3), rg.Slice.cube(np.zeros(3), np.eye(3), 1.0), parallel=par).n_regions,
    "count_full R^4, 4-12x4-1": lambda par: count_full(mlp(4, 12, 4), parallel=par)[0],
}


def main(path: str, r5: bool = False) -> None:
    cases = dict(CASES)
    if r5:
        cases["count_full R^5, 5-16x4-1"] = lambda par: count_full(mlp(5, 16, 4), parallel=par)[0]
    out = {"command": f"python bench/parallel_kd.py {path}" + (" --r5" if r5 else ""),
           "load_average": {"start": os.getloadavg()}, "cases": {}}
    for name, run in cases.items():
        big = name.startswith("count_full R^5")
        if not big:
            run(False)  # compile and warm up
        row = {}
        for par in (False, True):
            best = None
            for _ in range(1 if big else 3):
                t, c = time.perf_counter(), time.process_time()
                n = run(par)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                best = (wall, cpu) if best is None or wall < best[0] else best
            row["parallel" if par else "serial"] = {"wall": best[0], "cpu": best[1], "regions": n}
        assert row["serial"]["regions"] == row["parallel"]["regions"]
        out["cases"][name] = row
        print(f"{name}: {row['serial']['regions']} regions; one thread {row['serial']['wall']:.3f} s, "
              f"parallel {row['parallel']['wall']:.3f} s (CPU {row['parallel']['cpu']:.3f} s): "
              f"{row['serial']['wall'] / row['parallel']['wall']:.2f}x", flush=True)
    out["load_average"]["end"] = os.getloadavg()
    out["threads"] = rg.threads.settings().as_dict()
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--r5"]
    main(args[0] if args else "bench/kd-parallel.json", r5="--r5" in sys.argv[1:])
