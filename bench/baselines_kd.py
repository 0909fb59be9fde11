"""A naive k-D baseline: every region of a k-D slice by per-cell LP feasibility (scipy's HiGHS).

It lives in :mod:`relugeo.benchmark.baselines_kd`, which ``relugeo bench`` also runs.
"""

from relugeo.benchmark.baselines_kd import lp_partition

__all__ = ["lp_partition"]
