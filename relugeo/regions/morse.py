"""PL Morse critical points of a logit on a 2-D slice.

A logit ``f`` is affine on every region, so on the region complex
(:mod:`relugeo.regions.region_complex`) it is the piecewise-linear function
given by its vertex values, and the topology of its sublevel sets
``{f <= c}`` changes only at vertices. A vertex ``v`` is classified by its
*lower link*: going once around ``v``, mark each neighbour ``w`` (joined to
``v`` by an edge of the complex) lower or higher than ``v``, and count the
sign changes of ``f(w) - f(v)``. Each corner of a convex face at ``v`` spans
less than a half-turn, over which an affine function changes sign at most
once, so the edge neighbours decide the count exactly.

Interior vertex (its neighbours form a closed ring):

* no change, all higher: **minimum**; no change, all lower: **maximum**;
* two changes: **regular**;
* ``2m`` changes, ``m >= 2``: **saddle** of multiplicity ``m - 1`` (a monkey
  saddle has multiplicity 2).

Boundary vertex of the slice (its neighbours form a path from one boundary
neighbour to the other): with ``k`` runs of lower neighbours along the path,

* ``k = 0``: **minimum** (a component of the sublevel set is born there);
* ``k >= 2``: **saddle** of multiplicity ``k - 1`` (components join);
* ``k = 1``: **regular**. This includes a local maximum of ``f`` on the
  slice's edge: its lower star is a disc glued along an arc, and no Betti
  number of the sublevel set changes (the ``lower_runs`` column tells the
  two apart: a boundary vertex whose neighbours are all lower).

With these rules ``#minima - #saddles (with multiplicity) + #maxima`` is the
Euler characteristic of the slice's domain, 1. Equal values (within
``rtol``) are ordered by the vertices' coordinates, x then y: simulation of
simplicity, as if ``f`` were tilted by an infinitesimal ``x + eps * y``. A
flat piece of ``f`` (a region where every neuron feeding the logit is off)
therefore gets the critical points of that tilt, and the count above still
holds.
"""

from __future__ import annotations

import numpy as np

from .region_complex import RegionComplex, region_complex

__all__ = ["critical_points", "euler_check", "vertex_order"]

KINDS = ("minimum", "saddle", "maximum", "regular")


def vertex_order(cx: RegionComplex, values: np.ndarray, *, rtol: float = 1e-9) -> np.ndarray:
    """A strict total order of the vertices by value: rank of each vertex, (V,) int64.

    Values closer than ``rtol`` times the largest |value| (chained in sorted
    order) tie and are ordered by x, then y.
    """
    order = np.argsort(values, kind="stable")
    v = values[order]
    eps = rtol * (float(np.abs(values).max()) if len(values) else 0.0)
    group = np.empty(len(v), dtype=np.int64)
    if len(v):
        group[order] = np.cumsum(np.r_[0, np.diff(v) > eps])
    final = np.lexsort((cx.points[:, 1], cx.points[:, 0], group))
    rank = np.empty(len(values), dtype=np.int64)
    rank[final] = np.arange(len(values))
    return rank


def classify(cx: RegionComplex, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kind (index into :data:`KINDS`), multiplicity and lower runs of every vertex, each (V,) int64."""
    V = cx.n_vertices
    v, nxt, prv = cx.corners()
    lower_n = rank[nxt] < rank[v]
    lower_p = rank[prv] < rank[v]
    changes = np.bincount(v, lower_n != lower_p, minlength=V).astype(np.int64)
    n_lower = np.bincount(v, lower_n | lower_p, minlength=V)
    boundary = cx.boundary_vertex
    # the two ends of a boundary vertex's path are its neighbours along boundary edges
    e = cx.edges[cx.boundary_edge]
    end_lower = np.zeros(V, dtype=np.int64)
    np.add.at(end_lower, e[:, 0], rank[e[:, 1]] < rank[e[:, 0]])
    np.add.at(end_lower, e[:, 1], rank[e[:, 0]] < rank[e[:, 1]])
    runs = np.where(boundary, (changes + end_lower) // 2, changes // 2)
    all_lower = (changes == 0) & (n_lower > 0)
    runs = np.where(~boundary & all_lower, 1, runs)  # an interior maximum: the whole ring is lower

    kind = np.full(V, 3, dtype=np.int64)
    mult = np.zeros(V, dtype=np.int64)
    kind[runs == 0] = 0
    kind[~boundary & all_lower] = 2
    saddle = (runs >= 2) & (boundary | (changes >= 4))
    kind[saddle] = 1
    mult[saddle] = runs[saddle] - 1
    mult[(kind == 0) | (kind == 2)] = 1
    return kind, mult, runs


def critical_points(part, *, logit: int = 0, complex_: RegionComplex | None = None):
    """PL Morse critical points of one logit on a 2-D slice (see the module docstring).

    Parameters
    ----------
    part : Partition
        A 2-D partition.
    logit : int, default 0
        Which output of the network.
    complex_ : RegionComplex, optional
        The partition's region complex, when already built.

    Returns
    -------
    pandas.DataFrame
        One row per critical vertex, sorted by value: ``x``, ``y`` (slice
        coordinates), ``value``, ``kind`` ("minimum", "saddle", "maximum"),
        ``multiplicity`` (1 for extrema), ``boundary`` (on the slice's
        edge) and ``lower_runs`` (runs of lower neighbours around the
        vertex).
    """
    import pandas as pd

    from .topology import _check, _check_logit

    _check(part)
    logit = _check_logit(part, logit)
    cx = region_complex(part) if complex_ is None else complex_
    f = cx.values(part, part.logit_maps[:, :, logit])
    kind, mult, runs = classify(cx, vertex_order(cx, f))
    crit = np.flatnonzero(kind < 3)
    crit = crit[np.argsort(f[crit], kind="stable")]
    return pd.DataFrame({
        "x": cx.points[crit, 0], "y": cx.points[crit, 1], "value": f[crit],
        "kind": np.asarray(KINDS, dtype=object)[kind[crit]], "multiplicity": mult[crit],
        "boundary": cx.boundary_vertex[crit], "lower_runs": runs[crit],
    })


def euler_check(points) -> int:
    """``#minima - #saddles (with multiplicity) + #maxima`` of a :func:`critical_points` table.

    Equals the Euler characteristic of the slice's domain, 1.
    """
    sign = points["kind"].map({"minimum": 1, "saddle": -1, "maximum": 1}).to_numpy()
    return int((sign * points["multiplicity"].to_numpy()).sum())
