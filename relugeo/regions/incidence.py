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
- boundary edges lie on the domain's boundary and cover it.

The tie edges of max layers are not checked (a window has several tie lines
under one label).

Each check gives a count of failures; a partition that lost or merged a
region fails at least one of them.
"""

from __future__ import annotations

import numpy as np

LEN_RTOL = 1e-12  # lengths and gaps, relative to the domain's diameter
ZERO_RTOL = 1e-9  # a pre-activation this small (relative to its layer's largest) vanishes


def check_incidence(part) -> dict:
    """Failure counts of the combinatorial checks on a :class:`Partition` (all zero when it fits).

    Returns ``{"uncovered_edges": int, "boundary_gaps": int, "bad_neighbours": int}``.
    """
    if part.n_regions == 0:
        return {"uncovered_edges": 0, "boundary_gaps": 0, "bad_neighbours": 0}
    if part.dim == 1:
        uncovered, gaps, pairs = _intervals(part)
    else:
        uncovered, gaps, pairs = _polygons(part)
    return {"uncovered_edges": uncovered, "boundary_gaps": gaps, "bad_neighbours": _bad_neighbours(part, *pairs)}


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
        return 0, gaps, (np.zeros(0, np.int64),) * 2 + (np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(0, np.int64))
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
    return uncovered, gaps, pairs


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
