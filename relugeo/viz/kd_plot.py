"""Figures of k-D results: planar sections of a 3-D partition, and local complexity against P."""

from __future__ import annotations

import numpy as np

from .partition_plot import CLASS_COLORS, LIGHT_COLORS


def pattern_colors(patterns: np.ndarray) -> np.ndarray:
    """One colour of the random-region palette per pattern (R, n_words) uint64, (R, 4) RGBA.

    The colour depends on the pattern only, so a region keeps its colour in
    every section and every figure.
    """
    from matplotlib.colors import to_rgba_array

    words = np.ascontiguousarray(patterns, dtype=np.uint64)
    h = np.zeros(len(words), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h = (h ^ words[:, j]) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
    return to_rgba_array(LIGHT_COLORS)[(h % np.uint64(len(LIGHT_COLORS))).astype(np.int64)]


def plot_sections(part, offsets=None, *, axis: int = 2, color_by: str = "pattern", axes=None, n: int = 4):
    """Sections of a 3-D partition by the planes ``u_axis = offset``, side by side.

    Parameters
    ----------
    part : PartitionKD
        A partition of a 3-D domain.
    offsets : sequence of float, optional
        Where to cut (slice coordinates); default ``n`` evenly spaced offsets
        strictly inside the domain's extent along ``axis``.
    axis : int, default 2
    color_by : {"pattern", "class"}, default "pattern"
        A colour per activation pattern (the same region has the same colour
        in every section) or per predicted class.
    axes : sequence of matplotlib Axes, optional
        One per offset.

    Returns
    -------
    list of matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from ..regions.sections_kd import section

    if color_by not in ("pattern", "class"):
        raise ValueError(f"color_by must be 'pattern' or 'class'; got {color_by!r}")
    lo, hi = part.slice.vertices[:, axis].min(), part.slice.vertices[:, axis].max()
    if offsets is None:
        offsets = lo + (hi - lo) * (np.arange(n) + 0.5) / n
    offsets = [float(t) for t in offsets]
    if axes is None:
        _, axes = plt.subplots(1, len(offsets), figsize=(3.2 * len(offsets), 3.4), squeeze=False, layout="constrained")
        axes = axes[0]
    if color_by == "pattern":
        face = pattern_colors(part.patterns)
    else:
        from matplotlib.colors import to_rgba_array

        face = to_rgba_array(CLASS_COLORS)[part.predictions() % len(CLASS_COLORS)]
    keep = [j for j in range(3) if j != axis]
    box = part.slice.vertices[:, keep]
    for ax, t in zip(axes, offsets):
        sec = section(part, t, axis)
        polys = [sec.vertices[a:b] for a, b in zip(sec.offsets[:-1], sec.offsets[1:])]
        ax.add_collection(PolyCollection(polys, facecolors=face[sec.regions], edgecolors="0.25", linewidths=0.3))
        ax.set_xlim(box[:, 0].min(), box[:, 0].max())
        ax.set_ylim(box[:, 1].min(), box[:, 1].max())
        ax.set_aspect("equal")
        ax.set_title(f"u{axis + 1} = {t:.3g}: {len(sec.regions)} regions", fontsize=9)
        ax.set_xlabel(f"u{keep[0] + 1}", fontsize=8)
        ax.set_ylabel(f"u{keep[1] + 1}", fontsize=8)
        ax.tick_params(labelsize=7)
    return list(axes)


def plot_lc_by_dim(exact, vertex=None, ax=None, *, value: str = "lc"):
    """Mean local complexity against the neighbourhood's dimension P: exact, and the vertex estimator
    on the same frames.

    Parameters
    ----------
    exact : sequence of LCResult
        Exact results at several ``dim`` (the same points).
    vertex : sequence of LCResult, optional
        Vertex-estimator results with ``n_directions`` equal to those dims.
    value : {"lc", "regions"}, default "lc"
        Neurons met (LC) or, for the exact method, regions met.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if value not in ("lc", "regions"):
        raise ValueError(f"value must be 'lc' or 'regions'; got {value!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6))
    series = [("exact", exact, "-o", "#0072B2")]
    if vertex is not None and value == "lc":
        series.append(("vertex estimator", vertex, "--s", "#D55E00"))
    for label, results, style, color in series:
        results = sorted(results, key=lambda r: r.dim)
        dims = [r.dim for r in results]
        vals = [np.asarray(r.lc if value == "lc" else r.regions, dtype=float) for r in results]
        ax.plot(dims, [v.mean() for v in vals], style, color=color, label=label, ms=4)
        ax.fill_between(dims, [np.quantile(v, 0.25) for v in vals], [np.quantile(v, 0.75) for v in vals],
                        color=color, alpha=0.15, lw=0)
    ax.set_xticks(sorted({r.dim for r in exact}))
    ax.set_xlabel("dimension P of the neighbourhood")
    ax.set_ylabel("neurons met (mean)" if value == "lc" else "regions met (mean)")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, lw=0.5)
    return ax
