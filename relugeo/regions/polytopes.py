"""Convex polytopes of dimension k <= 8 given by their vertices: facets, incidences, volumes.

Used for the domains of k-D slices and for the volumes of k-D regions; these
run outside the compiled hot path (scipy's Qhull).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidSliceError

MAX_DIM = 8


def flatness(points: np.ndarray) -> float:
    """Smallest over largest singular value of the centred points (0 for a flat set)."""
    d = points - points.mean(axis=0)
    sv = np.linalg.svd(d, compute_uv=False)
    if len(sv) < points.shape[1] or sv[0] == 0:
        return 0.0
    return float(sv[-1] / sv[0])


def hull_facets(points: np.ndarray, name: str = "vertices") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The convex hull of ``points`` (m, k), k >= 2, as vertices, facet equations and incidences.

    Returns
    -------
    vertices : ndarray of shape (V, k), float64
        The hull's vertices (points inside the hull or on a facet's interior dropped).
    equations : ndarray of shape (F, k + 1), float64
        Facet ``f`` is ``equations[f, :k] @ u + equations[f, k] = 0`` with a unit
        outward normal; coplanar triangles of Qhull are merged into one facet.
    incidence : ndarray of shape (V, F), bool
        Which facets each vertex lies on (within ``1e-9`` times the hull's size).

    Raises :class:`InvalidSliceError` when the hull is flat (lower-dimensional).
    """
    from scipy.spatial import ConvexHull, QhullError

    k = points.shape[1]
    if points.shape[0] < k + 1 or flatness(points) <= 1e-9:
        raise InvalidSliceError(
            f"{name} span a flat (lower-dimensional) hull in {k} dimensions; "
            f"a {k}-D domain needs {k + 1} or more affinely independent points"
        )
    try:
        hull = ConvexHull(points)
    except QhullError as exc:
        raise InvalidSliceError(f"{name}: the convex hull cannot be built ({str(exc).splitlines()[0]})") from None
    size = float(np.abs(points - points.mean(axis=0)).max())
    tol = 1e-9 * size
    eqs = []
    for e in hull.equations:
        if not any(np.abs(e[:k] - f[:k]).max() <= 1e-9 and abs(e[k] - f[k]) <= tol for f in eqs):
            eqs.append(e)
    equations = np.array(eqs)
    vertices = points[np.sort(hull.vertices)]
    incidence = np.abs(vertices @ equations[:, :k].T + equations[:, k]) <= tol
    return np.ascontiguousarray(vertices), equations, incidence


def polytope_volume(points: np.ndarray) -> float:
    """Volume of the convex hull of ``points`` (m, k); 0 when it is flat.

    Qhull is asked on the centred points first; when it reports a precision
    problem (clusters of nearly equal vertices, long thin regions), again on
    the whitened points (rotated to their principal axes and scaled to unit
    spread, the volume scaled back), then allowing wide facets ('Q12').
    """
    from scipy.spatial import ConvexHull, QhullError

    k = points.shape[1]
    if k == 1:
        return float(points.max() - points.min())
    if points.shape[0] < k + 1:
        return 0.0
    d = points - points.mean(axis=0)
    _, s, vt = np.linalg.svd(d, full_matrices=False)
    if s[-1] <= 1e-13 * s[0]:
        return 0.0
    for pts, factor, options in ((d, 1.0, None), (d @ vt.T / s, float(np.prod(s)), None), (d, 1.0, "Q12")):
        try:
            return float(ConvexHull(pts, qhull_options=options).volume * factor)
        except QhullError:
            continue
    return 0.0
