"""The exact partition of a slice into activation regions."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numba
import numpy as np

from ..errors import CertificateError, InvalidSliceError
from ..kernels import checks, cpu
from ..nets.pwanet import PWANet
from . import certify, engine, warmup
from .incidence import check_incidence
from .slices import Slice


class Partition:
    """Every activation region of a network on a slice's domain.

    Regions are stored in CSR form, like shapely's ragged arrays: region ``r``
    is the ring ``vertices[ring_offsets[r]:ring_offsets[r + 1]]``. Vertices are
    not shared between regions; each ring is convex and counter-clockwise
    (in 1-D a ring is the two ends ``t0 < t1`` of an interval).

    Attributes
    ----------
    net : PWANet
    slice : Slice
    vertices : ndarray of shape (V, k), dtype=np.float64
        Ring vertices in slice coordinates.
    ring_offsets : ndarray of shape (R + 1,), dtype=np.int64
    edge_layer, edge_neuron : ndarray of shape (V,), dtype=np.int32
        In 2-D: the hidden layer and neuron whose zero set carries the edge that
        leaves each vertex; -1 for the domain's boundary. In 1-D: the layer
        and neuron whose breakpoint is that end of the interval.
    patterns : ndarray of shape (R, n_words), dtype=np.uint64
        Packed activation patterns (``PWANet.patterns`` convention).
    logit_maps : ndarray of shape (R, k + 1, n_out), dtype=np.float64
        The logits on each region: ``logits(u) = u @ logit_maps[r, :k] + logit_maps[r, k]``.
    areas : ndarray of shape (R,), dtype=np.float64
        Areas (2-D) or lengths (1-D) in slice units.
    centroids : ndarray of shape (R, k), dtype=np.float64
        Each region's centroid: an interior point, the region's certificate.
    seconds : float
        Wall time of the computation.
    predicates : str
        "certified" or "tolerance" (see :func:`partition`).
    n_exact_cells : int
        Certified predicates: how many cells the float filter could not decide
        and handed to exact arithmetic (0 in tolerance mode).
    """

    predicates = "tolerance"
    n_exact_cells = 0

    def __init__(self, net, slice_, vertices, ring_offsets, edge_layer, edge_neuron, patterns, logit_maps,
                 seconds=0.0, tol=engine.DEFAULT_TOL, shift=None):
        self.net = net
        self.slice = slice_
        self.vertices = vertices
        self.ring_offsets = ring_offsets
        self.edge_layer = edge_layer
        self.edge_neuron = edge_neuron
        self.patterns = patterns
        self.logit_maps = logit_maps
        self.seconds = seconds
        self.tol = tol
        if self.dim == 2:
            self.areas, self.centroids = cpu.polygon_area_centroid(
                ring_offsets, np.ascontiguousarray(vertices[:, 0]), np.ascontiguousarray(vertices[:, 1])
            )
        else:
            t = vertices[:, 0].reshape(-1, 2)
            self.areas = t[:, 1] - t[:, 0]
            self.centroids = t.mean(axis=1, keepdims=True)
        if shift is not None:
            # computed in coordinates centred on the domain; report them in slice coordinates
            k = vertices.shape[1]
            self.vertices = vertices + shift
            self.centroids = self.centroids + shift
            self.logit_maps = logit_maps.copy()
            self.logit_maps[:, k] -= np.einsum("k,rkc->rc", shift, logit_maps[:, :k])

    #: True for the pieces :func:`~relugeo.iter_regions` yields: their areas sum to less than the domain's
    is_part = False

    # -- facts -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.vertices.shape[1]

    @property
    def n_regions(self) -> int:
        return self.ring_offsets.shape[0] - 1

    @property
    def domain_area(self) -> float:
        return self.slice.area

    @property
    def polygons(self) -> list[np.ndarray]:
        """Region rings as a list of (n_r, k) arrays (slice coordinates)."""
        return np.split(self.vertices, self.ring_offsets[1:-1])

    def to_shapely(self) -> np.ndarray:
        """Regions as shapely polygons (2-D) or line strings (1-D): object array of shape (R,)."""
        import shapely

        ring_id = np.repeat(np.arange(self.n_regions), np.diff(self.ring_offsets))
        if self.dim == 1:
            coords = np.concatenate([self.vertices, np.zeros_like(self.vertices)], axis=1)
            return shapely.linestrings(coords, indices=ring_id)
        return shapely.polygons(shapely.linearrings(self.vertices, indices=ring_id))

    @property
    def interior_points(self) -> np.ndarray:
        """One interior point per region in INPUT space, shape (R, D)."""
        return self.slice.to_input(self.centroids)

    @cached_property
    def neurons(self) -> np.ndarray:
        """Hidden neurons whose zero set crosses the domain: (M, 2) int (layer, neuron)."""
        keep = self.edge_layer >= 0
        pairs = np.stack([self.edge_layer[keep], self.edge_neuron[keep]], axis=1).astype(np.int64)
        return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), dtype=np.int64)

    @cached_property
    def boundary_length(self) -> float:
        """Total length of region boundaries inside the domain (2-D), or number of breakpoints (1-D)."""
        inner = self.edge_layer >= 0
        if self.dim == 1:
            return float(inner.sum()) / 2.0
        v = self.vertices
        nxt = np.arange(len(v)) + 1
        nxt[self.ring_offsets[1:] - 1] = self.ring_offsets[:-1]
        lengths = np.linalg.norm(v[nxt] - v, axis=1)
        return float(lengths[inner].sum()) / 2.0

    @cached_property
    def _boundary(self):
        off = self.ring_offsets
        if self.dim == 2:
            return cpu.decision_boundary_2d(
                off, np.ascontiguousarray(self.vertices[:, 0]), np.ascontiguousarray(self.vertices[:, 1]),
                np.ascontiguousarray(self.logit_maps),
            )
        return cpu.decision_boundary_1d(off, np.ascontiguousarray(self.vertices[:, 0]),
                                        np.ascontiguousarray(self.logit_maps))

    @property
    def decision_boundary(self) -> np.ndarray:
        """Where the predicted class changes.

        2-D: segments of shape (S, 2, 2) in slice coordinates; 1-D: points of
        shape (S,). A single-logit network's boundary is the zero set of the
        logit. See :attr:`decision_boundary_classes` for the classes tied there.
        """
        return self._boundary[0]

    @property
    def decision_boundary_regions(self) -> np.ndarray:
        """Region holding each decision-boundary piece, shape (S,)."""
        return self._boundary[1]

    @property
    def decision_boundary_classes(self) -> np.ndarray:
        """The two classes tied along each piece, shape (S, 2) (single logit: 0 is ``L < 0``)."""
        return self._boundary[2]

    def predictions(self) -> np.ndarray:
        """Predicted class at each region's centroid, shape (R,)."""
        k = self.dim
        logits = np.einsum("rk,rkc->rc", self.centroids, self.logit_maps[:, :k]) + self.logit_maps[:, k]
        if logits.shape[1] == 1:
            return (logits[:, 0] > 0).astype(np.int64)
        return logits.argmax(axis=1)

    def class_pieces(self):
        """The regions split along the decision boundary into pieces of one predicted class (2-D).

        See :func:`relugeo.regions.class_pieces.class_pieces`.
        """
        from .class_pieces import class_pieces

        return class_pieces(self)

    # -- files -------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the partition, its slice and its network to an ``.npz`` of plain arrays, atomically.

        See :mod:`relugeo.regions.partition_io` for the keys; read it back with :meth:`load`.
        """
        from .partition_io import save_partition

        return save_partition(self, path)

    @classmethod
    def load(cls, path) -> Partition:
        """Read a partition written by :meth:`save` or ``relugeo partition`` (no pickles are read)."""
        from .partition_io import load_partition

        return load_partition(path)

    # -- checks ------------------------------------------------------------------
    _VERIFY_CHUNK = 2048  # certificates forwarded at a time: (2048, width) float64 blocks stay off fresh pages

    def _certificates(self, margin: float, meanwhile: Callable[[], object] | None = None) -> tuple:
        """(failed, ambiguous, logit error) of every region's certificate, and what ``meanwhile()``
        returned (None without it).

        The chunks of :data:`_VERIFY_CHUNK` regions go to a pool of as many
        threads as numba uses (see :mod:`relugeo.threads`), each chunk on one
        thread with one-thread BLAS: thin products scale better side by side
        than split inside BLAS. ``meanwhile`` runs on the calling thread while
        the pool works. The result does not depend on the thread count.
        """
        starts = list(range(0, self.n_regions, self._VERIFY_CHUNK))
        n_threads = numba.get_num_threads()

        def one(start: int):
            return self._check_certificates(slice(start, start + self._VERIFY_CHUNK), margin)

        if n_threads == 1 or len(starts) < 2:
            parts = [one(s) for s in starts]
            other = None if meanwhile is None else meanwhile()
        else:
            with engine._single_threaded_blas(), engine.kernel_pool(n_threads) as pool:
                futures = [pool.submit(one, s) for s in starts]
                other = None if meanwhile is None else meanwhile()
                parts = [f.result() for f in futures]
        if not parts:
            return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool), 0.0, other
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                max(p[2] for p in parts), other)

    def _check_certificates(self, rows: slice, margin: float):
        """Forward the centroids of regions ``rows``: (failed, ambiguous, logit error).

        A two-slope layer's bias, sign check and activation are one pass over
        its block (:func:`relugeo.kernels.checks.check_two_slope_layer`).
        When the first two layers are dense two-slope layers, the second one's
        pre-activations come from :meth:`_second_layer_maps`: one product per
        run of regions sharing a first-layer pattern rather than one per region.
        """
        u = np.asarray(self.centroids[rows], dtype=np.float64)
        h = self.net._as_points(self.slice.to_input(u))
        n = len(h)
        failed = np.zeros(n, dtype=bool)
        ambiguous = np.zeros(n, dtype=bool)
        patterns = np.ascontiguousarray(self.patterns[rows])
        bits = None
        start = 0
        hidden = self.net.hidden
        grouped = (n > 1 and len(hidden) >= 2 and all(ly.is_dense and not ly.is_max for ly in self.net.layers[:2]))
        for j, layer in enumerate(hidden):
            z = self._second_layer_maps(u, patterns) if j == 1 and grouped else None
            if z is None:
                z = np.ascontiguousarray(layer.linear(h), dtype=np.float64)
            if np.may_share_memory(z, h) or np.may_share_memory(z, self.centroids):
                z = z.copy()  # a LinearMap may hand back its input; the pass below writes over z
            if not layer.is_max:
                checks.check_two_slope_layer(z, layer.bias, patterns, start, layer.slopes, margin, failed, ambiguous)
                h = z
                start += layer.n_bits
                continue
            z += layer.bias
            if bits is None:
                bits = np.unpackbits(patterns.view(np.uint8), axis=1, bitorder="little")
            want = bits[:, start : start + layer.n_bits].astype(bool)
            scale = margin * np.maximum(np.abs(z).max(axis=1, keepdims=True), 1e-300)
            # a window mismatches when its winner differs; near when the two candidates tie at the centroid
            n_win, m = layer.windows.shape
            mismatch = (layer.pattern_bits(z) != want).reshape(n, n_win, m).any(axis=2)
            theirs = layer.windows[np.arange(n_win), want.reshape(n, n_win, m).argmax(axis=2)]
            ours = layer.windows[np.arange(n_win), layer.winners(z)]
            gap = np.take_along_axis(z, ours, axis=1) - np.take_along_axis(z, theirs, axis=1)
            near = np.abs(gap) <= scale
            failed |= (mismatch & ~near).any(axis=1)
            ambiguous |= (mismatch & near).any(axis=1)
            h = layer.activate(z)
            start += layer.n_bits
        out = self.net.layers[-1].apply(h)
        k = self.dim
        maps = self.logit_maps[rows]
        logits = np.einsum("rk,rkc->rc", self.centroids[rows], maps[:, :k]) + maps[:, k]
        err = float(np.abs(logits - out).max() / (np.abs(out).max() + 1e-300)) if n else 0.0
        return failed, ambiguous, err

    def _second_layer_maps(self, u: np.ndarray, patterns: np.ndarray) -> np.ndarray | None:
        """The second layer's ``a1 @ W2.T`` at slice points ``u`` (n, k) whose claimed patterns are ``patterns``.

        Regions come in walk order, so neighbours often share the first
        layer's pattern: on such a run the first layer's outputs are the affine
        map ``D (W1 (o + B u) + b1)``, with ``D`` the slopes the claimed pattern
        gives, and the second layer's is that map through ``W2``, formed once
        per run. Where a region's first-layer signs differ from its claim, the
        first layer's check has already failed it (or found the neuron on its
        plane, where both slopes agree to rounding). None when the runs are
        too short for the maps to cost less than the plain product.
        """
        first, second = self.net.layers[0], self.net.layers[1]
        w = first.n_out
        n, k = u.shape
        nw, rest = divmod(w, 64)
        key = patterns[:, : nw + (rest > 0)].copy()
        if rest:
            key[:, nw] &= np.uint64((1 << rest) - 1)
        new = np.ones(n, dtype=bool)
        new[1:] = (key[1:] != key[:-1]).any(axis=1)
        heads = np.flatnonzero(new)
        if len(heads) * (k + 1) >= n:
            return None
        group = np.cumsum(new) - 1
        on = np.unpackbits(key[heads].view(np.uint8), axis=1, bitorder="little")[:, :w].astype(bool)
        scale = np.where(on, 1.0, first.slopes)  # (G, w)
        lin = first.linear(self.slice.basis.T)  # (k, w): the first layer along the slice's directions
        const = first.apply(self.slice.origin[None, :])  # (1, w)
        post = np.concatenate([scale[:, None, :] * lin[None], (scale * const)[:, None, :]], axis=1)
        maps = second.linear(post.reshape(-1, w)).reshape(len(heads), k + 1, second.n_out)
        out = np.empty((n, second.n_out))
        checks.eval_group_maps(np.ascontiguousarray(u), group, maps, out)
        return out

    def verify(self, *, area_rtol: float = 1e-9, margin: float = 1e-9, raise_on_error: bool = True) -> dict:
        """Check the partition against the real network.

        1. areas sum to the domain's area within ``area_rtol`` (relative), and
           no region is empty (zero area or length); a piece from
           :func:`~relugeo.iter_regions` skips the sum (its areas are a share);
        2. every region's centroid, forwarded through the network in float64,
           has the region's activation pattern (with certified predicates, a
           region too thin for any float64 point to certify, narrower than 1e-12
           of the domain's diameter, counts as ambiguous). A neuron whose pre-activation
           at the centroid is within ``margin`` times the layer's largest
           absolute pre-activation there is on its hyperplane and is counted
           as ambiguous, not as a failure;
        3. the logits at each centroid equal the region's affine map;
        4. no two regions share a pattern;
        5. the regions fit together (:func:`relugeo.regions.incidence.check_incidence`):
           every interior edge is covered from its other side by regions whose
           patterns differ in the edge's neuron (and otherwise only in neurons
           that vanish there), boundary edges cover the domain's boundary, and
           around every vertex the regions close up (their corners cover the full
           turn once; neighbours in turn differ only in neurons vanishing between them).
           This is what catches a lost or merged region too small for the area sum.

        Returns a report dict; raises :class:`CertificateError` on a failure
        unless ``raise_on_error=False``.
        """
        total = float(self.areas.sum())
        area_err = abs(total - self.domain_area) / abs(self.domain_area)
        # the regions' fit is checked on this thread while a pool forwards the certificates
        failed, ambiguous, logit_err, fit = self._certificates(
            margin, None if self.is_part else (lambda: check_incidence(self)))
        fit = fit or {}  # a piece's edges meet regions of other pieces
        if self.predicates == "certified":
            # regions thinner than float64 resolves have no float certificate; exact predicates found them
            thin = self._thin()
            ambiguous |= failed & thin
            failed &= ~thin
        bad = failed
        n_fail = int(failed.sum())
        n_amb = int((ambiguous & ~failed).sum())
        rows = np.ascontiguousarray(self.patterns).view(np.dtype((np.void, 8 * self.patterns.shape[1])))
        distinct = len(np.unique(rows)) if self.n_regions else 0
        empty = int((self.areas <= 0).sum())
        report = {
            "n_regions": self.n_regions,
            "area_sum": total,
            "domain_area": self.domain_area,
            "area_rel_error": area_err,
            "certificate_failures": n_fail,
            "ambiguous_certificates": n_amb,
            "duplicate_patterns": self.n_regions - distinct,
            "empty_regions": empty,
            "logit_map_rel_error": logit_err,
            **fit,
            "ok": ((self.is_part or area_err <= area_rtol) and n_fail == 0 and logit_err <= 1e-6
                   and distinct == self.n_regions and empty == 0 and not any(fit.values())),
        }
        if raise_on_error and not report["ok"]:
            first = np.flatnonzero(bad)[:5].tolist()
            raise CertificateError(
                f"partition failed verification: {report}; first failing regions: {first}"
            )
        return report

    def _thin(self) -> np.ndarray:
        """Regions narrower than 1e-12 of the domain's diameter (width: twice the area over the perimeter)."""
        diam = float(np.ptp(self.slice.vertices, axis=0).max())
        if self.dim == 1:
            return self.areas <= 1e-12 * diam
        v = self.vertices
        nxt = np.arange(len(v)) + 1
        nxt[self.ring_offsets[1:] - 1] = self.ring_offsets[:-1]
        perimeter = np.add.reduceat(np.linalg.norm(v[nxt] - v, axis=1), self.ring_offsets[:-1])
        return 2 * self.areas <= 1e-12 * diam * perimeter

    # -- linear regions ----------------------------------------------------------
    def linear_regions(self, rtol: float = 1e-9) -> np.ndarray:
        """Merge activation regions into linear regions (Hanin & Rolnick).

        Two regions that share an edge and on which the logits have the same
        affine map (within ``rtol`` of the map's scale) belong to the same
        linear region. Returns labels of shape (R,), int64, numbered 0..L-1;
        ``labels.max() + 1`` is the number of linear regions.
        """
        R = self.n_regions
        parent = np.arange(R)

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        index = {p.tobytes(): r for r, p in enumerate(self.patterns)}
        offsets = np.concatenate([[0], np.cumsum(self.net.widths)]).astype(np.int64)
        scale = np.abs(self.logit_maps).max() + 1e-300
        region_of_vertex = np.repeat(np.arange(R), np.diff(self.ring_offsets))
        is_max = np.array([layer.is_max for layer in self.net.hidden] + [False], dtype=bool)
        inner = np.flatnonzero(self.edge_layer >= 0)
        across = self._across(inner[is_max[self.edge_layer[inner]]])
        for q in inner:
            r = region_of_vertex[q]
            if is_max[self.edge_layer[q]]:
                # a tie edge of a max layer: the neighbour differs in two bits, found by a forward pass
                s = index.get(across[q].tobytes())
            else:
                g = offsets[self.edge_layer[q]] + self.edge_neuron[q]
                flipped = self.patterns[r].copy()
                flipped[g >> 6] ^= np.uint64(1) << np.uint64(g & 63)
                s = index.get(flipped.tobytes())
            if s is None or s == r:
                continue
            if np.abs(self.logit_maps[r] - self.logit_maps[s]).max() <= rtol * scale:
                ra, rb = find(r), find(s)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        roots = np.array([find(r) for r in range(R)], dtype=np.int64)
        return np.unique(roots, return_inverse=True)[1].astype(np.int64)

    def _across(self, edges: np.ndarray) -> dict:
        """Pattern just outside the middle of each edge ``edges`` (vertex indices starting an edge)."""
        if not len(edges):
            return {}
        v = self.vertices
        start = np.searchsorted(self.ring_offsets, edges, side="right") - 1
        nxt = edges + 1
        nxt[nxt == self.ring_offsets[start + 1]] = self.ring_offsets[start[nxt == self.ring_offsets[start + 1]]]
        scale = 1e-7 * float(np.abs(self.slice.vertices).max() + np.abs(v).max())
        if self.dim == 2:
            d = v[nxt] - v[edges]
            normal = np.stack([d[:, 1], -d[:, 0]], axis=1)  # outward for a counter-clockwise ring
            normal /= np.linalg.norm(normal, axis=1, keepdims=True)
            points = 0.5 * (v[edges] + v[nxt]) + scale * normal
        else:
            outward = np.where(v[edges, 0] >= v[nxt, 0], 1.0, -1.0)  # the interval's upper end points up
            points = v[edges] + scale * outward[:, None]
        pats = self.net.patterns(self.slice.to_input(points))
        return dict(zip(edges.tolist(), pats))

    # -- graphs ------------------------------------------------------------------
    def adjacency(self):
        """The region adjacency (dual) graph: a :class:`~relugeo.regions.adjacency.RegionGraph`
        (``.matrix()`` is the scipy.sparse (R, R) matrix of shared edge lengths). 2-D only."""
        from .adjacency import region_graph

        return region_graph(self)

    def to_networkx(self):
        """The adjacency graph as a ``networkx.Graph`` (needs networkx)."""
        return self.adjacency().to_networkx(self)

    def decision_boundary_graph(self):
        """Decision-boundary pieces joined where they meet: a symmetric scipy.sparse (S, S) matrix
        (see :func:`relugeo.regions.adjacency.decision_boundary_graph`)."""
        from .adjacency import decision_boundary_graph

        return decision_boundary_graph(self)

    @property
    def n_linear_regions(self) -> int:
        return int(self.linear_regions().max() + 1) if self.n_regions else 0

    def __repr__(self) -> str:
        return f"Partition({self.n_regions} regions of {self.net!r} on {self.slice!r})"


