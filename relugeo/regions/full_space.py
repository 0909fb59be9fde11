"""The exact partition of all of R^D (D <= 8) into activation regions, unbounded ones included.

Why the count is exact. Homogenise: a point x of R^D is the ray of
``(u, t) = (t x, t)``, t > 0, in R^(D+1). Every layer ``z = W h + b`` becomes
``z = W h + b t`` with t carried along by a pass-through neuron; ReLU and leaky
ReLU are positively homogeneous, so the homogenised net at ``(t x, t)`` is t
times the net at x and has the same activation pattern. The half-space
``t >= 0`` is the union of the D + 1 simplicial cones spanned by ``e_t`` and D
of the D + 1 vertices ``v_0..v_D`` of a simplex around 0 (``v_j = e_j``,
``v_D = -(1, ..., 1)``), since the cones of the simplex's facets cover R^D. The
section of cone i by ``weights sum to 1`` is a D-simplex, on which the
homogenised net is an ordinary piecewise-affine net of D coordinates, so the
bounded k-D engine partitions it exactly. Every piece of a section meets
``t > 0`` (it is full-dimensional) and lies in one region of R^D, the region
of its pattern; each region is convex, so the set of points with one pattern
is one region, and the regions are the distinct patterns of the pieces.
Nothing is guessed: no box is chosen, and no region is too far out to be seen.

A region is unbounded iff its closure meets the face ``t = 0`` of a section
(its recession directions): iff one of its pieces has a vertex on the
section's facet ``t = 0``, which the vertex-facet incidences record exactly.
Unbounded regions have volume inf.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import CertificateError, InvalidSliceError, RelugeoError
from ..nets.pwanet import AffineLayer, PWANet
from . import engine, engine_kd
from .partition import Partition
from .partition_kd import _concat
from .polytopes import polytope_volume
from .slices import Slice


def homogenised(net: PWANet) -> PWANet:
    """The net of ``(u, t)`` in R^(D+1) equal to ``t * net(u / t)`` for t > 0.

    Each hidden layer gets one more neuron, last, a pass-through (slope 1)
    carrying t; every bias becomes a weight on t. Dense two-slope layers only.
    """
    if any(layer.is_max or not layer.is_dense for layer in net.layers):
        raise RelugeoError("Slice.full needs a net of dense layers without max-pooling")
    layers = []
    for layer in net.layers:
        W = np.concatenate([layer.weight, layer.bias[:, None]], axis=1)
        if layer.has_activation:
            t_row = np.zeros((1, W.shape[1]))
            t_row[0, -1] = 1.0
            layers.append(AffineLayer(np.concatenate([W, t_row]), np.zeros(W.shape[0] + 1),
                                      np.concatenate([layer.slopes, [1.0]])))
        else:
            layers.append(AffineLayer(W, np.zeros(W.shape[0]), None))
    return PWANet(layers)


def _sections(D: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The D + 1 sections as slices of R^(D+1): origin ``e_t`` and basis ``(v_j, -1)``, j != i."""
    v = np.concatenate([np.eye(D), -np.ones((1, D))])
    origin = np.zeros(D + 1)
    origin[D] = 1.0
    out = []
    for i in range(D + 1):
        cols = [np.append(v[j], -1.0) for j in range(D + 1) if j != i]
        out.append((origin, np.stack(cols, axis=1)))
    return out


def _simplex_domain(D: int) -> tuple[np.ndarray, np.ndarray]:
    """The simplex 0, e_1..e_D in section coordinates and its incidences (D + 1, D + 1).

    Facet m < D is ``y_m = 0``; facet D is ``sum y = 1``, the face ``t = 0``.
    """
    vertices = np.concatenate([np.zeros((1, D)), np.eye(D)])
    inc = np.zeros((D + 1, D + 1), dtype=bool)
    inc[0, :D] = True
    for m in range(D):
        inc[m + 1, :D] = True
        inc[m + 1, m] = False
        inc[m + 1, D] = True
    return vertices, inc


def _join(batches: list[engine_kd.CellBatchKD]) -> engine_kd.CellBatchKD:
    """The cells of several batches of the same layer as one batch, in order (roots kept)."""
    offs, shift = [np.zeros(1, dtype=np.int64)], 0
    for b in batches:
        offs.append(b.off[1:] + shift)
        shift += int(b.off[-1])
    cat = lambda name: np.concatenate([getattr(b, name) for b in batches])  # noqa: E731
    return engine_kd.CellBatchKD(batches[0].layer, cat("pre"), np.concatenate(offs), cat("X"), cat("I"),
                                 cat("pat"), cat("root"), cat("uscale"), batches[0].n_domain_facets)


