"""Max-pool layers on k-D domains: the regions of a max-then-ReLU net on a 3-D cube against an LP
enumerator of winner and sign choices written here, dense sampling and volume sums."""

import numpy as np
import pytest
from oracle_kd import chebyshev_radius, cube_halfspaces

import relugeo as rg


def max_relu_oracle(W1, b1, windows, W2, b2, origin, basis, A, c, size):
    """Patterns (tuples of 0/1: one-hot winners per window, then ReLU signs) of the regions of
    ``relu(W2 max_windows(W1 x + b1) + b2)`` on ``A u <= c``, x = origin + basis @ u."""
    G1, z1 = W1 @ basis, W1 @ origin + b1
    n_win, m = windows.shape
    found = set()
    tiny = 1e-7 * size

    def pick(w, A, c, won):
        if w == n_win:
            idx = windows[np.arange(n_win), won]
            G2, z2 = W2 @ G1[idx], W2 @ z1[idx] + b2
            signs(0, A, c, G2, z2, [int(j == s) for j in won for s in range(m)])
            return
        for j in range(m):
            a, o = windows[w, j], [windows[w, i] for i in range(m) if i != j]
            A2 = np.vstack([A, G1[o] - G1[a]])  # z_o - z_a <= 0
            c2 = np.append(c, z1[a] - z1[o])
            if chebyshev_radius(A2, c2) > tiny:
                pick(w + 1, A2, c2, won + [j])

    def signs(i, A, c, G2, z2, bits):
        if i == len(z2):
            found.add(tuple(bits))
            return
        for positive in (1, 0):
            s = 1.0 if positive else -1.0
            A2, c2 = np.vstack([A, -s * G2[i]]), np.append(c, s * z2[i])
            if chebyshev_radius(A2, c2) > tiny:
                signs(i + 1, A2, c2, G2, z2, bits + [positive])

    pick(0, A, c, [])
    return found


def test_max_pool_net_on_a_cube_equals_the_oracle():
    rng = np.random.default_rng(2)
    D, k, r = 4, 3, 1.5
    windows = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    W1, b1 = rng.normal(size=(9, D)), rng.normal(size=9) * 0.3
    W2, b2 = rng.normal(size=(4, 3)), rng.normal(size=4) * 0.3
    net = rg.PWANet([rg.AffineLayer(W1, b1, None, windows), rg.AffineLayer(W2, b2, 0.0),
                     rg.AffineLayer(np.ones((1, 4)), np.zeros(1), None)])
    origin, basis = rng.normal(size=D) * 0.2, np.linalg.qr(rng.normal(size=(D, k)))[0]
    part = rg.partition(net, rg.Slice.cube(origin, basis, r))
    bits = np.unpackbits(part.patterns.view(np.uint8), axis=1, bitorder="little")[:, :13]
    ours = {tuple(int(v) for v in row) for row in bits}
    want = max_relu_oracle(W1, b1, windows, W2, b2, origin, basis, *cube_halfspaces(k, r), size=r)
    assert part.n_regions == len(ours) == len(want) > 20
    assert ours == want
    rep = part.verify()
    assert rep["volume_rel_error"] <= 1e-9 and rep["certificate_failures"] == 0
    u = rng.uniform(-r, r, size=(20000, k))
    sampled = np.unpackbits(net.patterns(origin + u @ basis.T).view(np.uint8), axis=1, bitorder="little")[:, :13]
    assert {tuple(int(v) for v in row) for row in sampled} <= ours
    # regions across a tie differ in two bits (the two slots), across a ReLU facet in one
    g = part.adjacency()
    assert set(np.unique(g.flips).tolist()) == {1, 2}
    # exact LC at P = 3 counts the same regions as partition() of the same cross-polytope
    lc = rg.local_complexity(net, origin[None], 1.0, dim=3)
    assert lc.regions[0] == rg.partition(net, rg.Slice.cross_polytope(origin, lc.frame, 1.0)).n_regions


def test_identical_slots_tie_to_the_first():
    """Two slots with the same map: the first wins everywhere, as in the forward pass."""
    W1 = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    net = rg.PWANet([rg.AffineLayer(W1, np.zeros(4), None, np.array([[0, 1], [2, 3]])),
                     rg.AffineLayer(np.ones((1, 2)), np.zeros(1), None)])
    part = rg.partition(net, rg.Slice.cube(np.zeros(3), np.eye(3), 1.0))
    assert part.n_regions == 2  # window 1 never changes winner; window 2 splits on y = z
    part.verify()
    assert pytest.approx(part.volumes.sum()) == 8.0
