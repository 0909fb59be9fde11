"""A slow, deliberately simple oracle for the activation regions of an MLP on a k-D domain.

It shares no code with relugeo (numpy and scipy's linprog only). The domain
is given by halfspaces ``A u <= c`` (not by vertices), and the network's
layers are the ``(W, b, slope)`` tuples of ``tests/oracle.py``.

Method: a depth-first search over sign choices, neuron by neuron and layer
by layer. A node is a polyhedron ``A u <= c`` (the domain and the signs chosen
so far); the layer's pre-activations on it are read off by forwarding the
points 0 and e_1..e_k with the earlier layers' masks held fixed. Choosing
``z_j > 0`` or ``z_j < 0`` adds a halfspace; a choice is kept when the
polyhedron still holds a ball of radius > ``RADIUS_RTOL`` times the domain's
size (the Chebyshev-centre LP). Every leaf is one region.
"""

from __future__ import annotations

import itertools

import numpy as np
from oracle import forward_fixed
from scipy.optimize import linprog

RADIUS_RTOL = 1e-7


def cube_halfspaces(k, radius):
    """``|u_i| <= r``: A (2k, k), c (2k,)."""
    A = np.concatenate([np.eye(k), -np.eye(k)])
    return A, np.full(2 * k, float(radius))


def cross_polytope_halfspaces(k, radius):
    """``sum_i s_i u_i <= r`` for every sign vector s: A (2^k, k), c (2^k,)."""
    A = np.array(list(itertools.product([-1.0, 1.0], repeat=k)))
    return A, np.full(len(A), float(radius))


def chebyshev_radius(A, c):
    """Radius of the largest ball inside ``A u <= c`` (capped at 1e6); -inf when empty."""
    k = A.shape[1]
    norms = np.linalg.norm(A, axis=1)
    res = linprog(np.r_[np.zeros(k), -1.0], A_ub=np.c_[A, norms], b_ub=c,
                  bounds=[(None, None)] * k + [(None, 1e6)], method="highs")
    return -res.fun if res.status == 0 else -np.inf


def oracle_patterns_kd(layers, origin, basis, A, c, size):
    """The set of activation patterns (tuples of 0/1 over the hidden neurons) of the regions
    of the domain ``A u <= c`` in the slice ``x = origin + basis @ u``."""
    k = basis.shape[1]
    probes = origin + np.concatenate([np.zeros((1, k)), np.eye(k)]) @ basis.T
    min_radius = RADIUS_RTOL * size
    found = set()

    def descend(layer, A, c, masks, bits):
        if layer == len(layers) - 1:
            found.add(tuple(bits))
            return
        z = forward_fixed(layers, masks, probes)
        z0, G = z[0], z[1:] - z[0]
        n = len(z0)
        slopes = np.broadcast_to(np.asarray(layers[layer][2], dtype=np.float64), (n,))

        def choose(j, A, c, signs):
            if j == n:
                descend(layer + 1, A, c, masks + [np.array(signs)],
                        bits + [int(s and slopes[i] != 1.0) for i, s in enumerate(signs)])
                return
            for positive in (True, False):
                sgn = 1.0 if positive else -1.0
                # positive: -G_j u <= z0_j ; negative: G_j u <= -z0_j
                A2 = np.vstack([A, -sgn * G[:, j]])
                c2 = np.append(c, sgn * z0[j])
                if chebyshev_radius(A2, c2) > min_radius:
                    choose(j + 1, A2, c2, signs + [positive])

        choose(0, A, c, [])

    descend(0, A, c, [], [])
    return found


def sample_in_halfspaces(A, c, radius, n, seed=0):
    """``n`` uniform points of the cube ``[-r, r]^k`` kept where ``A u < c``."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-radius, radius, size=(n, A.shape[1]))
    return u[(u @ A.T < c).all(axis=1)]
