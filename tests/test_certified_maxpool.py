"""Certified predicates on max layers (max-pooling), held to the exact-rational oracle.

Each case's regions are found with Fractions throughout (``tests/exact_oracle.py``,
which cuts a cell by every tie of a window and reads the winners at each piece's
centroid) and compared with the engine's: same patterns, none repeated, areas
within rounding; ``verify()`` must pass too. The cases are ties the float
filter cannot decide: duplicated candidates, identical rows, near ties, many
tie lines through one vertex, quantised weights.
"""

from fractions import Fraction

import numpy as np
import pytest
from common import Case, hidden, line_x, plane, readout
from exact_oracle import exact_partition
from test_exact_oracle import assert_exact
from test_partition import to_pwanet
from test_partition_mixed import mixed_net

import relugeo as rg
from relugeo.kernels.certified import tie_bound
from relugeo.regions.certify import Certifier
from relugeo.regions.complexity import cross_polytope, frame


def pool(W, b, windows, keep=()):
    """A max layer ``(W, b, ("max", windows, keep))`` of the oracle's form."""
    W = np.asarray(W, dtype=np.float64).reshape(len(b), -1)
    return W, np.asarray(b, dtype=np.float64), ("max", np.asarray(windows, dtype=np.int64),
                                                np.asarray(keep, dtype=np.int64))


# rows through the origin at eight angles: every tie of two of them passes through the origin
STAR = [[1, 0], [0, 1], [-1, 0], [0, -1], [1, 1], [-1, 1], [1, -0.5], [-0.5, -1]]
CROSS = [[1, 0], [0, 1], [1, 1], [1, -1]]


def _near_band(delta, dim):
    """max(u, delta, -u) along u = y (2-D) or x (1-D): the constant wins on a band of width 2 delta."""
    u = [0, 1] if dim == 2 else [1, 0]
    return [pool([u, [0, 0], [-v for v in u]], [0, delta, 0], [[0, 1, 2]]), readout(1)]


def degenerate_cases():
    """Named max-pool cases (2-D and 1-D), with the exact count where it is known by hand."""
    dup = [hidden(CROSS, [0, 0, 0.25, -0.125]), pool(np.eye(4), np.zeros(4), [[0, 0, 1], [2, 3, 2]]), readout(2)]
    twin_rows = [pool([[1, 0.5], [1, 0.5], [0, 1], [0.25, -1]], [0.125, 0.125, 0, 0], [[0, 1, 2], [1, 3, -1]]),
                 readout(2)]
    near_const = [pool([[1, 0], [1, 0], [0, 1]], [0, 1e-17, 0.5], [[0, 1, 2]], keep=[2]), readout(2)]
    star = [pool(STAR, np.zeros(8), [list(range(8))]), readout(1)]
    deep_star = [hidden(CROSS, np.zeros(4)), pool(np.array(STAR)[:, [0, 1, 0, 1]] * [1, 1, 0.5, -0.25], np.zeros(8),
                                                  [[0, 1, 2, 3], [4, 5, 6, 7]]),
                 hidden([[1, -1], [0.5, 1]], [0, 0]), readout(2)]
    cases = []
    for dim in (2, 1):
        domain = plane() if dim == 2 else line_x(-1.0, 1.0)
        d = f"{dim}d"
        cases += [
            Case(f"duplicated_member_{d}", dup, *domain),
            Case(f"identical_rows_{d}", twin_rows, *domain),
            Case(f"near_tie_1e-17_{d}", near_const, *domain),
            Case(f"near_band_1e-13_{d}", _near_band(1e-13, dim), *domain, expected=3),
            Case(f"near_band_1e-300_{d}", _near_band(1e-300, dim), *domain, expected=3),
            Case(f"star_ties_{d}", star, *domain, expected=6 if dim == 2 else 2),
            Case(f"star_ties_after_relu_{d}", deep_star, *domain),
        ]
    return cases


