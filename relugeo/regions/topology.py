"""Topology of decision regions and of sublevel sets of a logit in a 2-D slice.

On every region the logits are affine, so the set where a class wins (or
where a logit is at most a level) cuts each region in convex *pieces*: the
region itself when one label holds at all its vertices, otherwise the region
clipped by the half-planes of that label's affine comparisons. The pieces
make a graph: two pieces are joined when they share a segment of positive
length, inside one region (along a tie of their labels) or across a shared
region edge (from :meth:`Partition.adjacency`). For a label ``c`` in the
domain ``D``:

* ``b0`` is the number of connected components of the graph's pieces of
  label ``c``;
* ``b1`` (holes) is the number of components of the other pieces that do not
  reach the boundary of ``D`` (Alexander duality: a bounded component of the
  complement is a hole).

Sets that touch only at a point count as separate components. H0
persistence of the sublevel filtration of a logit ``f`` needs no clipping:
the part of a region below a level is convex and appears at the region's
lowest vertex, and two regions' parts join at the lowest point of their
shared edge; a union-find over the region graph with the elder rule gives
the (birth, death) pairs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["betti_numbers", "critical_values", "sublevel_betti", "sublevel_persistence"]


def _check(part):
    from .partition import Partition

    if not isinstance(part, Partition):
        raise TypeError(f"part must be a relugeo.Partition; got {type(part).__name__}")
    if part.dim != 2:
        raise ValueError(f"topology needs a 2-D partition; got a {part.dim}-D one")


def _clip(poly: np.ndarray, g: np.ndarray, c: float) -> np.ndarray:
    """The part of a convex polygon (n, 2) where ``poly @ g + c >= 0``."""
    if len(poly) == 0:
        return poly
    d = poly @ g + c
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if d[i] >= 0:
            out.append(poly[i])
        if (d[i] >= 0) != (d[j] >= 0):
            t = d[i] / (d[i] - d[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.asarray(out).reshape(-1, 2)


def _area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _intervals(s0: np.ndarray, s1: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each label wins along segments, as t in [0, 1].

    ``s0``, ``s1``: (E, K) scores at the two ends; ``eps`` (E,) the tie
    tolerance. Returns ``lo``, ``hi`` of shape (E, K) (empty where lo >= hi).
    """
    a = s0[:, :, None] - s0[:, None, :] + eps[:, None, None]  # (E, c, j): s_c - s_j at t = 0
    b = (s1 - s0)[:, :, None] - (s1 - s0)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -a / b
    lo = np.where(b > 0, root, np.where((b == 0) & (a < 0), np.inf, -np.inf))
    hi = np.where(b < 0, root, np.where((b == 0) & (a < 0), -np.inf, np.inf))
    return np.clip(lo.max(axis=2), 0.0, 1.0), np.clip(hi.min(axis=2), 0.0, 1.0)


