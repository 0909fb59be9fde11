"""k-D region graph and boundary measure: adjacency against an LP brute force (two regions are adjacent
iff their patterns differ in one neuron and the facet between them holds a (k-1)-ball), and facet
measures against the hyperplanes' cross-sections of the domain computed from the domain's edges."""

import itertools

import numpy as np
import pytest
from common import random_net
from oracle import forward_fixed
from oracle_kd import cube_halfspaces, oracle_patterns_kd
from scipy.optimize import linprog
from scipy.spatial import ConvexHull

import relugeo as rg


def to_pwanet(layers):
    return rg.PWANet([rg.AffineLayer(W, b, act) for W, b, act in layers])


def pattern_tuples(patterns, n_bits):
    bits = np.unpackbits(np.ascontiguousarray(patterns).view(np.uint8), axis=1, bitorder="little")[:, :n_bits]
    return [tuple(int(v) for v in row) for row in bits]


def facet_radius(layers, origin, basis, A, c, pattern, g):
    """Radius of the largest (k-1)-ball in the zero set of neuron ``g`` inside the closure of the region
    of ``pattern`` (plain ReLU bits), by LP; -inf when there is none."""
    k = basis.shape[1]
    probes = origin + np.concatenate([np.zeros((1, k)), np.eye(k)]) @ basis.T
    rows, rhs, masks, start = [A], [c], [], 0
    eq = None
    for layer in range(len(layers) - 1):
        z = forward_fixed(layers, masks, probes)
        z0, G = z[0], z[1:] - z[0]
        n = len(z0)
        bits = np.array(pattern[start : start + n], dtype=bool)
        for j in range(n):
            if start + j == g:
                eq = (G[:, j], -z0[j])
            elif bits[j]:
                rows.append(-G[:, j][None]), rhs.append([z0[j]])
            else:
                rows.append(G[:, j][None]), rhs.append([-z0[j]])
        masks.append(bits)
        start += n
    Aub, cub = np.vstack(rows), np.concatenate(rhs)
    normal = eq[0] / np.linalg.norm(eq[0])
    along = Aub - np.outer(Aub @ normal, normal)  # each row's part within the hyperplane
    res = linprog(np.r_[np.zeros(k), -1.0], A_ub=np.c_[Aub, np.linalg.norm(along, axis=1)], b_ub=cub,
                  A_eq=np.r_[eq[0], 0.0][None], b_eq=[eq[1]], bounds=[(None, None)] * k + [(None, 1e6)],
                  method="highs")
    return -res.fun if res.status == 0 else -np.inf


def test_kd_adjacency_equals_lp_brute_force():
    k, widths, r = 3, (5, 4), 1.5
    layers = random_net(3, widths, input_dim=5)
    rng = np.random.default_rng(3)
    origin = rng.normal(size=5) * 0.3
    basis = np.linalg.qr(rng.normal(size=(5, k)))[0]
    A, c = cube_halfspaces(k, r)
    part = rg.partition(to_pwanet(layers), rg.Slice.cube(origin, basis, r))
    n_bits = sum(widths)
    pats = pattern_tuples(part.patterns, n_bits)
    assert set(pats) == oracle_patterns_kd(layers, origin, basis, A, c, size=r)

    want = set()
    for p, q in itertools.combinations(sorted(pats), 2):
        diff = [i for i in range(n_bits) if p[i] != q[i]]
        if len(diff) == 1 and facet_radius(layers, origin, basis, A, c, p, diff[0]) > 1e-7 * r:
            want.add((p, q))
    g = part.adjacency()
    got = {tuple(sorted((pats[a], pats[b]))) for a, b in g.pairs}
    assert len(want) > 15 and got == want
    assert (g.flips == 1).all() and (g.length > 0).all()
    # the crossed neuron is the bit in which the two patterns differ
    starts = np.r_[0, np.cumsum(widths)]
    crossed = starts[g.layer] + g.neuron
    differ = [next(i for i in range(n_bits) if pats[a][i] != pats[b][i]) for a, b in g.pairs]
    assert crossed.tolist() == differ
    m = g.matrix()
    assert m.shape == (part.n_regions, part.n_regions) and abs(m - m.T).max() == 0
    # every interior facet is shared: the graph's measures sum to the boundary measure
    assert g.length.sum() == pytest.approx(part.boundary_measure, rel=1e-9)
    assert g.to_networkx(part).number_of_edges() == g.n_edges


