"""Certified predicates for the walk: float64 filters with error bounds, exact arithmetic behind them.

With ``predicates="certified"`` every sign the engine decides is the sign of
the exact value for the network's float64 weights read as dyadic rationals:

- the compiled kernels (:mod:`relugeo.kernels.certified`) decide a sign in
  float64 when the value is farther from zero than a rigorous bound on its
  error; the bound combines :func:`error_table` (how far a layer's float map
  on any cell can be from the exact one) with a radius carried by every ring
  vertex (how far the float vertex can be from the exact one);
- a cell with a sign the bound cannot decide comes here
  (:meth:`Certifier.exact_children`). An interval is split exactly by the
  layer's neurons. A polygon gets exact arithmetic only where the bound
  failed: its vertices are the exact intersections of the lines of their two
  edges (each line an exact affine function of the slice coordinates, given
  by the cell's pattern; in homogeneous integer coordinates), each neuron
  whose sign at some vertex the bound left undecided is evaluated exactly
  there, and the polygon is clipped exactly by those of them that cut it
  (the others get their exact sign). The pieces go back to the kernels, which
  split them by the remaining neurons with the settled ones held fixed.

A max layer (max-pooling) splits a cell by the ties ``z_i - z_j`` of each
window's candidates; the kernel bounds each difference like a neuron's value
(:func:`relugeo.kernels.certified.split_cells_max_cert`), and a cell with a
tie it cannot decide is split by the whole layer in exact arithmetic
(:meth:`Certifier.split_max`). Tie edges carry (layer, w * m + t) during the
walk, so that their exact line is known; the leaves get the partition's
label (layer, w).

A region is therefore reported iff it has positive area (length) in exact
arithmetic. Vertex coordinates stay float64 constructions, each within its
stored radius of the exact vertex.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction

import numpy as np

from ..kernels import certified as ck
from ..nets.pwanet import PWANet

U = 2.0**-53


MAX_DENSE_ENTRIES = 1 << 25  # an operator formed as a matrix for certified predicates: at most 256 MiB


def check_supported(net: PWANet, device: str) -> None:
    """Raise a clear error for what certified predicates do not cover: the GPU, and operator layers
    too large to form as matrices (two-slope and max layers are covered)."""
    if device == "cuda":
        raise ValueError(
            "predicates='certified' runs on the CPU: device must be 'cpu' or 'auto'; got device='cuda' "
            "(use predicates='tolerance' on the GPU)"
        )
    for j, layer in enumerate(net.layers):
        if not layer.is_dense and layer.weight.shape[0] * layer.weight.shape[1] > MAX_DENSE_ENTRIES:
            raise ValueError(
                f"predicates='certified' forms operator layers as matrices; layer {j} ({layer.weight!r}) has "
                f"{layer.weight.shape[0] * layer.weight.shape[1]:,} entries, more than {MAX_DENSE_ENTRIES:,}. "
                "Use predicates='tolerance' for this network"
            )


def densified(net: PWANet) -> PWANet:
    """``net`` with every operator (convolution) weight formed as its matrix (``LinearMap.dense``).

    Certified predicates need each layer's weights as numbers: their error
    bounds sum ``|W|`` and the exact fallback reads ``W`` as dyadic
    rationals. The matrix is the operator applied to the unit vectors, so the
    certified regions are exact for the network with these matrices.
    """
    if all(layer.is_dense for layer in net.layers):
        return net
    return PWANet([layer if layer.is_dense else dataclasses.replace(layer, weight=layer.dense_weight())
                   for layer in net.layers])


def _gamma(n: int) -> float:
    return n * U / (1.0 - n * U)


def error_table(net: PWANet, basis: np.ndarray, origins: np.ndarray, origin_err: np.ndarray) -> list[np.ndarray]:
    """Bounds on the error of every coefficient of each hidden layer's float map, valid on every cell.

    Layer ``l``'s map on a cell is ``P = W (D P_prev) + b`` with ``D`` the
    cell's slopes; computed in float64 from a float ``P_prev`` its error is at
    most ``|W| (s * E_prev) + gamma * (|W| (s * M_prev) + |b|)``, with ``s =
    |slope| + |1 - slope|`` (the parent's map plus the rank-one corrections of
    the children: at most three roundings per term, hence ``gamma(3 n + 8)``)
    and ``M_prev`` a bound on ``|P_prev|``.

    Parameters
    ----------
    basis : ndarray of shape (D, k), float64
    origins : ndarray of shape (N, D), float64   the roots' origins as the engine holds them
    origin_err : ndarray of shape (D,), float64  bound on their distance to the exact origins

    Returns
    -------
    list of ndarray of shape (k + 1, n_l), float64, one per hidden layer
    """
    mags = _magnitudes(net)
    WT, bias, _ = mags[0]
    D = WT.shape[0]
    k1 = basis.shape[1] + 1
    # rows 0..k: the bound M on |P| (the map A plus its error), rows k+1..: the error E
    ME = np.empty((2 * k1, WT.shape[1]))
    A, E = ME[:k1], ME[k1:]
    np.matmul(np.abs(basis).T, WT, out=A[:-1])
    np.matmul(np.abs(origins).max(axis=0), WT, out=A[-1])
    A[-1] += bias
    np.multiply(A, _gamma(D + 2), out=E)
    E[-1] += origin_err @ WT
    out = [E * (1 + 1e-10)]
    A += E
    for j in range(1, len(net.hidden)):
        s = mags[j - 1][2]
        WT, bias, _ = mags[j]
        # one product for the magnitudes and the errors
        ME = (_pooled(ME, net.layers[j - 1]) if s is None else ME * s) @ WT
        A, E = ME[:k1], ME[k1:]
        A[-1] += bias
        E += _gamma(3 * WT.shape[0] + 8) * A
        out.append(E * (1 + 1e-10))
        A += E
    return out


def _pooled(ME: np.ndarray, layer) -> np.ndarray:
    """Bounds (rows, n_act) on a max layer's outputs from bounds ``ME`` (rows, n_out) >= 0 on its
    pre-activations: a window's output is one of its candidates, a kept neuron itself."""
    w = layer.windows
    win = np.where(w >= 0, ME[:, np.maximum(w, 0)], 0.0).max(axis=2)
    return np.concatenate([win, ME[:, layer.keep]], axis=1)


