"""Slices: a convex domain inside an affine subspace ``x = origin + basis @ u``."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidSliceError
from .polytopes import MAX_DIM, hull_facets, polytope_volume


def _as_vector(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InvalidSliceError(f"{name} must be a non-empty vector of shape (D,); got shape {np.shape(x)}")
    if not np.isfinite(x).all():
        raise InvalidSliceError(f"{name} contains NaN or inf")
    return x


class Slice:
    """A convex domain in a k-dimensional affine slice of input space (k = 1 to 8).

    A point with slice coordinates ``u`` (shape (k,)) is the input
    ``x = origin + basis @ u``.

    Parameters
    ----------
    origin : array_like of shape (D,)
    basis : array_like of shape (D, k)
        Linearly independent columns. Lengths and areas of the partition are in
        slice units, which are input units when the columns are orthonormal
        (as for :meth:`through` and :meth:`segment`).
    vertices : array_like of shape (m, k)
        k = 2: a convex polygon (either orientation; stored counter-clockwise);
        k = 1: the two ends of a segment, ``[[t0], [t1]]``;
        k = 3..8: any points whose convex hull is the domain (a bounded,
        full-dimensional polytope); only the hull's vertices are kept, and its
        facets are ``facets`` (F, k + 1): ``facets[f, :k] @ u + facets[f, k] <= 0``
        inside, unit outward normals.

    :meth:`full` stands for all of R^D (``is_full``), unbounded regions included.
    """

    is_full = False
    facets: np.ndarray | None = None

    def __init__(self, origin, basis, vertices):
        origin = _as_vector(origin, "origin")
        basis = np.asarray(basis, dtype=np.float64)
        if basis.ndim == 1:
            basis = basis[:, None]
        if basis.ndim != 2 or basis.shape[0] != origin.shape[0] or not 1 <= basis.shape[1] <= MAX_DIM:
            raise InvalidSliceError(
                f"basis must have shape (D, k) with D = {origin.shape[0]} and k in 1..{MAX_DIM}; got {basis.shape}"
            )
        if basis.shape[1] > basis.shape[0]:
            raise InvalidSliceError(f"basis has k = {basis.shape[1]} columns but the inputs have only "
                                    f"D = {basis.shape[0]} dimensions; k must be at most D")
        if not np.isfinite(basis).all():
            raise InvalidSliceError("basis contains NaN or inf")
        k = basis.shape[1]
        sv = np.linalg.svd(basis, compute_uv=False)
        if sv[-1] <= 1e-12 * max(sv[0], 1e-300):
            raise InvalidSliceError(
                f"basis columns must be linearly independent; got singular values {sv.tolist()}"
            )
        vertices = np.asarray(vertices, dtype=np.float64)
        if k == 1 and vertices.ndim == 1:
            vertices = vertices[:, None]
        if vertices.ndim != 2 or vertices.shape[1] != k:
            raise InvalidSliceError(f"vertices must have shape (m, {k}); got {vertices.shape}")
        if not np.isfinite(vertices).all():
            raise InvalidSliceError("vertices contain NaN or inf")
        if k == 1:
            vertices = _check_segment(vertices)
        elif k == 2:
            vertices = _check_convex_polygon(vertices)
        else:
            vertices, self.facets, _ = hull_facets(vertices)
        self.origin = origin
        self.basis = basis
        self.vertices = vertices

    # -- constructors --------------------------------------------------------
    @classmethod
    def through(cls, xa, xb, xc, pad: float = 0.1) -> "Slice":
        """The plane through three inputs, cut to a square around them.

        The basis is orthonormal (Gram-Schmidt of ``xb - xa`` and ``xc - xa``),
        the origin is the centre of the square, and the square is the smallest
        axis-aligned square (in slice coordinates) holding the three points,
        widened by ``pad`` times its side on every side.

        Parameters
        ----------
        xa, xb, xc : array_like of shape (D,)
            Three inputs that are not collinear.
        pad : float, default 0.1
            Margin around the three points as a fraction of the square's side.
        """
        xa = _as_vector(xa, "xa")
        xb = _as_vector(xb, "xb")
        xc = _as_vector(xc, "xc")
        if not (xa.shape == xb.shape == xc.shape):
            raise InvalidSliceError(f"xa, xb, xc must have the same shape; got {xa.shape}, {xb.shape}, {xc.shape}")
        if not (np.isfinite(pad) and pad >= 0):
            raise InvalidSliceError(f"pad must be a finite number >= 0; got {pad!r}")
        e1 = xb - xa
        n1 = np.linalg.norm(e1)
        if n1 == 0:
            raise InvalidSliceError("xa and xb are the same point; a slice needs three distinct, non-collinear points")
        e1 = e1 / n1
        e2 = xc - xa
        e2 = e2 - (e2 @ e1) * e1
        n2 = np.linalg.norm(e2)
        if n2 <= 1e-12 * max(n1, np.linalg.norm(xc - xa)):
            raise InvalidSliceError("xa, xb and xc are collinear; they span no plane")
        e2 = e2 / n2
        basis = np.stack([e1, e2], axis=1)
        uv = np.stack([np.zeros(2), [n1, 0.0], [(xc - xa) @ e1, (xc - xa) @ e2]])
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        centre = 0.5 * (lo + hi)
        half = 0.5 * (hi - lo).max() * (1.0 + 2.0 * pad)
        origin = xa + basis @ centre
        square = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        sl = cls(origin, basis, square)
        sl.anchors = uv - centre
        return sl

    @classmethod
    def through_points(cls, points, pad: float = 0.1) -> "Slice":
        """The k-D affine hull of k + 1 inputs (k = 1..8), cut to a cube around them.

        ``points`` (k + 1, D); the basis is orthonormal (QR of ``points[1:] - points[0]``
        in order), the origin is the centre of the cube, and the cube is the smallest
        axis-aligned cube (in slice coordinates) holding the points, widened by ``pad``
        times its side on every side. For three points this is :meth:`through`.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or not 2 <= pts.shape[0] <= MAX_DIM + 1:
            raise InvalidSliceError(f"points must have shape (k + 1, D) with k in 1..{MAX_DIM}; got {pts.shape}")
        if not np.isfinite(pts).all():
            raise InvalidSliceError("points contain NaN or inf")
        if pts.shape[0] == 3:
            return cls.through(*pts, pad=pad)
        if not (np.isfinite(pad) and pad >= 0):
            raise InvalidSliceError(f"pad must be a finite number >= 0; got {pad!r}")
        k = pts.shape[0] - 1
        if k > pts.shape[1]:
            raise InvalidSliceError(f"{k + 1} points span at most {pts.shape[1]} dimensions in R^{pts.shape[1]}")
        d = (pts[1:] - pts[0]).T
        q, rr = np.linalg.qr(d)
        diag = np.abs(np.diag(rr))
        if diag.min() <= 1e-12 * max(float(np.linalg.norm(d, axis=0).max()), 1e-300):
            raise InvalidSliceError(f"the {k + 1} points are affinely dependent: they span fewer than {k} dimensions")
        basis = q * np.sign(np.diag(rr))
        u = np.concatenate([np.zeros((1, k)), (pts[1:] - pts[0]) @ basis])
        lo, hi = u.min(axis=0), u.max(axis=0)
        centre = 0.5 * (lo + hi)
        half = 0.5 * (hi - lo).max() * (1.0 + 2.0 * pad)
        sl = cls.cube(pts[0] + basis @ centre, basis, half)
        sl.anchors = u - centre
        return sl

    @classmethod
    def segment(cls, xa, xb) -> "Slice":
        """The segment from ``xa`` to ``xb``: origin ``xa``, unit direction, ``u`` in [0, |xb - xa|]."""
        xa = _as_vector(xa, "xa")
        xb = _as_vector(xb, "xb")
        if xa.shape != xb.shape:
            raise InvalidSliceError(f"xa and xb must have the same shape; got {xa.shape} and {xb.shape}")
        d = xb - xa
        n = np.linalg.norm(d)
        if n == 0:
            raise InvalidSliceError("xa and xb are the same point; a segment needs two distinct points")
        sl = cls(xa, (d / n)[:, None], [[0.0], [n]])
        sl.anchors = np.array([[0.0], [n]])
        return sl

    @classmethod
    def square(cls, origin, basis, half_width: float) -> "Slice":
        """The square ``[-h, h]^2`` of a 2-D slice (or the segment ``[-h, h]`` of a 1-D one)."""
        h = float(half_width)
        if not (np.isfinite(h) and h > 0):
            raise InvalidSliceError(f"half_width must be a finite number > 0; got {half_width!r}")
        basis = np.asarray(basis, dtype=np.float64)
        k = 1 if basis.ndim == 1 else basis.shape[1]
        if k == 1:
            return cls(origin, basis, [[-h], [h]])
        return cls(origin, basis, [[-h, -h], [h, -h], [h, h], [-h, h]])

    @classmethod
    def cube(cls, origin, basis, radius: float) -> "Slice":
        """The cube ``[-r, r]^k`` of a k-D slice (k = 1..8; vertices in lexicographic sign order)."""
        basis, r = _basis_and_radius(basis, radius)
        k = basis.shape[1]
        if k == 2:
            return cls.square(origin, basis, r)
        signs = ((np.arange(2**k)[:, None] >> np.arange(k)[::-1]) & 1) * 2.0 - 1.0
        return cls(origin, basis, r * signs)

    @classmethod
    def cross_polytope(cls, origin, basis, radius: float) -> "Slice":
        """The l1 ball of radius r of a k-D slice: vertices ``+- r e_p`` (k = 1..8).

        With an orthonormal basis this is the neighbourhood of local complexity
        (``local_complexity(..., dim=k)`` on the frame ``basis``).
        """
        from .complexity import cross_polytope

        basis, r = _basis_and_radius(basis, radius)
        return cls(origin, basis, cross_polytope(basis.shape[1], r))

    @classmethod
    def full(cls, input_dim: int) -> "Slice":
        """All of R^D (identity basis, origin 0) for a net with D <= 8 inputs; regions may be unbounded.

        ``relugeo.partition`` splits it exactly by homogenising the network
        (see :mod:`relugeo.regions.full_space`); ``area`` is inf.
        """
        D = int(input_dim)
        if not 1 <= D <= MAX_DIM:
            raise InvalidSliceError(
                f"Slice.full needs an input dimension between 1 and {MAX_DIM}; got input_dim = {input_dim!r}"
            )
        sl = cls.__new__(cls)
        sl.origin = np.zeros(D)
        sl.basis = np.eye(D)
        sl.vertices = np.zeros((0, D))
        sl.is_full = True
        return sl

    # -- facts -----------------------------------------------------------------
    anchors: np.ndarray | None = None

    @property
    def dim(self) -> int:
        """k, the dimension of the slice."""
        return self.basis.shape[1]

    @property
    def input_dim(self) -> int:
        return self.origin.shape[0]

    @property
    def area(self) -> float:
        """Area (k = 2), length (k = 1) or volume (k >= 3) of the domain in slice units; inf for :meth:`full`."""
        v = self.vertices
        if self.is_full:
            return float("inf")
        if self.dim >= 3:
            return polytope_volume(v)
        if self.dim == 1:
            return float(v[1, 0] - v[0, 0])
        return 0.5 * _twice_signed_area(v)

    @property
    def scale(self) -> float:
        """Largest absolute slice coordinate of the domain (sets the tolerance scale)."""
        return float(np.abs(self.vertices).max()) if len(self.vertices) else float("inf")

    def to_input(self, u) -> np.ndarray:
        """Map slice coordinates (N, k) to inputs (N, D)."""
        u = np.asarray(u, dtype=np.float64).reshape(-1, self.dim)
        return self.origin + u @ self.basis.T

    def __repr__(self) -> str:
        if self.is_full:
            return f"Slice(all of R^{self.input_dim})"
        kind = "segment" if self.dim == 1 else f"{len(self.vertices)}-gon"
        if self.dim >= 3:
            kind = f"{self.dim}-polytope with {len(self.vertices)} vertices"
        return f"Slice({kind} in a {self.dim}-D slice of R^{self.input_dim}, area={self.area:.6g})"