def partition(
    net: PWANet,
    slice_: Slice,
    *,
    max_regions: int | None = 10_000_000,
    batch_cells: int | None = None,
    tol: float = engine.DEFAULT_TOL,
    device: str = "cpu",
    predicates: str = "tolerance",
    parallel: bool = False,
    client=None,
) -> Partition:
    """The exact partition of a slice's domain into activation regions.

    Parameters
    ----------
    net : PWANet
        From :func:`relugeo.from_torch` or :func:`relugeo.load`.
    slice_ : Slice
        A 1-D segment, a 2-D convex polygon or a convex polytope of dimension
        3..8 in an affine slice of input space, or :meth:`Slice.full` (all of
        R^D, D <= 8).
    max_regions : int or None, default 10_000_000
        Raise :class:`RegionLimitError` instead of growing past this many regions.
    batch_cells : int, optional
        Cells split per compiled call; bounds the working memory (about
        ``batch_cells * 3 * max_width * 8`` bytes per layer of depth). The
        default keeps one batch within about 512 KiB, which keeps it in cache.
    tol : float, default 1e-10
        Relative on-hyperplane tolerance: a vertex within
        ``tol * (|grad| * U + |offset|)`` of a neuron's zero set lies on it.
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Kernels that split the cells; "auto" takes CUDA only when numba sees a
        GPU, an explicit "cuda" raises when it cannot run. Results are the same.
    predicates : {"tolerance", "certified"}, default "tolerance"
        How the engine decides which side of a neuron's zero set a vertex lies on.
        "tolerance": float64 with the ``tol`` rule above (slivers thinner than the
        tolerance vanish). "certified": the sign of the exact value for the float
        weights read as dyadic rationals, by float64 with rigorous error bounds and
        exact arithmetic where the bounds cannot decide; a region is reported iff
        its exact area (length) is positive. Certified runs on the CPU, on networks
        of two-slope and max (max-pooling) layers (``tol`` is then unused).
    parallel : bool, default False
        Walk subtrees of the partition on a pool of ``numba.get_num_threads()``
        threads, each running the kernels (same regions, same order, bit for
        bit), on 1-D, 2-D and k-D slices and :meth:`Slice.full`. Off by
        default: the walk then runs on the calling thread. bench/RESULTS.md
        ("Thread settings") gives the two-thread speed-up.
    client : dask.distributed.Client, optional
        :meth:`Slice.full` only: split the space through the first hidden layer
        here, then walk the cells on the cluster's workers; same regions.

    Returns
    -------
    Partition, or PartitionKD for k >= 3 and for :meth:`Slice.full`
    """
    _check_inputs(net, slice_)
    if predicates not in ("tolerance", "certified"):
        raise ValueError(f"predicates must be 'tolerance' or 'certified'; got {predicates!r}")
    if predicates == "certified":
        if slice_.is_full or slice_.dim >= 3:
            raise ValueError("predicates='certified' covers 1-D and 2-D slices; k-D slices and Slice.full use "
                             "predicates='tolerance'")
        certify.check_supported(net, device)
    if client is not None and not slice_.is_full:
        raise ValueError("client= fans out the partition of Slice.full only; pass client=None for this slice")
    if slice_.is_full or slice_.dim >= 3:
        warmup.ensure_compiled("k-D")
    if slice_.is_full:
        from .full_space import partition_full

        return partition_full(net, slice_, max_regions=max_regions, batch_cells=batch_cells, tol=tol,
                              device=device, client=client, parallel=parallel)
    if slice_.dim >= 3:
        from .partition_kd import partition_kd

        return partition_kd(net, slice_, max_regions=max_regions, batch_cells=batch_cells, tol=tol,
                            device=device, parallel=parallel)
    warmup.ensure_compiled()
    if predicates == "certified":
        warmup.ensure_compiled("certified")
    t0 = time.perf_counter()
    centre = _domain_centre(slice_)
    walked = certify.densified(net) if predicates == "certified" else net
    roots = _slice_roots(walked, slice_, centre)
    cert = certify.for_slice(walked, slice_, centre, roots) if predicates == "certified" else None
    leaves = list(engine.iter_leaves(walked, roots, tol=tol, batch_cells=batch_cells, max_regions=max_regions,
                                     device=device, parallel=parallel, certifier=cert))
    part = _from_leaves(net, slice_, leaves, centre, time.perf_counter() - t0, tol)
    if cert is not None:
        part.predicates = predicates
        part.n_exact_cells = cert.n_exact_cells
    return part


