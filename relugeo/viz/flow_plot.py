"""Figures of matched regions between checkpoints: a flow map, and events by distance band."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_events_by_band", "plot_flow", "plot_migration_measure"]

_EVENT_COLORS = {"persisted": "#9e9e9e", "split": "#1f77b4", "merged": "#ff7f0e", "born": "#2ca02c",
                 "died": "#d62728"}


def _edges(part) -> np.ndarray:
    """Every ring edge of a partition as segments (V, 2, 2) (shared edges appear twice)."""
    v = part.vertices
    nxt = np.arange(len(v)) + 1
    nxt[part.ring_offsets[1:] - 1] = part.ring_offsets[:-1]
    return np.stack([v, v[nxt]], axis=1)


def plot_flow(part_a, part_b, corr, ax=None, *, max_arrows: int = 3000, boundary: bool = True):
    """Flow map: the regions of two steps overlaid, with arrows from each persisted region's centroid
    to its successor's; centroids of regions that died (red x) and were born (green dots).

    Parameters
    ----------
    part_a, part_b : Partition
        The earlier and later partitions of one 2-D slice.
    corr : Correspondence
        ``relugeo.regions.correspondence.correspond(part_a, part_b)``.
    ax : matplotlib Axes, optional
    max_arrows : int, default 3000
        Draw the arrows of at most this many persisted regions, the largest
        displacements first.
    boundary : bool, default True
        Draw both steps' decision boundaries (dashed: the earlier one).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.add_collection(LineCollection(_edges(part_a), colors="#bdbdbd", linewidths=0.4, zorder=1))
    ax.add_collection(LineCollection(_edges(part_b), colors="#6a51a3", linewidths=0.3, alpha=0.7, zorder=2))
    if boundary:
        if len(part_a.decision_boundary):
            ax.add_collection(LineCollection(part_a.decision_boundary, colors="black", linewidths=1.0,
                                             linestyles="--", zorder=3))
        if len(part_b.decision_boundary):
            ax.add_collection(LineCollection(part_b.decision_boundary, colors="black", linewidths=1.6, zorder=3))
    pairs = corr.persisted
    ca, cb = part_a.centroids[pairs[:, 0]], part_b.centroids[pairs[:, 1]]
    d = cb - ca
    keep = np.argsort(-np.linalg.norm(d, axis=1))[:max_arrows]
    if len(keep):
        ax.quiver(ca[keep, 0], ca[keep, 1], d[keep, 0], d[keep, 1], angles="xy", scale_units="xy", scale=1,
                  color="#08519c", width=0.003, zorder=4)
    died = part_a.centroids[corr.fate_a == "died"]
    born = part_b.centroids[corr.fate_b == "born"]
    ax.scatter(died[:, 0], died[:, 1], marker="x", s=12, color=_EVENT_COLORS["died"], zorder=5,
               label=f"died ({len(died)})")
    ax.scatter(born[:, 0], born[:, 1], marker="o", s=8, color=_EVENT_COLORS["born"], zorder=5,
               label=f"born ({len(born)})")
    dom = part_a.slice.vertices
    ax.set_xlim(dom[:, 0].min(), dom[:, 0].max())
    ax.set_ylim(dom[:, 1].min(), dom[:, 1].max())
    ax.set_aspect("equal")
    ax.set_title(f"{part_a.n_regions} -> {part_b.n_regions} regions; {len(pairs)} persisted", fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    return ax


def _check_table(table) -> None:
    for col in ("step_from", "measure", "bin", "bin_lo", "bin_hi", "value"):
        if col not in table.columns:
            raise ValueError(f"table must have a {col!r} column (TrackResult.migration); it has "
                             f"{list(table.columns)}")


def plot_events_by_band(table, ax=None, *, steps=None, events=("born", "died", "split", "merged")):
    """Stacked bars: region events per distance band to the decision boundary, summed over the
    checkpoint pairs (and slices) of a migration table.

    Parameters
    ----------
    table : pandas.DataFrame
        ``TrackResult.migration`` (or ``migration.csv``).
    ax : matplotlib Axes, optional
    steps : (first, last), optional
        Only pairs whose ``step_from`` lies in this closed range.
    events : sequence of str
        Among ``persisted``, ``split``, ``died`` (banded at the earlier step),
        ``merged``, ``born`` (banded at the later step).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    _check_table(table)
    t = table
    if steps is not None:
        t = t[(t["step_from"] >= steps[0]) & (t["step_from"] <= steps[1])]
    bands = t[t["bin"] >= 0].drop_duplicates("bin").sort_values("bin")
    if bands.empty:
        raise ValueError("table holds no banded events (an empty range of steps?)")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    x = np.arange(len(bands))
    bottom = np.zeros(len(bands))
    for event in events:
        rows = t[t["measure"] == f"band_{event}"]
        if rows.empty:
            raise ValueError(f"events must be among persisted, split, died, merged, born; got {event!r}")
        counts = rows.groupby("bin")["value"].sum().reindex(bands["bin"], fill_value=0.0).to_numpy()
        ax.bar(x, counts, bottom=bottom, color=_EVENT_COLORS[event], label=event, width=0.8)
        bottom += counts
    labels = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">= {lo:g}" for lo, hi in
              zip(bands["bin_lo"], bands["bin_hi"])]
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("distance to the decision boundary (slice scale units)")
    ax.set_ylabel("regions")
    ax.set_title("region events by distance to the decision boundary", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_migration_measure(table, measure: str = "toward_boundary_share", ax=None):
    """An unbanded migration measure over the checkpoint pairs (mean over slices), against ``step_to``."""
    import matplotlib.pyplot as plt

    _check_table(table)
    t = table[(table["measure"] == measure) & (table["bin"] < 0)]
    if t.empty:
        raise ValueError(f"measure must be an unbanded migration measure, one of "
                         f"{sorted(table.loc[table['bin'] < 0, 'measure'].unique())}; got {measure!r}")
    s = t.groupby("step_to")["value"].mean().sort_index()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(s.index.to_numpy(dtype=float), s.to_numpy(), "-o", ms=3, lw=1.5)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("training step")
    ax.set_ylabel(measure.replace("_", " "))
    ax.grid(alpha=0.3, lw=0.5)
    return ax
