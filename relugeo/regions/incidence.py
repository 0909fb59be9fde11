"""Combinatorial checks of a partition: do its regions fit together edge to edge?

Area sums cannot see a lost sliver (its area is below any relative tolerance)
and certificates only test the regions that are there. These checks look at
how the regions meet instead:

- every interior edge is covered, on its other side, by edges of regions
  that lie across the same neuron's zero set (2-D: along each neuron's line in
  each cell of the earlier layers, the edge lengths on its two sides balance;
  1-D: the intervals abut end to end);
- the patterns on the two sides of a shared piece of edge agree on the
  earlier layers and differ in the edge's neuron; any other bit that differs
  belongs to a neuron whose pre-activation vanishes there (checked by a
  float64 forward pass at the middle of the shared piece);
- boundary edges lie on the domain's boundary and cover it;
- every vertex closes up (2-D): the corners of the regions at a vertex, the
  regions whose edge passes through it, and the outside of the domain (at a
  boundary point) cover the full turn around it exactly once, and any two
  regions met in turn around it differ only in neurons that vanish on the ray
  between them (checked by a float64 forward pass on the ray).

The tie edges of max layers are not checked (a window has several tie lines
under one label), nor are the vertices of nets with max layers.

Each check gives a count of failures; a partition that lost or merged a
region fails at least one of them.
"""

from __future__ import annotations

import numpy as np

LEN_RTOL = 1e-12  # lengths and gaps, relative to the domain's diameter
ZERO_RTOL = 1e-9  # a pre-activation this small (relative to its layer's largest) vanishes


def check_incidence(part) -> dict:
    """Failure counts of the combinatorial checks on a :class:`Partition` (all zero when it fits).

    Returns ``{"uncovered_edges": int, "boundary_gaps": int, "bad_neighbours": int,
    "open_vertices": int}``.
    """
    if part.n_regions == 0:
        return {"uncovered_edges": 0, "boundary_gaps": 0, "bad_neighbours": 0, "open_vertices": 0}
    if part.dim == 1:
        uncovered, gaps, pairs = _intervals(part)
        open_vertices = 0  # the joints of the intervals are checked as edges
    else:
        uncovered, gaps, pairs, lines = _polygons(part)
        open_vertices = open_vertex_count(part, lines)
    return {"uncovered_edges": uncovered, "boundary_gaps": gaps, "bad_neighbours": _bad_neighbours(part, *pairs),
            "open_vertices": open_vertices}


def _layer_offsets(part) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(part.net.widths)]).astype(np.int64)


def _prefix(patterns: np.ndarray, n_bits: np.ndarray) -> np.ndarray:
    """Each row of ``patterns`` with only its first ``n_bits[row]`` bits kept, (N, words) uint64."""
    words = np.arange(patterns.shape[1])[None, :]
    full = np.clip(n_bits[:, None] - 64 * words, 0, 64)
    mask = np.where(full >= 64, ~np.uint64(0), (np.uint64(1) << full.astype(np.uint64)) - np.uint64(1))
    return patterns & mask


def _intervals(part):
    t = part.vertices[:, 0].reshape(-1, 2)
    order = np.argsort(t[:, 0], kind="stable")
    t = t[order]
    lo, hi = float(part.slice.vertices.min()), float(part.slice.vertices.max())
    tol = LEN_RTOL * (hi - lo)
    gaps = int(abs(t[0, 0] - lo) > tol) + int(abs(t[-1, 1] - hi) > tol)
    joints = np.abs(t[1:, 0] - t[:-1, 1]) > tol
    layer = part.edge_layer.reshape(-1, 2)[order]
    neuron = part.edge_neuron.reshape(-1, 2)[order]
    # the left interval's upper end names the neuron whose breakpoint the joint is
    left, right = order[:-1], order[1:]
    ok = ~joints & (layer[:-1, 1] >= 0)
    uncovered = int(joints.sum()) + int((~joints & (layer[:-1, 1] < 0)).sum())
    mid = 0.5 * (t[:-1, 1] + t[1:, 0])
    return uncovered, gaps, (left[ok], right[ok], mid[ok][:, None], layer[:-1, 1][ok], neuron[:-1, 1][ok])