def _stack(batches: list[engine_kd.CellBatchKD]) -> engine_kd.CellBatchKD:
    """One batch holding the root cells of several batches (roots renumbered)."""
    out = _join(batches)
    out.root = np.arange(out.n_cells, dtype=np.int64)
    return out


def _pieces_at_infinity(b: engine_kd.CellBatchKD) -> np.ndarray:
    """Which leaves of a section batch reach the face t = 0 (a vertex on the last domain facet), (C,) bool."""
    f = b.n_domain_facets - 1
    at_inf = ((b.I[:, f >> 6] >> np.uint64(f & 63)) & np.uint64(1)).astype(bool)
    return np.logical_or.reduceat(at_inf, b.off[:-1]) if len(at_inf) else np.zeros(b.n_cells, dtype=bool)


def _walk_cells(net: PWANet, cells: engine_kd.CellBatchKD, tol: float, batch_cells, max_regions, device: str,
                count_only: bool = False, parallel: bool = False):
    """The leaves below ``cells``: one batch (None when there are none), or with ``count_only`` only
    their patterns (C, n_words) uint64 and :func:`_pieces_at_infinity`. The task of one dask worker."""
    leaves: list = []
    keep = (lambda b: leaves.append((b.pat, _pieces_at_infinity(b)))) if count_only else leaves.append
    engine.walk(net, cells, keep, tol=tol, batch_cells=batch_cells, max_regions=max_regions, device=device,
                parallel=parallel)
    if count_only:
        return (np.concatenate([p for p, _ in leaves]), np.concatenate([q for _, q in leaves])) if leaves else None
    return _join(leaves) if leaves else None