class _Pieces:
    """The pieces of a labelling of a 2-D partition by ``argmax_k scores`` and the graph joining them.

    ``maps`` (R, 3, K): the labels' scores on each region, ``u @ maps[r, :2] + maps[r, 2]``;
    ``graph``: the partition's region graph, when already at hand.
    """

    def __init__(self, part, maps: np.ndarray, graph=None, rel_tol: float = 1e-9):
        from .adjacency import ring_edges

        R, K = part.n_regions, maps.shape[2]
        self.K = K
        v = part.vertices
        region, start, end = ring_edges(part)
        vs = np.einsum("vk,vkc->vc", v, maps[region, :2]) + maps[region, 2]  # scores at the ring vertices
        label = vs.argmax(axis=1)
        lo_lab = np.full(R, K)
        hi_lab = np.full(R, -1)
        np.minimum.at(lo_lab, region, label)
        np.maximum.at(hi_lab, region, label)
        scale = float(np.abs(vs).max()) if vs.size else 1.0
        self.eps = rel_tol * (scale + 1e-300)
        self.len_tol = rel_tol * np.sqrt(part.domain_area)
        node = np.full((R, K), -1, dtype=np.int64)
        pure = np.flatnonzero(lo_lab == hi_lab)
        node[pure, lo_lab[pure]] = np.arange(len(pure))
        labels = [lo_lab[pure]]
        regions = [pure]
        areas = [part.areas[pure]]
        inner_pairs = []
        n = len(pure)
        polys = part.polygons
        area_tol = rel_tol * part.domain_area
        for r in np.flatnonzero(lo_lab != hi_lab):
            G, o = maps[r, :2], maps[r, 2]
            pieces = {}
            for c in range(K):
                poly = polys[r]
                for j in range(K):
                    if j != c and len(poly):
                        poly = _clip(poly, G[:, c] - G[:, j], o[c] - o[j])
                if _area(poly) > area_tol:
                    pieces[c] = poly
                    node[r, c] = n
                    regions.append(np.array([r]))
                    labels.append(np.array([c]))
                    areas.append(np.array([_area(poly)]))
                    n += 1
            # two pieces of one region touch along a segment where their labels tie
            for c, poly in pieces.items():
                sc = poly @ G + o
                nxt = np.roll(np.arange(len(poly)), -1)
                long = np.linalg.norm(poly[nxt] - poly, axis=1) > self.len_tol
                for d in pieces:
                    if d > c:
                        tie = np.abs(sc[:, c] - sc[:, d]) <= self.eps
                        if (tie & tie[nxt] & long).any():
                            inner_pairs.append((node[r, c], node[r, d]))
        self.node = node
        self.region = np.concatenate(regions).astype(np.int64)
        self.label = np.concatenate(labels).astype(np.int64)
        self.area = np.concatenate(areas).astype(np.float64)
        self.n = n

        # pieces of adjacent regions that share a segment of their common edge
        graph = part.adjacency() if graph is None else graph
        seg = graph.segments
        r, s = graph.pairs[:, 0], graph.pairs[:, 1]
        ends_r = [np.einsum("ek,ekc->ec", seg[:, i], maps[r, :2]) + maps[r, 2] for i in (0, 1)]
        ends_s = [np.einsum("ek,ekc->ec", seg[:, i], maps[s, :2]) + maps[s, 2] for i in (0, 1)]
        eps_e = np.full(len(r), self.eps)
        lo_r, hi_r = _intervals(*ends_r, eps_e)
        lo_s, hi_s = _intervals(*ends_s, eps_e)
        length = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)
        overlap = np.minimum(hi_r[:, :, None], hi_s[:, None, :]) - np.maximum(lo_r[:, :, None], lo_s[:, None, :])
        e, c, d = np.nonzero(overlap * length[:, None, None] > self.len_tol)
        a_node, b_node = node[r[e], c], node[s[e], d]
        ok = (a_node >= 0) & (b_node >= 0)
        inner = np.asarray(inner_pairs, dtype=np.int64).reshape(-1, 2)
        self.edges = np.concatenate([np.stack([a_node[ok], b_node[ok]], axis=1), inner])
        # a sliver region (area below the tolerance) whose edges are too short to join anything is left
        # out: it would count as a component of its class and as a hole of every other class
        degree = np.bincount(self.edges.ravel(), minlength=n)
        self.kept = (degree > 0) | (self.area > area_tol)

        # pieces on the domain's boundary
        outer = np.flatnonzero(part.edge_layer < 0)
        ro = region[outer]
        p0, p1 = v[start[outer]], v[end[outer]]
        s0 = np.einsum("ek,ekc->ec", p0, maps[ro, :2]) + maps[ro, 2]
        s1 = np.einsum("ek,ekc->ec", p1, maps[ro, :2]) + maps[ro, 2]
        lo, hi = _intervals(s0, s1, np.full(len(ro), self.eps))
        e, c = np.nonzero((hi - lo) * np.linalg.norm(p1 - p0, axis=1)[:, None] > self.len_tol)
        touching = node[ro[e], c]
        self.on_boundary = np.zeros(n, dtype=bool)
        self.on_boundary[touching[touching >= 0]] = True

    def _components(self, keep: np.ndarray) -> tuple[int, np.ndarray]:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        e = self.edges[keep[self.edges[:, 0]] & keep[self.edges[:, 1]]]
        g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(self.n, self.n))
        _, comp = connected_components(g, directed=False)
        return comp

    def betti(self, c: int) -> tuple[int, int]:
        """(b0, b1) of the union of label ``c``'s pieces."""
        mine = (self.label == c) & self.kept
        comp = self._components(mine)
        b0 = len(np.unique(comp[mine]))
        others = (self.label != c) & self.kept
        comp = self._components(others)
        ids = np.unique(comp[others])
        reach = np.unique(comp[others & self.on_boundary])
        return b0, len(ids) - len(reach)


def _logit_maps(part) -> np.ndarray:
    """Scores of the classes: the logits, or (-L, L) for a single logit (class 1 where L > 0)."""
    m = part.logit_maps
    return np.concatenate([-m, m], axis=2) if m.shape[2] == 1 else m


