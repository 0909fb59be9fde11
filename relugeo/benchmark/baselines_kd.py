"""A naive k-D baseline: every region of a k-D slice (or of all of R^D) by per-cell LP feasibility.

A cell at hidden layer ``l`` is a polyhedron ``A u <= c`` (the domain's
facets and the signs chosen so far) with the affine map ``h(u) = u @ M + m``
of the layer's input. For each neuron in turn, each side is kept when the
cell still holds a ball of radius > ``1e-9`` times the domain's size (the
Chebyshev-centre LP of scipy's HiGHS, radius capped at 1e6 so that unbounded
cells of R^D have an optimum); every leaf is a region. It shares nothing
with the engine but the network's weights.
"""

from __future__ import annotations

import numpy as np

from ..nets.pwanet import PWANet
from ..regions.slices import Slice


def _radius(A: np.ndarray, c: np.ndarray) -> float:
    from scipy.optimize import linprog

    k = A.shape[1]
    norms = np.linalg.norm(A, axis=1)
    res = linprog(np.r_[np.zeros(k), -1.0], A_ub=np.c_[A, norms], b_ub=c,
                  bounds=[(None, None)] * k + [(None, 1e6)], method="highs")
    return -res.fun if res.status == 0 else -np.inf


def lp_partition(net: PWANet, sl: Slice) -> int:
    """The number of activation regions of ``net`` on the slice ``sl`` (k >= 3, or ``Slice.full``);
    dense two-slope layers."""
    if sl.is_full:
        k = net.input_dim
        A0, c0, basis, origin, size = np.zeros((0, k)), np.zeros(0), np.eye(k), np.zeros(k), 1.0
    else:
        k = sl.dim
        A0, c0 = sl.facets[:, :k], -sl.facets[:, k]
        basis, origin, size = sl.basis, sl.origin, float(np.abs(sl.vertices).max())
    hidden = net.hidden
    count = 0

    def visit(A, c, M, m, depth):
        nonlocal count
        if depth == len(hidden):
            count += 1
            return
        layer = hidden[depth]
        G = M @ layer.weight.T
        g = m @ layer.weight.T + layer.bias
        slopes = layer.slopes

        def choose(j, A, c, act):
            if j == len(g):
                s = np.where(act, 1.0, slopes)
                visit(A, c, G * s, g * s, depth + 1)
                return
            for positive in (True, False):
                sgn = 1.0 if positive else -1.0
                A2 = np.vstack([A, -sgn * G[:, j]])
                c2 = np.append(c, sgn * g[j])
                if _radius(A2, c2) > 1e-9 * size:
                    choose(j + 1, A2, c2, act + [positive])

        choose(0, A, c, [])

    visit(A0, c0, basis.T.copy(), origin.copy(), 0)
    return count
