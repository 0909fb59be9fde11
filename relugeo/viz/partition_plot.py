"""Partition plots: the exact regions of a 2-D slice and its decision boundary.

Classes use twelve colours that stay apart on white, also lightened as region
faces (CIE76 distance at least 15 between any two and from white); edge
layers use the colour-blind safe Okabe-Ito colours, continuous values viridis
/ magma. Sizes are in points, so a figure saved at 300 dpi keeps its
proportions.
"""

from __future__ import annotations

import math

import numpy as np

from ..regions.partition import Partition
from ..regions.slices import Slice

COLOR_BY = ("random", "class", "n_active", "layer", "density")

# One colour per class: matplotlib's tab10 with a softer pink and a dark grey for its two
# closest pairs, then navy and light green; distinct on white for 12 classes.
CLASS_COLORS = ("#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B",
                "#F781BF", "#404040", "#BCBD22", "#17BECF", "#000080", "#7FC97F")
# How far class and layer faces are blended toward white (anchors, points and edges keep the
# full colour, so they stand out on the faces).
CLASS_FACE_LIGHTEN = 0.35
LAYER_FACE_LIGHTEN = 0.8
# Okabe-Ito: one colour per hidden layer (beyond six layers, viridis samples).
LAYER_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
# Paul Tol's "light" scheme, the palette of random region colours.
LIGHT_COLORS = ("#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#BBCC33", "#AAAA00", "#DDDDDD")