def quantised_pool_net(seed, dim_in=2, width=6, pool_first=False):
    """A random net with weights k/4 and biases k/8: [ReLU,] a max layer (windows of 2 or 3 with
    padding and a repeated candidate, kept neurons), a leaky ReLU, the logits."""
    rng = np.random.default_rng(seed)

    def q(n_out, n_in):
        return rng.integers(-4, 5, size=(n_out, n_in)) / 4.0, rng.integers(-4, 5, size=n_out) / 8.0

    layers = [] if pool_first else [hidden(*q(width, dim_in))]
    n_in = dim_in if pool_first else width
    m = int(rng.integers(2, 4))
    windows = rng.integers(0, width, size=(2, m))
    windows[0, -1] = -1 if m == 3 else windows[0, -1]
    keep = rng.choice(width, size=1)
    layers.append(pool(*q(width, n_in), windows, keep))
    layers.append(hidden(*q(4, 3), 0.25))
    layers.append(readout(4))
    return layers


def near_ties(layers, seed, delta=1e-13):
    """``layers`` with about a third of the max layer's weights moved by +-delta: ties near the exact ones."""
    rng = np.random.default_rng(seed)
    W, b, act = layers[1]
    moved = W + (rng.random(W.shape) < 0.3) * rng.choice([-delta, delta], W.shape)
    return [layers[0], (moved, b, act), *layers[2:]]


QUANTISED = [Case(f"quantised_pool_s{seed}_{'first' if first else 'relu'}_{dim}d",
                  quantised_pool_net(seed, pool_first=first), *(plane() if dim == 2 else line_x(-1.0, 1.0)))
             for seed, first, dim in [(0, False, 2), (1, True, 2), (2, False, 2), (3, True, 2), (4, False, 1),
                                      (5, True, 1), (6, False, 1)]]
QUANTISED += [Case(f"quantised_pool_near_ties_s{seed}_{dim}d", near_ties(quantised_pool_net(seed), seed),
                   *(plane() if dim == 2 else line_x(-1.0, 1.0))) for seed, dim in [(0, 2), (2, 2), (6, 1)]]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in degenerate_cases() + QUANTISED])
def test_certified_max_layers_against_exact_oracle(case):
    part = assert_exact(case, predicates="certified")
    assert part.verify()["ok"]


def test_the_oracle_counts_max_pool_cases_by_hand():
    for case in degenerate_cases():
        if case.expected is not None:
            assert len(exact_partition(case.layers, case.origin, case.basis, case.vertices)) == case.expected, case
    # the repeated candidate (slot 2 of window 1 is slot 0's neuron) and the twin row never win
    for name, never in (("duplicated_member_2d", 5), ("identical_rows_2d", 1)):
        case = next(c for c in degenerate_cases() if c.name == name)
        assert all(p[never] == 0 for p in exact_partition(case.layers, case.origin, case.basis, case.vertices))
    # max(x, x + 1e-17, y + 0.5): the second candidate beats the first everywhere
    case = next(c for c in degenerate_cases() if c.name == "near_tie_1e-17_2d")
    assert {p[:3] for p in exact_partition(case.layers, case.origin, case.basis, case.vertices)} == {(0, 1, 0),
                                                                                                   (0, 0, 1)}


@pytest.mark.parametrize("name", ["near_tie_1e-17_2d", "star_ties_2d", "star_ties_1d", "near_band_1e-300_2d"])
def test_undecided_max_cells_go_to_exact_arithmetic(name):
    case = next(c for c in degenerate_cases() if c.name == name)
    part = assert_exact(case, predicates="certified")
    assert part.n_exact_cells > 0
    # the sliver of width 2e-300 is there, with its length rounded
    if name.startswith("near_band_1e-300"):
        assert part.n_regions == 3 and 0 < np.sort(part.areas)[0] < 1e-299


def test_tolerance_mode_merges_the_sliver_certified_keeps():
    case = next(c for c in degenerate_cases() if c.name == "near_band_1e-13_2d")
    sl = rg.Slice(case.origin, case.basis, case.vertices)
    assert rg.partition(to_pwanet(case.layers), sl).n_regions < 3
    assert rg.partition(to_pwanet(case.layers), sl, predicates="certified").n_regions == 3


