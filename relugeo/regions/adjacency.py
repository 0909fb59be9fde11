"""The region adjacency (dual) graph of a 2-D partition, and its statistics.

Two regions are adjacent when they share an edge of positive length. The
neighbour across an edge of a two-slope (ReLU, leaky ReLU) neuron is the
region whose pattern differs in that neuron's bit, found by pattern lookup;
across a max layer's tie edge, or where that lookup fails (an edge on the
zero sets of two neurons at once), a forward pass of a point just outside the
edge's middle gives it. Since vertices are not shared between regions, each
side measures the shared edge on its own; the graph keeps the shorter of the
two measurements, which is the shared length also where one long edge faces
several regions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PatternIndex", "RegionGraph", "decision_boundary_graph", "locate", "region_graph"]


class PatternIndex:
    """Lookup of packed activation patterns: row of ``patterns`` for each query, -1 if absent.

    Parameters
    ----------
    patterns : ndarray of shape (R, n_words), dtype=np.uint64
        Distinct patterns.
    """

    def __init__(self, patterns: np.ndarray):
        self._dtype = np.dtype((np.void, 8 * patterns.shape[1]))
        keys = np.ascontiguousarray(patterns).view(self._dtype).ravel()
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]

    def find(self, queries: np.ndarray) -> np.ndarray:
        """Rows of ``queries`` (Q, n_words) in the indexed patterns, (Q,) int64 with -1 where absent."""
        if len(self._sorted) == 0 or len(queries) == 0:
            return np.full(len(queries), -1, dtype=np.int64)
        keys = np.ascontiguousarray(queries).view(self._dtype).ravel()
        at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        return np.where(self._sorted[at] == keys, self._order[at], -1).astype(np.int64)


def locate(part, points) -> np.ndarray:
    """Region holding each point of the slice (slice coordinates), (N,) int64; -1 outside every region.

    The region is the one whose pattern the point's forward pass has, so a
    point on a region boundary gets one of the regions it touches.
    """
    u = np.asarray(points, dtype=np.float64).reshape(-1, part.dim)
    pats = part.net.patterns(part.slice.to_input(u))
    return PatternIndex(part.patterns).find(pats)


@dataclass
class RegionGraph:
    """Regions (nodes) and the edges of positive length they share.

    Attributes
    ----------
    n_regions : int
    pairs : ndarray of shape (E, 2), dtype=np.int64
        Adjacent regions ``(r, s)`` with ``r < s``, sorted.
    length : ndarray of shape (E,), dtype=np.float64
        Length of the shared edge, in slice units.
    layer, neuron : ndarray of shape (E,), dtype=np.int32
        The hidden neuron whose zero set carries the shared edge.
    flips : ndarray of shape (E,), dtype=np.int64
        Number of pattern bits in which the two regions differ (1 for a
        generic ReLU edge; 2 across a max layer's tie).
    segments : ndarray of shape (E, 2, 2), dtype=np.float64
        The shared edge's end points in slice coordinates.
    """

    n_regions: int
    pairs: np.ndarray
    length: np.ndarray
    layer: np.ndarray
    neuron: np.ndarray
    flips: np.ndarray
    segments: np.ndarray = field(repr=False)

    @property
    def n_edges(self) -> int:
        return len(self.pairs)

    def matrix(self, weight: str = "length"):
        """Symmetric ``scipy.sparse.csr_matrix`` of shape (R, R) holding ``weight`` of each edge.

        ``weight`` is ``"length"``, ``"flips"`` or ``"ones"``.
        """
        import scipy.sparse as sp

        values = {"length": self.length, "flips": self.flips.astype(np.float64),
                  "ones": np.ones(self.n_edges)}
        if weight not in values:
            raise ValueError(f"weight must be one of {sorted(values)}; got {weight!r}")
        w = values[weight]
        r, s = self.pairs[:, 0], self.pairs[:, 1]
        n = self.n_regions
        return sp.csr_matrix((np.r_[w, w], (np.r_[r, s], np.r_[s, r])), shape=(n, n))

    def degrees(self) -> np.ndarray:
        """Number of neighbours of each region, (R,) int64."""
        return np.bincount(self.pairs.ravel(), minlength=self.n_regions).astype(np.int64)

    def degree_distribution(self) -> np.ndarray:
        """Number of regions of each degree: entry ``d`` counts the regions with ``d`` neighbours."""
        return np.bincount(self.degrees()).astype(np.int64)

    @property
    def mean_degree(self) -> float:
        return 2.0 * self.n_edges / self.n_regions if self.n_regions else 0.0

    def diameter(self, *, sources=None, chunk: int = 32) -> int:
        """Largest number of edge crossings between two regions, by breadth-first search.

        From every region by default: ``R`` searches of ``O(R + E)`` each, so
        exact but slow beyond some 10,000 regions; ``sources`` (region
        indices) searches from those only, giving a lower bound (their
        largest eccentricity). -1 when the graph is disconnected. ``chunk``
        searches run at once, holding a ``(chunk, R)`` float64 array.
        """
        from scipy.sparse.csgraph import shortest_path

        g = self.matrix("ones")
        todo = np.arange(self.n_regions) if sources is None else np.asarray(sources, dtype=np.int64).ravel()
        if len(todo) and (todo.min() < 0 or todo.max() >= self.n_regions):
            raise ValueError(f"sources must be region indices in [0, {self.n_regions}); got {todo.tolist()[:5]}")
        best = 0
        for start in range(0, len(todo), chunk):
            d = shortest_path(g, unweighted=True, indices=todo[start : start + chunk])
            if np.isinf(d).any():
                return -1
            best = max(best, int(d.max()))
        return best

    def flips_between(self, a: int, b: int) -> tuple[int, np.ndarray]:
        """Fewest neuron flips on a walk from region ``a`` to region ``b`` across shared edges.

        Returns the number of flips and the regions along one such walk.
        Never fewer than the Hamming distance of the two patterns; -1 and an
        empty path when ``b`` cannot be reached.
        """
        from scipy.sparse.csgraph import dijkstra

        for name, r in (("a", a), ("b", b)):
            if not 0 <= int(r) < self.n_regions:
                raise ValueError(f"{name} must be a region index in [0, {self.n_regions}); got {r!r}")
        dist, pred = dijkstra(self.matrix("flips"), indices=int(a), return_predecessors=True)
        if not np.isfinite(dist[b]):
            return -1, np.zeros(0, dtype=np.int64)
        path = [int(b)]
        while path[-1] != a:
            path.append(int(pred[path[-1]]))
        return int(round(dist[b])), np.asarray(path[::-1], dtype=np.int64)

    def to_networkx(self, part=None):
        """A ``networkx.Graph``: nodes are regions (with ``area`` and ``centroid`` when ``part`` is
        given), edges carry ``length``, ``layer``, ``neuron`` and ``flips``."""
        try:
            import networkx as nx
        except ImportError as exc:  # pragma: no cover - networkx is an optional dependency
            raise ImportError("to_networkx needs networkx: pip install networkx") from exc
        g = nx.Graph()
        if part is None:
            g.add_nodes_from(range(self.n_regions))
        else:
            sizes = part.volumes if part.dim >= 3 else part.areas
            g.add_nodes_from((r, {"area": float(sizes[r]), "centroid": tuple(part.centroids[r])})
                             for r in range(self.n_regions))
        g.add_edges_from(
            (int(r), int(s), {"length": float(w), "layer": int(la), "neuron": int(ne), "flips": int(f)})
            for (r, s), w, la, ne, f in zip(self.pairs, self.length, self.layer, self.neuron, self.flips)
        )
        return g


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each row of a uint64 array (N, words) -> (N,) int64."""
    return np.unpackbits(np.ascontiguousarray(x).view(np.uint8), axis=1).sum(axis=1).astype(np.int64)


def ring_edges(part) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ring edge: (region, start vertex, end vertex), each (V,) int64."""
    off = part.ring_offsets
    region = np.repeat(np.arange(part.n_regions), np.diff(off))
    nxt = np.arange(len(part.vertices)) + 1
    nxt[off[1:] - 1] = off[:-1]
    return region, np.arange(len(part.vertices)), nxt


def region_graph(part) -> RegionGraph:
    """The adjacency graph of a 2-D partition (see the module docstring)."""
    if part.dim != 2:
        raise ValueError(f"the region graph needs a 2-D partition; got a {part.dim}-D one")
    index = PatternIndex(part.patterns)
    region, start, end = ring_edges(part)
    inner = np.flatnonzero(part.edge_layer >= 0)
    r = region[inner]
    lay = part.edge_layer[inner]
    neu = part.edge_neuron[inner]
    is_max = np.array([layer.is_max for layer in part.net.hidden], dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(part.net.widths)]).astype(np.int64)
    flip = ~is_max[lay]
    s = np.full(len(inner), -1, dtype=np.int64)
    if flip.any():
        g = offsets[lay[flip]] + neu[flip]
        pats = part.patterns[r[flip]].copy()
        pats[np.arange(len(g)), g >> 6] ^= np.left_shift(np.uint64(1), (g & 63).astype(np.uint64))
        s[flip] = index.find(pats)
    lost = np.flatnonzero(s < 0)
    if len(lost):
        across = part._across(inner[lost])
        s[lost] = index.find(np.stack([across[q] for q in inner[lost].tolist()]))
    keep = (s >= 0) & (s != r)
    inner, r, s, lay, neu = inner[keep], r[keep], s[keep], lay[keep], neu[keep]
    v = part.vertices
    seg = np.stack([v[start[inner]], v[end[inner]]], axis=1)
    length = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)

    # one measurement per ordered pair (r, s): the sum of r's edges facing s
    R = part.n_regions
    key = r * R + s
    uk, first, inv = np.unique(key, return_index=True, return_inverse=True)
    total = np.bincount(inv, length)
    a, b = uk // R, uk % R
    # per unordered pair, the shorter of the two sides' measurements
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pair_key = lo * R + hi
    order = np.lexsort((total, pair_key))
    pk = pair_key[order]
    head = np.r_[True, pk[1:] != pk[:-1]]
    pick = order[head]
    e = first[pick]
    pairs = np.stack([lo[pick], hi[pick]], axis=1).astype(np.int64)
    flips = _popcount(part.patterns[pairs[:, 0]] ^ part.patterns[pairs[:, 1]])
    return RegionGraph(R, pairs, total[pick], lay[e].astype(np.int32), neu[e].astype(np.int32), flips, seg[e])


def decision_boundary_graph(part, *, rtol: float = 1e-9):
    """Pieces of the decision boundary (nodes) joined where they share an end point.

    Pieces come from :attr:`Partition.decision_boundary`, one per region the
    boundary crosses; end points closer than ``rtol`` times the domain's
    size are the same point.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (S, S)
        Symmetric, 1 where two pieces meet. Its connected components are the
        boundary's curves (``scipy.sparse.csgraph.connected_components``); a
        node of degree 1 ends a curve on the domain's boundary, and a degree
        above 2 is a junction of three or more classes.
    """
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    if part.dim != 2:
        raise ValueError(f"the decision-boundary graph needs a 2-D partition; got a {part.dim}-D one")
    segs = part.decision_boundary
    S = len(segs)
    if S == 0:
        return sp.csr_matrix((0, 0))
    ends = segs.reshape(-1, 2)
    close = cKDTree(ends).query_pairs(rtol * np.sqrt(part.domain_area), output_type="ndarray")
    a, b = close[:, 0] // 2, close[:, 1] // 2
    keep = a != b
    a, b = a[keep], b[keep]
    m = sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(S, S))
    m.data[:] = 1.0
    return m