def _check_inputs(net: PWANet, slice_: Slice) -> None:
    if not isinstance(net, PWANet):
        raise TypeError(f"net must be a PWANet (use relugeo.from_torch); got {type(net).__name__}")
    if not isinstance(slice_, Slice):
        raise TypeError(f"slice_ must be a relugeo.Slice; got {type(slice_).__name__}")
    if slice_.input_dim != net.input_dim:
        raise InvalidSliceError(
            f"the slice lives in R^{slice_.input_dim} but the network takes {net.input_dim} inputs"
        )


def _domain_centre(slice_: Slice) -> np.ndarray:
    """The centre of the domain's bounding box: the walk runs in coordinates centred there, so
    small domains far from the slice's origin keep their precision."""
    return 0.5 * (slice_.vertices.min(axis=0) + slice_.vertices.max(axis=0))


def _slice_roots(net: PWANet, slice_: Slice, centre: np.ndarray) -> engine.CellBatch:
    """The walk's root cell: the slice's domain, in coordinates centred on ``centre``."""
    origin = slice_.origin + slice_.basis @ centre
    return engine.root_batch(net, origin[None, :], slice_.basis, slice_.vertices - centre)


def _from_leaves(net: PWANet, slice_: Slice, leaves: list, centre: np.ndarray, seconds: float, tol: float,
                 is_part: bool = False) -> Partition:
    """A :class:`Partition` of the regions in ``leaves`` (batches of the walk), in slice coordinates."""
    k = slice_.dim
    offs, shift = [np.zeros(1, dtype=np.int64)], 0
    for b in leaves:
        offs.append(b.off[1:] + shift)
        shift += int(b.off[-1])
    cat = lambda name: np.concatenate([getattr(b, name) for b in leaves])
    vx, vy = cat("vx"), cat("vy")
    vertices = np.stack([vx, vy], axis=1) if k == 2 else vx[:, None]
    elay, eneu = cat("elay"), cat("eneu")
    eneu[elay < 0] = -1
    part = Partition(
        net,
        slice_,
        np.ascontiguousarray(vertices),
        np.concatenate(offs),
        elay,
        eneu,
        cat("pat"),
        cat("pre"),
        seconds=seconds,
        tol=tol,
        shift=centre,
    )
    part.is_part = is_part
    return part
