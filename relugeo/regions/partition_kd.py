"""The exact partition of a k-dimensional domain (k = 3..8) into activation regions."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..errors import CertificateError
from ..nets.pwanet import PWANet
from . import engine, engine_kd
from .partition import Partition
from .polytopes import polytope_volume
from .slices import Slice


class PartitionKD:
    """Every activation region of a network on a k-D domain (k = 3..8), or on all of R^D.

    Regions are convex polytopes stored in CSR form: region ``r`` has the
    vertices ``vertices[offsets[r]:offsets[r + 1]]`` (not shared between
    regions) and, for each vertex, the facets it lies on.

    Attributes
    ----------
    net : PWANet
    slice : Slice
    vertices : ndarray of shape (V, k), float64
        Region vertices in slice coordinates.
    offsets : ndarray of shape (R + 1,), int64
    incidence : ndarray of shape (V, W), uint64
        Facet-id bitset of each vertex: id ``f < n_domain_facets`` is the
        domain's facet ``f`` (``slice.facets``), id ``n_domain_facets + g`` the
        zero set of the neuron of pattern bit ``g``.
    patterns : ndarray of shape (R, n_words), uint64
    logit_maps : ndarray of shape (R, k + 1, n_out), float64
        ``logits(u) = u @ logit_maps[r, :k] + logit_maps[r, k]``.
    centroids : ndarray of shape (R, k), float64
        The mean of each region's vertices: an interior point (the certificate).
    seconds : float
    """

    def __init__(self, net, slice_, vertices, offsets, incidence, patterns, logit_maps, n_domain_facets,
                 seconds=0.0, tol=engine.DEFAULT_TOL, shift=None):
        self.net = net
        self.slice = slice_
        self.vertices = vertices
        self.offsets = offsets
        self.incidence = incidence
        self.patterns = patterns
        self.logit_maps = logit_maps
        self.n_domain_facets = n_domain_facets
        self.seconds = seconds
        self.tol = tol
        counts = np.maximum(np.diff(offsets), 1)
        self.centroids = np.add.reduceat(vertices, offsets[:-1], axis=0) / counts[:, None] if len(vertices) else \
            np.zeros((0, vertices.shape[1]))
        if shift is not None:
            k = vertices.shape[1]
            self.vertices = vertices + shift
            self.centroids = self.centroids + shift
            self.logit_maps = logit_maps.copy()
            self.logit_maps[:, k] -= np.einsum("k,rkc->rc", shift, logit_maps[:, :k])

    # -- facts -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.vertices.shape[1]

    @property
    def n_regions(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def domain_volume(self) -> float:
        return self.slice.area

    @property
    def interior_points(self) -> np.ndarray:
        """One interior point per region in INPUT space, shape (R, D)."""
        return self.slice.to_input(self.centroids)

    @property
    def n_vertices(self) -> np.ndarray:
        """Vertices of each region, (R,) int64."""
        return np.diff(self.offsets)

    @cached_property
    def volumes(self) -> np.ndarray:
        """Volume of each region in slice units, (R,) float64 (the convex hull of its vertices)."""
        return np.array([polytope_volume(self.vertices[a:b]) for a, b in zip(self.offsets[:-1], self.offsets[1:])])

    def _n_facets(self, r: int) -> int:
        """Facets of region ``r``: distinct vertex sets of its hyperplanes that span k - 1 dimensions."""
        a, b = self.offsets[r], self.offsets[r + 1]
        v = self.vertices[a:b]
        bits = np.unpackbits(self.incidence[a:b].view(np.uint8), axis=1, bitorder="little").astype(bool)
        seen = set()
        for f in np.flatnonzero(bits.sum(axis=0) >= self.dim):
            key = tuple(np.flatnonzero(bits[:, f]))
            if key in seen:
                continue
            d = v[list(key)] - v[key[0]]
            sv = np.linalg.svd(d, compute_uv=False)
            if int((sv > 1e-9 * max(float(np.abs(d).max()), 1e-300)).sum()) == self.dim - 1:
                seen.add(key)
        return len(seen)

    @cached_property
    def n_facets(self) -> np.ndarray:
        """Facets of each region, (R,) int64 (distinct (k-1)-dimensional faces)."""
        return np.array([self._n_facets(r) for r in range(self.n_regions)], dtype=np.int64)

    @cached_property
    def neurons(self) -> np.ndarray:
        """Hidden neurons whose zero set crosses the domain: (M, 2) int64 (layer, neuron)."""
        union = np.bitwise_or.reduce(self.incidence, axis=0) if len(self.incidence) else np.zeros(1, np.uint64)
        bits = np.unpackbits(union.view(np.uint8), bitorder="little")
        g = np.flatnonzero(bits[self.n_domain_facets:])
        g = g[g < self.net.n_hidden]
        starts = np.concatenate([[0], np.cumsum(self.net.widths)])
        layer = np.searchsorted(starts, g, side="right") - 1
        return np.stack([layer, g - starts[layer]], axis=1).astype(np.int64)

    def adjacency(self):
        """The region adjacency graph: a :class:`~relugeo.regions.adjacency.RegionGraph` of the regions
        sharing a facet of positive (k-1)-measure (``length``; see :mod:`.adjacency_kd`)."""
        from .adjacency_kd import region_graph_kd

        return region_graph_kd(self)

    def to_networkx(self):
        """The adjacency graph as a ``networkx.Graph`` (needs networkx; node ``area`` is the volume)."""
        return self.adjacency().to_networkx(self)

    @cached_property
    def boundary_measure(self) -> float:
        """(k-1)-measure of the hidden neurons' zero sets inside the domain (each shared facet once)."""
        from .facets_kd import neuron_facet_measure

        nd = self.n_domain_facets
        return 0.5 * float(neuron_facet_measure(self.vertices, self.offsets, self.incidence, nd,
                                                nd + self.net.n_hidden).sum())

    def predictions(self) -> np.ndarray:
        """Predicted class at each region's centroid, shape (R,)."""
        return Partition.predictions(self)

    def save(self, path):
        """Write the partition atomically: ``.npz`` (every array; read back with :meth:`load`) or a region
        table ``.csv`` / ``.parquet`` (see :mod:`.partition_io_kd`). Returns the path."""
        from .partition_io_kd import save_partition_kd

        return save_partition_kd(self, path)

    @classmethod
    def load(cls, path) -> "PartitionKD":
        """Read a partition saved as ``.npz`` by :meth:`save` (``relugeo partition --out``)."""
        from .partition_io_kd import load_partition_kd

        return load_partition_kd(path)

    # -- checks ------------------------------------------------------------------
    _check_certificates = Partition._check_certificates
    _second_layer_maps = Partition._second_layer_maps
    _certificates = Partition._certificates
    _VERIFY_CHUNK = Partition._VERIFY_CHUNK

    def verify(self, *, volume_rtol: float = 1e-9, margin: float = 1e-9, raise_on_error: bool = True) -> dict:
        """Check the partition against the real network.

        1. volumes sum to the domain's volume within ``volume_rtol`` (relative)
           and no region is empty;
        2. every region's centroid, forwarded in float64, has the region's
           pattern (a neuron within ``margin`` of its hyperplane there is
           ambiguous, not a failure; see :meth:`Partition.verify`);
        3. the logits at each centroid equal the region's affine map;
        4. no two regions share a pattern.

        Returns a report dict; raises :class:`CertificateError` on a failure
        unless ``raise_on_error=False``.
        """
        failed, ambiguous, logit_err, _ = self._certificates(margin)
        total = float(self.volumes.sum())
        vol_err = abs(total - self.domain_volume) / abs(self.domain_volume)
        rows = np.ascontiguousarray(self.patterns).view(np.dtype((np.void, 8 * self.patterns.shape[1])))
        distinct = len(np.unique(rows)) if self.n_regions else 0
        empty = int((self.volumes <= 0).sum())
        n_fail = int(failed.sum())
        report = {
            "n_regions": self.n_regions,
            "volume_sum": total,
            "domain_volume": self.domain_volume,
            "volume_rel_error": vol_err,
            "certificate_failures": n_fail,
            "ambiguous_certificates": int((ambiguous & ~failed).sum()),
            "duplicate_patterns": self.n_regions - distinct,
            "empty_regions": empty,
            "logit_map_rel_error": logit_err,
            "ok": (vol_err <= volume_rtol and n_fail == 0 and logit_err <= 1e-6 and distinct == self.n_regions
                   and empty == 0),
        }
        if raise_on_error and not report["ok"]:
            first = np.flatnonzero(failed)[:5].tolist()
            raise CertificateError(f"partition failed verification: {report}; first failing regions: {first}")
        return report

    def __repr__(self) -> str:
        return f"PartitionKD({self.n_regions} regions of {self.net!r} on {self.slice!r})"


