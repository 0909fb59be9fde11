"""Exact local complexity in P-dimensional neighbourhoods, P = 3..8 (k-D cells)."""

from __future__ import annotations

import math

import numpy as np

from ..kernels import cpu_kd
from ..nets.pwanet import PWANet
from . import engine, engine_kd
from .facets_kd import cross_section_measure, neuron_facet_measure
from .polytopes import hull_facets


def _cross_polytope(k: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``+- r e_p`` (2k, k) and their facet incidences (2k, 2^k) bool."""
    v = np.stack([radius * np.eye(k), -radius * np.eye(k)], axis=1).reshape(2 * k, k)
    _, facets, inc = hull_facets(v, "the cross-polytope")
    return v, inc


def _add_bounding(bound: np.ndarray, b: engine_kd.CellBatchKD) -> None:
    """OR into ``bound`` (N, W) uint64, per root, the facet ids of the hyperplanes bounding its cells."""
    union = cpu_kd.cell_incidence_union(b.off, b.I)
    np.bitwise_or.at(bound, b.root, union)


def _bounding_hits(bound: np.ndarray, first: int, n: int) -> np.ndarray:
    """Facet ids ``first .. first + n - 1`` of ``bound`` (N, W) uint64 as (N, n) uint8 flags."""
    bits = np.unpackbits(bound.view(np.uint8), axis=1, bitorder="little")
    return bits[:, first : first + n]


def exact_kd(net: PWANet, X: np.ndarray, radius: float, V: np.ndarray, layers: str, device: str = "cpu",
             density: bool = False):
    """Neurons per layer (N, n_layers), regions (N,) and boundary densities (N,) of the
    cross-polytopes of radius ``radius`` spanned by the frame ``V`` (D, P) around the rows of ``X``.

    A neuron is counted at a point when its zero set cuts one of the point's
    cells. Without ``density`` the densities are NaN and the last hidden
    layer's regions are counted without being built (its cells are split by
    the count pass only). With it, every region is built and the density is
    the (P-1)-measure of the counted zero sets inside the neighbourhood per
    unit volume: half the summed measures of the regions' facets on hidden
    neurons (each such facet is shared by two regions), plus, with
    ``layers="all"``, the logits' zero sets in each region
    (:func:`.facets_kd.cross_section_measure`).
    """
    engine_kd._check_device(device)
    N = X.shape[0]
    k = V.shape[1]
    with_logits = layers == "all"
    widths = list(net.widths)
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    n_hidden = int(offsets[-1])
    H = n_hidden + (net.output_dim if with_logits else 0)
    counts = np.zeros(N, dtype=np.int64)
    hits = np.zeros((N, max(H, 1)), dtype=np.uint8)
    domain, inc = _cross_polytope(k, radius)
    roots = engine_kd.root_batch(net, X, V, domain, inc)
    bound = np.zeros((N, roots.I.shape[1]), dtype=np.uint64)  # facet ids bounding each point's cells
    tol = engine.DEFAULT_TOL
    depth = len(widths)

    def mark_cuts(b, ncut, cuts, first):
        cuts = cuts[:, : int(ncut.max(initial=0))]
        cell, j = np.nonzero(np.arange(cuts.shape[1])[None, :] < ncut[:, None])
        hits[b.root[cell], first + cuts[cell, j]] = 1

    shared = np.zeros(N)  # hidden zero sets: every facet measured from both sides
    own = np.zeros(N)  # logits' zero sets, once per region
    if with_logits or depth == 0 or density or net.layers[depth - 1].is_max:
        logit_slopes = np.zeros(net.output_dim)

        def consume(b: engine_kd.CellBatchKD) -> None:
            counts[:] += np.bincount(b.root, minlength=N)
            _add_bounding(bound, b)
            if density:
                nd = b.n_domain_facets
                np.add.at(shared, b.root, neuron_facet_measure(b.X, b.off, b.I, nd, nd + n_hidden))
            if with_logits:
                _, cuts, ncut, _, _, _ = cpu_kd.split_polytopes_count(
                    b.pre, b.off, b.X, b.I, b.uscale, tol, b.n_domain_facets + n_hidden, logit_slopes)
                mark_cuts(b, ncut, cuts, n_hidden)
                if density:
                    for c in np.flatnonzero(ncut):
                        x = b.X[b.off[c] : b.off[c + 1]]
                        for o in cuts[c, : ncut[c]]:
                            own[b.root[c]] += cross_section_measure(x, x @ b.pre[c, :k, o] + b.pre[c, k, o])

        engine.walk(net, roots, consume, device=device)
    else:
        last = depth - 1

        def consume(b: engine_kd.CellBatchKD) -> None:
            # the last layer's pieces are counted only: no map of the next layer is needed
            _, cuts, ncut, npieces, _, _ = cpu_kd.split_polytopes_count(
                b.pre, b.off, b.X, b.I, b.uscale, tol, b.facet_base(net), net.layers[last].slopes)
            counts[:] += np.bincount(b.root, weights=npieces, minlength=N).astype(np.int64)
            _add_bounding(bound, b)
            mark_cuts(b, ncut, cuts, offsets[last])

        engine.walk(net, roots, consume, final_layer=last, device=device)
    hits[:, :n_hidden] |= _bounding_hits(bound, roots.n_domain_facets, n_hidden)
    bounds = list(offsets) + ([H] if with_logits else [])
    neurons = np.stack([hits[:, bounds[j]:bounds[j + 1]].sum(axis=1) for j in range(len(bounds) - 1)],
                       axis=1).astype(np.int64)
    if not density:
        return neurons, counts, np.full(N, np.nan)
    volume = (2.0 * radius) ** k / math.factorial(k)
    return neurons, counts, (0.5 * shared + own) / volume
