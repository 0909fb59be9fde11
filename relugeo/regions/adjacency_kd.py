"""The region adjacency graph of a k-D partition (k >= 3): regions sharing a facet of positive measure.

The same :class:`~.adjacency.RegionGraph` as in 2-D, with ``length`` the
(k-1)-measure of the shared facet. A region's facets come from its vertex
incidences (:mod:`.facets_kd`); a facet on a hidden neuron's zero set faces
the region whose pattern differs in that neuron's bit (pattern lookup), or,
where that lookup fails (a facet on two neurons' zero sets at once), the
region of the pattern of a point just outside the facet's centre. Each side
measures the shared facet on its own; the graph keeps the smaller of the two
sums, as in 2-D.
"""

from __future__ import annotations

import numpy as np

from .adjacency import PatternIndex, RegionGraph, _popcount
from .facets_kd import incidence_bits, region_facets


def region_graph_kd(part) -> RegionGraph:
    """The adjacency graph of a bounded k-D partition (:class:`~.partition_kd.PartitionKD`).

    ``segments`` has shape (E, 1, k): the centre of each shared facet (of the
    side whose measurement is kept).
    """
    k, R = part.dim, part.n_regions
    nd = part.n_domain_facets
    n_hidden = part.net.n_hidden
    bits = incidence_bits(part.incidence)
    region, gid, measure, centre, normal = [], [], [], [], []
    for r in range(R):
        a, b = part.offsets[r], part.offsets[r + 1]
        ids, m, c, n = region_facets(part.vertices[a:b], bits[a:b])
        inner = (ids >= nd) & (ids < nd + n_hidden)
        region.append(np.full(int(inner.sum()), r))
        gid.append(ids[inner] - nd)
        measure.append(m[inner])
        centre.append(c[inner])
        normal.append(n[inner])
    region = np.concatenate(region).astype(np.int64)
    g = np.concatenate(gid).astype(np.int64)
    measure = np.concatenate(measure)
    centre = np.concatenate(centre).reshape(-1, k)
    normal = np.concatenate(normal).reshape(-1, k)

    index = PatternIndex(part.patterns)
    pats = part.patterns[region].copy()
    pats[np.arange(len(g)), g >> 6] ^= np.left_shift(np.uint64(1), (g & 63).astype(np.uint64))
    s = index.find(pats)
    lost = np.flatnonzero(s < 0)
    if len(lost):
        step = 1e-7 * float(np.abs(part.slice.vertices).max() + np.abs(part.vertices).max())
        outside = centre[lost] + step * normal[lost]
        s[lost] = index.find(part.net.patterns(part.slice.to_input(outside)))
    keep = (s >= 0) & (s != region)
    r, s, g, measure, centre = region[keep], s[keep], g[keep], measure[keep], centre[keep]

    # one measurement per ordered pair (r, s): the sum of r's facets facing s
    key = r * R + s
    uk, first, inv = np.unique(key, return_index=True, return_inverse=True)
    total = np.bincount(inv, measure, minlength=len(uk))
    a, b = uk // R, uk % R
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pair_key = lo * R + hi
    order = np.lexsort((total, pair_key))
    pk = pair_key[order]
    pick = order[np.r_[True, pk[1:] != pk[:-1]]] if len(pk) else order
    e = first[pick]
    pairs = np.stack([lo[pick], hi[pick]], axis=1).astype(np.int64).reshape(-1, 2)
    flips = _popcount(part.patterns[pairs[:, 0]] ^ part.patterns[pairs[:, 1]])
    starts = np.concatenate([[0], np.cumsum(part.net.widths)]).astype(np.int64)
    layer = np.searchsorted(starts, g[e], side="right") - 1
    return RegionGraph(R, pairs, total[pick], layer.astype(np.int32), (g[e] - starts[layer]).astype(np.int32),
                       flips, centre[e][:, None, :])