def partition_kd(net: PWANet, slice_: Slice, *, max_regions, batch_cells, tol, device,
                 parallel: bool = False) -> PartitionKD:
    """:func:`relugeo.partition` on a domain of dimension k >= 3 (inputs checked by the caller)."""
    import time

    t0 = time.perf_counter()
    centre = 0.5 * (slice_.vertices.min(axis=0) + slice_.vertices.max(axis=0))
    origin = slice_.origin + slice_.basis @ centre
    domain = slice_.vertices - centre
    inc = engine_kd.domain_incidence(domain, _shift_facets(slice_.facets, centre))
    roots = engine_kd.root_batch(net, origin[None, :], slice_.basis, domain, inc)
    leaves: list[engine_kd.CellBatchKD] = []
    engine.walk(net, roots, leaves.append, tol=tol, batch_cells=batch_cells, max_regions=max_regions,
                device=device, parallel=parallel)
    return PartitionKD(net, slice_, *_concat(leaves), roots.n_domain_facets, seconds=time.perf_counter() - t0,
                       tol=tol, shift=centre)


def _shift_facets(facets: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Facet equations in coordinates centred on ``centre``."""
    out = facets.copy()
    out[:, -1] += facets[:, :-1] @ centre
    return out


def _concat(leaves: list) -> tuple:
    """Vertices, offsets, incidences, patterns and maps of a list of leaf batches, concatenated."""
    offs, shift = [np.zeros(1, dtype=np.int64)], 0
    for b in leaves:
        offs.append(b.off[1:] + shift)
        shift += int(b.off[-1])
    cat = lambda name: np.concatenate([getattr(b, name) for b in leaves])  # noqa: E731
    return (np.ascontiguousarray(cat("X")), np.concatenate(offs), np.ascontiguousarray(cat("I")), cat("pat"),
            cat("pre"))
