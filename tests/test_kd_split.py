"""The k-D splitting kernels against numpy: the sign pass, which decides most neurons from a box around
the cell, must give the bits and cuts of every vertex's value (neurons whose extreme vertex sits at the
tolerance, on it, or through a vertex); the pieces of a cube cut by degenerate planes (three through one
line, one through three vertices) must be the regions a brute-force vertex enumeration finds."""

import itertools

import numpy as np
import pytest
from scipy.spatial import ConvexHull

import relugeo as rg
from relugeo.kernels import cpu_kd
from relugeo.regions import engine, engine_kd
from relugeo.regions.polytopes import hull_facets

TOL = engine.DEFAULT_TOL


def vertex_signs(pre, off, X, uscale, slopes):
    """bits (C, n) uint8 and the cutting neurons of every cell, from each vertex's value summed term by
    term (u_0 first, the bias last), as the kernels sum it."""
    C, k1, n = pre.shape
    k = k1 - 1
    bits = np.zeros((C, n), dtype=np.uint8)
    cuts = []
    for c in range(C):
        x = X[off[c] : off[c + 1]]
        v = np.zeros((len(x), n))
        for r in range(k):
            v = v + pre[c, r][None, :] * x[:, r : r + 1]
        v = v + pre[c, k][None, :]
        eps = TOL * (np.abs(pre[c, :k]).sum(axis=0) * uscale[c] + np.abs(pre[c, k]))
        pos = v.max(axis=0) > eps
        cut = pos & (v.min(axis=0) < -eps) & (slopes != 1.0)
        bits[c] = pos & ~cut & (slopes != 1.0)
        cuts.append(np.flatnonzero(cut))
    return bits, cuts


@pytest.mark.parametrize("polytope", ["cube", "skewed"])
def test_box_decided_signs_equal_vertex_signs(polytope):
    """On the cube the box is the cell itself, so the box bound meets the tolerance exactly at the
    neurons built to sit there; on the skewed polytope the box is much larger than the cell."""
    rng = np.random.default_rng(0)
    k = 3
    if polytope == "cube":
        pts = np.array(list(itertools.product([-1.0, 1.0], repeat=k)))
    else:
        pts = rng.normal(size=(9, k)) * np.array([1.0, 0.3, 2.0])
    verts, _, inc = hull_facets(pts, "test polytope")
    C = 6
    W = rng.normal(size=(40, k))
    W[0] = 0.0  # a zero neuron
    W[1] = W[2]  # a duplicate
    # on cell 0, the lowest vertex at -eps * f (a cut when f > 1), then the highest at +eps * f
    # (positive somewhere when f > 1)
    lo_v = (verts @ W.T).min(axis=0)
    hi_v = (verts @ W.T).max(axis=0)
    g = np.abs(W).sum(axis=1) * np.abs(verts).max()
    b = rng.normal(size=40)
    f = np.array([1.0, 1.0 + 1e-3, 1.0 - 1e-3, 0.0, 2.0])
    b[3:8] = -lo_v[3:8] - TOL * (g + np.abs(lo_v))[3:8] * f
    b[8:13] = -hi_v[8:13] + TOL * (g + np.abs(hi_v))[8:13] * f
    b[13] = -(verts[0] @ W[13])  # through a vertex
    b[14] = -(verts[0] @ W[14]) + 1e-3  # just off it
    net = rg.PWANet([rg.AffineLayer(W, b, 0.0), rg.AffineLayer(np.ones((1, 40)), np.zeros(1), None)])
    # cell 0 at the origin, the others at random points (the same polytope, other biases)
    origins = np.concatenate([np.zeros((1, k)), rng.normal(size=(C - 1, k)) * 0.5])
    roots = engine_kd.root_batch(net, origins, np.eye(k), verts, inc)
    slopes = np.zeros(40)
    slopes[15:18] = 1.0  # pass-through neurons never cut
    bits, cuts, ncut, _, _, _ = cpu_kd.split_polytopes_count(roots.pre, roots.off, roots.X, roots.I, roots.uscale,
                                                             TOL, roots.n_domain_facets, slopes)
    want_bits, want_cuts = vertex_signs(roots.pre, roots.off, roots.X, roots.uscale, slopes)
    np.testing.assert_array_equal(bits, want_bits)
    for c in range(C):
        np.testing.assert_array_equal(cuts[c, : ncut[c]], want_cuts[c])
    # on cell 0 the neurons near the tolerance fall on the side the rule gives them (f = 1 is either side)
    assert set(cuts[0, : ncut[0]]) >= {4, 7, 9, 12} and not set(cuts[0, : ncut[0]]) & {5, 6, 10, 11}
    assert bits[0, [5, 6]].all() and not bits[0, [10, 11]].any()


def brute_vertices(A, c):
    """Vertices of {u : A u + c >= 0} (A (F, k), c (F,)): every solvable k-tuple of planes whose point
    meets all the constraints, deduplicated."""
    k = A.shape[1]
    pts = []
    for tup in itertools.combinations(range(len(A)), k):
        M = A[list(tup)]
        if abs(np.linalg.det(M)) < 1e-12:
            continue
        u = np.linalg.solve(M, -c[list(tup)])
        if (A @ u + c >= -1e-9).all() and not any(np.abs(u - p).max() < 1e-9 for p in pts):
            pts.append(u)
    return np.array(pts).reshape(-1, k)


PLANES = {
    # x = 0, y = 0 and x + y = 0 meet in one line (k = 3) or one 2-flat (k = 4), whose vertices are not
    # simple; the last plane goes through k of the cube's vertices; in k = 4, z + w = 0.3 separates
    # opposite corners of the square face on that 2-flat, which share k - 1 planes but span no edge
    3: ([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, -0.3], [1, 1, 1, -1]], 18),
    4: ([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, -0.3], [1, 1, 1, 1, -2]], None),
}


@pytest.mark.parametrize("k", sorted(PLANES))
def test_split_pieces_are_the_brute_force_regions(k):
    verts, eqs, inc = hull_facets(np.array(list(itertools.product([-1.0, 1.0], repeat=k))), "the cube")
    planes = np.array(PLANES[k][0], dtype=float)
    bits = np.zeros((len(verts), 64), dtype=np.uint8)
    bits[:, : inc.shape[1]] = inc
    inc64 = np.packbits(bits, axis=1, bitorder="little").view(np.uint64)
    pieces = cpu_kd.split_polytope(verts, inc64, planes, uscale=1.0, fbase=inc.shape[1])
    # the cube's facets as A u + c >= 0 (hull equations point outwards)
    A0, c0 = -eqs[:, :k], -eqs[:, k]
    want = {}
    for sides in itertools.product([0, 1], repeat=len(planes)):
        s = np.where(np.array(sides) == 1, 1.0, -1.0)[:, None]
        v = brute_vertices(np.vstack([A0, s * planes[:, :k]]), np.concatenate([c0, s[:, 0] * planes[:, k]]))
        if len(v) > k and np.linalg.matrix_rank(v - v.mean(axis=0), tol=1e-9) == k:
            want[sides] = v
    assert len(pieces) == len(want) == (PLANES[k][1] or len(want))
    total = 0.0
    for X, _, sides in pieces:
        v = want[tuple(int(x) for x in sides)]
        assert len(X) == len(v)
        assert all(np.abs(v - x).max(axis=1).min() < 1e-9 for x in X)
        total += ConvexHull(X).volume
    assert total == pytest.approx(2.0**k, rel=1e-12)
