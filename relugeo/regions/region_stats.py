"""Region statistics: distances to region and decision boundaries, SplineCam shape measures.

Definitions (all exact up to floating point unless stated):

* **distance to the region boundary** of a point x, in the full input space:
  inside x's activation region every hidden neuron is affine,
  ``z_i(y) = g_i . (y - x) + z_i(x)``, with ``g_i`` its input gradient under
  x's pattern. The region is the intersection of the half-spaces
  ``sign z_i(y) = sign z_i(x)``, all of which contain x, so the distance from
  x to the region's complement is ``min_i |z_i(x)| / ||g_i||`` over every
  hidden neuron of every layer (a neuron with ``g_i = 0`` never changes sign
  and is skipped). No slicing is involved.
* **area** of a region of a 2-D partition, in slice units.
* **eccentricity**: from the region polygon's second moments about its
  centroid, ``C = (1/A) [[Ixx, Ixy], [Ixy, Iyy]]`` with eigenvalues
  ``l1 >= l2``, ``e = sqrt(1 - l2 / l1)``: 0 for a disc or square, tending to
  1 for a needle (the eccentricity of the ellipse with the same inertia).
* **centrality**: distance of the region's centroid from the centre of the
  slice's domain (the domain polygon's centroid), divided by the largest
  distance from that centre to a domain vertex: 0 at the centre, 1 at the
  farthest corner.
* **distance to the decision boundary** in a slice: from each region's
  centroid, and from the region's nearest point, to the nearest segment of
  ``Partition.decision_boundary`` (0 when the boundary crosses the region).
* **density by distance**: regions are binned by their centroid's distance
  to the decision boundary; per bin, the number of regions, their total area
  and their boundary length (each shared edge split evenly between its two
  regions), and the ratios: regions and boundary length per unit area.
"""

from __future__ import annotations

import numpy as np

from ..nets.pwanet import PWANet
from .partition import Partition

__all__ = [
    "decision_boundary_distance",
    "density_by_distance",
    "distance_to_region_boundary",
    "region_shape",
    "region_statistics",
    "slice_scale",
]

_CHUNK_BYTES = 32 * 2**20


