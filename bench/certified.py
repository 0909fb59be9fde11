"""Certified against tolerance predicates, timed alternately: one table row per case.

Run from ``bench/``::

    NUMBA_NUM_THREADS=1 python certified.py [--rounds N] [CASE ...]

Prints, per partition case (and a quantised anchor net), or only the named
ones, the region counts of both modes, the median seconds of each (``N``
alternating rounds, default 3), their ratio and how many cells certified mode
split in exact arithmetic. ``test_certified_speed.py`` measures the same under
pytest-benchmark.
"""

import argparse

from nets import partition_cases
from test_certified_speed import quantised_case
from test_partition_speed import alternate

import relugeo as rg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for case in partition_cases() + [quantised_case()]:
        if args.cases and case.name not in args.cases:
            continue
        cert = rg.partition(case.net, case.slice, predicates="certified")
        tol = rg.partition(case.net, case.slice)
        tol_s, cert_s = alternate([lambda case=case: rg.partition(case.net, case.slice),
                                   lambda case=case: rg.partition(case.net, case.slice, predicates="certified")],
                                  args.rounds)
        print(f"| {case.name} | {cert.n_regions:,} / {tol.n_regions:,} | {tol_s:.4f} | {cert_s:.4f} | "
              f"{cert_s / tol_s:.2f}x | {cert.n_exact_cells} |", flush=True)


if __name__ == "__main__":
    main()