@pytest.mark.parametrize("k", [1, 2])
def test_certified_equals_tolerance_on_generic_max_nets(k):
    # generic float weights: the float filter decides every tie, and both modes agree
    layers = mixed_net(1)
    case = Case("generic", layers, *(plane() if k == 2 else line_x(-1.0, 1.0)))
    sl = rg.Slice(case.origin, case.basis, case.vertices)
    tol, cert = rg.partition(to_pwanet(layers), sl), assert_exact(case, predicates="certified")
    assert cert.n_exact_cells == 0
    assert set(map(bytes, cert.patterns)) == set(map(bytes, tol.patterns))
    np.testing.assert_allclose(np.sort(cert.areas), np.sort(tol.areas), rtol=1e-9, atol=1e-15)
    assert (cert.edge_neuron[cert.edge_layer == 1] < 2).all()  # tie edges carry the window, not the slot
    assert cert.verify()["ok"]


def test_certified_local_complexity_of_max_nets_counts_exact_regions():
    rng = np.random.default_rng(3)
    layers = quantised_pool_net(8, dim_in=3)
    X = rng.integers(-4, 5, size=(4, 3)) / 4.0
    lc = rg.local_complexity(to_pwanet(layers), X, 0.5, dim=2, predicates="certified")
    want = [len(exact_partition(layers, x, frame(3, 2, 0), cross_polytope(2, 0.5))) for x in X]
    assert lc.regions.tolist() == want


def test_tie_bound_holds_against_exact_arithmetic():
    rng = np.random.default_rng(0)
    for _ in range(200):
        pre = rng.normal(size=(1, 3, 2)) * 10.0 ** rng.integers(-8, 8, size=(1, 3, 1))
        pre[0, :, 1] = pre[0, :, 0] * (1 + rng.normal(size=3) * 10.0 ** rng.integers(-16, -2))  # near ties
        err = np.abs(rng.normal(size=(3, 2))) * 10.0 ** rng.integers(-20, -8, size=(3, 2))
        coefs = tie_bound(pre, err, 0, 0, 1)
        for r in range(3):
            for d0, d1 in ((-1, 1), (1, -1), (1, 1)):
                exact = (Fraction(pre[0, r, 0]) + d0 * Fraction(err[r, 0])
                         - Fraction(pre[0, r, 1]) - d1 * Fraction(err[r, 1]))
                assert abs(exact - Fraction(coefs[r])) <= Fraction(coefs[3 + r])


@pytest.mark.parametrize("k", [1, 2])
def test_pool_after_relu_decides_dead_units_from_the_pattern(k, monkeypatch):
    # a CNN's ReLU -> max-pool: where both units of a window are off, their tie is zero on the whole
    # cell, and a unit that is on beats one that is off; the cells' patterns decide both, so far fewer
    # cells go to exact arithmetic (none in 1-D; in 2-D ties through a vertex where two units' lines meet remain)
    rng = np.random.default_rng(5)
    windows = np.arange(8).reshape(4, 2)
    layers = [hidden(rng.normal(size=(8, 2)), rng.normal(size=8) * 0.5), pool(np.eye(8), np.zeros(8), windows),
              hidden(rng.normal(size=(3, 4)), rng.normal(size=3) * 0.5, 0.1), readout(3)]
    case = Case("relu_then_pool", layers, *(plane() if k == 2 else line_x(-2.0, 2.0)))
    part = assert_exact(case, predicates="certified")
    assert part.verify()["ok"]
    known = Certifier._equal_on_cells

    def twins_only(self, batch):
        rep, above = known(self, batch)
        return np.repeat(self._twins(batch.layer)[None, :], batch.n_cells, axis=0), np.zeros_like(above)

    monkeypatch.setattr(Certifier, "_equal_on_cells", twins_only)
    slow = assert_exact(case, predicates="certified")
    assert part.n_exact_cells < slow.n_exact_cells
    assert k == 2 or part.n_exact_cells == 0