def _magnitudes(net: PWANet) -> list:
    """Per layer: ``|W|`` transposed (n_in, n_out), ``|b|`` and ``|slope| + |1 - slope|`` (two-slope
    layers; None for max layers and the logits); cached on the net, as :meth:`PWANet.weight_t` caches
    its transposes."""
    cache = net.__dict__.get("_certify_magnitudes")
    if cache is None:
        cache = [(np.ascontiguousarray(np.abs(layer.weight).T), np.abs(layer.bias),
                  np.abs(layer.slopes) + np.abs(1.0 - layer.slopes)
                  if j < len(net.hidden) and not layer.is_max else None)
                 for j, layer in enumerate(net.layers)]
        net.__dict__["_certify_magnitudes"] = cache
    return cache


# -- exact dyadic arithmetic: a matrix is (M, e), the value M / 2**e, M an object array of ints --


def _dyadic(a) -> tuple[np.ndarray, int]:
    a = np.asarray(a, dtype=np.float64)
    m, ex = np.frexp(a)
    mi = (m * 2.0**53).astype(np.int64)
    sh = 53 - ex.astype(np.int64)
    e = int(sh.max()) if a.size else 0
    M = np.array([int(v) << int(e - s) for v, s in zip(mi.ravel(), sh.ravel())], dtype=object).reshape(a.shape)
    return M, e


def _align(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray, int]:
    (Ma, ea), (Mb, eb) = a, b
    e = max(ea, eb)
    return Ma * (1 << (e - ea)), Mb * (1 << (e - eb)), e


def _add(a: tuple, b: tuple) -> tuple:
    Ma, Mb, e = _align(a, b)
    return Ma + Mb, e


def _fraction(M, e: int) -> Fraction:
    return Fraction(int(M), 1 << e)