def slice_coordinates(slice_: Slice, X, *, return_distance: bool = False):
    """Project inputs onto a slice: the coordinates ``u`` of their closest slice point.

    For an orthonormal basis (as from :meth:`Slice.through`) this is
    ``(X - origin) @ basis``; other bases are solved by least squares.

    Parameters
    ----------
    slice_ : Slice
    X : array_like of shape (N, D) or (D,)
        Inputs, with ``D = slice_.input_dim``.
    return_distance : bool, default False
        Also return each input's distance to the slice's affine plane.

    Returns
    -------
    u : ndarray of shape (N, k), dtype=np.float64
    distance : ndarray of shape (N,), dtype=np.float64
        Only with ``return_distance=True``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != slice_.input_dim:
        raise ValueError(f"X must have shape (N, {slice_.input_dim}) to project onto this slice; "
                         f"got shape {X.shape}")
    B = slice_.basis
    d = X - slice_.origin
    gram = B.T @ B
    if np.allclose(gram, np.eye(B.shape[1]), rtol=0, atol=1e-10):
        u = d @ B
    else:
        u = np.linalg.solve(gram, B.T @ d.T).T
    if not return_distance:
        return u
    return u, np.linalg.norm(d - u @ B.T, axis=1)


def class_color(c) -> np.ndarray:
    """RGBA colours of class indices, shape (N, 4) (cycling after twelve classes)."""
    from matplotlib.colors import to_rgba_array

    return to_rgba_array(CLASS_COLORS)[np.asarray(c, dtype=np.int64) % len(CLASS_COLORS)]


def layer_colors(n_layers: int) -> np.ndarray:
    """RGBA colour of each of ``n_layers`` hidden layers (Okabe-Ito, or viridis beyond six)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba_array

    if n_layers <= len(LAYER_COLORS):
        return to_rgba_array(LAYER_COLORS[:max(n_layers, 1)])
    return plt.get_cmap("viridis")(np.linspace(0.0, 0.9, n_layers))


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
    anchor_labels=None,
    class_names=None,
    max_distance: float | None = None,
    scale_bar: bool = True,
    ticks: bool = False,
    legend: bool = True,
    colorbar: bool | str = True,
    clim=None,
    edge_width: float | None = None,
    rasterized: bool | None = None,
    title: str | None = None,
    seed: int = 0,
):
    """Draw the regions of a 2-D partition as filled polygons.

    Regions are one ``PolyCollection`` (gid ``"regions"``; with
    ``color_by="class"`` it holds the class pieces), the edges of each
    hidden layer one ``PathPatch`` holding all its segments (gid
    ``"edges-layer-<l>"``, layers counted from 1) and the decision boundary a
    ``LineCollection`` (gid ``"decision-boundary"``), so partitions of
    100,000+ regions draw in a few seconds.

    Parameters
    ----------
    part : Partition
        A 2-D partition from :func:`relugeo.partition`.
    ax : matplotlib Axes, optional
        Drawn into a new 6 x 6 inch figure when omitted.
    color_by : {"random", "class", "n_active", "layer", "density"}, default "random"
        Region colours: light random colours that tell neighbours apart; the
        predicted class (a region the decision boundary cuts is split along it
        into its class pieces, :meth:`Partition.class_pieces`, so colours and
        boundary agree everywhere); the number of active neurons
        (viridis); the deepest layer among the region's edges; or the region's
        area on a log scale (magma: small regions dark, so dense parts of the
        partition show as dark patches).
    edges : bool, default True
        Draw region edges, coloured by the hidden layer whose neuron created
        them; earlier layers are drawn wider and on top. On class, density and
        n_active faces each edge has a thin white halo, so no layer's edges
        vanish into a face of their own colour.
    decision_boundary : bool, default True
        Draw the decision boundary in bold black with a white halo.
    points : array_like of shape (N, D) or (N, 2), optional
        Data points to draw on top. Rows of length ``D = part.slice.input_dim``
        are inputs, projected with :func:`slice_coordinates`; rows of length 2
        (when ``D != 2``) are taken as slice coordinates.
    labels : array_like of shape (N,), optional
        Class of each point (marker colours). With input-space ``points``, the
        anchors that are among the points take their class from it.
    anchors : bool, default True
        Mark the three points the slice was built through (stars), when the
        slice has them (:meth:`Slice.through`).
    anchor_labels : array_like of shape (3,), optional
        Class of each anchor, written beside it (overrides the match with
        ``points`` / ``labels``).
    class_names : sequence of str, optional
        Name of each class index, for anchor labels and the legend; default
        ``"class <c>"``.
    max_distance : float, optional
        Draw only the input-space points within this distance of the slice's
        plane (their projection is then close to where they are); the legend
        says so. ``None`` projects every point onto the plane.
    scale_bar : bool, default True
        A scale bar in input units (slice units when the basis is not
        orthonormal).
    ticks : bool, default False
        Show slice-coordinate ticks and axis labels.
    legend : bool, default True
        A legend below the axes naming the edge layers, the decision boundary,
        the anchors and the classes shown.
    colorbar : bool or {"right", "bottom"}, default True
        A colour bar for ``"n_active"`` and ``"density"``, right of the axes
        (``True``) or below them.
    clim : (float, float), optional
        Colour limits for ``"n_active"`` and ``"density"`` (e.g. shared across
        the frames of an animation); default the data's range.
    edge_width : float, optional
        Width in points of the deepest layer's edges; default chosen from the
        median region size on screen, so tens of thousands of regions stay
        readable.
    rasterized : bool, optional
        Draw the region faces and edges as an image inside vector output
        (.pdf, .svg) while text, markers and the decision boundary stay
        vectors; default on above 20,000 regions, which keeps such files
        small. No effect on PNG.
    title : str, optional
        Axes title; default the number of regions.
    seed : int, default 0
        Seed of the random region colours.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import Collection, LineCollection, PolyCollection
    from matplotlib.colors import LogNorm, Normalize, to_rgba_array
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, PathPatch

    if not isinstance(part, Partition):
        raise TypeError(f"part must be a relugeo Partition; got {type(part).__name__}")
    if part.dim != 2:
        raise ValueError(f"plot_partition draws 2-D partitions; got a {part.dim}-D partition")
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}; got {color_by!r}")
    if colorbar not in (True, False, "right", "bottom"):
        raise ValueError(f"colorbar must be True, False, 'right' or 'bottom'; got {colorbar!r}")
    if max_distance is not None and not max_distance >= 0:
        raise ValueError(f"max_distance must be a number >= 0 or None; got {max_distance!r}")
    if clim is not None and (len(clim) != 2 or not clim[0] < clim[1]):
        raise ValueError(f"clim must be a pair (low, high) with low < high; got {clim!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    fig = ax.figure
    R = part.n_regions
    n_layers = max(len(part.net.hidden), 1)
    lcolors = layer_colors(n_layers)
    handles, edge_handles, face_handles = [], [], []
    scalar = None

    def name_of(c) -> str:
        c = int(c)
        if class_names is not None and 0 <= c < len(class_names):
            return str(class_names[c])
        return f"class {c}"

    # -- region faces -----------------------------------------------------------------
    face_vertices, face_offsets = part.vertices, part.ring_offsets
    if color_by == "random":
        rng = np.random.default_rng(seed)
        face = to_rgba_array(LIGHT_COLORS)[rng.integers(0, len(LIGHT_COLORS), R)]
        face[:, :3] = _lighten(face[:, :3], rng.uniform(0.35, 0.75, (R, 1)))
    elif color_by == "class":
        pieces = part.class_pieces()
        face_vertices, face_offsets = pieces.vertices, pieces.ring_offsets
        face = class_color(pieces.classes)
        face[:, :3] = _lighten(face[:, :3], CLASS_FACE_LIGHTEN)
        for c in np.unique(pieces.classes):
            face_handles.append(Patch(facecolor=face[np.argmax(pieces.classes == c)], edgecolor="0.4", lw=0.5,
                                 label=f"predicted {name_of(c)}"))
    elif color_by == "layer":
        deepest = np.maximum.reduceat(part.edge_layer, part.ring_offsets[:-1]) if R else np.zeros(0, int)
        face = np.ones((R, 4))
        face[:, :3] = _lighten(lcolors[np.clip(deepest, 0, None), :3], LAYER_FACE_LIGHTEN)
        face[deepest < 0, :3] = 0.95
        for layer in np.unique(deepest[deepest >= 0]):
            face_handles.append(Patch(facecolor=_lighten(lcolors[layer, :3], LAYER_FACE_LIGHTEN), edgecolor="0.4",
                                      lw=0.5,
                                 label=f"deepest edge: layer {layer + 1}"))
    else:
        if color_by == "n_active":
            values = np.unpackbits(part.patterns.view(np.uint8), axis=1).sum(axis=1).astype(float)
            lo, hi = clim if clim is not None else ((values.min(), values.max()) if R else (0.0, 1.0))
            norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
            cmap, label = plt.get_cmap("viridis"), "active neurons"
        else:
            values = np.asarray(part.areas, dtype=float)
            lo, hi = clim if clim is not None else density_limits(values)
            norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
            cmap, label = plt.get_cmap("magma"), f"region area ({_units(part.slice)}\u00b2)"
        face = cmap(norm(np.clip(values, norm.vmin, norm.vmax)))
        scalar = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        below, above = bool((values < norm.vmin).any()), bool((values > norm.vmax).any())
        extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}.get((below, above), "both")
    # unsmoothed faces leave no hairline seams between neighbours; drawn edges hide the seams anyway
    regions = PolyCollection([], facecolors=face, edgecolors="none", linewidths=0,
                             antialiased=bool(edges) and R < 20_000, zorder=1)
    # PolyCollection.set_paths is set_verts; the base method takes ready-made paths
    Collection.set_paths(regions, _ring_paths(face_vertices, face_offsets))
    regions.set_gid("regions")
    raster = R > 20_000 if rasterized is None else bool(rasterized)
    regions.set_rasterized(raster)
    ax.add_collection(regions)

    # -- axes frame: fixed to the domain, so the widths below can use its size --------
    dom = part.slice.vertices
    ax.set_xlim(dom[:, 0].min(), dom[:, 0].max())
    ax.set_ylim(dom[:, 1].min(), dom[:, 1].max())
    ax.set_aspect("equal")

    # -- edges, by layer ---------------------------------------------------------------
    if edges and R:
        v = part.vertices
        nxt = np.arange(len(v)) + 1
        nxt[part.ring_offsets[1:] - 1] = part.ring_offsets[:-1]
        width = edge_width if edge_width is not None else _auto_width(ax, part)
        # class and colour-mapped faces can match an edge's colour: a white halo keeps every layer's edges visible
        halo = color_by in ("class", "density", "n_active")
        for layer in range(n_layers - 1, -1, -1):
            on = np.flatnonzero(part.edge_layer == layer)
            if not len(on):
                continue
            lw = width * (1.0 + 0.6 * (n_layers - 1 - layer) / max(n_layers - 1, 1))
            patch = PathPatch(_segments_path(v[on], v[nxt[on]]), fill=False, edgecolor=lcolors[layer], linewidth=lw,
                              capstyle="round", zorder=2 + 0.1 * (n_layers - layer))
            patch.set_gid(f"edges-layer-{layer + 1}")
            if halo:
                import matplotlib.patheffects as pe

                patch.set_path_effects([pe.Stroke(linewidth=2.2 * lw, foreground="white"), pe.Normal()])
            patch.set_rasterized(raster)
            ax.add_artist(patch)  # limits are the domain's; add_patch would walk every segment
            edge_handles.insert(0, Line2D([], [], color=lcolors[layer], lw=1.5, label=f"layer {layer + 1} edges"))

    # -- decision boundary ------------------------------------------------------------
    if decision_boundary and len(part.decision_boundary):
        import matplotlib.patheffects as pe

        db = LineCollection(part.decision_boundary, colors="black", linewidths=1.8, zorder=4,
                            capstyle="round", joinstyle="round", label="decision boundary")
        db.set_path_effects([pe.Stroke(linewidth=3.4, foreground="white"), pe.Normal()])
        db.set_gid("decision-boundary")
        ax.add_collection(db)
        handles.append(Line2D([], [], color="black", lw=1.8, label="decision boundary",
                              path_effects=[pe.Stroke(linewidth=3.4, foreground="white"), pe.Normal()]))

    # -- data points --------------------------------------------------------------------
    anchor_cls = None if anchor_labels is None else np.asarray(anchor_labels)
    if points is not None:
        P = np.asarray(points, dtype=float)
        lab = None if labels is None else np.asarray(labels)
        if P.ndim != 2:
            raise ValueError(f"points must have shape (N, D) or (N, 2); got shape {P.shape}")
        if lab is not None and lab.shape != (len(P),):
            raise ValueError(f"labels must have shape ({len(P)},) to match points; got shape {lab.shape}")
        sl = part.slice
        if P.shape[1] == sl.input_dim:
            u, dist = slice_coordinates(sl, P, return_distance=True)
            if anchor_cls is None and lab is not None and getattr(sl, "anchors", None) is not None:
                anchor_cls = _anchor_classes(sl, P, lab)
            keep = np.ones(len(P), bool) if max_distance is None else dist <= max_distance
        elif P.shape[1] == 2:
            u, keep = P, np.ones(len(P), bool)
        else:
            raise ValueError(f"points must have {sl.input_dim} columns (inputs) or 2 (slice coordinates); "
                             f"got shape {P.shape}")
        u = u[keep]
        size = 14 if len(u) < 500 else 6
        what = (f"data within {max_distance:.3g} of the plane ({int(keep.sum())} of {len(P)}), projected"
                if max_distance is not None and P.shape[1] == sl.input_dim else "data (projected)")
        if lab is None:
            ax.scatter(u[:, 0], u[:, 1], s=size, c="white", edgecolors="black", linewidths=0.5, zorder=5,
                       gid="points")
            handles.append(Line2D([], [], ls="", marker="o", ms=4, mfc="white", mec="black", mew=0.5, label=what))
        else:
            lk = lab[keep]
            ax.scatter(u[:, 0], u[:, 1], s=size, c=class_color(lk), edgecolors="black", linewidths=0.4,
                       zorder=5, gid="points")
            handles.append(Line2D([], [], ls="", marker="o", ms=4, mfc="0.6", mec="black", mew=0.4, label=what))
            if color_by != "class":
                for c in np.unique(lk):
                    handles.append(Line2D([], [], ls="", marker="o", ms=4, mfc=class_color(c), mec="black",
                                          mew=0.4, label=name_of(c)))

    # -- anchors ------------------------------------------------------------------------
    a = getattr(part.slice, "anchors", None)
    if anchors and a is not None and a.shape == (3, 2):
        import matplotlib.patheffects as pe

        fc = "white" if anchor_cls is None else [class_color(c) if c >= 0 else (1, 1, 1, 1) for c in anchor_cls]
        ax.scatter(a[:, 0], a[:, 1], s=150, marker="*", c=fc, edgecolors="black", linewidths=0.9, zorder=6,
                   gid="anchors")
        handles.append(Line2D([], [], ls="", marker="*", ms=10, mfc="white", mec="black", mew=0.9,
                              label="slice anchors"))
        if anchor_cls is not None:
            centre = 0.5 * (dom.min(axis=0) + dom.max(axis=0))
            for (x, y), c in zip(a, anchor_cls):
                if c < 0:
                    continue
                dy = -1.0 if y > centre[1] else 1.0  # toward the centre, away from the frame
                ax.annotate(name_of(c), (x, y), xytext=(0, 10 * dy), textcoords="offset points",
                            ha="center", va="bottom" if dy > 0 else "top", fontsize=9, fontweight="bold",
                            zorder=7, gid="anchor-label",
                            path_effects=[pe.withStroke(linewidth=2.5, foreground="white")])

    # -- frame, scale, legend --------------------------------------------------------------
    if ticks:
        ax.set_xlabel(f"u\u2081 ({_units(part.slice)})")
        ax.set_ylabel(f"u\u2082 ({_units(part.slice)})")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.8)
    if scale_bar:
        _add_scale_bar(ax, part.slice, avoid=a if anchors and a is not None and a.shape[1:] == (2,) else None)
    ax.set_title(title if title is not None else f"{R:,} activation regions", fontsize=11)
    if scalar is not None and colorbar == "bottom":
        # an inset just under the axes: the axes keep their size, so panels side by side stay aligned
        cax = ax.inset_axes([0.05, -0.075, 0.9, 0.035])
        cb = fig.colorbar(scalar, cax=cax, orientation="horizontal", extend=extend)
    elif scalar is not None and colorbar:
        cb = fig.colorbar(scalar, ax=ax, fraction=0.046, pad=0.02, extend=extend)
    if scalar is not None and colorbar:
        cb.set_label(label)
        cb.outline.set_linewidth(0.6)
    handles = edge_handles + handles + face_handles
    if legend and handles:
        ncol = min(len(handles), 3 if len(handles) > 4 else len(handles))
        below = -0.13 if ticks else -0.02  # clear of the tick labels and axis label
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below), ncol=ncol, fontsize=8,
                  frameon=False, handlelength=1.6, columnspacing=1.2, borderaxespad=0.2)
    return ax


def _ring_paths(vertices: np.ndarray, offsets: np.ndarray) -> list:
    """One closed matplotlib Path per ring, built a ring length at a time (fast for 1e5+ rings)."""
    from matplotlib.path import Path

    lengths = np.diff(offsets)
    paths = [None] * len(lengths)
    make = getattr(Path, "_fast_from_codes_and_verts", None)
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        ring = vertices[offsets[idx, None] + np.arange(n)]
        ring = np.concatenate([ring, ring[:, :1]], axis=1)
        template = Path(ring[0], closed=True)
        for i, xy in zip(idx.tolist(), ring):
            paths[i] = make(xy, template.codes, internals_from=template) if make else Path(xy, template.codes)
    return paths


def _segments_path(a: np.ndarray, b: np.ndarray):
    """One Path holding the segments ``a[i] -> b[i]`` as separate strokes."""
    from matplotlib.path import Path

    verts = np.empty((2 * len(a), 2))
    verts[0::2], verts[1::2] = a, b
    codes = np.empty(2 * len(a), dtype=Path.code_type)
    codes[0::2], codes[1::2] = Path.MOVETO, Path.LINETO
    return Path(verts, codes)


def density_limits(areas) -> tuple[float, float]:
    """Log colour limits of region areas: the 1st percentile (slivers saturate) to the largest area."""
    a = np.asarray(areas, dtype=float)
    a = a[a > 0]
    if not len(a):
        return 1e-12, 1.0
    return float(np.percentile(a, 1.0)), float(a.max())


def _lighten(rgb: np.ndarray, amount) -> np.ndarray:
    """Blend colours toward white by ``amount`` (0: unchanged, 1: white)."""
    return rgb + (1.0 - rgb) * amount


def _is_orthonormal(sl: Slice) -> bool:
    B = sl.basis
    return bool(np.allclose(B.T @ B, np.eye(B.shape[1]), rtol=0, atol=1e-9))


def _units(sl: Slice) -> str:
    return "input units" if _is_orthonormal(sl) else "slice units"


def _nice_length(span: float) -> float:
    """A 1-2-5 length near a fifth of ``span``."""
    target = span / 5.0
    if not (target > 0 and math.isfinite(target)):
        return 1.0
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10**exp <= target:
            return m * 10**exp
    return 10**exp


def _add_scale_bar(ax, sl: Slice, avoid=None) -> None:
    """A scale bar in the corner of the axes farthest from the points ``avoid`` (data coordinates)."""
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    length = _nice_length(x1 - x0)
    loc = "lower left"
    if avoid is not None and len(avoid):
        corners = {"lower left": (x0, y0), "lower right": (x1, y0), "upper left": (x0, y1), "upper right": (x1, y1)}
        loc = max(corners, key=lambda k: np.hypot(*(np.asarray(avoid) - corners[k]).T).min())
    bar = AnchoredSizeBar(ax.transData, length, f"{length:g} {_units(sl)}", loc=loc,
                          pad=0.35, borderpad=0.5, sep=3, frameon=True, size_vertical=0,
                          fontproperties=FontProperties(size=8))
    bar.patch.set_facecolor("white")
    bar.patch.set_alpha(0.85)
    bar.patch.set_edgecolor("none")
    bar.size_bar.get_children()[0].set_linewidth(2.0)
    bar.set_zorder(8)
    bar.set_gid("scale-bar")
    ax.add_artist(bar)


def _auto_width(ax, part: Partition) -> float:
    """Edge width (points) of the deepest layer: a tenth of the median region's side on screen."""
    fig = ax.figure
    bbox = ax.get_position()
    width_pt = bbox.width * fig.get_figwidth() * 72.0
    x0, x1 = ax.get_xlim()
    pt_per_unit = width_pt / max(x1 - x0, 1e-300)
    side = math.sqrt(max(float(np.median(part.areas)), 0.0)) * pt_per_unit if part.n_regions else 100.0
    return float(np.clip(0.1 * side, 0.06, 0.6))


def _anchor_classes(sl: Slice, P: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Class of each anchor that is one of the input points (-1 where none is); None if none is."""
    X = sl.to_input(sl.anchors)
    scale = max(float(np.abs(P).max(initial=0.0)), 1.0)
    out = np.full(len(X), -1, dtype=np.int64)
    for i, x in enumerate(X):
        d = np.abs(P - x).max(axis=1)
        j = int(np.argmin(d))
        if d[j] <= 1e-6 * scale:
            out[i] = int(labels[j])
    return out if (out >= 0).any() else None
