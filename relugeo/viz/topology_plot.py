"""Figures of the topology of a slice: H0 persistence diagrams and Betti curves of sublevel sets."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_betti_curve", "plot_persistence"]


def plot_persistence(diagram, ax=None, *, title: str = "H0 persistence of the sublevel sets"):
    """Persistence diagram: one dot per (birth, death) pair; pairs that never die on a line at the top.

    Parameters
    ----------
    diagram : ndarray of shape (n, 2)
        From :func:`relugeo.regions.topology.sublevel_persistence`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    d = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    finite = np.isfinite(d[:, 1])
    values = d[np.isfinite(d)]
    lo, hi = (values.min(), values.max()) if values.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    top = hi + 2 * pad
    ax.plot([lo - pad, top], [lo - pad, top], color="#9e9e9e", lw=0.8)
    ax.scatter(d[finite, 0], d[finite, 1], s=14, color="#1f77b4", zorder=3, label="finite")
    ax.scatter(d[~finite, 0], np.full((~finite).sum(), top), s=24, marker="^", color="#d62728", zorder=3,
               label="never dies")
    ax.axhline(top, color="#d62728", lw=0.5, ls=":")
    ax.set_xlim(lo - pad, top + pad)
    ax.set_ylim(lo - pad, top + pad)
    ax.set_xlabel("birth (logit value)")
    ax.set_ylabel("death")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return ax


def plot_betti_curve(table, ax=None):
    """``b0`` and ``b1`` of the sublevel sets against the level (a table from
    :func:`relugeo.regions.topology.sublevel_betti`)."""
    import matplotlib.pyplot as plt

    for col in ("level", "b0", "b1"):
        if col not in table.columns:
            raise ValueError(f"table must have a {col!r} column (from sublevel_betti); it has {list(table.columns)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    t = table.sort_values("level")
    ax.step(t["level"], t["b0"], where="mid", label="b0 (components)")
    ax.step(t["level"], t["b1"], where="mid", label="b1 (holes)")
    ax.set_xlabel("level c of {f <= c}")
    ax.set_ylabel("Betti number")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, lw=0.5)
    return ax