def _polygons(part):
    v = part.vertices
    off = part.ring_offsets
    sizes = np.diff(off)
    region = np.repeat(np.arange(part.n_regions), sizes)
    nxt = np.arange(len(v)) + 1
    nxt[off[1:] - 1] = off[:-1]
    p0, p1 = v, v[nxt]
    diam = float(np.ptp(part.slice.vertices, axis=0).max())
    tol = LEN_RTOL * diam
    gaps = _boundary_gaps(part, p0, p1, part.edge_layer < 0, tol)
    # a max layer's window has several tie lines under one label: its edges are left out
    is_max = np.array([lyr.is_max for lyr in part.net.hidden] + [False], dtype=bool)
    inner = np.flatnonzero((part.edge_layer >= 0) & ~is_max[part.edge_layer])
    if not len(inner):
        no_pairs = (np.zeros(0, np.int64),) * 2 + (np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64))
        return 0, gaps, no_pairs, (inner, np.zeros(0, np.int64), np.zeros((0, 2)))
    lay = part.edge_layer[inner].astype(np.int64)
    neu = part.edge_neuron[inner].astype(np.int64)
    reg = region[inner]
    pre = _prefix(part.patterns[reg], _layer_offsets(part)[lay])
    key = np.concatenate([lay[:, None].astype(np.uint64), neu[:, None].astype(np.uint64), pre], axis=1)
    _, group = np.unique(np.ascontiguousarray(key).view(np.dtype((np.void, 8 * key.shape[1]))).ravel(),
                         return_inverse=True)
    group = group.ravel()
    a, b = p0[inner], p1[inner]
    length = np.linalg.norm(b - a, axis=1)
    # one direction per group: that of its longest edge
    n_groups = int(group.max()) + 1
    best = np.full(n_groups, -1, dtype=np.int64)
    order = np.lexsort((length, group))
    best[group[order]] = order  # the last (longest) edge of each group wins
    d = (b - a)[best[group]] / length[best[group]][:, None]
    s0 = np.einsum("ij,ij->i", a, d)
    s1 = np.einsum("ij,ij->i", b, d)
    balance = np.bincount(group, weights=s1 - s0, minlength=n_groups)
    size = np.bincount(group, weights=length, minlength=n_groups)
    uncovered = int((np.abs(balance) > tol + 1e-9 * size).sum())
    pairs = _overlaps(group, s0, s1, reg, a, d, lay, neu, tol)
    return uncovered, gaps, pairs, (inner, group, d)


def _boundary_gaps(part, p0, p1, on_boundary, tol) -> int:
    """Boundary edges off the domain's boundary, plus one if they do not add up to its perimeter."""
    dom = part.slice.vertices - 0.0
    nd = np.roll(dom, -1, axis=0)
    edge = nd - dom
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1) / np.linalg.norm(edge, axis=1)[:, None]
    offset = np.einsum("ij,ij->i", normal, dom)

    def off_boundary(p):
        return np.abs(p @ normal.T - offset).min(axis=1) > tol

    bad = int((off_boundary(p0[on_boundary]) | off_boundary(p1[on_boundary])).sum())
    perimeter = float(np.linalg.norm(edge, axis=1).sum())
    total = float(np.linalg.norm(p1[on_boundary] - p0[on_boundary], axis=1).sum())
    return bad + int(abs(total - perimeter) > tol + 1e-12 * perimeter)


def _overlaps(group, s0, s1, reg, a, d, lay, neu, tol):
    """Pairs of regions whose edges overlap along one line from opposite sides, and a point of each overlap."""
    lo, hi = np.minimum(s0, s1), np.maximum(s0, s1)
    forward = s1 > s0
    order = np.lexsort((lo, group))
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1], True])
    left, right, mids, L, N = [], [], [], [], []
    for g0, g1 in zip(starts[:-1], starts[1:]):
        idx = order[g0:g1]
        plus = idx[forward[idx]]
        minus = idx[~forward[idx]]
        j = 0
        for e in plus:
            while j < len(minus) and hi[minus[j]] <= lo[e] + tol:
                j += 1
            k = j
            while k < len(minus) and lo[minus[k]] < hi[e] - tol:
                m0, m1 = max(lo[e], lo[minus[k]]), min(hi[e], hi[minus[k]])
                if m1 - m0 > tol:
                    left.append(reg[e])
                    right.append(reg[minus[k]])
                    # the middle of the overlap, on the edge's line
                    mids.append(a[e] + (0.5 * (m0 + m1) - (a[e] @ d[e])) * d[e])
                    L.append(lay[e])
                    N.append(neu[e])
                k += 1
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return as_int(left), as_int(right), np.asarray(mids, dtype=np.float64).reshape(-1, 2), as_int(L), as_int(N)


