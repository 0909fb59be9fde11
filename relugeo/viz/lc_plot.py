"""Local-complexity figures: LC over training steps, per point set and radius, and per layer."""

from __future__ import annotations

import re

import numpy as np

from .step_axis import finish_step_axis, plot_steps, zero_position

# Okabe-Ito (colour-blind safe); the usual point groups keep fixed colours.
_GROUP_COLORS = {"train": "#0072B2", "test": "#E69F00", "random": "#009E73"}
_OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _color(group, n: int) -> str:
    return _GROUP_COLORS.get(str(group), _OKABE_ITO[n % len(_OKABE_ITO)])


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
    zero_at = zero_position(table["step"].unique())
    for n, (key, df) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        named = dict(zip(keys, key))
        g = named.get("group")
        color = _color(g, n)
        style = styles[(methods.index(named.get("method")) + len(methods) * radii.index(named.get("radius")))
                       % len(styles)]
        stats = df.groupby("step")[value]
        steps = np.asarray(sorted(df["step"].unique()), dtype=float)
        plot_steps(ax, steps, stats.mean().loc[steps].to_numpy(), style, zero_at=zero_at, color=color,
                   label=", ".join(f"{v}" for v in key) if key else value)
        if spread:
            q1, q3 = stats.quantile(0.25).loc[steps].to_numpy(), stats.quantile(0.75).loc[steps].to_numpy()
            pos = steps > 0
            ax.fill_between(steps[pos], q1[pos], q3[pos], color=color, alpha=0.13, lw=0)
            if zero_at is not None and (~pos).any():
                ax.vlines(np.full(int((~pos).sum()), zero_at), q1[~pos], q3[~pos], color=color, alpha=0.35, lw=4)
    finish_step_axis(ax, zero_at, table["step"].unique())
    ax.set_ylabel(f"{'local complexity' if value == 'lc' else value} (mean over points)")
    handles, _ = ax.get_legend_handles_labels()
    if spread:
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="0.5", alpha=0.25, lw=0, label="interquartile range"))
    ax.legend(handles=handles, frameon=False, fontsize=8)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    return ax


def layer_columns(table) -> list[str]:
    """The per-layer LC columns of a table (``layer_1``, ``layer_2``, ...), in layer order."""
    cols = [c for c in table.columns if re.fullmatch(r"layer_\d+", str(c))]
    return sorted(cols, key=lambda c: int(c.split("_")[1]))


def plot_lc_layers(table, ax=None, *, step="last", spread: bool = True):
    """Per-layer local complexity as grouped bars: one bar per layer and point group.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per point (and checkpoint), with columns ``layer_1``,
        ``layer_2``, ... (neurons of each hidden layer met by the point's
        neighbourhood, as in :meth:`LCResult.to_frame`), and optionally
        ``step``, ``group``, ``method``, ``radius``.
    ax : matplotlib Axes, optional
    step : "last", int, sequence of int or None, default "last"
        Checkpoint(s) to show when the table has a ``step`` column: the last
        one, the given step(s) (several steps give bars from light = early to
        dark = late), or ``None`` for all rows together.
    spread : bool, default True
        Error bars of plus / minus one standard error of the mean.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    layers = layer_columns(table)
    if not layers:
        raise ValueError(f"table must have per-layer columns layer_1, layer_2, ...; it has {list(table.columns)}")
    if "step" in table.columns and step is not None:
        if isinstance(step, str) and step != "last":
            raise ValueError(f"step must be 'last', a step number, a list of them or None; got {step!r}")
        have = sorted(table["step"].unique().tolist())
        wanted = [have[-1]] if isinstance(step, str) else np.atleast_1d(step).tolist()
        missing = [s for s in wanted if s not in have]
        if missing:
            raise ValueError(f"step {missing} not in the table; its steps are {have}")
        table = table[table["step"].isin(wanted)]
    else:
        wanted = [None]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    keys = [c for c in ("group", "method", "radius") if c in table.columns and table[c].nunique() > 1]
    combos = [tuple(r) for r in table[keys].drop_duplicates().itertuples(index=False)] if keys else [()]
    n_bars = len(combos) * len(wanted)
    width = 0.8 / n_bars
    x = np.arange(len(layers))
    k, top = 0, 1e-12
    for n, key in enumerate(combos):
        named = dict(zip(keys, key))
        sel = table
        for c, v in named.items():
            sel = sel[sel[c] == v]
        base = np.array(to_rgb(_color(named.get("group"), n)))
        for j, s in enumerate(wanted):
            df = sel if s is None else sel[sel["step"] == s]
            mean = df[layers].mean().to_numpy()
            sem = (df[layers].std(ddof=1) / np.sqrt(max(len(df), 1))).to_numpy() if len(df) > 1 else None
            top = max(top, float(np.nanmax(mean + (sem if spread and sem is not None else 0.0))))
            fade = 0.0 if len(wanted) == 1 else 0.65 * (len(wanted) - 1 - j) / (len(wanted) - 1)
            parts = [str(v) for v in key] + ([f"step {s}"] if len(wanted) > 1 else [])
            ax.bar(x - 0.4 + width * (k + 0.5), mean, width * 0.92, color=base + (1 - base) * fade,
                   edgecolor="black", linewidth=0.4, label=", ".join(parts) if parts else None,
                   yerr=sem if spread else None, error_kw={"elinewidth": 0.8, "capsize": 2, "capthick": 0.8})
            k += 1
    ax.set_xticks(x, [f"layer {c.split('_')[1]}" for c in layers])
    ax.set_ylabel("neurons met per neighbourhood" + (" (mean \u00b1 s.e.)" if spread else " (mean)"))
    if wanted != [None] and len(wanted) == 1:
        ax.set_title(f"local complexity per layer, step {wanted[0]}")
    ax.grid(axis="y", alpha=0.3, lw=0.5)
    ax.set_axisbelow(True)
    if ax.get_legend_handles_labels()[0]:
        ncol = len(combos) if len(wanted) > 1 and len(combos) > 1 else min(n_bars, 3)
        rows = -(-n_bars // ncol)
        ax.set_ylim(0, top * (1.12 + 0.09 * rows))  # headroom for the legend above the bars
        ax.legend(frameon=False, fontsize=8, ncol=ncol, loc="upper center", columnspacing=0.8, handlelength=1.2,
                  handletextpad=0.4)
    return ax
