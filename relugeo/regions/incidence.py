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

from typing import NamedTuple

import numpy as np

from ..kernels import checks

LEN_RTOL = 1e-12  # lengths and gaps, relative to the domain's diameter
ZERO_RTOL = 1e-9  # a pre-activation this small (relative to its layer's largest) vanishes
PAIR_CHUNK = 1 << 15  # neighbour pairs checked at a time (bounds the memory of verify)


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


def _bit_mask(n_words: int, a: int, b: int) -> np.ndarray:
    """Words (n_words,) uint64 with bits ``a .. b - 1`` set."""
    pos = 64 * np.arange(n_words)[:, None] + np.arange(64)[None, :]
    keep = (pos >= a) & (pos < b)
    return (keep.astype(np.uint64) << np.arange(64, dtype=np.uint64)[None, :]).sum(axis=1, dtype=np.uint64)


def _prefix_ids(patterns: np.ndarray, starts) -> list:
    """For each bit position ``s`` of the non-decreasing ``starts``, an id per row of ``patterns``
    (R, words) uint64: (R,) int64, equal for two rows iff their bits below ``s`` agree."""
    ids = [np.zeros(len(patterns), dtype=np.int64)]
    for a, b in zip(starts[:-1], starts[1:]):
        w0, w1 = int(a) >> 6, (int(b) + 63) >> 6
        words = patterns[:, w0:w1] & _bit_mask(patterns.shape[1], int(a), int(b))[w0:w1]
        key = np.ascontiguousarray(np.concatenate([ids[-1][:, None].view(np.uint64), words], axis=1))
        _, inverse = np.unique(key.view(np.dtype((np.void, 8 * key.shape[1]))).ravel(), return_inverse=True)
        ids.append(inverse.ravel().astype(np.int64))
    return ids


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


class _Lines(NamedTuple):
    """The interior edges of a 2-D partition grouped by the line they lie on (see :func:`_polygons`)."""

    inner: np.ndarray  # (n,) ring vertex id of each edge's first end
    d: np.ndarray  # (n, 2) unit direction of each edge's line
    order: np.ndarray  # edges by line, then by lo (checks.key_order)
    starts: np.ndarray  # where each line's run starts in order, the end last
    lo: np.ndarray  # (n,) each edge's ends along its line, lo <= hi
    hi: np.ndarray
    forward: np.ndarray  # (n,) bool: the edge runs along d (its region lies on the left)


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
        return 0, gaps, no_pairs, _Lines(inner, np.zeros((0, 2)), *(np.zeros(0, np.int64),) * 2,
                                         *(np.zeros(0),) * 2, np.zeros(0, dtype=bool))
    lay = part.edge_layer[inner].astype(np.int64)
    neu = part.edge_neuron[inner].astype(np.int64)
    reg = region[inner]
    # a line: one neuron's zero set in one cell of the layers before it (regions sharing those bits)
    offsets = _layer_offsets(part)
    prefix = np.stack(_prefix_ids(part.patterns, offsets[: len(part.net.hidden)]))
    _, group = np.unique(prefix[lay, reg] * np.int64(offsets[-1] + 1) + offsets[lay] + neu, return_inverse=True)
    group = group.ravel()
    a, b = p0[inner], p1[inner]
    length = np.linalg.norm(b - a, axis=1)
    # one direction per group: that of its longest edge
    n_groups = int(group.max()) + 1
    best = checks.longest_of_group(group, length, n_groups)[group]
    d = (b - a)[best] / length[best][:, None]
    s0 = np.einsum("ij,ij->i", a, d)
    s1 = np.einsum("ij,ij->i", b, d)
    balance = np.bincount(group, weights=s1 - s0, minlength=n_groups)
    size = np.bincount(group, weights=length, minlength=n_groups)
    uncovered = int((np.abs(balance) > tol + 1e-9 * size).sum())
    lo, hi, forward = np.minimum(s0, s1), np.maximum(s0, s1), s1 > s0
    order, starts = checks.key_order(group, lo, n_groups)
    e, f, m0, m1 = checks.edge_overlaps(order, starts, lo, hi, forward, tol)
    # a point of each overlap: its middle, on the edge's line
    mids = a[e] + (0.5 * (m0 + m1) - s0[e])[:, None] * d[e]
    pairs = (reg[e], reg[f], mids, lay[e], neu[e])
    return uncovered, gaps, pairs, _Lines(inner, d, order, starts, lo, hi, forward)


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


def _bad_neighbours(part, left, right, points, layer, neuron) -> int:
    """Neighbour pairs whose patterns do not differ as the shared edge says they must.

    Pairs that differ in the edge's neuron alone pass at once; the others are
    checked in chunks of :data:`PAIR_CHUNK`, with a forward pass at their points.
    """
    offsets = _layer_offsets(part)
    is_max = np.array([lyr.is_max for lyr in part.net.hidden], dtype=bool)
    bad = 0
    for s in range(0, len(left), PAIR_CHUNK):
        rows = slice(s, s + PAIR_CHUNK)
        lay = layer[rows]
        plain = ~is_max[lay] & checks.differ_in_only(part.patterns, left[rows], right[rows],
                                                     offsets[lay] + neuron[rows])
        keep = np.flatnonzero(~plain)
        if len(keep):
            bad += _bad_pairs(part, left[rows][keep], right[rows][keep], points[rows][keep], lay[keep],
                              neuron[rows][keep])
    return bad


def _bad_pairs(part, left, right, points, layer, neuron) -> int:
    """:func:`_bad_neighbours` of pairs that differ in more than the edge's neuron."""
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
    # scale: each layer's largest pre-activation at these points and the domain's corners
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
    neurons that vanish on the ray between them. ``lines`` (:class:`_Lines`,
    from :func:`_polygons`) holds the interior edges grouped by the line each
    lies on. Nets with max layers are not checked (their tie edges are not
    grouped into lines).
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
    order = checks.key_order(cl, rel, n)[0]
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
    plain = checks.differ_in_only(part.patterns, reg[i], reg[j], bit0[j])
    i, j = i[~plain], j[~plain]
    dist = 0.5 * np.minimum(len1[i], len0[j])
    ray = rep[cl[j]] + dist[:, None] * np.stack([np.cos(start[j]), np.sin(start[j])], axis=1)
    bad[cl[i[_pattern_jumps(part, reg[i], reg[j], ray)]]] = True
    return int(bad.sum())


def _clusters(v: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices within ``tol`` of each other (transitively) as one point: the label of each (V,)
    and one vertex of each label (n, 2)."""
    cid, first = checks.relabel_roots(checks.point_clusters(v, tol))
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
    inner = lines.inner
    q_cl, cand = checks.through_hits(lines.order, lines.starts, lines.lo, lines.hi, lines.forward, cid[inner],
                                     cid[nxt[inner]], rep, lines.d, tol)
    a, b = v[inner[cand]], v[nxt[inner[cand]]]
    out = _sectors(q_cl, region[inner[cand]], rep[q_cl], a, b)
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