def _basis_and_radius(basis, radius) -> tuple[np.ndarray, float]:
    r = float(radius)
    if not (np.isfinite(r) and r > 0):
        raise InvalidSliceError(f"radius must be a finite number > 0; got {radius!r}")
    basis = np.asarray(basis, dtype=np.float64)
    return (basis[:, None] if basis.ndim == 1 else basis), r


def _check_segment(v: np.ndarray) -> np.ndarray:
    if v.shape != (2, 1):
        raise InvalidSliceError(f"a 1-D domain is a segment [[t0], [t1]]; got vertices of shape {v.shape}")
    t0, t1 = sorted(v[:, 0])
    if not t1 > t0:
        raise InvalidSliceError(f"the segment has zero length: t0 = t1 = {t0}")
    return np.array([[t0], [t1]])


def _twice_signed_area(v: np.ndarray) -> float:
    """Shoelace sum relative to the first vertex, so small polygons far from 0 keep their area."""
    d = v - v[0]
    x, y = d[:, 0], d[:, 1]
    return float(x @ np.roll(y, -1) - np.roll(x, -1) @ y)


def _check_convex_polygon(v: np.ndarray) -> np.ndarray:
    if v.shape[0] < 3:
        raise InvalidSliceError(f"a 2-D domain needs at least 3 vertices; got {v.shape[0]}")
    area2 = _twice_signed_area(v)
    span = np.abs(v - v.mean(axis=0)).max()
    if not abs(area2) > 1e-24 * max(span, 1e-300) ** 2 or span == 0:
        raise InvalidSliceError("the domain polygon has zero area (its vertices are collinear or repeated)")
    if area2 < 0:
        v = v[::-1].copy()
    e = np.roll(v, -1, axis=0) - v
    cross = e[:, 0] * np.roll(e[:, 1], -1) - e[:, 1] * np.roll(e[:, 0], -1)
    if (cross < -1e-12 * span * span).any():
        raise InvalidSliceError("the domain polygon must be convex; a vertex turns clockwise")
    return np.ascontiguousarray(v)