def _walk_on_client(client, net: PWANet, roots: engine_kd.CellBatchKD, *, tol, batch_cells, max_regions,
                    device, count_only: bool = False) -> list:
    """:func:`_walk_cells` of ``roots`` on a dask cluster: a list of its results.

    The D + 1 root cones are split through the first hidden layer here; the
    cells that come out are cut into about four chunks per worker, and each
    worker walks its chunks to the leaves. The regions are those of the
    serial walk: only the order of the leaves differs, and the patterns are
    sorted afterwards anyway.
    """
    if len(net.hidden) < 2:
        return [_walk_cells(net, roots, tol, batch_cells, max_regions, device, count_only)]
    top = list(engine.iter_leaves(net, roots, tol=tol, batch_cells=batch_cells, max_regions=max_regions,
                                  final_layer=1, device=device))
    cells = _join(top)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    bounds = np.unique(np.linspace(0, cells.n_cells, min(cells.n_cells, 4 * n_workers) + 1).astype(np.int64))
    chunks = [cells.take(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    n = len(chunks)
    futures = client.map(_walk_cells, [net] * n, chunks, [tol] * n, [batch_cells] * n, [max_regions] * n,
                         [device] * n, [count_only] * n, pure=False)
    parts = [r for r in client.gather(futures) if r is not None]
    found = sum(len(r[0]) if count_only else r.n_cells for r in parts)
    engine._check_limit(max_regions, found, len(net.hidden) - 1)
    return parts


def count_full(net: PWANet, *, max_regions: int | None = 100_000_000, batch_cells: int | None = None,
               tol: float = engine.DEFAULT_TOL, device: str = "cpu", client=None,
               parallel: bool = False) -> tuple[int, int]:
    """The number of activation regions of ``net`` on all of R^D, and how many are bounded.

    The regions of :func:`relugeo.partition` on ``Slice.full(D)``, counted
    without building them: the walk keeps only each leaf's pattern and
    whether it reaches infinity (8 bytes per 64 neurons, plus one), not its
    vertices, so complexes of millions of regions fit in memory. ``client``
    fans the walk out as in :func:`relugeo.partition`, and so does
    ``parallel`` on this process's threads. ``max_regions`` bounds the
    pieces of the D + 1 cones, at least the regions.
    """
    if not isinstance(net, PWANet):
        raise TypeError(f"net must be a PWANet (use relugeo.from_torch); got {type(net).__name__}")
    D = net.input_dim
    if D > 8:
        raise InvalidSliceError(f"Slice.full needs a net with at most 8 inputs; this one has {D}")
    hnet = homogenised(net)
    domain, inc = _simplex_domain(D)
    roots = _stack([engine_kd.root_batch(hnet, o[None], B, domain, inc) for o, B in _sections(D)])
    kw = dict(tol=tol, batch_cells=batch_cells, max_regions=max_regions, device=device)
    if client is None:
        parts = [_walk_cells(hnet, roots, count_only=True, parallel=parallel, **kw)]
    else:
        parts = _walk_on_client(client, hnet, roots, count_only=True, **kw)
    pat = np.ascontiguousarray(np.concatenate([p for p, _ in parts]))
    at_inf = np.concatenate([q for _, q in parts])
    # the t neurons' bits are the same in every piece, so the homogenised patterns tell regions apart
    rows = pat[:, 0] if pat.shape[1] == 1 else pat.view(np.dtype((np.void, 8 * pat.shape[1])))[:, 0]
    keys, region = np.unique(rows, return_inverse=True)
    unbounded = np.zeros(len(keys), dtype=bool)
    unbounded[region.reshape(-1)[at_inf]] = True
    return len(keys), int(len(keys) - unbounded.sum())


def _drop_t_bits(patterns: np.ndarray, net: PWANet) -> np.ndarray:
    """Patterns of the homogenised net (its t neurons' bits, always 0, included) in ``net``'s layout."""
    bits = np.unpackbits(patterns.view(np.uint8), axis=1, bitorder="little")
    keep = np.concatenate([np.arange(n) + start + j for j, (start, n) in
                           enumerate(zip(np.cumsum([0, *net.widths[:-1]]), net.widths))]).astype(np.int64)
    out = np.zeros((len(patterns), net.n_words * 64), dtype=np.uint8)
    out[:, : len(keep)] = bits[:, keep]
    return np.packbits(out, axis=1, bitorder="little").view(np.uint64)


class FullPartition:
    """Every activation region of a network on all of R^D (see :mod:`relugeo.regions.full_space`).

    Attributes
    ----------
    net : PWANet
    slice : Slice
        ``Slice.full(D)``.
    patterns : ndarray of shape (R, n_words), uint64
    bounded : ndarray of shape (R,), bool
    centroids : ndarray of shape (R, D), float64
        An interior point of each region (the certificate).
    logit_maps : ndarray of shape (R, D + 1, n_out), float64
        ``logits(x) = x @ logit_maps[r, :D] + logit_maps[r, D]``.
    piece_region, piece_section : ndarray of shape (P,), int64
        The region and section of each piece the sections were cut into.
    region_points : (ndarray (V, D), ndarray (R + 1,))
        The vertices of every bounded region's pieces in CSR form by region
        (none for unbounded regions); their hull is the region.
    """

    def __init__(self, net, slice_, patterns, bounded, centroids, logit_maps, region_points, piece_region,
                 piece_section, seconds=0.0):
        self.net = net
        self.slice = slice_
        self.patterns = patterns
        self.bounded = bounded
        self.centroids = centroids
        self.logit_maps = logit_maps
        self._region_points = region_points
        self.piece_region = piece_region
        self.piece_section = piece_section
        self.seconds = seconds

    @property
    def dim(self) -> int:
        return self.centroids.shape[1]

    @property
    def n_regions(self) -> int:
        return self.patterns.shape[0]

    @property
    def n_bounded(self) -> int:
        return int(self.bounded.sum())

    @property
    def interior_points(self) -> np.ndarray:
        return self.centroids

    @property
    def volumes(self) -> np.ndarray:
        """Volume of each region, (R,) float64: inf for unbounded regions."""
        cache = self.__dict__.get("_volumes")
        if cache is None:
            x, voff = self._region_points
            cache = np.array([polytope_volume(x[voff[r]:voff[r + 1]]) if b else np.inf
                              for r, b in enumerate(self.bounded)])
            self.__dict__["_volumes"] = cache
        return cache

    def predictions(self) -> np.ndarray:
        return Partition.predictions(self)

    _check_certificates = Partition._check_certificates
    _second_layer_maps = Partition._second_layer_maps
    _certificates = Partition._certificates
    _VERIFY_CHUNK = Partition._VERIFY_CHUNK

    def verify(self, *, margin: float = 1e-9, raise_on_error: bool = True) -> dict:
        """Certificates (float64 forward pass of each interior point), logit maps, distinct patterns,
        and a positive volume for every bounded region (the total is infinite, so not summed)."""
        failed, ambiguous, logit_err, _ = self._certificates(margin)
        rows = np.ascontiguousarray(self.patterns).view(np.dtype((np.void, 8 * self.patterns.shape[1])))
        distinct = len(np.unique(rows)) if self.n_regions else 0
        empty = int((self.volumes <= 0).sum())
        report = {
            "n_regions": self.n_regions,
            "n_bounded": self.n_bounded,
            "certificate_failures": int(failed.sum()),
            "ambiguous_certificates": int((ambiguous & ~failed).sum()),
            "duplicate_patterns": self.n_regions - distinct,
            "empty_regions": empty,
            "logit_map_rel_error": logit_err,
            "ok": not failed.any() and logit_err <= 1e-6 and distinct == self.n_regions and empty == 0,
        }
        if raise_on_error and not report["ok"]:
            raise CertificateError(f"partition failed verification: {report}")
        return report

    def __repr__(self) -> str:
        return f"FullPartition({self.n_regions} regions ({self.n_bounded} bounded) of {self.net!r} on R^{self.dim})"


def partition_full(net: PWANet, slice_: Slice, *, max_regions, batch_cells, tol, device,
                   client=None, parallel: bool = False) -> FullPartition:
    """:func:`relugeo.partition` on ``Slice.full(D)`` (inputs checked by the caller); with a dask
    ``client`` the cells are walked on its workers (:func:`_walk_on_client`)."""
    t0 = time.perf_counter()
    D = net.input_dim
    if D > 8:
        raise InvalidSliceError(f"Slice.full needs a net with at most 8 inputs; this one has {D}")
    hnet = homogenised(net)
    domain, inc = _simplex_domain(D)
    sections = _sections(D)
    roots = _stack([engine_kd.root_batch(hnet, o[None], B, domain, inc) for o, B in sections])
    if client is None:
        leaves: list[engine_kd.CellBatchKD] = []
        engine.walk(hnet, roots, leaves.append, tol=tol, batch_cells=batch_cells, max_regions=max_regions,
                    device=device, parallel=parallel)
    else:
        leaves = _walk_on_client(client, hnet, roots, tol=tol, batch_cells=batch_cells, max_regions=max_regions,
                                 device=device)
    X, off, I, pat, pre = _concat(leaves)
    section = np.concatenate([b.root for b in leaves])
    patterns = _drop_t_bits(pat, net)
    rows = np.ascontiguousarray(patterns).view(np.dtype((np.void, 8 * patterns.shape[1])))[:, 0]
    _, first, region = np.unique(rows, return_index=True, return_inverse=True)
    region = region.reshape(-1)
    R = len(first)
    # a piece is at infinity where one of its vertices lies on facet D (t = 0)
    piece_inf = np.concatenate([_pieces_at_infinity(b) for b in leaves])
    bounded = np.ones(R, dtype=bool)
    bounded[region[piece_inf]] = False
    # homogeneous coordinates of every vertex and each piece's centroid
    O = np.stack([o for o, _ in sections])
    B = np.stack([b for _, b in sections])
    vsec = np.repeat(section, np.diff(off))
    H = O[vsec] + np.einsum("vij,vj->vi", B[vsec], X)
    cen_y = np.add.reduceat(X, off[:-1], axis=0) / np.diff(off)[:, None]
    cen_h = O[section] + np.einsum("pij,pj->pi", B[section], cen_y)
    # certificate: the centroid of the region's piece deepest inside t > 0
    order = np.lexsort((-cen_h[:, D], region))
    best = order[np.r_[0, np.flatnonzero(np.diff(region[order])) + 1]]
    centroids = cen_h[best, :D] / cen_h[best, D:]
    # logits: the piece's map G y + g in section coordinates is M (O + B y) with M = [A | c]
    frame = np.concatenate([O[section[best]][:, :, None], B[section[best]]], axis=2)  # (R, D+1, D+1)
    gG = np.concatenate([pre[best, D:, :], pre[best, :D, :]], axis=1)  # (R, D+1, n_out): rows g, G
    M_T = np.linalg.solve(np.transpose(frame, (0, 2, 1)), gG)  # (R, D+1, n_out) = M^T
    logit_maps = M_T
    # every vertex of a bounded region's pieces in x = u / t, grouped by region (for the volumes)
    vregion = np.repeat(region, np.diff(off))
    keep = bounded[vregion]
    vorder = np.argsort(vregion[keep], kind="stable")
    h = H[keep][vorder]
    voff = np.concatenate([[0], np.cumsum(np.bincount(vregion[keep], minlength=R))])
    points = (h[:, :D] / h[:, D:], voff)
    return FullPartition(net, slice_, patterns[best], bounded, centroids, logit_maps, points, region, section,
                         seconds=time.perf_counter() - t0)