def _bad_neighbours(part, left, right, points, layer, neuron) -> int:
    """Neighbour pairs whose patterns do not differ as the shared edge says they must."""
    if not len(left):
        return 0
    net = part.net
    offsets = _layer_offsets(part)
    pl, pr = part.patterns[left], part.patterns[right]
    is_max = np.array([lyr.is_max for lyr in net.hidden], dtype=bool)[layer]
    diff = np.unpackbits((pl ^ pr).view(np.uint8), axis=1, bitorder="little")
    g = offsets[layer] + neuron
    # a neuron's edge flips its bit; a max layer's tie edge changes the winner of its window
    width = np.array([lyr.windows.shape[1] if lyr.is_max else 1 for lyr in net.hidden])[layer]
    first = np.where(is_max, offsets[layer] + neuron * width, g)
    cols = np.arange(diff.shape[1])[None, :]
    bad = ~(diff.astype(bool) & (cols >= first[:, None]) & (cols < (first + width)[:, None])).any(axis=1)
    bad |= (_prefix(pl, offsets[layer]) != _prefix(pr, offsets[layer])).any(axis=1)
    # any other differing bit must belong to a neuron that vanishes on the shared edge
    # scale: each layer's largest pre-activation at the shared edges and the domain's corners
    corners = part.slice.vertices
    zs = net.preactivations(part.slice.to_input(np.concatenate([points, corners])))[:-1]
    n = len(points)
    for li, (lyr, z) in enumerate(zip(net.hidden, zs)):
        if lyr.is_max:
            continue
        cols = diff[:, offsets[li] : offsets[li + 1]].astype(bool)
        near = np.abs(z[:n]) <= ZERO_RTOL * max(float(np.abs(z).max()), 1e-300)
        bad |= (cols & ~near & (offsets[li] + np.arange(z.shape[1]) != g[:, None])).any(axis=1)
    return int(bad.sum())


# -- vertices ------------------------------------------------------------------------------------

ANGLE_ATOL = 1e-9  # radians; the direction of an edge of length L is also trusted only to LEN_RTOL * diam / L
TURN = 2.0 * np.pi


def open_vertex_count(part, lines) -> int:
    """Vertices of a 2-D partition around which the regions do not close up.

    Vertices closer than ``LEN_RTOL`` of the domain's diameter are one vertex.
    Around each, the sectors are: the corner of every region with a vertex
    there, a half-turn for every region whose edge passes through it, and the
    outside of the domain at a boundary point. They must cover the full turn
    without gap or overlap, and two regions met in turn must differ only in
    neurons that vanish on the ray between them. ``lines`` is ``(inner, group,
    d)`` from :func:`_polygons`: the interior edges (ring vertex ids), the line
    each lies on and that line's direction (n, 2). Nets with max layers are
    not checked (their tie edges are not grouped into lines).
    """
    if any(lyr.is_max for lyr in part.net.hidden):
        return 0
    v = part.vertices
    off = part.ring_offsets
    tol = LEN_RTOL * float(np.ptp(part.slice.vertices, axis=0).max())
    region = np.repeat(np.arange(part.n_regions), np.diff(off))
    nxt = np.arange(len(v)) + 1
    nxt[off[1:] - 1] = off[:-1]
    prv = np.arange(len(v)) - 1
    prv[off[:-1]] = off[1:] - 1
    cid, rep = _clusters(v, tol)
    # each edge's neuron as a pattern bit (-1 on the boundary)
    bit = np.where(part.edge_layer >= 0, _layer_offsets(part)[np.maximum(part.edge_layer, 0)] + part.edge_neuron, -1)
    parts = [_corner_sectors(v, cid, region, nxt, prv, part.n_regions, bit),
             _through_sectors(v, cid, rep, region, nxt, lines, tol, bit),
             _outside_sectors(rep, np.asarray(part.slice.vertices, dtype=np.float64), tol)]
    cl, reg, start, width, len0, len1, bit0 = (np.concatenate(x) for x in zip(*parts))
    slack = ANGLE_ATOL + 4.0 * tol * (1.0 / np.maximum(len0, tol) + 1.0 / np.maximum(len1, tol))
    n = len(rep)
    allowed = np.bincount(cl, weights=slack, minlength=n)
    bad = np.abs(np.bincount(cl, weights=width, minlength=n) - TURN) > allowed
    # turn each vertex's sectors so that one starts at 0, sort them by start, and look for gaps
    first = np.full(n, -1, dtype=np.int64)
    first[cl[::-1]] = np.arange(len(cl))[::-1]
    rel = np.mod(start - start[first[cl]], TURN)
    order = np.lexsort((rel, cl))
    cl, reg, rel, width, len0, len1, start, bit0 = (x[order] for x in (cl, reg, rel, width, len0, len1, start,
                                                                        bit0))
    reach = np.maximum.accumulate(rel + width + 16.0 * cl) - 16.0 * cl
    head = np.r_[True, cl[1:] != cl[:-1]]
    gap = np.where(head, 0.0, rel - np.r_[0.0, reach[:-1]])
    tail = np.r_[cl[1:] != cl[:-1], True]
    bad |= np.bincount(cl, weights=gap > allowed[cl], minlength=n) > 0
    bad[cl[tail]] |= reach[tail] < TURN - allowed[cl[tail]]
    # the regions met in turn (corners narrower than their slack are passed over: their order is
    # rounding), and a point on the ray between them
    wide = width > slack[order]
    cl, reg, len0, len1, start, bit0 = (x[wide] for x in (cl, reg, len0, len1, start, bit0))
    head = np.r_[True, cl[1:] != cl[:-1]]
    tail = np.r_[cl[1:] != cl[:-1], True]
    after = np.arange(len(cl)) + 1
    after[np.flatnonzero(tail)] = np.flatnonzero(head)
    pair = (reg >= 0) & (reg[after] >= 0) & (reg != reg[after])
    i, j = np.flatnonzero(pair), after[pair]
    # two regions that differ only in the neuron of the edge between them need no forward pass
    plain = _only_bit(part.patterns[reg[i]] ^ part.patterns[reg[j]], bit0[j])
    i, j = i[~plain], j[~plain]
    dist = 0.5 * np.minimum(len1[i], len0[j])
    ray = rep[cl[j]] + dist[:, None] * np.stack([np.cos(start[j]), np.sin(start[j])], axis=1)
    bad[cl[i[_pattern_jumps(part, reg[i], reg[j], ray)]]] = True
    return int(bad.sum())


