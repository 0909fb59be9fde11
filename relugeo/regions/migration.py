"""How the regions of one slice moved between two checkpoints.

From the :func:`~relugeo.regions.correspondence.correspond` matching of two
partitions of one 2-D slice (all lengths in units of the slice's scale,
:func:`~relugeo.regions.region_stats.slice_scale`):

* ``displacement``: over the regions that persisted, the area-weighted mean
  distance from the region's centroid at the first step to its successor's;
* ``toward_boundary``: the area-weighted mean component of that displacement
  along the unit vector from the first centroid to the nearest point of the
  *second* step's decision boundary (positive: toward the boundary), and
  ``toward_boundary_share`` the area share of persisted regions whose
  component is positive;
* ``boundary_distance_change``: the area-weighted mean change of the
  centroid's distance to its own step's decision boundary (negative: closer);
* events by distance band: regions that persisted, split or died, banded by
  their centroid's distance to the first step's decision boundary, and
  regions born or merged into, banded by the second step's.
"""

from __future__ import annotations

import numpy as np

from .correspondence import Correspondence, correspond
from .region_stats import slice_scale

__all__ = ["BANDS", "migration", "nearest_boundary_points"]

#: Default distance bands (slice scale units): near the decision boundary to far from it.
BANDS = np.array([0.0, 0.1, 0.25, 0.5, 1.0, np.inf])
_EVENTS_FROM = ("persisted", "split", "died")
_EVENTS_TO = ("merged", "born")


def nearest_boundary_points(part, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest point of ``part``'s decision boundary to each point (slice coordinates).

    Returns the points (N, 2) and distances (N,), float64; ``nan`` when the
    slice holds no decision boundary.
    """
    import shapely

    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    segs = part.decision_boundary
    if len(segs) == 0 or len(points) == 0:
        return np.full((len(points), 2), np.nan), np.full(len(points), np.nan)
    tree = shapely.STRtree(shapely.linestrings(segs))
    idx = tree.query_nearest(shapely.points(points), all_matches=False)
    seg = np.empty((len(points), 2, 2))
    seg[idx[0]] = segs[idx[1]]
    p, q = seg[:, 0], seg[:, 1]
    d = q - p
    dd = np.einsum("ij,ij->i", d, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(np.where(dd > 0, np.einsum("ij,ij->i", points - p, d) / dd, 0.0), 0.0, 1.0)
    near = p + t[:, None] * d
    return near, np.linalg.norm(near - points, axis=1)


def _band(dist: np.ndarray, bands: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        b = np.searchsorted(bands, dist, side="right") - 1
    return np.where(np.isfinite(dist) & (b >= 0) & (b < len(bands) - 1), b, -1)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(values)
    return float(np.average(values[ok], weights=weights[ok])) if ok.any() and weights[ok].sum() > 0 else np.nan


def migration(part_a, part_b, corr: Correspondence | None = None, *, bands=None):
    """Migration measures of the regions of one slice between two steps.

    Parameters
    ----------
    part_a, part_b : Partition
        The earlier and the later partition of the same 2-D slice.
    corr : Correspondence, optional
        Their :func:`~relugeo.regions.correspondence.correspond` result
        (computed when not given).
    bands : array_like, optional
        Increasing band edges of distance to the decision boundary, in slice
        scale units, starting at 0; default :data:`BANDS`.

    Returns
    -------
    pandas.DataFrame
        Tidy, one row per measure (and band): ``measure``, ``bin`` (-1 for
        unbanded measures), ``bin_lo``, ``bin_hi`` and ``value``. Measures:
        the counts of :meth:`Correspondence.counts`, ``n_regions_from``,
        ``n_regions_to``, ``displacement``, ``toward_boundary``,
        ``toward_boundary_share``, ``boundary_distance_change`` (see
        :mod:`relugeo.regions.migration`), and per band ``band_persisted``,
        ``band_split``, ``band_died``, ``band_merged``, ``band_born``.
    """
    import pandas as pd

    bands = BANDS if bands is None else np.asarray(bands, dtype=np.float64)
    if bands.ndim != 1 or len(bands) < 2 or bands[0] != 0 or (np.diff(bands) <= 0).any():
        raise ValueError(f"bands must be increasing, start at 0 and have at least 2 values; got {bands!r}")
    if corr is None:
        corr = correspond(part_a, part_b)
    elif not isinstance(corr, Correspondence):
        raise TypeError(f"corr must be a Correspondence; got {type(corr).__name__}")
    h = slice_scale(part_a)
    rows = [("n_regions_from", part_a.n_regions), ("n_regions_to", part_b.n_regions)]
    rows += list(corr.counts().items())

    pairs = corr.persisted
    ca, cb = part_a.centroids[pairs[:, 0]], part_b.centroids[pairs[:, 1]]
    w = part_a.areas[pairs[:, 0]]
    move = (cb - ca) / h
    near_b, _ = nearest_boundary_points(part_b, ca)
    toward = near_b - ca
    with np.errstate(invalid="ignore", divide="ignore"):
        toward /= np.linalg.norm(toward, axis=1, keepdims=True)
    along = np.einsum("ij,ij->i", move, toward)
    _, da = nearest_boundary_points(part_a, part_a.centroids)
    _, db = nearest_boundary_points(part_b, part_b.centroids)
    rows += [
        ("displacement", _weighted_mean(np.linalg.norm(move, axis=1), w)),
        ("toward_boundary", _weighted_mean(along, w)),
        ("toward_boundary_share", _weighted_mean(np.where(np.isfinite(along), along > 0, np.nan), w)),
        ("boundary_distance_change", _weighted_mean((db[pairs[:, 1]] - da[pairs[:, 0]]) / h, w)),
    ]
    frame = pd.DataFrame(rows, columns=["measure", "value"]).assign(bin=-1, bin_lo=np.nan, bin_hi=np.nan)
    band_a, band_b = _band(da / h, bands), _band(db / h, bands)
    B = len(bands) - 1
    binned = []
    for fates, band, events in ((corr.fate_a, band_a, _EVENTS_FROM), (corr.fate_b, band_b, _EVENTS_TO)):
        for event in events:
            pick = (fates == event) & (band >= 0)
            counts = np.bincount(band[pick], minlength=B)
            binned.append(pd.DataFrame({"measure": f"band_{event}", "value": counts.astype(np.float64),
                                        "bin": np.arange(B), "bin_lo": bands[:-1], "bin_hi": bands[1:]}))
    out = pd.concat([frame, *binned], ignore_index=True)
    out["value"] = out["value"].astype(np.float64)
    return out[["measure", "bin", "bin_lo", "bin_hi", "value"]]
