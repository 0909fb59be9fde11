"""Local-complexity figures: LC over training steps, per point set and radius."""

from __future__ import annotations

import numpy as np

_GROUP_COLORS = {"train": "#0072B2", "test": "#E69F00", "random": "#009E73"}


def plot_lc(table, ax=None, *, value: str = "lc", spread: bool = True):
    """LC over training steps: one line per point group, method and radius.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per point and checkpoint, with columns ``step`` and ``value``
        and optionally ``group``, ``method``, ``radius`` (the tables written by
        ``relugeo lc`` on a checkpoint directory, with ``step`` parsed).
    ax : matplotlib Axes, optional
    value : str, default "lc"
        Column to plot (e.g. ``"regions"`` or ``"layer_2"``).
    spread : bool, default True
        Shade the interquartile range of the points at each step.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    for col in ("step", value):
        if col not in table.columns:
            raise ValueError(f"table must have a {col!r} column; it has {list(table.columns)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    keys = [c for c in ("group", "method", "radius") if c in table.columns and table[c].nunique() > 1]
    styles = ["-", "--", ":", "-."]
    methods = sorted(table["method"].unique()) if "method" in keys else [None]
    radii = sorted(table["radius"].unique()) if "radius" in keys else [None]
    groups = table.groupby(keys, sort=False) if keys else [((), table)]
    palette = plt.get_cmap("tab10")
    for n, (key, df) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        named = dict(zip(keys, key))
        g = named.get("group")
        color = _GROUP_COLORS.get(str(g), palette(n % 10))
        style = styles[(methods.index(named.get("method")) + len(methods) * radii.index(named.get("radius")))
                       % len(styles)]
        stats = df.groupby("step")[value]
        steps = np.asarray(sorted(df["step"].unique()), dtype=float)
        x = steps
        ax.plot(x, stats.mean().loc[steps].to_numpy(), style, color=color, lw=1.8,
                label=", ".join(f"{v}" for v in key) if key else value)
        if spread:
            ax.fill_between(x, stats.quantile(0.25).loc[steps].to_numpy(),
                            stats.quantile(0.75).loc[steps].to_numpy(), color=color, alpha=0.15, lw=0)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("local complexity" if value == "lc" else value)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    return ax