def _clusters(v: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices within ``tol`` of each other (transitively) as one point: the label of each (V,)
    and one vertex of each label (n, 2)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(v).query_pairs(tol, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(v), len(v)))
    _, cid = connected_components(graph, directed=False)
    _, first = np.unique(cid, return_index=True)
    return cid, v[first]


def _sectors(cl, reg, frm, a, b):
    """Sectors at points ``frm`` from the direction of ``b`` counter-clockwise to that of ``a``:
    (cluster, region, start angle, width, distance to b, distance to a)."""
    db, da = b - frm, a - frm
    start = np.arctan2(db[:, 1], db[:, 0])
    width = np.mod(np.arctan2(da[:, 1], da[:, 0]) - start, TURN)
    return cl, reg, start, width, np.linalg.norm(db, axis=1), np.linalg.norm(da, axis=1)


def _corner_sectors(v, cid, region, nxt, prv, n_regions, bit):
    """The corner of each region at each vertex of its ring (consecutive ring vertices of one
    vertex are one corner; a ring within one vertex has none)."""
    inside = np.bincount(region, weights=cid[nxt] != cid, minlength=n_regions) == 0
    first = np.flatnonzero((cid[prv] != cid) & ~inside[region])
    last = first.copy()
    more = cid[nxt[last]] == cid[last]
    while more.any():
        last = np.where(more, nxt[last], last)
        more = cid[nxt[last]] == cid[last]
    a, b = v[prv[first]] - v[first], v[nxt[last]] - v[last]
    start = np.arctan2(b[:, 1], b[:, 0])
    width = np.mod(np.arctan2(a[:, 1], a[:, 0]) - start, TURN)
    width[width > 1.5 * np.pi] = 0.0  # a corner narrower than rounding (convex corners are below a half-turn)
    return cid[first], region[first], start, width, np.linalg.norm(b, axis=1), np.linalg.norm(a, axis=1), bit[last]