def distance_to_region_boundary(net: PWANet, X, *, batch_size: int | None = None, return_neuron: bool = False):
    """Exact distance from each point to the boundary of its own activation region.

    Parameters
    ----------
    net : PWANet
    X : array_like of shape (N, D)
    batch_size : int, optional
        Points per chunk. The working memory is about
        ``batch_size * max_width * D * 8`` bytes (two such arrays at a
        time); by default the chunk keeps that near 32 MiB.
    return_neuron : bool, default False
        Also return the hidden layer and neuron whose zero set is nearest.

    Returns
    -------
    distance : ndarray of shape (N,), dtype=np.float64
        ``min_i |z_i(x)| / ||g_i||`` over all hidden neurons (see the module
        docstring), in input units; 0 for a point on a neuron's zero set and
        ``inf`` when no neuron can change sign (a network without hidden
        layers, or only constant neurons).
    layer, neuron : ndarray of shape (N,), dtype=np.int64
        Only with ``return_neuron=True``: the minimising hidden neuron
        (-1 where the distance is ``inf``).

    Examples
    --------
    >>> import numpy as np, relugeo as rg
    >>> from relugeo.regions.region_stats import distance_to_region_boundary
    >>> net = rg.PWANet([rg.AffineLayer(np.eye(2), np.zeros(2)), rg.AffineLayer(np.ones((1, 2)), np.zeros(1), None)])
    >>> distance_to_region_boundary(net, [[3.0, -1.0], [0.0, 2.0]])
    array([1., 0.])
    """
    if not isinstance(net, PWANet):
        raise TypeError(f"net must be a PWANet (use relugeo.from_torch); got {type(net).__name__}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != net.input_dim:
        raise ValueError(f"X must have shape (N, {net.input_dim}) for this network; got {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf")
    N, D = X.shape
    widest = max(net.widths, default=1)
    if batch_size is None:
        batch_size = max(1, _CHUNK_BYTES // (8 * widest * D))
    elif int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    batch_size = int(batch_size)
    dist = np.full(N, np.inf)
    layer_of = np.full(N, -1, dtype=np.int64)
    neuron_of = np.full(N, -1, dtype=np.int64)
    for s0 in range(0, N, batch_size):
        h = X[s0 : s0 + batch_size]
        n = len(h)
        best = np.full(n, np.inf)
        J = None  # input Jacobian of the previous layer's outputs, (n, width, D); None = identity
        for li, layer in enumerate(net.hidden):
            z = layer.apply(h)
            G = _jacobian(layer, J, n, D)  # (n, n_out, D)
            d = _boundary_distances(layer, z, G)
            arg = d.argmin(axis=1)
            dmin = d[np.arange(n), arg]
            better = dmin < best
            best[better] = dmin[better]
            layer_of[s0 : s0 + n][better] = li
            neuron_of[s0 : s0 + n][better] = arg[better]
            h, J = _through_activation(layer, z, G)
        dist[s0 : s0 + n] = best
    if return_neuron:
        return dist, layer_of, neuron_of
    return dist


def _jacobian(layer, J: np.ndarray | None, n: int, D: int) -> np.ndarray:
    """Input Jacobian of the layer's pre-activations, (n, n_out, D), from its inputs' ``J`` (None: identity)."""
    if J is None:
        W = layer.linear(np.eye(D)).T
        return np.broadcast_to(W, (n, *W.shape))
    if layer.is_dense:
        return np.matmul(layer.weight, J)
    cols = layer.linear(J.transpose(0, 2, 1).reshape(n * D, -1))
    return cols.reshape(n, D, -1).transpose(0, 2, 1)


def _boundary_distances(layer, z: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Distance from each point to each of the layer's boundaries, (n, n_bits).

    A two-slope neuron's boundary is its zero set (pass-through neurons have
    none); a max window's is the tie between its winner and each other
    candidate, and the column of window ``w`` is its nearest tie.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if not layer.is_max:
            norms = np.sqrt(np.einsum("nwd,nwd->nw", G, G))
            d = np.where(norms > 0, np.abs(z) / norms, np.inf)
            return np.where(layer.slopes == 1.0, np.inf, d)
        win = layer.winners(z)
        n, (n_win, m) = len(z), layer.windows.shape
        d = np.full((n, layer.n_bits), np.inf)
        rows = np.arange(n)
        for w in range(n_win):
            a = layer.windows[w, win[:, w]]
            for s in range(m):
                b = layer.windows[w, s]
                if b < 0:
                    continue
                gap = z[rows, a] - z[:, b]
                norm = np.linalg.norm(G[rows, a] - G[:, b], axis=-1)
                dist = np.where((norm > 0) & (a != b), np.abs(gap) / norm, np.inf)
                d[:, w * m] = np.minimum(d[:, w * m], dist)
        return d


def _through_activation(layer, z: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The layer's outputs and their input Jacobian (n, n_act, D) from ``z`` and ``G = dz/dx``."""
    if layer.is_max:
        win = layer.winners(z)
        idx = layer.windows[np.arange(layer.windows.shape[0]), win]
        if len(layer.keep):
            idx = np.concatenate([idx, np.broadcast_to(layer.keep, (len(z), len(layer.keep)))], axis=1)
        return np.take_along_axis(z, idx, axis=1), np.take_along_axis(G, idx[:, :, None], axis=1)
    slope = np.where(z > 0, 1.0, layer.slopes)
    return slope * z, slope[:, :, None] * G


def _check_2d(part) -> None:
    if not isinstance(part, Partition):
        raise TypeError(f"part must be a relugeo.Partition; got {type(part).__name__}")
    if part.dim != 2:
        raise ValueError(f"region statistics need a 2-D partition; got a {part.dim}-D one")


def slice_scale(part: Partition) -> float:
    """Length unit of a slice: ``sqrt(domain area) / 2`` (the half side of a square domain)."""
    return float(np.sqrt(part.domain_area) / 2.0)


def _ring_next(offsets: np.ndarray) -> np.ndarray:
    nxt = np.arange(int(offsets[-1])) + 1
    nxt[offsets[1:] - 1] = offsets[:-1]
    return nxt


def region_shape(part: Partition) -> dict:
    """SplineCam shape statistics of every region of a 2-D partition.

    Returns
    -------
    dict of ndarray of shape (R,), dtype=np.float64
        ``area``, ``eccentricity`` and ``centrality`` as defined in
        :mod:`relugeo.regions.region_stats`.
    """
    _check_2d(part)
    R = part.n_regions
    off = part.ring_offsets
    rid = np.repeat(np.arange(R), np.diff(off))
    c = part.centroids
    p = part.vertices - c[rid]
    q = part.vertices[_ring_next(off)] - c[rid]
    cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    ixx = np.bincount(rid, cross * (p[:, 0] ** 2 + p[:, 0] * q[:, 0] + q[:, 0] ** 2), minlength=R) / 12.0
    iyy = np.bincount(rid, cross * (p[:, 1] ** 2 + p[:, 1] * q[:, 1] + q[:, 1] ** 2), minlength=R) / 12.0
    ixy = np.bincount(
        rid, cross * (p[:, 0] * q[:, 1] + 2 * p[:, 0] * p[:, 1] + 2 * q[:, 0] * q[:, 1] + q[:, 0] * p[:, 1]),
        minlength=R,
    ) / 24.0
    mean = 0.5 * (ixx + iyy)
    half = np.sqrt((0.5 * (ixx - iyy)) ** 2 + ixy**2)
    l1, l2 = mean + half, np.maximum(mean - half, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ecc = np.where(l1 > 0, np.sqrt(np.clip(1.0 - l2 / l1, 0.0, 1.0)), 0.0)
    dom = part.slice.vertices
    centre = _polygon_centroid(dom)
    reach = np.linalg.norm(dom - centre, axis=1).max()
    centrality = np.linalg.norm(c - centre, axis=1) / reach
    return {"area": part.areas.copy(), "eccentricity": ecc, "centrality": centrality}


def _polygon_centroid(v: np.ndarray) -> np.ndarray:
    x, y = v[:, 0], v[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cr = x * yn - xn * y
    a = cr.sum() / 2.0
    return np.array([((x + xn) * cr).sum(), ((y + yn) * cr).sum()]) / (6.0 * a)


def decision_boundary_distance(part: Partition) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every region to the decision boundary inside the slice.

    Returns
    -------
    centroid, nearest : ndarray of shape (R,), dtype=np.float64
        From the region's centroid, and from its nearest point, to the
        nearest decision-boundary segment, in slice units; ``nearest`` is 0
        for a region the boundary crosses. All ``nan`` when the slice holds
        no decision boundary (one class everywhere).
    """
    import shapely

    _check_2d(part)
    R = part.n_regions
    segs = part.decision_boundary
    if len(segs) == 0:
        return np.full(R, np.nan), np.full(R, np.nan)
    tree = shapely.STRtree(shapely.linestrings(segs))
    centroid = np.empty(R)
    idx, d = tree.query_nearest(shapely.points(part.centroids), return_distance=True, all_matches=False)
    centroid[idx[0]] = d
    nearest = np.empty(R)
    idx, d = tree.query_nearest(part.to_shapely(), return_distance=True, all_matches=False)
    nearest[idx[0]] = d
    return centroid, nearest


def _region_boundary_length(part: Partition) -> np.ndarray:
    """Half the inner perimeter of every region, (R,): summed over regions, each shared edge once."""
    off = part.ring_offsets
    v = part.vertices
    seg = np.linalg.norm(v[_ring_next(off)] - v, axis=1) * (part.edge_layer >= 0)
    rid = np.repeat(np.arange(part.n_regions), np.diff(off))
    return np.bincount(rid, seg, minlength=part.n_regions) / 2.0


def density_by_distance(part: Partition, edges, *, centroid_distance=None, scale: float | None = None):
    """Regions and region-boundary length per unit area, in bands of distance to the decision boundary.

    A band is the union of the regions whose centroid lies at a distance in
    ``[bin_lo, bin_hi)`` from the decision boundary, so every region, its
    area and its boundary belong to exactly one band and the bands tile the
    domain. Where regions are small next to the band width this is the
    geometric band; a large region counts wholly in its centroid's band.

    Parameters
    ----------
    part : Partition
        A 2-D partition.
    edges : array_like of shape (B + 1,)
        Increasing band edges in units of ``scale``, starting at 0; the last
        may be ``inf``.
    centroid_distance : ndarray of shape (R,), optional
        From :func:`decision_boundary_distance` (slice units), to avoid
        computing it twice.
    scale : float, optional
        Length unit of ``edges`` and of the outputs; default :func:`slice_scale`.

    Returns
    -------
    pandas.DataFrame
        One row per band: ``bin``, ``bin_lo``, ``bin_hi``, ``n_regions``,
        ``area`` (in ``scale**2``), ``boundary_length`` (region boundaries
        inside the domain, each shared edge counted once and split evenly
        between its two regions, in ``scale``), ``region_density =
        n_regions / area`` and ``boundary_density = boundary_length / area``
        (``nan`` for an empty band). Every count is 0 and every density
        ``nan`` when the slice holds no decision boundary.
    """
    import pandas as pd

    _check_2d(part)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or edges[0] != 0 or (np.diff(edges) <= 0).any():
        raise ValueError(f"edges must be increasing, start at 0 and have at least 2 values; got {edges.tolist()}")
    h = slice_scale(part) if scale is None else float(scale)
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"scale must be a finite number > 0; got {scale!r}")
    if centroid_distance is None:
        centroid_distance = decision_boundary_distance(part)[0]
    B = len(edges) - 1
    with np.errstate(invalid="ignore"):
        which = np.searchsorted(edges, centroid_distance / h, side="right") - 1
    keep = np.isfinite(centroid_distance) & (which >= 0) & (which < B)
    counts = np.bincount(which[keep], minlength=B)
    area = np.bincount(which[keep], part.areas[keep], minlength=B) / h**2
    length = np.bincount(which[keep], _region_boundary_length(part)[keep], minlength=B) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        rd = np.where(area > 0, counts / area, np.nan)
        bd = np.where(area > 0, length / area, np.nan)
    return pd.DataFrame({
        "bin": np.arange(B), "bin_lo": edges[:-1], "bin_hi": edges[1:], "n_regions": counts.astype(np.int64),
        "area": area, "boundary_length": length, "region_density": rd, "boundary_density": bd,
    })


def region_statistics(part: Partition):
    """Every region of a 2-D partition with its statistics.

    Returns
    -------
    pandas.DataFrame
        One row per region: ``region``, ``area``, ``eccentricity``,
        ``centrality`` (see :func:`region_shape`), ``dist_db_centroid`` and
        ``dist_db_nearest`` (see :func:`decision_boundary_distance`, in slice
        units), ``prediction`` (the class at the centroid) and ``n_active``
        (hidden neurons active on the region).
    """
    import pandas as pd

    shape = region_shape(part)
    dc, dn = decision_boundary_distance(part)
    n_active = np.unpackbits(part.patterns.view(np.uint8), axis=1, bitorder="little")[:, : part.net.n_hidden]
    return pd.DataFrame({
        "region": np.arange(part.n_regions), **shape, "dist_db_centroid": dc, "dist_db_nearest": dn,
        "prediction": part.predictions(), "n_active": n_active.sum(axis=1).astype(np.int64),
    })
