"""The printed summary of a benchmark run: one row per case."""

from __future__ import annotations

from .runner import BenchResult

COLUMNS = ("case", "regions", "exact s", "regions/s", "grid x", "grid missed", "vertex x", "check")


def _seconds(x: float) -> str:
    return f"{x:.2e}" if x < 1e-3 else f"{x:.4f}" if x < 1 else f"{x:.2f}"


def _ratio(m: dict | None) -> str:
    if m is None:
        return "-"
    x = m["time_vs_exact"]
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def rows(result: BenchResult) -> list[tuple[str, ...]]:
    """One tuple of strings per case, in :data:`COLUMNS` order.

    ``regions`` is the exact count (summed over the points for local
    complexity); ``grid x`` and ``vertex x`` are each baseline's median time
    over the exact engine's in the same run (above 1: slower than exact; on
    k >= 3 domains ``grid x`` is the per-cell LP baseline's);
    ``grid missed`` is how many regions the grid's samples never hit; ``check`` is "ok"
    (recorded counts matched, every check passed), "verified" (nothing recorded, every
    check passed) or "FAILED".
    """
    out = []
    for c in result.cases:
        ex = c["methods"].get("exact")
        grid = c["methods"].get("grid")
        if c["ok"]:
            check = "ok" if c["expected"] else "verified"
        else:
            check = "FAILED"
        out.append((
            c["name"],
            f"{ex['regions']:,}" if ex else "-",
            _seconds(ex["seconds"]) if ex else "-",
            f"{ex['regions_per_s']:,.0f}" if ex else "-",
            _ratio(grid or c["methods"].get("lp")),
            f"{grid['missed']:,}" if grid else "-",
            _ratio(c["methods"].get("vertex")),
            check,
        ))
    return out