def _through_sectors(v, cid, rep, region, nxt, lines, tol, bit):
    """A half-turn for each region whose interior edge passes through a vertex: the vertex ends an
    edge of the same line (the other side's regions) and lies inside this edge by more than ``tol``."""
    inner, group, d = lines
    a, b = v[inner], v[nxt[inner]]
    s0, s1 = np.einsum("ij,ij->i", a, d), np.einsum("ij,ij->i", b, d)
    lo, hi = np.minimum(s0, s1), np.maximum(s0, s1)
    key = 2 * group + (s1 > s0)
    # every (vertex, line) that some edge of the line ends at
    n_lines = int(group.max()) + 1 if len(group) else 1
    ends = np.unique(np.r_[cid[inner], cid[nxt[inner]]].astype(np.int64) * n_lines + np.r_[group, group])
    q_cl, q_group = ends // n_lines, ends % n_lines
    edge_of_group = np.zeros(n_lines, dtype=np.int64)
    edge_of_group[group] = np.arange(len(group))
    s = np.einsum("ij,ij->i", rep[q_cl], d[edge_of_group[q_group]])
    q_cl, s = np.r_[q_cl, q_cl], np.r_[s, s]
    q_key = np.r_[2 * q_group, 2 * q_group + 1]
    # per line and side the edges do not overlap: the last edge starting before s is the only candidate
    keys = np.r_[key, q_key]
    vals = np.r_[lo, s - tol]
    kind = np.r_[np.zeros(len(key), np.int64), np.ones(len(q_key), np.int64)]
    order = np.lexsort((kind, vals, keys))
    # the place in that order of the last edge at or before each place
    last = np.maximum.accumulate(np.where(kind[order] == 0, np.arange(len(order)), -1))
    q = kind[order] == 1
    hit = last[q] >= 0
    cand, qi = np.where(hit, order[np.maximum(last[q], 0)], -1), order[q] - len(key)
    hit[hit] = (key[cand[hit]] == q_key[qi[hit]]) & (hi[cand[hit]] > s[qi[hit]] + tol)
    cand, qi = cand[hit], qi[hit]
    frm = rep[q_cl[qi]]
    out = _sectors(q_cl[qi], region[inner[cand]], frm, a[cand], b[cand])
    return out[0], out[1], out[2], np.full(len(cand), np.pi), out[4], out[5], bit[inner[cand]]


def _outside_sectors(rep, dom, tol):
    """The outside of the domain (CCW polygon ``dom``) at the vertices on its boundary (region -1)."""
    prev, nxt = np.roll(dom, 1, axis=0), np.roll(dom, -1, axis=0)
    near = np.linalg.norm(rep[:, None, :] - dom[None], axis=2) <= tol
    at_corner = near.any(axis=1)
    ci, cj = np.flatnonzero(at_corner), near.argmax(axis=1)[at_corner]
    edge = nxt - dom
    length = np.linalg.norm(edge, axis=1)
    t = np.einsum("pjk,jk->pj", rep[:, None, :] - dom[None], edge) / length
    rel = rep[:, None, :] - dom[None]
    dist = np.abs(edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]) / length
    on = (dist <= tol) & (t > tol) & (t < length - tol) & ~at_corner[:, None]
    ei, ej = np.nonzero(on)
    cl = np.r_[ci, ei]
    frm = rep[cl]
    # outside: from the direction of the previous boundary point to that of the next one
    a = np.r_[nxt[cj], nxt[ej]]
    b = np.r_[prev[cj], dom[ej]]
    out = _sectors(cl, np.full(len(cl), -1, dtype=np.int64), frm, a, b)
    inf = np.full(len(cl), np.inf)
    return out[0], out[1], out[2], out[3], inf, inf, np.full(len(cl), -1, dtype=np.int64)


def _only_bit(diff: np.ndarray, bit: np.ndarray) -> np.ndarray:
    """Whether each row of ``diff`` (N, words) uint64 has exactly the one bit ``bit`` (N,) set (bool)."""
    words = np.arange(diff.shape[1])[None, :]
    want = np.where((bit[:, None] >= 0) & (words == (bit[:, None] >> 6)),
                    np.uint64(1) << (np.maximum(bit, 0)[:, None] & 63).astype(np.uint64), np.uint64(0))
    return (diff == want).all(axis=1) & (bit >= 0)


def _pattern_jumps(part, left, right, points) -> np.ndarray:
    """Which pairs of regions differ in a neuron that does not vanish at their point on the ray (bool)."""
    bad = np.zeros(len(left), dtype=bool)
    if not len(left):
        return bad
    net = part.net
    offsets = _layer_offsets(part)
    corners = part.slice.vertices
    for s in range(0, len(left), 8192):
        rows = slice(s, s + 8192)
        diff = np.unpackbits((part.patterns[left[rows]] ^ part.patterns[right[rows]]).view(np.uint8), axis=1,
                             bitorder="little").astype(bool)
        pts = points[rows]
        zs = net.preactivations(part.slice.to_input(np.concatenate([pts, corners])))[:-1]
        for li, z in enumerate(zs):
            near = np.abs(z[: len(pts)]) <= ZERO_RTOL * max(float(np.abs(z).max()), 1e-300)
            bad[rows] |= (diff[:, offsets[li] : offsets[li + 1]] & ~near).any(axis=1)
    return bad
