"""Certified against tolerance predicates, timed alternately: one table row per case.

Run from ``bench/``::

    NUMBA_NUM_THREADS=1 python certified.py

Prints, per partition case (and a quantised anchor net), the region counts of
both modes, the median seconds of each (3 alternating rounds; 1 for the
quantised net), their ratio and how many cells certified mode split in exact
arithmetic. ``test_certified_speed.py`` measures the same under pytest-benchmark.
"""

from nets import partition_cases
from test_certified_speed import quantised_case
from test_partition_speed import alternate

import relugeo as rg


def main() -> None:
    for case in partition_cases() + [quantised_case()]:
        cert = rg.partition(case.net, case.slice, predicates="certified")
        tol = rg.partition(case.net, case.slice)
        rounds = 1 if "quantised" in case.name else 3
        tol_s, cert_s = alternate([lambda case=case: rg.partition(case.net, case.slice),
                                   lambda case=case: rg.partition(case.net, case.slice, predicates="certified")], rounds)
        print(f"| {case.name} | {cert.n_regions:,} / {tol.n_regions:,} | {tol_s:.4f} | {cert_s:.4f} | "
              f"{cert_s / tol_s:.2f}x | {cert.n_exact_cells} |", flush=True)


if __name__ == "__main__":
    main()
