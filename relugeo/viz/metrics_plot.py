"""Figures of the manifold metrics: class radii with the inversion, lambda, kernel-PCA spectra, NC curves.

Every function draws results computed by :mod:`relugeo.metrics`; none computes geometry.
"""

from __future__ import annotations

import numpy as np

_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _axes(ax, figsize=(6.5, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_inversion(epochs, radii, *, distances=None, inversion=None, classes=None, smoothed=None,
                   ax=None):
    """Class radii over training with each class's inversion epoch marked.

    Parameters
    ----------
    epochs : array_like of shape (T,)
    radii : array_like of shape (T, C)
        ``R_c`` per checkpoint (from :func:`relugeo.metrics.class_radii`).
    distances : array_like of shape (T,) or (T, K), optional
        Centroid distances, drawn dotted on a right-hand axis.
    inversion : sequence of length C, optional
        Inversion epoch of each class (``None`` entries are skipped), drawn as
        a dashed vertical line and a marker on the curve.
    classes : sequence of length C, optional
        Legend labels (default 0..C-1).
    smoothed : array_like of shape (T, C), optional
        Smoothed radii, drawn thin behind the raw curves.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        The radius axis (the distance axis is ``ax.right_axis`` when drawn).
    """
    e = np.asarray(epochs, dtype=float)
    R = np.asarray(radii, dtype=float)
    if R.ndim == 1:
        R = R[:, None]
    if R.shape[0] != len(e):
        raise ValueError(f"radii must have one row per epoch ({len(e)}); got shape {R.shape}")
    C = R.shape[1]
    names = list(classes) if classes is not None else list(range(C))
    ax = _axes(ax)
    for c in range(C):
        color = _PALETTE[c % len(_PALETTE)]
        if smoothed is not None:
            ax.plot(e, np.asarray(smoothed, dtype=float)[:, c], color=color, lw=3, alpha=0.25)
        ax.plot(e, R[:, c], color=color, lw=1.6, label=f"radius, class {names[c]}")
        t = None if inversion is None else inversion[c]
        if t is not None and np.isfinite(t):
            i = int(np.argmin(np.abs(e - t)))
            ax.axvline(t, color=color, ls="--", lw=1)
            ax.plot([e[i]], [R[i, c]], "o", color=color, ms=6)
            ax.annotate(f"t* = {t:g}", (e[i], R[i, c]), textcoords="offset points", xytext=(5, 5),
                        color=color, fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("class radius on the unit sphere")
    handles, labels = ax.get_legend_handles_labels()
    if distances is not None:
        D = np.asarray(distances, dtype=float)
        D = D[:, None] if D.ndim == 1 else D
        right = ax.twinx()
        for k in range(D.shape[1]):
            right.plot(e, D[:, k], ls=":", color="0.3", lw=1.4, label="centroid distance" if k == 0 else None)
        right.set_ylabel("centroid distance")
        h2, l2 = right.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
        ax.right_axis = right
    ax.legend(handles, labels, frameon=False, fontsize=8, loc="best")
    ax.grid(alpha=0.3, lw=0.5)
    return ax


def plot_compression(histories, *, x: str = "t", ax=None):
    """Compression ratio ``lambda`` over training, one line per run.

    Parameters
    ----------
    histories : dict
        Label to a table with columns ``x`` and ``lambda`` (the ``history`` of
        :func:`relugeo.metrics.train_alpha_model`).
    x : str, default "t"
        Column for the horizontal axis (``"t"`` or ``"step"``), drawn on a log scale.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    for n, (label, df) in enumerate(histories.items()):
        for col in (x, "lambda"):
            if col not in df.columns:
                raise ValueError(f"history {label!r} has no {col!r} column; it has {list(df.columns)}")
        keep = df[x].to_numpy() > 0
        ax.plot(df[x].to_numpy()[keep], df["lambda"].to_numpy()[keep], "-o", ms=3,
                color=_PALETTE[n % len(_PALETTE)], label=str(label))
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training time t" if x == "t" else x)
    ax.set_ylabel(r"compression ratio $\lambda$")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    return ax


def plot_kernel_pca(spectra, *, max_rank: int | None = None, axes=None):
    """Label projections on the kernel's eigenvectors: ``omega_r^2/||y||^2`` and their cumulative sum.

    Parameters
    ----------
    spectra : dict
        Label to a :class:`relugeo.metrics.KernelPCA` (e.g. initial and final NTK).
    max_rank : int, optional
        Largest rank drawn (default: all).
    axes : pair of matplotlib Axes, optional

    Returns
    -------
    (Axes, Axes)
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    left, right = axes
    for n, (label, res) in enumerate(spectra.items()):
        frac = np.asarray(res.fraction)
        cum = np.asarray(res.cumulative)
        r = np.arange(1, len(frac) + 1)
        k = len(r) if max_rank is None else min(max_rank, len(r))
        color = _PALETTE[n % len(_PALETTE)]
        pos = frac[:k] > 0
        left.plot(r[:k][pos], frac[:k][pos], ".", ms=3, color=color, label=str(label))
        right.plot(r[:k], cum[:k], "-", color=color, label=str(label))
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("rank r")
    left.set_ylabel(r"$\omega_r^2 / \|y\|^2$")
    right.set_xscale("log")
    right.set_xlabel("rank r")
    right.set_ylabel(r"cumulative $\omega_r^2 / \|y\|^2$")
    right.set_ylim(0, 1.02)
    for a in axes:
        a.grid(alpha=0.3, which="both", lw=0.5)
        a.legend(frameon=False, fontsize=8)
    return left, right


def plot_collapse(table, metrics=("nc1", "trace_ratio", "rnc1", "nc2_max_angle"), *, ax=None,
                  x: str = "step"):
    """Neural-collapse metrics over training on a log scale.

    Parameters
    ----------
    table : pandas.DataFrame
        Either long (columns ``x``, ``metric``, ``value``, as ``relugeo metrics``
        writes) or wide (columns ``x`` and one per metric).
    metrics : sequence of str
        Which metrics to draw; those absent from the table are skipped.
    x : str, default "step"

    Returns
    -------
    matplotlib Axes
    """
    if x not in table.columns:
        raise ValueError(f"table must have a {x!r} column; it has {list(table.columns)}")
    if "metric" in table.columns and "value" in table.columns:
        sub = table[table["metric"].isin(metrics)]
        if "layer" in sub.columns:
            sub = sub[sub["layer"].fillna("").astype(str) == ""]
        wide = sub.pivot_table(index=x, columns="metric", values="value")
    else:
        wide = table.set_index(x)
    present = [m for m in metrics if m in wide.columns]
    if not present:
        raise ValueError(f"none of {list(metrics)} is in the table")
    ax = _axes(ax)
    steps = wide.index.to_numpy(dtype=float)
    for n, m in enumerate(present):
        vals = wide[m].to_numpy(dtype=float)
        keep = np.isfinite(vals) & (vals > 0)
        ax.plot(steps[keep], vals[keep], "-o", ms=3, color=_PALETTE[n % len(_PALETTE)], label=m)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_yscale("log")
    ax.set_xlabel("training step" if x == "step" else x)
    ax.set_ylabel("value")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    return ax
