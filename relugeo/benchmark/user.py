"""Workloads on a user's own network and points: slices through the points, LC at the points."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidSliceError
from ..nets.pwanet import PWANet
from ..regions.slices import Slice
from .suite import Workload

RADIUS_FRACTION = 0.08  # default LC radius: this fraction of the median distance between two points


def default_radius(X: np.ndarray, seed: int = 0, sample: int = 500) -> float:
    """``RADIUS_FRACTION`` times the median distance between two points of ``X`` (at most ``sample`` of them).

    For scikit-learn's digits scaled to [0, 1] this is about 0.25, the
    radius of the suite's local-complexity cases.
    """
    rng = np.random.default_rng(seed)
    P = X[rng.choice(len(X), sample, replace=False)] if len(X) > sample else X
    sq = (P * P).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * P @ P.T
    d = np.sqrt(np.maximum(d2[np.triu_indices(len(P), 1)], 0.0))
    d = d[d > 0]
    if not len(d):
        raise ValueError("every point of --data is the same point; pass --radius explicitly")
    return float(RADIUS_FRACTION * np.median(d))


def _draw(rng: np.random.Generator, n: int, k: int, make, count: int, what: str) -> list:
    """``count`` distinct seeded k-subsets of rows for which ``make(rows)`` is a valid slice."""
    if count == 0:
        return []
    if n < k:
        raise ValueError(f"{what} need at least {k} points; --data has {n}")
    out, seen = [], set()
    for _ in range(200 * count):
        rows = tuple(sorted(int(i) for i in rng.choice(n, k, replace=False)))
        if rows in seen:
            continue
        seen.add(rows)
        try:
            out.append((rows, make(rows)))
        except InvalidSliceError:
            continue
        if len(out) == count:
            return out
    raise ValueError(f"could not find {count} {what} through distinct, non-degenerate points of --data "
                     f"(found {len(out)}); pass fewer")


def user_workloads(
    net: PWANet,
    X,
    *,
    slices: int = 3,
    segments: int = 3,
    points: int = 200,
    radius: float | None = None,
    seed: int = 0,
) -> list[Workload]:
    """The benchmark's measurements on a user's network: nothing is recorded, every check still runs.

    Parameters
    ----------
    net : PWANet
    X : array_like of shape (N, D)
        The user's points, D = ``net.input_dim``.
    slices : int
        2-D slices through three points each (``Slice.through``, pad 0.1), rows drawn seeded.
    segments : int
        1-D segments between two points each.
    points : int
        Exact 2-D local complexity (1-D for a 1-input network) at this many
        points (a seeded subset when N is larger); 0 for none.
    radius : float, optional
        LC radius in input units; default :func:`default_radius`.
    seed : int
        Seed of the row draws (the LC frame is ``frame(D, dim, 0)``, as in ``local_complexity``).

    Returns
    -------
    list of Workload
        2-D slices, then segments, then local complexity; ``expected`` is None.
    """
    if not net.hidden:
        raise ValueError("the network has no hidden layer: it is affine, one region everywhere; nothing to count")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != net.input_dim:
        raise ValueError(f"--data must hold points of dimension {net.input_dim} for this network; "
                         f"got an array of shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("--data contains NaN or inf")
    for name, v in (("slices", slices), ("segments", segments), ("points", points)):
        if int(v) < 0:
            raise ValueError(f"{name} must be >= 0; got {v}")
    if slices and net.input_dim < 2:
        raise ValueError("2-D slices need inputs of dimension >= 2; this network takes 1 input (use 0 slices)")
    if not (slices or segments or points):
        raise ValueError("nothing to measure: slices, segments and points are all 0")
    rng = np.random.default_rng(seed)
    out = []
    for rows, sl in _draw(rng, len(X), 3, lambda r: Slice.through(*X[list(r)], pad=0.1), slices, "2-D slices"):
        out.append(Workload(f"2d data {','.join(map(str, rows))}", net,
                            f"the square through rows {rows[0]}, {rows[1]}, {rows[2]} of the data (pad 0.1)",
                            slice=sl))
    for rows, sl in _draw(rng, len(X), 2, lambda r: Slice.segment(*X[list(r)]), segments, "segments"):
        out.append(Workload(f"1d data {rows[0]}-{rows[1]}", net,
                            f"the segment from row {rows[0]} to row {rows[1]} of the data", slice=sl))
    if points:
        r = default_radius(X, seed) if radius is None else float(radius)
        if not (np.isfinite(r) and r > 0):
            raise ValueError(f"radius must be a finite number > 0; got {radius!r}")
        idx = np.arange(len(X)) if len(X) <= points else np.sort(rng.choice(len(X), points, replace=False))
        dim = 2 if net.input_dim >= 2 else 1
        out.append(Workload(f"lc{dim}d data{len(idx)} r{r:.3g}", net,
                            f"exact {dim}-D local complexity at {len(idx)} data points, radius {r:.4g}",
                            X=np.ascontiguousarray(X[idx]), radius=r, dim=dim))
    return out
