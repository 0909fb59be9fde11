"""Figures of region migration over training, drawn from the table of :func:`relugeo.track`."""

from __future__ import annotations

import numpy as np

from .lc_plot import _color
from .step_axis import finish_step_axis, plot_steps, zero_position

__all__ = ["lc_figure", "migration_figure", "plot_migration", "plot_track_measure"]


def _steps_of(t) -> np.ndarray:
    return np.asarray(sorted(t["step"].unique()), dtype=np.int64)


def plot_migration(table, ax=None, *, measure: str = "region_density", set: str = "slices", cmap: str = "magma",
                   log: bool = True, colorbar: bool = True):
    """Heat-map of a binned measure: distance to the decision boundary (rows) by training step (columns).

    Parameters
    ----------
    table : pandas.DataFrame
        ``TrackResult.table`` (or ``track.csv``).
    ax : matplotlib Axes, optional
    measure : str, default "region_density"
        A binned measure: ``"region_density"``, ``"boundary_density"`` or
        ``"region_fraction"``.
    set : str, default "slices"
    cmap : str, default "magma"
    log : bool, default True
        Logarithmic colour scale (over the positive values).
    colorbar : bool, default True

    Returns
    -------
    matplotlib Axes
        Columns are the checkpoints in step order, evenly spaced (ticks give
        their steps); rows are the distance bands, nearest the boundary at
        the bottom. Distances are in slice scales: half the side of the slice's
        square. Cells where the measure is undefined (no slice area in the
        band, or no boundary on the slice) are hatched grey and named in the
        legend. Colours span the 2nd to 98th percentiles, so one extreme cell
        does not wash out the rest; the colour bar's arrows mark the clipped
        ends.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    for col in ("step", "measure", "set", "bin", "bin_lo", "bin_hi", "value"):
        if col not in table.columns:
            raise ValueError(f"table must have a {col!r} column (a relugeo.track table); it has {list(table.columns)}")
    t = table[(table["measure"] == measure) & (table["set"] == set) & (table["bin"] >= 0)]
    if t.empty:
        binned = sorted(table.loc[table["bin"] >= 0, "measure"].unique())
        raise ValueError(f"measure must be a binned measure of set {set!r}, one of {binned}; got {measure!r}")
    grid = t.pivot_table(index="bin", columns="step", values="value", dropna=False).sort_index()
    steps = np.asarray(grid.columns, dtype=np.int64)
    bins = t.drop_duplicates("bin").set_index("bin").sort_index()
    values = grid.to_numpy(dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.8))
    positive = values[np.isfinite(values) & (values > 0)]
    if log and positive.size:
        lo, hi = np.percentile(positive, [2, 98])
        norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
        values = np.where(values > 0, values, np.nan)
        shown = positive
    else:
        shown = values[np.isfinite(values)]
        lo, hi = np.percentile(shown, [2, 98]) if shown.size else (0.0, 1.0)
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    below, above = bool((shown < norm.vmin).any()), bool((shown > norm.vmax).any())
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}.get((below, above), "both")
    from matplotlib.patches import Patch, Rectangle

    ax.add_patch(Rectangle((-0.5, -0.5), len(steps), len(bins), facecolor="0.93", edgecolor="0.7", hatch="////",
                           lw=0, zorder=0))
    mesh = ax.pcolormesh(np.arange(len(steps) + 1) - 0.5, np.arange(len(bins) + 1) - 0.5,
                         np.ma.masked_invalid(values), cmap=cmap, norm=norm, shading="flat", zorder=1)
    n_ticks = min(len(steps), 8)
    at = np.unique(np.round(np.linspace(0, len(steps) - 1, n_ticks)).astype(int))
    ax.set_xticks(at)
    ax.set_xticklabels([f"{steps[i]:,}" for i in at], rotation=45, ha="right", fontsize=8)
    labels = [f"{lo:.3g}-{hi:.3g}" if np.isfinite(hi) else f">= {lo:.3g}" for lo, hi in
              zip(bins["bin_lo"], bins["bin_hi"])]
    ax.set_yticks(np.arange(len(bins)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("training step (one column per checkpoint)")
    ax.set_ylabel("distance to decision boundary\n(slice scales: half the slice square's side)", fontsize=9)
    ax.set_title(f"{measure.replace('_', ' ')} by distance to the decision boundary", fontsize=10)
    if np.isnan(values).any():
        ax.legend(handles=[Patch(facecolor="0.93", edgecolor="0.7", hatch="////", label="undefined: no slice "
                                 "area in this band")], loc="upper left", bbox_to_anchor=(0, -0.2), fontsize=8,
                  frameon=False)
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, pad=0.02, extend=extend)
        cb.set_label(_MEASURE_LABELS.get(measure, measure.replace("_", " ")), fontsize=9)
        cb.ax.tick_params(labelsize=8)
    return ax


_MEASURE_LABELS = {
    "region_density": "regions per slice scale\u00b2",
    "boundary_density": "region boundary length per slice scale\u00b2",
    "region_fraction": "fraction of the slice's regions",
}


def plot_track_measure(table, measure: str, ax=None, *, radius: float | None = None, sets=None,
                       label: str | None = None, style: str = "-"):
    """One unbinned measure of a track table over training steps, one line per point set.

    Parameters
    ----------
    table : pandas.DataFrame
        ``TrackResult.table``.
    measure : str
        E.g. ``"lc_vertex"``, ``"lc_exact"``, ``"dist_region_boundary"``,
        ``"n_regions"``.
    ax : matplotlib Axes, optional
    radius : float, optional
        The radius of a local-complexity measure (required when it has several).
    sets : sequence of str, optional
        Point sets to draw (default all that have the measure).
    label : str, optional
        Appended to each line's legend entry.
    style : str, default "-"

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    t = table[(table["measure"] == measure) & (table["bin"] < 0)]
    if t.empty:
        raise ValueError(f"measure {measure!r} is not an unbinned measure of this table; "
                         f"it has {sorted(table.loc[table['bin'] < 0, 'measure'].unique())}")
    if radius is not None:
        t = t[np.isclose(t["radius"], radius)]
    elif t["radius"].nunique() > 1:
        raise ValueError(f"measure {measure!r} has radii {sorted(t['radius'].unique())}; pass radius=")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    names = list(dict.fromkeys(t["set"])) if sets is None else list(sets)
    zero_at = zero_position(t["step"].unique())
    for n, name in enumerate(names):
        s = t[t["set"] == name].sort_values("step")
        text = name if label is None else f"{name}, {label}"
        plot_steps(ax, s["step"].to_numpy(dtype=float), s["value"].to_numpy(), style, zero_at=zero_at,
                   color=_color(name, n), label=text)
    finish_step_axis(ax, zero_at, t["step"].unique())
    title = measure.replace("_", " ") + ("" if radius is None else f", r = {radius:g}")
    ax.set_ylabel(title)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    ax.legend(frameon=False, fontsize=8)
    return ax


