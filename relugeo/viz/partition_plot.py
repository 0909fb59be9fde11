"""Partition plots: the exact regions of a 2-D slice and its decision boundary."""

from __future__ import annotations

import numpy as np

from ..regions.partition import Partition

_COLOR_BY = ("random", "class", "n_active", "layer")


def plot_partition(
    part: Partition,
    ax=None,
    *,
    color_by: str = "random",
    edges: bool = True,
    decision_boundary: bool = True,
    points=None,
    labels=None,
    anchors: bool = True,
    seed: int = 0,
):
    """Draw the regions of a 2-D partition as filled polygons.

    Parameters
    ----------
    part : Partition
        A 2-D partition from :func:`relugeo.partition`.
    ax : matplotlib Axes, optional
        Drawn into a new figure when omitted.
    color_by : {"random", "class", "n_active", "layer"}, default "random"
        Region colours: random pastel per region; the predicted class; the
        number of active neurons; or the deepest layer among the region's
        edges (how deep the split that made it).
    edges : bool, default True
        Draw region edges, coloured by the layer whose neuron created them.
    decision_boundary : bool, default True
        Draw the decision boundary in bold black.
    points : array_like of shape (N, k) in slice coordinates, optional
        Data points to draw on top (project inputs with ``slice_coordinates``).
    labels : array_like of shape (N,), optional
        Class of each point (marker colours).
    anchors : bool, default True
        Mark the points the slice was built through, when it has them.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PolyCollection

    if part.dim != 2:
        raise ValueError(f"plot_partition draws 2-D partitions; got a {part.dim}-D partition")
    if color_by not in _COLOR_BY:
        raise ValueError(f"color_by must be one of {_COLOR_BY}; got {color_by!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    R = part.n_regions
    if color_by == "random":
        rng = np.random.default_rng(seed)
        face = plt.get_cmap("Pastel1")(rng.integers(0, 9, R)) * 0.5 + 0.5 * rng.uniform(0.55, 1.0, (R, 4))
        face[:, 3] = 1.0
    elif color_by == "class":
        pred = part.predictions()
        face = plt.get_cmap("tab10")(pred % 10)
        face[:, :3] = 0.55 * face[:, :3] + 0.45
    elif color_by == "n_active":
        n_active = np.unpackbits(part.patterns.view(np.uint8), axis=1).sum(axis=1)
        face = plt.get_cmap("viridis")(_normalise(n_active))
    else:
        deepest = np.maximum.reduceat(part.edge_layer, part.ring_offsets[:-1]) if R else np.zeros(0)
        face = plt.get_cmap("cividis")(_normalise(deepest))
    ax.add_collection(PolyCollection(part.polygons, facecolors=face, edgecolors="none", linewidths=0))
    v = part.vertices
    if edges and R:
        nxt = np.arange(len(v)) + 1
        nxt[part.ring_offsets[1:] - 1] = part.ring_offsets[:-1]
        inner = part.edge_layer >= 0
        segs = np.stack([v[inner], v[nxt[inner]]], axis=1)
        n_layers = max(len(part.net.hidden), 1)
        cmap = plt.get_cmap("plasma")
        colors = cmap(0.15 + 0.7 * part.edge_layer[inner] / max(n_layers - 1, 1))
        width = 0.4 if R < 5000 else 0.15
        ax.add_collection(LineCollection(segs, colors=colors, linewidths=width, alpha=0.9))
    if decision_boundary and len(part.decision_boundary):
        ax.add_collection(LineCollection(part.decision_boundary, colors="black", linewidths=2.0,
                                         label="decision boundary"))
    if anchors and getattr(part.slice, "anchors", None) is not None:
        a = part.slice.anchors
        ax.scatter(a[:, 0], a[:, 1], s=60, marker="*", c="crimson", edgecolors="white", linewidths=0.8,
                   zorder=5, label="slice anchors")
    if points is not None:
        p = np.asarray(points, dtype=float)
        c = None if labels is None else plt.get_cmap("tab10")(np.asarray(labels) % 10)
        ax.scatter(p[:, 0], p[:, 1], s=12, c=c, edgecolors="black", linewidths=0.4, zorder=4)
    dom = part.slice.vertices
    ax.set_xlim(dom[:, 0].min(), dom[:, 0].max())
    ax.set_ylim(dom[:, 1].min(), dom[:, 1].max())
    ax.set_aspect("equal")
    ax.set_xlabel("u\u2081 (input units)")
    ax.set_ylabel("u\u2082 (input units)")
    ax.set_title(f"{R} activation regions")
    return ax


def _normalise(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    span = x.max() - x.min() if x.size else 0.0
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)