def betti_numbers(part):
    """Betti numbers of every class's decision region in a 2-D slice.

    Returns
    -------
    pandas.DataFrame
        One row per class: ``class``, ``b0`` (components), ``b1`` (holes)
        and ``area`` (slice units). A single-logit network has classes 0
        (``L <= 0``) and 1 (``L > 0``).
    """
    import pandas as pd

    _check(part)
    pieces = _Pieces(part, _logit_maps(part))
    rows = []
    for c in range(pieces.K):
        b0, b1 = pieces.betti(c)
        rows.append((c, b0, b1, float(pieces.area[pieces.label == c].sum())))
    return pd.DataFrame(rows, columns=["class", "b0", "b1", "area"])


def _check_logit(part, logit: int) -> int:
    n = part.logit_maps.shape[2]
    if not (isinstance(logit, (int, np.integer)) and 0 <= logit < n):
        raise ValueError(f"logit must be an integer in [0, {n}); got {logit!r}")
    return int(logit)


def sublevel_betti(part, levels, *, logit: int = 0):
    """Betti numbers of the sublevel sets ``{u in domain : f(u) <= level}`` of one logit ``f``.

    Returns
    -------
    pandas.DataFrame
        One row per level: ``level``, ``b0``, ``b1``.
    """
    import pandas as pd

    _check(part)
    logit = _check_logit(part, logit)
    levels = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if levels.ndim != 1 or not np.isfinite(levels).all():
        raise ValueError(f"levels must be finite numbers; got {levels!r}")
    f = part.logit_maps[:, :, logit]
    graph = part.adjacency()
    rows = []
    for c in levels:
        maps = np.stack([-f, f], axis=2).copy()
        maps[:, 2, 0] += c
        maps[:, 2, 1] -= c
        b0, b1 = _Pieces(part, maps, graph).betti(0)
        rows.append((float(c), b0, b1))
    return pd.DataFrame(rows, columns=["level", "b0", "b1"])


def _values_at_vertices(part, logit: int) -> np.ndarray:
    from .adjacency import ring_edges

    region = ring_edges(part)[0]
    m = part.logit_maps[:, :, logit]
    return np.einsum("vk,vk->v", part.vertices, m[region, :2]) + m[region, 2]


def sublevel_persistence(part, *, logit: int = 0, min_persistence: float = 0.0) -> np.ndarray:
    """H0 persistence diagram of the sublevel filtration of one logit on the slice.

    A union-find over the region graph: a region enters at its lowest vertex
    value, two adjacent regions join at the lowest value on their shared
    edge, and when two components join the younger one dies (elder rule).

    Returns
    -------
    ndarray of shape (n, 2), dtype=np.float64
        ``(birth, death)`` pairs sorted by birth, with persistence above
        ``min_persistence``; the component that never dies has death ``inf``.
    """
    _check(part)
    logit = _check_logit(part, logit)
    R = part.n_regions
    fv = _values_at_vertices(part, logit)
    birth = np.minimum.reduceat(fv, part.ring_offsets[:-1]) if R else np.zeros(0)
    graph = part.adjacency()
    m = part.logit_maps[graph.pairs[:, 0], :, logit]
    ends = np.einsum("eik,ek->ei", graph.segments, m[:, :2]) + m[:, 2][:, None]
    level = ends.min(axis=1)
    parent = np.arange(R)
    root_birth = birth.copy()

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    pairs = []
    for e in np.argsort(level, kind="stable"):
        a, b = find(graph.pairs[e, 0]), find(graph.pairs[e, 1])
        if a == b:
            continue
        if root_birth[a] > root_birth[b]:
            a, b = b, a
        pairs.append((root_birth[b], max(level[e], root_birth[b])))
        parent[b] = a
    roots = np.unique([find(r) for r in range(R)])
    pairs += [(root_birth[r], np.inf) for r in roots]
    out = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    out = out[(out[:, 1] - out[:, 0]) > min_persistence]
    return out[np.argsort(out[:, 0], kind="stable")]


def critical_values(part, *, logit: int = 0) -> np.ndarray:
    """Levels where the sublevel sets of one logit can change: its distinct values at the region
    vertices (sorted, (n,) float64). A PL function on the slice changes topology only there."""
    _check(part)
    return np.unique(_values_at_vertices(part, _check_logit(part, logit)))