def lc_figure(table):
    """LC over training for every local-complexity measure and radius of a track table, and accuracy.

    One panel per (method, radius) with a line per point set, then a panel of
    the accuracy when the table has it. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    t = table[table["measure"].isin(["lc_vertex", "lc_exact"])]
    panels = [(m, r) for m in ("lc_vertex", "lc_exact") for r in sorted(t.loc[t["measure"] == m, "radius"].unique())]
    has_acc = (table["measure"] == "accuracy").any()
    n = len(panels) + has_acc
    if n == 0:
        raise ValueError("the table holds neither local complexity nor accuracy")
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False, layout="constrained")
    names = {"lc_vertex": "vertex estimator", "lc_exact": "exact 2-D"}
    for ax, (m, r) in zip(axes[0], panels):
        plot_track_measure(table, m, ax, radius=r)
        ax.set_title(f"{names[m]} LC, r = {r:g}", fontsize=10)
        ax.set_ylabel("LC (mean over points)")
    if has_acc:
        plot_track_measure(table, "accuracy", axes[0, -1])
        axes[0, -1].set_title("accuracy", fontsize=10)
        axes[0, -1].set_ylabel("")
    return fig


def migration_figure(table):
    """Distance of points to their own region's boundary over training and, when the table
    has slices, heat-maps of region density and region fraction by distance to the decision
    boundary. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    slices = ((table["measure"] == "region_density") & (table["bin"] >= 0)).any()
    n = 3 if slices else 1
    fig, axes = plt.subplots(1, n, figsize=(5.8 * n, 4), squeeze=False, layout="constrained")
    plot_track_measure(table, "dist_region_boundary", axes[0, 0])
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_ylabel("mean distance (input units)")
    axes[0, 0].set_title("distance to own region's boundary", fontsize=10)
    if slices:
        plot_migration(table, axes[0, 1], measure="region_density")
        plot_migration(table, axes[0, 2], measure="region_fraction", log=False, cmap="viridis")
    return fig
