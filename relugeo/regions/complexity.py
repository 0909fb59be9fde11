"""Local complexity around data points: exact (1-D, 2-D) and the published vertex estimator."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import numba
import numpy as np

from ..kernels import backend, cpu, resolve_device
from ..nets.pwanet import PWANet
from . import certify, engine, warmup
from .complexity_kd import exact_kd
from .polytopes import MAX_DIM


def frame(input_dim: int, n_directions: int, seed: int = 0) -> np.ndarray:
    """A seeded orthonormal frame, shape (input_dim, n_directions).

    Column ``p`` depends only on ``seed`` and the columns before it, so
    ``frame(D, P, s)[:, :k] == frame(D, k, s)``: the exact method at ``dim=k``
    and the vertex estimator at ``n_directions=k`` share the same frame. The
    global random state is never touched.
    """
    if not 1 <= n_directions <= input_dim:
        raise ValueError(
            f"n_directions must be between 1 and the input dimension {input_dim}; got {n_directions}"
        )
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n_directions, input_dim)).T
    q, r = np.linalg.qr(g)
    return np.ascontiguousarray(q * np.sign(np.diag(r)))


def cross_polytope(dim: int, radius: float) -> np.ndarray:
    """Vertices of the l1 ball of radius r in slice coordinates: (4, 2) ccw, (2, 1), or (2k, k)
    ordered ``+r e_1, -r e_1, +r e_2, ...`` for k >= 3."""
    r = float(radius)
    if dim == 1:
        return np.array([[-r], [r]])
    if dim == 2:
        return np.array([[r, 0.0], [0.0, r], [-r, 0.0], [0.0, -r]])
    return np.stack([r * np.eye(dim), -r * np.eye(dim)], axis=1).reshape(2 * dim, dim)


@dataclass
class LCResult:
    """Local complexity of one network at N points.

    Attributes
    ----------
    method : str
        ``"exact"`` or ``"vertex"``.
    neurons : ndarray of shape (N, n_layers), dtype=np.int64
        Exact: neurons of each layer whose zero set meets the neighbourhood (E1).
        Vertex: neurons whose sign differs between some vertex and the first.
    regions : ndarray of shape (N,), dtype=np.int64, or None
        Exact only: activation regions meeting the neighbourhood (E2).
    boundary_density : ndarray of shape (N,), dtype=np.float64, or None
        Exact only: length of all counted zero sets inside the neighbourhood
        per unit area (2-D), or crossings per unit length (1-D) (E3); for
        P >= 3 their (P-1)-measure per unit volume with ``density_kd=True``,
        else NaN.
    layer_names : list of str
        Column names of ``neurons``: ``layer_1`` ... and ``logits`` when counted.
    frame : ndarray of shape (D, P)
        The orthonormal directions of the neighbourhoods.
    """

    method: str
    radius: float
    dim: int
    seed: int
    layers: str
    neurons: np.ndarray
    regions: np.ndarray | None
    boundary_density: np.ndarray | None
    layer_names: list
    frame: np.ndarray
    seconds: float = 0.0
    groups: np.ndarray | None = field(default=None, repr=False)

    @property
    def lc(self) -> np.ndarray:
        """Local complexity per point: neurons summed over the counted layers, (N,)."""
        return self.neurons.sum(axis=1)

    @property
    def n_points(self) -> int:
        return self.neurons.shape[0]

    def to_frame(self):
        """One row per point: ``point``, ``group`` (if given), ``lc``, one column per
        layer, and for the exact method ``regions`` and ``boundary_density``."""
        import pandas as pd

        cols = {"point": np.arange(self.n_points)}
        if self.groups is not None:
            cols["group"] = self.groups
        cols.update(method=self.method, radius=self.radius, dim=self.dim, lc=self.lc)
        for j, name in enumerate(self.layer_names):
            cols[name] = self.neurons[:, j]
        if self.regions is not None:
            cols["regions"] = self.regions
            cols["boundary_density"] = self.boundary_density
        return pd.DataFrame(cols)

    def summary(self):
        """Mean of every numeric column per point group (one row if no groups)."""
        df = self.to_frame()
        keys = ["group"] if "group" in df else []
        num = [c for c in df.columns if c not in ("point", "group", "method", "radius", "dim")]
        if keys:
            out = df.groupby("group", sort=False)[num].mean()
        else:
            out = df[num].mean().to_frame("all").T
        out.insert(0, "n_points", df.groupby("group", sort=False).size() if keys else len(df))
        return out


_METHODS: dict[str, Callable] = {}


def _register(name):
    def deco(fn):
        _METHODS[name] = fn
        return fn

    return deco


def local_complexity(
    net: PWANet,
    X,
    radius: float,
    *,
    dim: int = 2,
    method: str = "exact",
    n_directions: int | None = None,
    seed: int = 0,
    layers="hidden",
    batch_size: int = 1024,
    groups=None,
    client=None,
    progress: Callable[[int, int], None] | None = None,
    device: str = "cpu",
    predicates: str = "tolerance",
    density_kd: bool = False,
) -> LCResult:
    """Local complexity of ``net`` around every point of ``X``.

    The neighbourhood of a point x is the cross-polytope of radius ``radius``
    spanned by an orthonormal frame (see :func:`frame`): vertices x +- r v_p.

    Parameters
    ----------
    net : PWANet or torch.nn.Module
        A torch module runs the vertex method through forward hooks on any
        architecture (GELU, LayerNorm, attention; see
        :func:`relugeo.regions.vertex_hooks.module_local_complexity`); the
        exact method converts it with :func:`relugeo.from_torch` first.
    X : array_like of shape (N, D)
    radius : float
        r > 0, in input units.
    dim : int in 1..8, default 2
        Exact method: dimension P of the neighbourhood, the cross-polytope
        ``x +- r v_p`` of the first P columns of the frame (a segment, a square,
        an octahedron, ...): the same frame as ``method="vertex",
        n_directions=P``. For P >= 3 ``boundary_density`` is NaN unless ``density_kd``.
    method : {"exact", "vertex"}, default "exact"
        ``"exact"`` counts every neuron and region met by the neighbourhood;
        ``"vertex"`` is the published estimator (Humayun et al. 2024), which
        forwards the 2P vertices only and can undercount beyond layer 1.
    n_directions : int, optional
        Vertex method: P, the number of directions (default ``min(25, D)``).
    seed : int, default 0
        Seed of the frame; the same seed gives the same frame for every point
        and every network of the same input dimension.
    layers : {"hidden", "all"} or sequence of submodules, default "hidden"
        Count hidden neurons only, or also the logits (the official MLP code's
        convention). For a torch module and the vertex method, also a list of
        submodules (or their names) whose pre-activations are read.
    batch_size : int, default 1024
        Points per batch; bounds memory. The exact method on the CPU splits a
        batch into smaller pieces that numba's threads take in turn, each
        piece on one thread (see :func:`_run_chunks`).
    groups : array_like of shape (N,), optional
        A label per point (e.g. "train", "test", "random") for ``summary()``.
    client : dask.distributed.Client, optional
        Fan the batches out over a dask cluster; results are identical.
    progress : callable(done, total), optional
        Called after every batch.
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Exact method: kernels that split the neighbourhoods; "auto" takes CUDA
        only when numba sees a GPU, an explicit "cuda" raises when it cannot run.
    predicates : {"tolerance", "certified"}, default "tolerance"
        Exact method: how hidden neurons' signs are decided (see
        :func:`relugeo.partition`). "certified" counts every region and neuron
        of positive measure in exact arithmetic (CPU; two-slope and max layers);
        the logits' zero sets (``layers="all"``) keep the tolerance rule.
    density_kd : bool, default False
        Exact method, P >= 3: also compute ``boundary_density``, the (P-1)-measure
        of the counted zero sets per unit volume. Every region is then built and
        its facets measured, which costs far more than counting (P <= 2 always
        gets it).

    Returns
    -------
    LCResult
    """
    if not isinstance(net, PWANet):
        from .vertex_hooks import module_local_complexity

        return module_local_complexity(net, X, radius, dim=dim, method=method, n_directions=n_directions,
                                       seed=seed, layers=layers, batch_size=batch_size, groups=groups,
                                       progress=progress, client=client, device=device, density_kd=density_kd,
                                       predicates=predicates)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}; got {method!r}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != net.input_dim:
        raise ValueError(f"X must have shape (N, {net.input_dim}) for this network; got {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X is empty: local complexity needs at least one point")
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise ValueError(f"X contains NaN or inf in {len(bad)} rows (first: {bad[:5].tolist()})")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0; got {radius!r}")
    if layers not in ("hidden", "all"):
        raise ValueError(f"layers must be 'hidden' or 'all'; got {layers!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (X.shape[0],):
            raise ValueError(f"groups must have shape ({X.shape[0]},); got {groups.shape}")
    if method == "exact":
        if dim not in range(1, MAX_DIM + 1):
            raise ValueError(f"dim must be an integer from 1 to {MAX_DIM} for the exact method; got {dim!r}")
        if dim > net.input_dim:
            raise ValueError(f"dim = {dim} exceeds the input dimension {net.input_dim}")
        P = dim
    else:
        P = min(25, net.input_dim) if n_directions is None else int(n_directions)
        if not 1 <= P <= net.input_dim:
            raise ValueError(
                f"n_directions must be between 1 and the input dimension {net.input_dim}; got {n_directions!r}"
            )
    if predicates not in ("tolerance", "certified"):
        raise ValueError(f"predicates must be 'tolerance' or 'certified'; got {predicates!r}")
    if predicates == "certified" and method == "exact":
        certify.check_supported(net, device)
    if method == "exact":
        warmup.ensure_compiled()
        if P >= 3:
            warmup.ensure_compiled("k-D")
        if predicates == "certified":
            warmup.ensure_compiled("certified")
    V = frame(net.input_dim, P, seed)
    fn = (functools.partial(_METHODS[method], device=device, predicates=predicates, density_kd=bool(density_kd))
          if method == "exact"
          else _METHODS[method])
    t0 = time.perf_counter()
    chunks = [slice(s, min(s + batch_size, len(X))) for s in range(0, len(X), int(batch_size))]
    if client is not None:
        futures = client.map(fn, [net] * len(chunks), [X[c] for c in chunks],
                             [float(radius)] * len(chunks), [V] * len(chunks), [layers] * len(chunks))
        parts = client.gather(futures)
    else:
        parts = _run_chunks(fn, net, X, float(radius), V, layers, chunks, progress,
                            threaded=method == "exact" and resolve_device(device) == "cpu")
    neurons = np.concatenate([p[0] for p in parts])
    regions = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    density = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])
    names = [f"layer_{j + 1}" for j in range(len(net.hidden))] + (["logits"] if layers == "all" else [])
    return LCResult(method, float(radius), P, int(seed), layers, neurons, regions, density, names, V,
                    time.perf_counter() - t0, groups)


def _run_chunks(fn, net, X, radius, V, layers, chunks, progress, threaded):
    """``fn`` on every chunk of points, in order; the results are the same for any thread count.

    With more than one numba thread (see :mod:`relugeo.threads`) the chunks are
    cut into pieces of at least 16 points, about four per thread, and a pool of
    that many Python threads takes them in turn, each running the kernels on
    one thread (they release the GIL). Work moves to whichever thread is free,
    so a core held by another process slows one thread, not the whole run.
    """
    n_threads = numba.get_num_threads()
    if not threaded or n_threads == 1:
        parts = []
        for c in chunks:
            parts.append(fn(net, X[c], radius, V, layers))
            if progress is not None:
                progress(c.stop, len(X))
        return parts
    pieces = []
    for c in chunks:
        step = max(16, -(-(c.stop - c.start) // (4 * n_threads)))
        pieces += [slice(s, min(s + step, c.stop)) for s in range(c.start, c.stop, step)]

    def one(piece):
        return fn(net, X[piece], radius, V, layers)

    parts = []
    with engine._single_threaded_blas(), engine.kernel_pool(n_threads) as pool:
        for piece, part in zip(pieces, pool.map(one, pieces)):
            parts.append(part)
            if progress is not None:
                progress(piece.stop, len(X))
    return parts


@_register("exact")
def _exact(net: PWANet, X: np.ndarray, radius: float, V: np.ndarray, layers: str, device: str = "cpu",
           predicates: str = "tolerance", density_kd: bool = False):
    N = X.shape[0]
    k = V.shape[1]
    if k >= 3:
        return exact_kd(net, X, radius, V, layers, device, density=density_kd)
    if predicates == "certified":
        net = certify.densified(net)
    with_logits = layers == "all"
    widths = list(net.widths)
    layer_offset = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    H = int(layer_offset[-1]) + (net.output_dim if with_logits else 0)
    counts = np.zeros(N, dtype=np.int64)
    hits = np.zeros((N, max(H, 1)), dtype=np.uint8)
    length = np.zeros(N)
    roots = engine.root_batch(net, X, V, cross_polytope(k, radius))
    depth = len(widths)
    tol = engine.DEFAULT_TOL
    kern = backend(device)
    cert = None
    if predicates == "certified":
        domain = [tuple(Fraction(float(v)) for v in row) for row in cross_polytope(k, radius)]
        cert = certify.for_roots(net, roots, X, V, domain)
    if cert is not None or with_logits or depth == 0 or any(layer.is_max for layer in net.hidden[-2:]):

        def consume(b: engine.CellBatch) -> None:
            kern.reduce_leaves(b.off, b.vx, b.vy, b.elay, b.eneu, b.root, b.pre, layer_offset[:-1],
                              layer_offset[-1], with_logits, b.uscale, tol, counts, hits, length)

        engine.walk(net, roots, consume, device=device, certifier=cert)
    elif k == 1 or depth == 1 or not net.layers[depth - 1].is_dense:
        # the last hidden layer only needs counting: its cells are never split for real

        def consume(b: engine.CellBatch) -> None:
            kern.reduce_last_layer(b.pre, b.off, b.vx, b.vy, b.elay, b.eneu, b.root, b.uscale, tol, depth - 1,
                                  net.layers[depth - 1].slopes, layer_offset[:-1], counts, hits, length)

        engine.walk(net, roots, consume, final_layer=depth - 1, device=device)
    else:
        # the last two hidden layers in one fused pass: no cell map of the last layer is stored
        last = net.layers[depth - 1]
        w32 = np.ascontiguousarray(net.weight_t(depth - 1), dtype=np.float32)

        def consume(b: engine.CellBatch) -> None:
            c = engine.count_batch(net, b, tol, device, with_base=False)
            # the last layer's map on every parent in float32 (twice as fast a product), which only tells the
            # kernel which neurons may cut a child; those get their float64 map there
            rough = (c.masked.astype(np.float32).reshape(-1, c.masked.shape[2]) @ w32).reshape(
                len(c.masked), 3, last.n_out)
            pieces, lengths, next_hits = kern.split_cells_reduce(
                b.pre, b.off, b.vx, b.vy, b.elay, b.eneu, b.uscale, tol, b.layer,
                net.layers[b.layer].slopes, c.bits, c.cuts, c.ncut, c.masked, last.weight, net.weight_t(depth - 1),
                last.bias, rough, last.slopes)
            cpu.add_split_counts(b.root, pieces, lengths, next_hits, c.cuts, c.ncut, b.off, b.elay, b.eneu, b.layer,
                                 layer_offset, counts, length, hits)

        engine.walk(net, roots, consume, final_layer=depth - 2, device=device)
    bounds = list(layer_offset) + ([H] if with_logits else [])
    neurons = np.stack([hits[:, bounds[j]:bounds[j + 1]].sum(axis=1) for j in range(len(bounds) - 1)],
                       axis=1).astype(np.int64)
    volume = 2.0 * radius * radius if k == 2 else 2.0 * radius
    return neurons, counts, length / volume


@_register("vertex")
def _vertex(net: PWANet, X: np.ndarray, radius: float, V: np.ndarray, layers: str):
    N, D = X.shape
    P = V.shape[1]
    # vertices x + r v_1, x - r v_1, x + r v_2, ... ; the first is x + r v_1
    offsets = radius * np.stack([V.T, -V.T], axis=1).reshape(2 * P, D)
    n_layers = len(net.hidden) + (1 if layers == "all" else 0)
    out = np.zeros((N, n_layers), dtype=np.int64)
    step = max(1, 16384 // (2 * P))
    for s0 in range(0, N, step):
        xs = X[s0 : s0 + step]
        pts = (xs[:, None, :] + offsets[None]).reshape(-1, D)
        zs = net.preactivations(pts)[:n_layers]
        for j, z in enumerate(zs):
            s = (z > 0).reshape(len(xs), 2 * P, -1)
            out[s0 : s0 + step, j] = (s != s[:, :1]).any(axis=1).sum(axis=1)
    return out, None, None
