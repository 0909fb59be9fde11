"""Figures of the topology of a slice: persistence diagrams, Betti curves of sublevel sets, and the
topology of the classes over training checkpoints."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_betti_curve", "plot_critical_points", "plot_persistence", "topology_over_steps_figure"]


def plot_persistence(diagram, ax=None, *, h1=None, title: str | None = None):
    """Persistence diagram: one dot per (birth, death) pair; pairs that never die on a line at the top.

    Parameters
    ----------
    diagram : ndarray of shape (n, 2)
        H0 pairs, from :func:`relugeo.regions.topology.sublevel_persistence`.
    ax : matplotlib Axes, optional
    h1 : ndarray of shape (m, 2), optional
        H1 pairs (from :func:`relugeo.regions.persistence.sublevel_diagrams`), drawn as squares.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    d = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    h = np.zeros((0, 2)) if h1 is None else np.asarray(h1, dtype=np.float64).reshape(-1, 2)
    if title is None:
        title = f"H0{'' if h1 is None else ' and H1'} persistence of the sublevel sets"
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    finite = np.isfinite(d[:, 1])
    both = np.r_[d, h]
    values = both[np.isfinite(both)]
    lo, hi = (values.min(), values.max()) if values.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    top = hi + 2 * pad
    ax.plot([lo - pad, top], [lo - pad, top], color="#9e9e9e", lw=0.8)
    ax.scatter(d[finite, 0], d[finite, 1], s=14, color="#1f77b4", zorder=3,
               label="finite" if h1 is None else "H0")
    if h1 is not None:
        ax.scatter(h[:, 0], h[:, 1], s=18, marker="s", color="#2ca02c", zorder=3, label="H1")
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


def plot_critical_points(points, ax=None):
    """Mark PL Morse critical points (a table from :func:`relugeo.regions.morse.critical_points`) in slice
    coordinates: minima as downward triangles, maxima as upward ones, saddles as crosses."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    style = {"minimum": ("v", "#1f3f9f"), "saddle": ("X", "#202020"), "maximum": ("^", "#b01c1c")}
    for kind, (marker, color) in style.items():
        t = points[points["kind"] == kind]
        ax.scatter(t["x"], t["y"], marker=marker, s=28, color=color, edgecolor="white", linewidth=0.5,
                   zorder=6, label=f"{kind} ({len(t)})")
    ax.legend(frameon=True, fontsize=7, loc="upper right")
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


def topology_over_steps_figure(table):
    """Betti numbers of each class's decision region and the critical points of the class scores against
    the training step (a table from :func:`relugeo.track` with ``topology=True``), averaged over the slices.

    Returns
    -------
    matplotlib Figure
        Three panels: ``b0`` per class, ``b1`` per class, and minima, saddles and maxima summed over the
        classes.
    """
    import matplotlib.pyplot as plt

    from .partition_plot import class_color
    from .step_axis import finish_step_axis, plot_steps, zero_position

    need = ("step", "slice", "class", "b0", "b1", "minima", "saddles", "maxima")
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"table must have the columns {list(need)} (from track(topology=True)); "
                         f"missing {missing}")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    steps = table["step"].unique()
    zero_at = zero_position(steps)
    per_class = table.groupby(["class", "step"])[["b0", "b1"]].mean().reset_index()
    for ax, col, name in ((axes[0], "b0", "components b0"), (axes[1], "b1", "holes b1")):
        for c, t in per_class.groupby("class"):
            plot_steps(ax, t["step"].to_numpy(dtype=float), t[col].to_numpy(), zero_at=zero_at,
                       color=class_color(c), label=f"class {c}", lw=1.4)
        finish_step_axis(ax, zero_at, steps)
        ax.set_ylabel(f"{name} of the decision region (mean over slices)")
        ax.grid(alpha=0.3, lw=0.5)
    axes[0].legend(frameon=False, fontsize=7, ncol=2)
    crit = table.groupby(["step", "slice"])[["minima", "saddles", "maxima"]].sum().groupby("step").mean()
    for col, style in (("minima", "-"), ("saddles", "--"), ("maxima", ":")):
        plot_steps(axes[2], crit.index.to_numpy(dtype=float), crit[col].to_numpy(), style, zero_at=zero_at,
                   label=col, lw=1.4)
    finish_step_axis(axes[2], zero_at, steps)
    axes[2].set_ylabel("critical points of the class scores (mean over slices)")
    axes[2].legend(frameon=False, fontsize=8)
    axes[2].grid(alpha=0.3, lw=0.5)
    return fig
