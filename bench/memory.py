"""Peak memory and time of large exact partitions, each in a fresh process.

Run from the repository root::

    python bench/memory.py                      # the cases below, JSON into bench/memory.json
    python bench/memory.py --width 768          # one case, printed

A case partitions [-1, 1]^2 for a 2-W-W-W-1 ReLU MLP (torch default init,
seed 0, layers built one after the other like the anchor nets), verifies the
result, and records the region count, the seconds of each step and the
process's peak resident memory (``ru_maxrss``) after each. ``--stream`` walks
the same slice with :func:`relugeo.iter_regions` instead, holding at most
``--batch-regions`` regions, counting them and checking each piece.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CASES = [
    {"width": 512},
    {"width": 768},
    {"width": 1024, "stream": True},
]


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_case(width: int, depth: int, half_width: float, stream: bool, batch_regions: int) -> dict:
    import torch
    from torch import nn

    import relugeo as rg

    # load (or compile) the kernels before anything is timed
    torch.manual_seed(1)
    tiny = rg.from_torch(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1)))
    rg.partition(tiny, rg.Slice.square(np.zeros(2), np.eye(2), 1.0)).verify()
    torch.manual_seed(0)
    layers = [nn.Linear(2, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    net = rg.from_torch(nn.Sequential(*layers, nn.Linear(width, 1)))
    sl = rg.Slice.square(np.zeros(2), np.eye(2), half_width)
    rec = {"case": f"2-{width}^{depth}-1 on [-{half_width:g}, {half_width:g}]^2", "width": width, "depth": depth,
           "half_width": half_width, "stream": stream, "peak_before_gib": peak_gib(),
           "threads": rg.threads.settings().as_dict()}
    t = time.perf_counter()
    if stream:
        n, area, ok = 0, 0.0, True
        for piece in rg.iter_regions(net, sl, batch_regions=batch_regions):
            n += piece.n_regions
            area += float(piece.areas.sum())
            ok &= bool(piece.verify()["ok"])
        rec.update(regions=n, partition_s=time.perf_counter() - t, peak_partition_gib=peak_gib(),
                   batch_regions=batch_regions, area_rel_error=abs(area - sl.area) / sl.area, verified=ok)
        return rec
    part = rg.partition(net, sl, max_regions=None)
    rec.update(regions=part.n_regions, partition_s=time.perf_counter() - t, peak_partition_gib=peak_gib())
    t = time.perf_counter()
    report = part.verify()
    rec.update(verify_s=time.perf_counter() - t, peak_verify_gib=peak_gib(), verified=bool(report["ok"]),
               area_rel_error=report["area_rel_error"])
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, help="one case of this width, printed (default: every case)")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--half-width", type=float, default=1.0)
    parser.add_argument("--stream", action="store_true", help="walk with rg.iter_regions")
    parser.add_argument("--batch-regions", type=int, default=100_000)
    parser.add_argument("--json", default="bench/memory.json", help="where every case's record goes")
    args = parser.parse_args()
    if args.width is not None:
        rec = run_case(args.width, args.depth, args.half_width, args.stream, args.batch_regions)
        print(json.dumps(rec))
        return
    records = []
    for case in CASES:
        cmd = [sys.executable, __file__, "--width", str(case["width"]), "--depth", str(args.depth),
               "--half-width", str(args.half_width), "--batch-regions", str(args.batch_regions)]
        if case.get("stream"):
            cmd.append("--stream")
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        rec["command"] = " ".join(["python", "bench/memory.py", *cmd[2:]])
        print(json.dumps(rec), flush=True)
        records.append(rec)
    payload = {"load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(), "records": records}
    tmp = Path(args.json).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(args.json)


if __name__ == "__main__":
    main()