class Certifier:
    """The certified side of one walk: error bounds for the kernels and the exact fallback.

    Parameters
    ----------
    net : PWANet
    origins : ndarray of shape (N, D)   each root's origin as the engine holds it
    exact_origins : list of N tuples of Fractions, or None   the exact origins (default: ``origins``)
    basis : ndarray of shape (D, k)
    domain : list of m tuples of Fractions   the exact domain vertices (engine coordinates)
    origin_err : ndarray of shape (D,)       bound on |origins - exact_origins|

    ``domain`` and ``exact_origins`` may also be functions returning them:
    only the exact fallback reads them, so most walks never build them.
    """

    def __init__(self, net, origins, basis, domain, exact_origins=None, origin_err=None):
        self.net = net
        self.k = basis.shape[1]
        self.err = error_table(net, basis, origins, np.zeros(basis.shape[0]) if origin_err is None else origin_err)
        self._domain = domain
        self._exact_origins = exact_origins
        self.origins = origins
        self.basis = basis
        self._cache: dict = {}
        self.n_exact_cells = 0

    # what the exact fallback reads, built when it first runs
    @functools.cached_property
    def domain(self) -> list:
        return self._domain() if callable(self._domain) else self._domain

    @functools.cached_property
    def exact_origins(self) -> list | None:
        return self._exact_origins() if callable(self._exact_origins) else self._exact_origins

    @functools.cached_property
    def _offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.net.widths)])

    @functools.cached_property
    def _post_scales(self) -> list:
        """Per hidden layer, ints (active (n,), inactive (n,), es): an activation is ``z * active / 2**es``
        where the neuron is active, ``z * inactive / 2**es`` (its slope) elsewhere (None for max layers)."""
        out = []
        for layer in self.net.hidden:
            if layer.is_max:
                out.append(None)
                continue
            slopes = [Fraction(float(s)) for s in layer.slopes]
            es = max(s.denominator.bit_length() - 1 for s in slopes)
            inactive = np.array([s.numerator << (es - (s.denominator.bit_length() - 1)) for s in slopes],
                                dtype=object)
            out.append((np.full(len(slopes), 1 << es, dtype=object), inactive, es))
        return out

    @functools.cached_property
    def _W(self) -> list:
        return [_dyadic(layer.weight) for layer in self.net.layers]

    @functools.cached_property
    def _b(self) -> list:
        return [_dyadic(layer.bias) for layer in self.net.layers]

    @functools.cached_property
    def _basis(self) -> tuple:
        return _dyadic(self.basis)

    # -- vertex radii of the roots ----------------------------------------------------------
    def root_radii(self, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
        """Radius of each root vertex: a bound on its distance to the exact domain vertex.

        A root vertex is the exact domain vertex rounded once (the domain less
        the centre, or the domain itself), so it is within ``U |v|`` of it per
        coordinate; ``2 U`` covers the bound's own rounding.
        """
        big = np.abs(vx) if self.k == 1 else np.maximum(np.abs(vx), np.abs(vy))
        return 2.0 * U * big

    # -- exact maps ----------------------------------------------------------------------------
    def _layer0(self, root: int) -> tuple:
        key = ("root", root)
        if key not in self._cache:
            Wm, We = self._W[0]
            if self.exact_origins is None:
                o = _dyadic(self.origins[root])
            else:
                fr = self.exact_origins[root]
                e = max((f.denominator.bit_length() - 1) for f in fr)
                o = (np.array([f.numerator * (1 << (e - (f.denominator.bit_length() - 1))) for f in fr], dtype=object), e)
            grad = (Wm.dot(self._basis[0]), We + self._basis[1])  # (n, k)
            const = _add((Wm.dot(o[0]), We + o[1]), self._b[0])  # (n,)
            Mg, Mc, e = _align(grad, (const[0][:, None], const[1]))
            self._cache[key] = (np.concatenate([Mg, Mc], axis=1), e)
        return self._cache[key]

    @functools.cached_property
    def _masks(self) -> list:
        """Per hidden layer, the pattern words' mask of the bits of the layers before it."""
        words = self.net.n_words
        bits = np.arange(64 * words)
        return [np.packbits(bits < o, bitorder="little").view(np.uint64)[:words] for o in self._offsets]

    def _prefix(self, root: int, pattern: np.ndarray, layer: int) -> tuple:
        """The cache key of what layer ``layer``'s map depends on: the root and the earlier layers' bits."""
        return root, layer, (pattern & self._masks[layer]).tobytes()

    def _inputs(self, root: int, pattern: np.ndarray, layer: int) -> tuple:
        """Exact input (P (n_prev, k + 1), e) of hidden layer ``layer`` >= 1 on the cell of ``pattern``:
        the previous layer's map, times its slope where inactive (a max layer's: the rows of each window's
        winner, then of the kept neurons)."""
        key = ("in",) + self._prefix(root, pattern, layer)
        if key not in self._cache:
            M, e = self.maps(root, pattern, layer - 1)
            prev = self.net.layers[layer - 1]
            if prev.is_max:
                rows = np.concatenate([self._window_rows(pattern, layer - 1), prev.keep])
                self._cache[key] = (M[rows], e)
                return self._cache[key]
            bits = np.unpackbits(pattern.view(np.uint8), bitorder="little")
            on = bits[self._offsets[layer - 1] : self._offsets[layer]].astype(bool)
            active, inactive, es = self._post_scales[layer - 1]
            self._cache[key] = (M * np.where(on, active, inactive)[:, None], e + es)
        return self._cache[key]

    def _affine(self, layer: int, P: np.ndarray, e: int, rows) -> tuple:
        """Rows ``rows`` of layer ``layer``'s exact map from its exact input (P, e)."""
        Wm, We = self._W[layer]
        bm, be = self._b[layer]
        Ml, Mb, e2 = _align((Wm[rows].dot(P), We + e), (bm[rows], be))
        Ml = Ml.copy()
        Ml[..., -1] = Ml[..., -1] + Mb
        return Ml, e2

    def maps(self, root: int, pattern: np.ndarray, layer: int) -> tuple:
        """Exact map (M (n, k + 1), e) of hidden layer ``layer`` on the cell of ``pattern`` (earlier layers' bits)."""
        key = self._prefix(root, pattern, layer)
        if key not in self._cache:
            self._cache[key] = self._layer0(root) if layer == 0 else self._affine(
                layer, *self._inputs(root, pattern, layer), slice(None))
        return self._cache[key]

    def int_row(self, root: int, pattern: np.ndarray, layer: int, neuron: int) -> tuple:
        """Exact map of one neuron of hidden layer ``layer`` on the cell of ``pattern``, as Python
        ints ``(a_1..a_k, c)`` times a positive power of two (the same zero set and signs); the
        layer's full map is formed only for the layers below it."""
        key = self._prefix(root, pattern, layer)
        rkey = ("row", neuron) + key
        if rkey not in self._cache:
            if key in self._cache or layer == 0:
                M = self.maps(root, pattern, layer)[0][neuron]
            else:
                M = self._affine(layer, *self._inputs(root, pattern, layer), neuron)[0]
            self._cache[rkey] = tuple(int(v) for v in M)
        return self._cache[rkey]

    def _window_rows(self, pattern: np.ndarray, layer: int) -> np.ndarray:
        """The neuron that wins each window of max layer ``layer`` on the cell of ``pattern``, (W,) int64."""
        windows = self.net.layers[layer].windows
        bits = np.unpackbits(pattern.view(np.uint8), bitorder="little")
        on = bits[self._offsets[layer] : self._offsets[layer] + windows.size].reshape(windows.shape)
        return windows[np.arange(len(windows)), on.argmax(axis=1)]

    def _label_row(self, root, pattern, lay: int, neu: int) -> tuple:
        """Exact map, in ints as :meth:`int_row`, whose zero set an edge label (lay, neu) with ``lay >= 0``
        names: a neuron's, or for a max layer the tie ``z_s - z_t`` of window ``neu // m``'s winner ``s``
        (from ``pattern``) and the slot ``neu % m`` it beat."""
        layer = self.net.layers[lay]
        if not layer.is_max:
            return self.int_row(root, pattern, lay, neu)
        w, t = divmod(neu, layer.windows.shape[1])
        s = int(self._window_rows(pattern, lay)[w])
        win = self.int_row(root, pattern, lay, s)
        lost = self.int_row(root, pattern, lay, int(layer.windows[w, t]))
        return tuple(p - q for p, q in zip(win, lost))

    def _int_line(self, root, pattern, lay, neu) -> tuple:
        """Exact line (a, b, c) in ints (times a positive constant) of a polygon's edge label: a neuron's
        zero set, a max layer's tie, or the domain's edge -1 - neu."""
        if lay >= 0:
            return self._label_row(root, pattern, int(lay), int(neu))
        j = -1 - int(neu)
        (x0, y0), (x1, y1) = self.domain[j], self.domain[(j + 1) % len(self.domain)]
        line = (y0 - y1, x1 - x0, x0 * y1 - x1 * y0)
        scale = max(f.denominator for f in line)
        return tuple(int(f * scale) for f in line)

    def _end(self, root, pattern, lay, neu) -> Fraction:
        """Exact end (a Fraction) of an interval with edge label (lay, neu): a neuron's breakpoint, or the
        domain's end -1 - neu."""
        if lay < 0:
            return self.domain[-1 - int(neu)][0]
        a, c = self._label_row(root, pattern, int(lay), int(neu))
        return Fraction(-c, a)

    # -- the exact fallback --------------------------------------------------------------------
    def exact_children(self, batch, cells: np.ndarray):
        """Cells ``cells`` of ``batch`` (the kernels left them undecided), split with exact arithmetic
        where the float filter cannot decide.

        Intervals are split exactly into the next layer's cells. A polygon is
        split only as far as needed and comes back as pieces of the same layer
        (a CellBatch with ``fixed`` set) for the certified kernels to finish:
        see :meth:`_polygon_pieces`.
        """
        if self.k == 1:
            return self._exact_intervals(batch, cells)
        from .engine import CellBatch

        blocks = [self._polygon_pieces(batch, c) for c in cells.tolist()]
        parents = np.concatenate([np.full(len(b[0]), c) for b, c in zip(blocks, cells.tolist())]).astype(np.int64)
        sizes = np.concatenate([b[0] for b in blocks])
        off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        vx, vy, vr, elay, eneu = (np.concatenate([b[j] for b in blocks]) for j in range(1, 6))
        pat = np.concatenate([b[6] for b in blocks])
        fixed = np.concatenate([b[7] for b in blocks])
        return CellBatch(batch.layer, batch.pre[parents], off, vx, vy, elay.astype(np.int32), eneu.astype(np.int32),
                         pat, batch.root[parents], batch.uscale[parents], vr, fixed)

    def _polygon_pieces(self, batch, c: int) -> tuple:
        """Pieces of polygon ``c`` of ``batch`` on which the float filter can take over.

        Each neuron's sign at each vertex is first decided by the float filter
        (the kernels' bound); exact arithmetic evaluates only the (neuron,
        vertex) pairs it leaves. A neuron with such a pair is then settled
        exactly: fixed to its sign when it does not cut the cell, or the cell
        is clipped exactly by it. When every vertex sign is decided, the
        kernels failed inside the cell (where earlier cuts cross): the cell is
        split in float64 by the longest run of cutting neurons the kernels
        certify, and the pieces meet the neuron that failed at their vertices.

        Returns (ring sizes, vx, vy, vr, elay, eneu, pat (P, words), fixed (P, n) int8).
        """
        self.n_exact_cells += 1
        layer = batch.layer
        slopes = self.net.layers[layer].slopes
        n = len(slopes)
        st, en = int(batch.off[c]), int(batch.off[c + 1])
        fixed = np.zeros(n, dtype=np.int8) if batch.fixed is None else batch.fixed[c].copy()
        free = (fixed == 0) & (slopes != 1.0)
        err = self.err[layer]
        pre = batch.pre[c]
        x, y, r = batch.vx[st:en, None], batch.vy[st:en, None], batch.vr[st:en, None]
        v, e = ck.value_bound.py_func(pre[0], pre[1], pre[2], err[0], err[1], err[2], x, y, r)
        pos, neg = v > e, v < -e
        hard = free & ~(pos | neg).all(axis=0)
        if not hard.any():
            cuts = np.flatnonzero(free & pos.any(axis=0) & neg.any(axis=0))
            kept = self._certified_run(batch, c, fixed, cuts) if len(cuts) else 0
            if kept > 0:
                return self._float_split(batch, c, fixed, cuts[:kept])
            # not expected (the kernels failed on signs the filter decides): settle the first cut, or every
            # neuron, exactly
            hard[cuts[:1] if len(cuts) else free] = True
        root = int(batch.root[c])
        lines = [self._int_line(root, batch.pat[c], lay, neu)
                 for lay, neu in zip(batch.elay[st:en].tolist(), batch.eneu[st:en].tolist())]
        verts = [_meet(lines[q - 1], lines[q]) for q in range(len(lines))]
        split = []
        for i in np.flatnonzero(hard).tolist():
            row = self.int_row(root, batch.pat[c], layer, i)
            signs = [1 if pos[q, i] else -1 if neg[q, i] else _side(row, p) for q, p in enumerate(verts)]
            if 1 in signs and -1 in signs:
                split.append((i, row))
            else:
                fixed[i] = 1 if 1 in signs else -1
        labels = list(zip(batch.elay[st:en].tolist(), batch.eneu[st:en].tolist()))
        pieces = _split_polygon(verts, labels, lines, split, layer)
        fx = np.repeat(fixed[None], len(pieces), axis=0)
        for j, piece in enumerate(pieces):
            for (i, _), side in zip(split, piece[3]):
                fx[j, i] = side
        # a vertex's float coordinates are X / W correctly rounded: within U of it, relative
        xy = np.array([(X / W, Y / W) for piece in pieces for X, Y, W in piece[0]])
        lab = np.array([lb for piece in pieces for lb in piece[1]], dtype=np.int32).reshape(-1, 2)
        return (np.array([len(piece[0]) for piece in pieces], dtype=np.int64), xy[:, 0].copy(), xy[:, 1].copy(),
                np.abs(xy).max(axis=1) * (2 * U) + 2.0**-1074, lab[:, 0], lab[:, 1],
                np.repeat(batch.pat[c : c + 1], len(pieces), axis=0), fx)

    def _one_cell(self, batch, c: int, fixed: np.ndarray) -> tuple:
        """Kernel arguments for polygon ``c`` alone: (pre (1, 3, n), off, vx, vy, vr, elay, eneu)."""
        st, en = int(batch.off[c]), int(batch.off[c + 1])
        pre = self._filter_pre(batch.pre[c : c + 1], fixed[None], batch.layer, batch.vx[st:en], batch.vy[st:en],
                               batch.vr[st:en])
        return (pre, np.array([0, en - st], dtype=np.int64), batch.vx[st:en], batch.vy[st:en], batch.vr[st:en],
                batch.elay[st:en], batch.eneu[st:en])

    def _certified_run(self, batch, c: int, fixed: np.ndarray, cuts: np.ndarray) -> int:
        """How many of the cutting neurons ``cuts`` (in order) the kernels split polygon ``c`` by
        before a sign is undecided (the kernels cut in this order, so a longer run only adds cuts)."""
        args = self._one_cell(batch, c, fixed)
        err = self.err[batch.layer]
        lo, hi = 0, len(cuts)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            slopes = self._without(batch.layer, cuts[mid:])
            undecided = ck.split_cells_count_cert(args[0], err, *args[1:], batch.layer, slopes)[-1]
            lo, hi = (lo, mid) if undecided[0] else (mid, hi)
        return lo

    def _without(self, layer: int, neurons: np.ndarray) -> np.ndarray:
        """The layer's slopes with ``neurons`` made linear (the kernels then leave them out)."""
        slopes = self.net.layers[layer].slopes.copy()
        slopes[neurons] = 1.0
        return slopes

    def _float_split(self, batch, c: int, fixed: np.ndarray, cuts: np.ndarray) -> tuple:
        """Polygon ``c`` split by the certified kernels by ``cuts`` only; each piece has them fixed."""
        layer = batch.layer
        n = len(fixed)
        cutting = np.zeros(n, dtype=bool)
        cutting[cuts] = True
        slopes = self._without(layer, np.flatnonzero(~cutting))
        args = self._one_cell(batch, c, fixed)
        err = self.err[layer]
        bits, kcuts, ncut, npieces, nverts, _, undecided = ck.split_cells_count_cert(args[0], err, *args[1:],
                                                                                   layer, slopes)
        assert not undecided[0]
        nc, nv = int(npieces[0]), int(nverts[0])
        coff = np.zeros(nc + 1, dtype=np.int64)
        cx, cy, cr = np.empty(nv), np.empty(nv), np.empty(nv)
        cl, cn = np.empty(nv, dtype=np.int32), np.empty(nv, dtype=np.int32)
        cpat = np.empty((nc, batch.pat.shape[1]), dtype=np.uint64)
        ck.split_cells_write_cert(args[0], err, *args[1:], layer, slopes, batch.pat[c : c + 1],
                                  int(self._offsets[layer]), bits, kcuts, ncut,
                                  np.array([0, nc], dtype=np.int64), np.array([0, nv], dtype=np.int64),
                                  np.empty((1, 3, 0)), np.empty((n, 0)), coff, cx, cy, cr, cl, cn, cpat,
                                  np.empty((nc, 3, 0)), np.empty(nc, dtype=np.int64))
        on = np.unpackbits(cpat.view(np.uint8), axis=1, bitorder="little")[:, int(self._offsets[layer]):]
        fx = np.repeat(fixed[None], nc, axis=0)
        fx[:, cuts] = np.where(on[:, cuts] == 1, 1, -1)
        # the pieces keep the parent's pattern: the kernels set this layer's bits when they finish them
        return np.diff(coff), cx, cy, cr, cl, cn, np.repeat(batch.pat[c : c + 1], nc, axis=0), fx

    def _filter_pre(self, pre: np.ndarray, fixed: np.ndarray | None, layer: int, vx, vy, vr) -> np.ndarray:
        """``pre`` (C, 3, n) with each neuron of known sign (``fixed`` (C, n) nonzero) replaced by a constant
        of that sign which the kernels' bound decides at every vertex (``vx, vy, vr``) of the batch."""
        if fixed is None or not fixed.any():
            return pre
        err = self.err[layer]
        X, Y, R = np.abs(vx).max(), np.abs(vy).max(), vr.max()
        big = 4.0 * (err[0] * X + err[1] * Y + err[2] + (err[0] + err[1]) * R) + 1.0
        out = pre.copy()
        rows, cols = np.nonzero(fixed)
        out[rows, 0, cols] = 0.0
        out[rows, 1, cols] = 0.0
        out[rows, 2, cols] = fixed[rows, cols] * big[cols]
        return out

    def _exact_intervals(self, batch, cells: np.ndarray):
        """Split intervals ``cells`` of ``batch`` exactly; the children as a CellBatch of the next layer."""
        from .engine import CellBatch, _apply_to_children

        net = self.net
        layer = net.layers[batch.layer]
        nxt = net.layers[batch.layer + 1]
        bit_offset = int(sum(net.widths[: batch.layer]))
        rings, pats, parents = [], [], []
        for c in cells.tolist():
            self.n_exact_cells += 1
            root = int(batch.root[c])
            st = int(batch.off[c])
            ends = [self._end(root, batch.pat[c], batch.elay[q], batch.eneu[q]) for q in range(st, st + 2)]
            M, e = self.maps(root, batch.pat[c], batch.layer)
            z = [tuple(_fraction(v, e) for v in row) for row in M]
            linear = layer.slopes == 1.0
            labels = [(int(batch.elay[st]), int(batch.eneu[st])), (int(batch.elay[st + 1]), int(batch.eneu[st + 1]))]
            for verts, labs in _split_interval(ends, labels, z, linear, batch.layer):
                point = [sum(v[d] for v in verts) / len(verts) for d in range(self.k)]
                on = [not lin and (sum(a * x for a, x in zip(row[:-1], point)) + row[-1]) > 0
                      for row, lin in zip(z, linear)]
                pat = batch.pat[c].copy()
                for i in np.flatnonzero(on):
                    g = bit_offset + int(i)
                    pat[g >> 6] |= np.uint64(1) << np.uint64(g & 63)
                rings.append((verts, labs))
                pats.append(pat)
                parents.append(c)
        off = np.concatenate([[0], np.cumsum([len(v) for v, _ in rings])]).astype(np.int64)
        coords = [v for verts, _ in rings for v in verts]
        vx = np.array([float(p[0]) for p in coords])
        vr = np.array([_up(max(abs(Fraction(float(x)) - x) for x in p)) for p in coords])
        lab = np.array([lb for _, labs in rings for lb in labs], dtype=np.int32).reshape(-1, 2)
        cpat = np.array(pats, dtype=np.uint64).reshape(len(pats), -1)
        parents = np.array(parents, dtype=np.int64)
        pre = _apply_to_children(layer, nxt, batch.pre[parents], cpat, bit_offset)
        return CellBatch(batch.layer + 1, pre, off, vx, np.zeros(len(coords)), lab[:, 0].copy(), lab[:, 1].copy(),
                         cpat, batch.root[parents], batch.uscale[parents], vr)

    # -- the kernels ---------------------------------------------------------------------------
    def count(self, batch):
        """Pass 1 of the certified kernels on ``batch``: (bits, cuts, ncut, npieces, nverts, masked, undecided)."""
        err = self.err[batch.layer]
        slopes = self.net.layers[batch.layer].slopes
        if self.k == 2:
            pre = self._filter_pre(batch.pre, batch.fixed, batch.layer, batch.vx, batch.vy, batch.vr)
            out = ck.split_cells_count_cert(pre, err, batch.off, batch.vx, batch.vy, batch.vr, batch.elay,
                                            batch.eneu, batch.layer, slopes)
            if pre is batch.pre:
                return out
            # the next layer's map comes from the true maps of the fixed neurons
            masked = np.where(out[0][:, None, :] == 1, batch.pre, slopes * batch.pre)
            return out[:5] + (masked, out[6])
        return ck.split_intervals_count_cert(batch.pre, err, batch.off, batch.vx, batch.vr, slopes)

    def split_once(self, batch) -> tuple | None:
        """A lone 2-D cell split by its layer in one pass (``split_cell_once_cert``):
        ``(bits, cuts, ncut, masked, coff, cx, cy, cr, cl, cn, cpat, cparent)`` as
        :func:`relugeo.kernels.cpu.split_cell_once` returns them, with the vertex radii ``cr``;
        None when a sign needs exact arithmetic or some neuron's sign is fixed (then count and write)."""
        if self.k != 2 or (batch.fixed is not None and batch.fixed.any()):
            return None
        out = ck.split_cell_once_cert(np.ascontiguousarray(batch.pre), self.err[batch.layer], batch.vx, batch.vy,
                                      batch.vr, batch.elay, batch.eneu, batch.layer,
                                      self.net.layers[batch.layer].slopes, batch.pat, int(self._offsets[batch.layer]))
        return out[:-1] if out[-1] else None

    def write(self, batch, c, start, stop, piece_start, vert_start, wt, coff, cx, cy, cr, cl, cn, cpat, pre,
              cparent) -> None:
        """Pass 2 of the certified kernels on cells ``start:stop`` (see :func:`relugeo.regions.engine.split_batch`)."""
        rows = slice(start, stop)
        err = self.err[batch.layer]
        slopes = self.net.layers[batch.layer].slopes
        bit_offset = int(self._offsets[batch.layer])
        tail = (batch.layer, slopes, batch.pat[rows], bit_offset, c.bits[rows], c.cuts[rows], c.ncut[rows],
                piece_start, vert_start, c.base[rows], wt, coff, cx, cy, cr, cl, cn, cpat, pre, cparent)
        if self.k == 2:
            # the maps pass 1 split (fixed neurons as constants): the cuts' rows are the true ones
            pre_k = self._filter_pre(batch.pre, batch.fixed, batch.layer, batch.vx, batch.vy, batch.vr)
            ck.split_cells_write_cert(pre_k[rows], err, batch.off[start : stop + 1], batch.vx, batch.vy,
                                      batch.vr, batch.elay, batch.eneu, *tail)
        else:
            ck.split_intervals_write_cert(batch.pre[rows], err, batch.off[start : stop + 1], batch.vx, batch.vr,
                                          batch.elay, batch.eneu, *tail)


    # -- max layers ----------------------------------------------------------------------------
    def _twins(self, layer: int) -> np.ndarray:
        """(n,) int64: for each neuron of max layer ``layer``, the first neuron with the same weight row and
        bias (its pre-activation is the same on every cell, exactly)."""
        key = ("twins", layer)
        if key not in self._cache:
            lyr = self.net.layers[layer]
            first: dict = {}
            self._cache[key] = np.array([first.setdefault(lyr.weight[i].tobytes() + lyr.bias[i].tobytes(), i)
                                         for i in range(lyr.n_out)], dtype=np.int64)
        return self._cache[key]

    def _equal_on_cells(self, batch) -> tuple[np.ndarray, np.ndarray]:
        """What is known exactly of a max layer's candidates on each cell of ``batch``, from the cell's
        pattern: ``rep`` (C, n) int64, an id shared by candidates equal on the whole cell (twins, see
        :meth:`_twins`, and id n for every candidate zero there: no bias, every input a ReLU unit off on
        the cell), and ``pos`` (C, n) int8, 1 for a candidate positive inside the cell (no bias, no
        negative weight, inputs on or off, one on at least). A max-pool after a ReLU meets both on most cells.
        """
        j = batch.layer
        lyr = self.net.layers[j]
        rep = np.repeat(self._twins(j)[None, :], batch.n_cells, axis=0)
        pos = np.zeros(rep.shape, dtype=np.int8)
        prev = self.net.layers[j - 1] if j > 0 else None
        if prev is None or prev.is_max or batch.n_cells == 0:
            return rep, pos
        key = ("feeds", j)
        if key not in self._cache:
            w = np.asarray(lyr.weight)
            feeds = (w != 0).astype(np.float32)  # (n, n_prev)
            self._cache[key] = (feeds, feeds.sum(axis=1), np.asarray(lyr.bias) == 0, (w >= 0).all(axis=1))
        feeds, n_feeds, unbiased, nonneg = self._cache[key]
        start = int(self._offsets[j - 1])
        bits = np.unpackbits(batch.pat.view(np.uint8), axis=1, bitorder="little")[:, start : start + prev.n_out]
        on = (bits == 1) & (prev.slopes != 1.0)[None, :]  # positive inside the cell
        off = (bits == 0) & (prev.slopes == 0.0)[None, :]  # exactly zero on the cell
        n_off = off.astype(np.float32) @ feeds.T
        n_on = on.astype(np.float32) @ feeds.T
        zero = unbiased[None, :] & (n_off == n_feeds[None, :])
        rep[zero] = lyr.n_out
        pos[unbiased[None, :] & nonneg[None, :] & (n_on > 0) & (n_on + n_off == n_feeds[None, :])] = 1
        return rep, pos

    def split_max(self, batch):
        """Split every cell of ``batch`` by the ties of max layer ``batch.layer``: the certified kernel
        where its bounds decide every sign, exact arithmetic for the other cells (:meth:`_exact_max`).
        Returns the children with the next layer's map, as :func:`relugeo.regions.engine.split_max_batch`."""
        from .engine import max_children

        layer = self.net.layers[batch.layer]
        vy = batch.vy if self.k == 2 else np.zeros(len(batch.vx))
        coff, cx, cy, cr, cl, cn, cparent, cwin, undecided = ck.split_cells_max_cert(
            batch.pre, self.err[batch.layer], batch.off, batch.vx, vy, batch.vr, batch.elay, batch.eneu,
            batch.layer, layer.windows, *self._equal_on_cells(batch))
        cells = np.flatnonzero(undecided).tolist()
        if cells:
            parts = [self._exact_max(batch, c) for c in cells]
            sizes = np.concatenate([np.diff(coff)] + [np.array([len(r[0]) for r in p], dtype=np.int64)
                                                      for p in parts])
            coff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            rings = [r for p in parts for r in p]
            cx, cy, cr = (np.concatenate([v] + [np.array([x[j] for r in rings for x in r[0]], dtype=np.float64)])
                          for j, v in enumerate((cx, cy, cr)))
            lab = np.array([lb for r in rings for lb in r[1]], dtype=np.int32).reshape(-1, 2)
            cl = np.concatenate([cl, lab[:, 0]])
            cn = np.concatenate([cn, lab[:, 1]])
            cparent = np.concatenate([cparent, np.repeat(cells, [len(p) for p in parts])]).astype(np.int64)
            cwin = np.concatenate([cwin, np.array([r[2] for r in rings], dtype=np.int64).reshape(-1, cwin.shape[1])])
        return max_children(self.net, batch, coff, cx, cy, cl, cn, cparent, cwin, cr)

    def _exact_max(self, batch, c: int) -> list:
        """Cell ``c`` of ``batch`` split exactly by its max layer's ties, window after window (the kernel's
        order and rules, exact signs; a piece is kept iff its exact area (length) is positive).

        Returns the pieces as (vertices, labels, winners): vertices (x, y, radius) in float64, each within
        its radius of the exact vertex; labels (lay, neu) of the edge leaving each vertex (an interval's
        two ends); winners the winning slot of every window.
        """
        self.n_exact_cells += 1
        layer = batch.layer
        windows = self.net.layers[layer].windows
        root = int(batch.root[c])
        pat = batch.pat[c]
        st, en = int(batch.off[c]), int(batch.off[c + 1])
        labels = list(zip(batch.elay[st:en].tolist(), batch.eneu[st:en].tolist()))
        M = self.maps(root, pat, layer)[0]
        rows = [tuple(int(v) for v in row) for row in M]
        if self.k == 2:
            lines = [self._int_line(root, pat, lay, neu) for lay, neu in labels]
            pieces = [([_meet(lines[q - 1], lines[q]) for q in range(len(lines))], labels, lines, ())]
        else:
            pieces = [([self._end(root, pat, lay, neu) for lay, neu in labels], labels, None, ())]
        m = windows.shape[1]
        for w in range(len(windows)):
            out = []
            for piece in pieces:
                for s in np.flatnonzero(windows[w] >= 0).tolist():
                    part = piece[:3]
                    for t in np.flatnonzero(windows[w] >= 0).tolist():
                        if t == s or part is None:
                            continue
                        diff = tuple(p - q for p, q in zip(rows[windows[w, s]], rows[windows[w, t]]))
                        part = _keep_winner(part, diff, t < s, (layer, w * m + t), self.k)
                    if part is not None:
                        out.append(part + (piece[3] + (s,),))
            pieces = out
        if self.k == 2:
            # a vertex's float coordinates are X / W correctly rounded: within U of it, relative
            return [([(X / W, Y / W, max(abs(X / W), abs(Y / W)) * (2 * U) + 2.0**-1074) for X, Y, W in verts],
                     labs, wins) for verts, labs, _, wins in pieces]
        return [([(float(x), 0.0, _up(abs(Fraction(float(x)) - x))) for x in ends], labs, wins)
                for ends, labs, _, wins in pieces]

    def public_labels(self, batch):
        """``batch`` with the labels of max-layer tie edges (layer, w * m + t) written as the partition's
        (layer, w): the window, whatever slot it beat."""
        eneu = batch.eneu
        for j, layer in enumerate(self.net.hidden):
            if layer.is_max:
                eneu = np.where(batch.elay == j, eneu // layer.windows.shape[1], eneu).astype(np.int32)
        if eneu is not batch.eneu:
            batch = dataclasses.replace(batch, eneu=eneu)
        return batch


def for_slice(net: PWANet, slice_, centre: np.ndarray, roots) -> Certifier:
    """The certifier of a partition of ``slice_`` computed in coordinates centred on ``centre``
    (see :func:`for_roots`)."""
    k = slice_.dim
    origin = slice_.origin
    basis = slice_.basis

    def domain():
        return [tuple(Fraction(float(v)) - Fraction(float(c)) for v, c in zip(row, centre))
                for row in slice_.vertices]

    def exact():
        return [tuple(Fraction(float(o)) + sum(Fraction(float(b)) * Fraction(float(c)) for b, c in zip(row, centre))
                      for o, row in zip(origin, basis))]

    origin_err = _gamma(k + 2) * (np.abs(origin) + np.abs(basis) @ np.abs(centre))
    return for_roots(net, roots, roots_origin(origin, basis, centre), basis, domain, exact, origin_err)


def for_roots(net: PWANet, roots, origins, basis, domain, exact_origins=None, origin_err=None) -> Certifier:
    """The certifier of a walk from ``roots`` (one cell per origin, each the exact ``domain``).

    Sets the roots' vertex radii and names each domain edge in ``eneu``
    (``-1 - j`` for edge j, which the exact fallback reads; ``elay`` stays -1).
    """
    cert = Certifier(net, origins, basis, domain, exact_origins, origin_err)
    m = int(roots.off[1] - roots.off[0])
    roots.vr = cert.root_radii(roots.vx, roots.vy)
    roots.eneu = (-1 - np.arange(len(roots.vx)) % m).astype(np.int32)
    return cert


def roots_origin(origin: np.ndarray, basis: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The float origin of a partition's root cell, as :func:`relugeo.regions.partition.partition` computes it."""
    return (origin + basis @ centre)[None, :]


def _up(x: Fraction) -> float:
    """A float64 no smaller than ``x`` (>= 0)."""
    f = float(x)
    return f if Fraction(f) >= x else math.nextafter(f, math.inf)


def _meet(a: tuple, b: tuple) -> tuple:
    """The exact point where lines ``a`` and ``b`` (int triples) meet, in homogeneous ints (X, Y, W), W > 0."""
    (a1, b1, c1), (a2, b2, c2) = a, b
    w = a1 * b2 - a2 * b1
    if w == 0:
        raise ArithmeticError("two consecutive edges of a cell are parallel")
    s = 1 if w > 0 else -1
    return (s * (b1 * c2 - b2 * c1), s * (c1 * a2 - c2 * a1), s * w)


def _side(line: tuple, p: tuple) -> int:
    """Sign of int line ``line`` at homogeneous point ``p``."""
    v = line[0] * p[0] + line[1] * p[1] + line[2] * p[2]
    return (v > 0) - (v < 0)


def _split_polygon(verts, labels, lines, rows, layer):
    """Clip a convex polygon exactly by the lines ``rows`` ((neuron, (a, b, c)) each, every one cutting
    the polygon) in order (the kernel's rules, exact signs).

    ``verts`` are homogeneous int points, ``labels`` and ``lines`` those of the edge leaving each
    vertex. Returns (vertices, labels, lines, sides) per piece, ``sides`` the piece's side (+1 or
    -1) of each row."""
    pieces = [(verts, labels, lines, ())]
    for i, row in rows:
        out = []
        for pv, pl, pe, sides in pieces:
            s = [_side(row, p) for p in pv]
            if not (max(s) > 0 and min(s) < 0):
                out.append((pv, pl, pe, sides + ((1 if max(s) > 0 else -1),)))
                continue
            m = len(pv)
            for side in (1, -1):
                nv, nl, ne = [], [], []
                for q in range(m):
                    q1 = (q + 1) % m
                    g0, g1 = s[q] * side, s[q1] * side
                    if g0 >= 0:
                        nv.append(pv[q])
                        on = g0 == 0 and g1 <= 0
                        nl.append((layer, i) if on else pl[q])
                        ne.append(row if on else pe[q])
                    if g0 * g1 < 0:
                        nv.append(_meet(pe[q], row))
                        nl.append((layer, i) if g0 > 0 else pl[q])
                        ne.append(row if g0 > 0 else pe[q])
                out.append((nv, nl, ne, sides + (side,)))
        pieces = out
    return pieces


def _split_interval(ends, labels, z, linear, layer):
    """Cut an interval exactly at the breakpoints of ``z`` inside it; coinciding breakpoints are one point."""
    t0, t1 = ends
    cuts: dict = {}
    for i, (a, c) in enumerate(z):
        if linear[i] or a == 0:
            continue
        t = -c / a
        if t0 < t < t1:
            cuts.setdefault(t, i)
    points = sorted(cuts)
    bounds = [(t0, labels[0])] + [(t, (layer, cuts[t])) for t in points] + [(t1, labels[1])]
    return [([(bounds[p][0],), (bounds[p + 1][0],)], [bounds[p][1], bounds[p + 1][1]]) for p in range(len(bounds) - 1)]


def _keep_winner(part, diff: tuple, lower: bool, label: tuple, k: int):
    """The part of a piece (vertices, labels, lines) where the tie ``diff`` (ints (a, [b,] c)) is >= 0, or
    None when it has no positive area (length). A tie zero on the whole piece is lost by the higher
    slot: ``lower`` says the other candidate has the lower slot. Vertices are homogeneous int points
    (2-D) or Fractions (1-D); a new edge gets ``label``."""
    verts, labels, lines = part
    if not any(diff):
        return None if lower else part
    if k == 1:
        vals = [diff[0] * t + diff[1] for t in verts]
    else:
        vals = [diff[0] * X + diff[1] * Y + diff[2] * W for X, Y, W in verts]
    if max(vals) <= 0:
        return None
    if min(vals) >= 0:
        return part
    if k == 1:
        end = 0 if diff[0] > 0 else 1
        verts, labels = list(verts), list(labels)
        verts[end] = Fraction(-diff[1], diff[0])
        labels[end] = label
        return verts, labels, lines
    # _split_polygon names a new edge (layer, neuron): the label's two ints
    piece = next(p for p in _split_polygon(verts, labels, lines, [(label[1], diff)], label[0]) if p[3] == (1,))
    return piece[0], piece[1], piece[2]