def cross_section_areas(W, b, corners, edges):
    """Area of each hyperplane ``W[i] @ u + b[i] = 0`` inside the 3-D polytope with vertices ``corners`` and
    edges ``edges`` (pairs of vertex indices): the 2-D hull of the planes' crossings of the edges."""
    out = []
    for w, b0 in zip(W, b):
        s = corners @ w + b0
        pts = [corners[i] + s[i] / (s[i] - s[j]) * (corners[j] - corners[i]) for i, j in edges if s[i] * s[j] < 0]
        if len(pts) < 3:
            out.append(0.0)
            continue
        pts = np.array(pts)
        e1 = np.cross(w, [1.0, 0.0, 0.0] if abs(w[0]) < 0.9 * np.linalg.norm(w) else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(w / np.linalg.norm(w), e1)
        out.append(ConvexHull(np.c_[pts @ e1, pts @ e2]).volume)
    return np.array(out)


def test_kd_boundary_measure_of_one_layer_is_the_planes_cross_sections():
    rng = np.random.default_rng(11)
    W, b = rng.normal(size=(6, 3)), rng.normal(size=6) * 0.4
    layers = [(W, b, 0.0), (np.ones((1, 6)), np.zeros(1), None)]
    r = 1.0
    cube = np.array(list(itertools.product([-r, r], repeat=3)))
    edges = [(i, j) for i, j in itertools.combinations(range(8), 2) if np.abs(cube[i] - cube[j]).sum() == 2 * r]
    want = cross_section_areas(W, b, cube, edges)
    assert (want > 0).sum() >= 4
    part = rg.partition(to_pwanet(layers), rg.Slice.cube(np.zeros(3), np.eye(3), r))
    assert part.boundary_measure == pytest.approx(want.sum(), rel=1e-9)
    g = part.adjacency()
    per_neuron = np.bincount(g.neuron, g.length, minlength=6)
    np.testing.assert_allclose(per_neuron, want, rtol=1e-9, atol=1e-12)


def test_kd_lc_boundary_density_of_one_layer():
    """Exact LC at P = 3: the density is the planes' cross-sections of the octahedron over its volume,
    for the hidden planes of a one-layer net and for the logit's zero set of a net that is affine there."""
    rng = np.random.default_rng(12)
    D, r = 5, 0.8
    W1, b1 = rng.normal(size=(5, D)), rng.normal(size=5) * 0.3
    W2 = rng.normal(size=(1, 5))
    X = rng.normal(size=(2, D)) * 0.2
    octa = np.concatenate([r * np.eye(3), -r * np.eye(3)])
    edges = [(i, j) for i, j in itertools.combinations(range(6), 2) if abs(i - j) != 3]
    volume = (2 * r) ** 3 / 6

    net = to_pwanet([(W1, b1, 0.0), (W2, np.zeros(1), None)])
    lc = rg.local_complexity(net, X, r, dim=3, density_kd=True)
    V = lc.frame
    for i, x in enumerate(X):
        hidden = cross_section_areas(W1 @ V, W1 @ x + b1, octa, edges)
        assert (hidden > 0).sum() >= 2
        assert lc.boundary_density[i] == pytest.approx(hidden.sum() / volume, rel=1e-9)
        part = rg.partition(net, rg.Slice.cross_polytope(x, V, r))
        assert part.boundary_measure / part.domain_volume == pytest.approx(lc.boundary_density[i], rel=1e-9)
    assert np.isnan(rg.local_complexity(net, X, r, dim=3).boundary_density).all()

    # every hidden neuron active on the neighbourhoods: the logit is one affine map there
    b_on = np.full(5, 50.0)
    b2 = -W2 @ (W1 @ X[0] + b_on) + 0.1
    affine = to_pwanet([(W1, b_on, 0.0), (W2, b2, None)])
    lc_all = rg.local_complexity(affine, X[:1], r, dim=3, layers="all", density_kd=True)
    logit = cross_section_areas(W2 @ W1 @ V, W2 @ (W1 @ X[0] + b_on) + b2, octa, edges)
    assert logit[0] > 0 and lc_all.neurons[0].tolist() == [0, 1]
    assert lc_all.boundary_density[0] == pytest.approx(logit[0] / volume, rel=1e-9)
