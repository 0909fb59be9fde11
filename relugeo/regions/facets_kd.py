"""Facets of k-D regions (k >= 3) from their vertex-facet incidences: which hyperplane, how large, where.

A region of a :class:`~.partition_kd.PartitionKD` lists, for every vertex, the
hyperplanes it lies on (the domain's facets and the neurons' zero sets). A
hyperplane carries a facet of the region iff the vertices on it span k - 1
dimensions; the facet is the convex hull of those vertices. Its (k-1)-measure
is the volume of that hull in its own hyperplane: for k = 3 a shoelace sum of
the vertices (all of them the facet polygon's corners) sorted by angle, Qhull
(:func:`.polytopes.polytope_volume`) above.

Used by the region graph (:func:`.adjacency.region_graph` on k-D partitions)
and the boundary density of exact local complexity at P >= 3.
"""

from __future__ import annotations

import numpy as np

from .polytopes import polytope_volume


def incidence_bits(incidence: np.ndarray) -> np.ndarray:
    """Facet-id bitsets (V, W) uint64 as a (V, 64 W) bool matrix: column f is facet id f."""
    inc = np.ascontiguousarray(incidence)
    return np.unpackbits(inc.view(np.uint8), axis=1, bitorder="little").astype(bool)


def _flat_frame(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Centre, (k-1) in-plane directions (k-1, k) and unit normal (k,) of points spanning k - 1 dimensions;
    None when they span fewer."""
    centre = points.mean(axis=0)
    d = points - centre
    _, sv, vt = np.linalg.svd(d, full_matrices=True)
    size = max(float(np.abs(d).max()), 1e-300)
    if len(sv) < k - 1 or sv[k - 2] <= 1e-9 * size:
        return None
    return centre, vt[: k - 1], vt[k - 1]


def flat_measure(points: np.ndarray) -> float:
    """(k-1)-measure of the convex hull of ``points`` (n, k) lying in a hyperplane; 0 if flatter.

    The points are written in an orthonormal frame of their hyperplane, then
    handed to Qhull (:func:`.polytopes.polytope_volume`); interior points are allowed.
    """
    k = points.shape[1]
    frame = _flat_frame(points, k)
    if frame is None:
        return 0.0
    centre, axes, _ = frame
    return polytope_volume((points - centre) @ axes.T)


def _convex_measure(q: np.ndarray) -> float:
    """Area (q of shape (n, 2)) or volume (n, m >= 3) of the convex hull of points that are all its
    vertices: in 2-D the shoelace sum of the points in angle order around their mean, else Qhull."""
    if q.shape[1] != 2:
        return polytope_volume(q)
    c = q - q.mean(axis=0)
    ring = c[np.argsort(np.arctan2(c[:, 1], c[:, 0]), kind="stable")]
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(x @ np.roll(y, -1) - np.roll(x, -1) @ y))


def region_facets(vertices: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """The facets of one region.

    Parameters
    ----------
    vertices : ndarray of shape (V, k), float64
    bits : ndarray of shape (V, n_ids), bool
        Facet ids each vertex lies on (:func:`incidence_bits`).

    Returns
    -------
    ids : ndarray of shape (n,), int64
        The lowest facet id carrying each facet (hyperplanes with the same
        vertex set carry one facet).
    measures : ndarray of shape (n,), float64
        (k-1)-measure of each facet.
    centres : ndarray of shape (n, k), float64
        Mean of each facet's vertices (a relative-interior point).
    normals : ndarray of shape (n, k), float64
        Unit normal of each facet pointing out of the region.
    """
    k = vertices.shape[1]
    inside = vertices.mean(axis=0)
    ids, measures, centres, normals = [], [], [], []
    seen = set()
    for f in np.flatnonzero(bits.sum(axis=0) >= k):
        on = np.flatnonzero(bits[:, f])
        key = tuple(on)
        if key in seen:
            continue
        pts = vertices[on]
        frame = _flat_frame(pts, k)
        if frame is None:
            continue
        seen.add(key)
        centre, axes, normal = frame
        if normal @ (centre - inside) < 0:
            normal = -normal
        ids.append(f)
        measures.append(_convex_measure((pts - centre) @ axes.T))
        centres.append(centre)
        normals.append(normal)
    return (np.asarray(ids, dtype=np.int64), np.asarray(measures, dtype=np.float64),
            np.asarray(centres, dtype=np.float64).reshape(-1, k), np.asarray(normals, dtype=np.float64).reshape(-1, k))


def neuron_facet_measure(vertices: np.ndarray, off: np.ndarray, incidence: np.ndarray, first: int,
                         stop: int) -> np.ndarray:
    """Sum over each cell's facets carried by facet ids in ``[first, stop)`` of their measures, (C,) float64.

    ``vertices`` (V, k), ``off`` (C + 1,) and ``incidence`` (V, W) uint64 hold
    the cells in CSR form, as in :class:`~.engine_kd.CellBatchKD`. A facet
    whose vertex set also lies on a lower id outside the range (a neuron's
    zero set along the domain's boundary) is not counted.
    """
    bits = incidence_bits(incidence)
    out = np.zeros(len(off) - 1)
    for c in range(len(off) - 1):
        a, b = off[c], off[c + 1]
        ids, measures, _, _ = region_facets(vertices[a:b], bits[a:b])
        out[c] = measures[(ids >= first) & (ids < stop)].sum()
    return out


def cross_section_measure(vertices: np.ndarray, values: np.ndarray) -> float:
    """(k-1)-measure of the zero set of an affine function inside a convex polytope.

    ``vertices`` (V, k) span the polytope, ``values`` (V,) are the function
    there. The section is the convex hull of the vertices where it vanishes and
    of the crossing points of every pair of vertices of opposite signs (the
    crossings on the polytope's edges are among them; the others lie inside).
    0 when the function does not change sign.
    """
    pos, neg = values > 0, values < 0
    if not (pos.any() and neg.any()):
        return 0.0
    a, b = np.nonzero(pos[:, None] & neg[None, :])
    t = values[a] / (values[a] - values[b])
    pts = vertices[a] + t[:, None] * (vertices[b] - vertices[a])
    pts = np.concatenate([pts, vertices[values == 0]])
    return flat_measure(pts)
