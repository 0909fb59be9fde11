"""The regions of a 2-D partition as one polygon complex with shared vertices.

A :class:`~relugeo.regions.partition.Partition` stores every region's ring on
its own, so a vertex where several regions meet appears once per region. The
PL Morse classification and the lower-star filtration need each such point
once, with its neighbours. Ring vertices closer than ``rtol`` times the
domain's size are merged into one vertex; a vertex that lies inside an edge
of a neighbouring ring (a T-junction, where the neighbour's edge was not
split) is inserted into that ring, so that every interior edge has exactly
two sides. The result is checked: an edge used by one face lies on the
domain's boundary, and the Euler characteristic ``V - E + F`` is 1 (a convex
domain is a disc).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import RelugeoError

__all__ = ["RegionComplex", "region_complex"]

MERGE_RTOL = 1e-9  # ring vertices closer than this times sqrt(domain area) are one vertex


@dataclass(frozen=True)
class RegionComplex:
    """Vertices shared between the rings of a 2-D partition.

    Attributes
    ----------
    points : ndarray of shape (V, 2), dtype=np.float64
        The distinct vertices, slice coordinates.
    face_offsets : ndarray of shape (F + 1,), dtype=np.int64
    face_vertices : ndarray of shape (N,), dtype=np.int64
        Face ``i`` is the
        counter-clockwise ring ``face_vertices[face_offsets[i]:face_offsets[i + 1]]``
        of vertex indices (it may hold vertices inserted on its edges).
    face_region : ndarray of shape (F,), dtype=np.int64
        The partition region of each face (a region thinner than the merge
        tolerance collapses and has no face).
    edges : ndarray of shape (E, 2), dtype=np.int64
        Undirected edges ``(a, b)`` with ``a < b``, sorted.
    boundary_edge : ndarray of shape (E,), dtype=bool
        Edges of one face only: the domain's boundary.
    """

    points: np.ndarray
    face_offsets: np.ndarray
    face_vertices: np.ndarray
    face_region: np.ndarray
    edges: np.ndarray
    boundary_edge: np.ndarray

    @property
    def n_vertices(self) -> int:
        return len(self.points)

    @property
    def n_faces(self) -> int:
        return len(self.face_offsets) - 1

    @property
    def euler_characteristic(self) -> int:
        return self.n_vertices - len(self.edges) + self.n_faces

    @cached_property
    def boundary_vertex(self) -> np.ndarray:
        """(V,) bool: vertices on the domain's boundary."""
        out = np.zeros(self.n_vertices, dtype=bool)
        out[self.edges[self.boundary_edge].ravel()] = True
        return out

    def corners(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every corner of every face: (vertex, next vertex, previous vertex along the ring), each (N,) int64.

        Turning counter-clockwise about ``vertex``, a face's corner spans the
        directions from ``next`` to ``previous``; the corners about an
        interior vertex tile a full turn, those about a boundary vertex a
        half-turn or less.
        """
        off, fv = self.face_offsets, self.face_vertices
        prv = np.arange(len(fv)) - 1
        prv[off[:-1]] = off[1:] - 1
        return fv, fv[_next(off)], fv[prv]

    def triangles(self) -> np.ndarray:
        """A fan triangulation of every face from its first vertex: (T, 3) int64 vertex indices.

        The triangles may be geometrically flat (a face with vertices inserted
        on its edges), but they triangulate the complex as a topological disc.
        """
        off, fv = self.face_offsets, self.face_vertices
        n = np.diff(off)
        face = np.repeat(np.arange(self.n_faces), n - 2)
        k = np.arange(len(face)) - np.repeat(np.cumsum(n - 2) - (n - 2), n - 2)
        start = off[face]
        return np.stack([fv[start], fv[start + k + 1], fv[start + k + 2]], axis=1)

    def values(self, part, maps: np.ndarray) -> np.ndarray:
        """An affine function per region (``maps`` (R, 3): ``u @ maps[r, :2] + maps[r, 2]``) at the vertices, (V,).

        Read from the first face that holds each vertex (the function is
        continuous, so every face gives the same value up to rounding).
        """
        first = np.full(self.n_vertices, -1, dtype=np.int64)
        face = np.repeat(np.arange(self.n_faces), np.diff(self.face_offsets))
        first[self.face_vertices[::-1]] = face[::-1]
        m = maps[self.face_region[first]]
        return np.einsum("vk,vk->v", self.points, m[:, :2]) + m[:, 2]


def _merge(points: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Cluster points closer than ``tol`` (chained): (vertex of each point (N,), cluster means (V, 2))."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(points)
    close = cKDTree(points).query_pairs(tol, output_type="ndarray")
    g = coo_matrix((np.ones(len(close)), (close[:, 0], close[:, 1])), shape=(n, n))
    _, label = connected_components(g, directed=False)
    count = np.bincount(label)
    mean = np.stack([np.bincount(label, points[:, i]) / count for i in (0, 1)], axis=1)
    return label.astype(np.int64), mean


def _next(off: np.ndarray) -> np.ndarray:
    """Index of the next vertex along its ring, for every entry of a CSR ring array, (N,) int64."""
    nxt = np.arange(off[-1]) + 1
    nxt[off[1:] - 1] = off[:-1]
    return nxt


def _half_edge_keys(fv: np.ndarray, off: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed edge keys ``a * V + b`` of every ring edge and of its reverse, (N,) each."""
    a, b = fv, fv[_next(off)]
    return a * n_vertices + b, b * n_vertices + a


def _split_t_junctions(points, fv: np.ndarray, off: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert into each ring (CSR: ``fv``, ``off``) the vertices lying inside its unmatched edges
    (T-junctions); returns the new ``fv``, ``off``."""
    from scipy.spatial import cKDTree

    V = len(points)
    key, rev = _half_edge_keys(fv, off, V)
    lone = np.flatnonzero(~np.isin(rev, key))
    if len(lone) == 0:
        return fv, off
    a, b = fv[lone], fv[_next(off)[lone]]
    cand = np.unique(np.r_[a, b])
    tree = cKDTree(points[cand])
    pa, pb = points[a], points[b]
    mid, half = 0.5 * (pa + pb), 0.5 * np.linalg.norm(pb - pa, axis=1)
    inserts: dict[int, list[tuple[float, int]]] = {}
    for e, near in enumerate(tree.query_ball_point(mid, half + tol)):
        d = pb[e] - pa[e]
        L2 = float(d @ d)
        if L2 == 0.0:
            continue
        for c in cand[near]:
            if c == a[e] or c == b[e]:
                continue
            w = points[c] - pa[e]
            t = float(w @ d) / L2
            dist = abs(float(w[0] * d[1] - w[1] * d[0])) / np.sqrt(L2)
            if 0.0 < t < 1.0 and dist <= tol:
                inserts.setdefault(int(lone[e]), []).append((t, int(c)))
    if not inserts:
        return fv, off
    new_fv, counts = [], np.diff(off).copy()
    face = np.repeat(np.arange(len(off) - 1), np.diff(off))
    for i in range(len(fv)):
        new_fv.append(fv[i])
        added = sorted(inserts.get(i, []))
        new_fv.extend(c for _, c in added)
        counts[face[i]] += len(added)
    return np.asarray(new_fv, dtype=np.int64), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def region_complex(part, *, rtol: float = MERGE_RTOL) -> RegionComplex:
    """Merge the ring vertices of a 2-D partition into a :class:`RegionComplex`.

    Raises
    ------
    RelugeoError
        When the rings do not close up into a disc (an interior edge with
        one side only, or an Euler characteristic other than 1).
    """
    if part.dim != 2:
        raise ValueError(f"the region complex needs a 2-D partition; got a {part.dim}-D one")
    tol = rtol * np.sqrt(part.domain_area)
    label, points = _merge(part.vertices, tol)
    # drop a ring vertex merged with the next one; a ring left with fewer than 3 vertices has no face
    off = part.ring_offsets
    region = np.repeat(np.arange(part.n_regions), np.diff(off))
    keep = label != label[_next(off)]
    kept = np.bincount(region[keep], minlength=part.n_regions)
    regions = np.flatnonzero(kept >= 3)
    keep &= kept[region] >= 3
    fv = label[keep]
    off = np.concatenate([[0], np.cumsum(kept[regions])]).astype(np.int64)
    fv, off = _split_t_junctions(points, fv, off, tol)
    V = len(points)
    key, rev = _half_edge_keys(fv, off, V)
    und = np.unique(np.minimum(key, rev) if len(key) else key, return_counts=True)
    ukey, uses = und
    edges = np.stack([ukey // V, ukey % V], axis=1) if len(ukey) else np.zeros((0, 2), dtype=np.int64)
    edges = np.sort(edges, axis=1)
    cx = RegionComplex(points, off, fv, regions.astype(np.int64), edges, uses == 1)
    _check(cx, part, tol)
    return cx


def _check(cx: RegionComplex, part, tol: float) -> None:
    """Raise when the complex is not a disc whose one-sided edges lie on the domain's boundary."""
    lone = cx.edges[cx.boundary_edge]
    if len(lone):
        dom = part.slice.vertices
        normal = np.stack([dom[:, 1] - np.roll(dom, -1, axis=0)[:, 1], np.roll(dom, -1, axis=0)[:, 0] - dom[:, 0]],
                          axis=1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        offset = np.einsum("ik,ik->i", normal, dom)
        mid = 0.5 * (cx.points[lone[:, 0]] + cx.points[lone[:, 1]])
        off_boundary = np.abs(mid @ normal.T - offset).min(axis=1) > 4 * tol
        if off_boundary.any():
            raise RelugeoError(f"the regions do not fit edge to edge: {int(off_boundary.sum())} interior edges "
                               f"have one side only (first at {mid[off_boundary][0].tolist()})")
    if cx.n_faces and cx.euler_characteristic != 1:
        raise RelugeoError(f"the region complex is not a disc: V - E + F = {cx.euler_characteristic}, expected 1")
