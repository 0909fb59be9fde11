"""Region migration across training checkpoints: :func:`track`.

For a fixed set of points and of 2-D slices (the same at every checkpoint),
each checkpoint gets local complexity (exact and vertex estimator), the exact
distance of every point to its own region's boundary in the full input space,
and, per slice, the exact partition with its SplineCam statistics and the
density of regions and region boundaries by distance to the decision
boundary (definitions in :mod:`relugeo.regions.region_stats`).

Results are written per checkpoint, atomically, as soon as that checkpoint is
done, so an interrupted run keeps every finished checkpoint and a rerun with
the same settings resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidSliceError
from ..nets.pwanet import PWANet
from .complexity import local_complexity
from .partition import Partition, partition
from .region_stats import (
    decision_boundary_distance,
    density_by_distance,
    distance_to_region_boundary,
    region_shape,
    slice_scale,
)
from .slices import Slice
from .topology_series import topology_table

__all__ = ["DEFAULT_DISTANCE_BINS", "SLICES", "TrackResult", "track"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pt2", ".ckpt")
#: Default band edges of distance to the decision boundary, in units of the slice's scale.
DEFAULT_DISTANCE_BINS = np.r_[np.linspace(0.0, 1.0, 11), np.inf]
#: The ``set`` value of the rows that describe the slices.
SLICES = "slices"
_FORMAT = "relugeo-track"
_VERSION = 1

# columns and dtypes of the three tables (the LC columns appear only for the methods run)
_SUMMARY = {"checkpoint": "str", "step": "int64", "set": "str", "measure": "str", "radius": "float64",
            "bin": "int64", "bin_lo": "float64", "bin_hi": "float64", "value": "float64"}
_POINTS = {"checkpoint": "str", "step": "int64", "set": "str", "point": "int64", "radius": "float64",
           "lc_exact": "Int64", "regions_exact": "Int64", "boundary_density_exact": "float64",
           "lc_vertex": "Int64", "dist_region_boundary": "float64", "correct": "bool"}
_REGIONS = {"checkpoint": "str", "step": "int64", "slice": "int64", "region": "int64", "area": "float64",
            "eccentricity": "float64", "centrality": "float64", "dist_db_centroid": "float64",
            "dist_db_nearest": "float64", "prediction": "int64", "n_active": "int64",
            "slice_scale": "float64"}
_TABLES = {"summary": _SUMMARY, "points": _POINTS, "regions": _REGIONS}


@dataclass
class TrackResult:
    """The measures of :func:`track`, one row per checkpoint and measure.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy summary, columns ``checkpoint``, ``step``, ``set`` (a point set's
        name, or ``"slices"``), ``measure``, ``radius`` (``nan`` where none
        applies), ``bin``, ``bin_lo``, ``bin_hi`` (distance bands in units of
        the slice scale; -1 and ``nan`` where none applies) and ``value``.
        The measures are listed in :func:`track`.
    points : pandas.DataFrame
        One row per checkpoint x point x radius: ``set``, ``point`` (row of
        the point in its set as given), ``radius``, the per-point local
        complexity columns of the methods run, ``dist_region_boundary`` and,
        with labels, ``correct``.
    regions : pandas.DataFrame
        One row per checkpoint x slice x region: ``slice``, ``region``,
        ``area`` (slice units), ``eccentricity``, ``centrality``,
        ``dist_db_centroid``, ``dist_db_nearest`` (slice units),
        ``prediction``, ``n_active`` and ``slice_scale``.
    slices : list of Slice
        The fixed slices, in the order of the ``slice`` column.
    triplets : ndarray of shape (S, 3), dtype=np.int64, or None
        Rows of the slice set the slices pass through (None for slices given
        as :class:`Slice` objects).
    partitions : dict of int to list of Partition, or None
        With ``keep_partitions=True``: per step, the partitions of the slices.
    out : pathlib.Path or None
        Where the tables were written.
    migration : pandas.DataFrame or None
        With ``match=True``: one row per pair of consecutive checkpoints x
        slice x measure, columns ``checkpoint_from``, ``checkpoint_to``,
        ``step_from``, ``step_to``, ``slice``, ``measure``, ``bin``,
        ``bin_lo``, ``bin_hi``, ``value`` (see
        :func:`relugeo.regions.migration.migration`).
    topology : pandas.DataFrame or None
        With ``topology=True``: one row per checkpoint x slice x class,
        columns ``checkpoint``, ``step``, ``slice``, ``class``, ``b0``,
        ``b1``, ``area``, ``minima``, ``saddles``, ``maxima`` (see
        :func:`relugeo.regions.topology_series.slice_topology`).
    """

    table: object
    points: object
    regions: object
    slices: list
    triplets: np.ndarray | None = None
    partitions: dict | None = field(default=None, repr=False)
    out: Path | None = None
    migration: object = None
    topology: object = None

    @property
    def steps(self) -> list[int]:
        return sorted(self.table["step"].unique().tolist())

    def pivot(self, measure: str, *, radius: float | None = None, set: str | None = None):
        """One measure as a DataFrame indexed by step.

        Columns are the point sets (or the distance bins for a binned
        measure, which then needs ``set``). ``radius`` picks one radius of a
        local-complexity measure.
        """
        t = self.table[self.table["measure"] == measure]
        if t.empty:
            known = sorted(self.table["measure"].unique())
            raise ValueError(f"measure must be one of {known}; got {measure!r}")
        if radius is not None:
            t = t[np.isclose(t["radius"], radius)]
        elif t["radius"].notna().any() and t["radius"].nunique() > 1:
            raise ValueError(f"measure {measure!r} has several radii {sorted(t['radius'].unique())}; pass radius=")
        if set is not None:
            t = t[t["set"] == set]
        columns = "bin" if (t["bin"] >= 0).any() else "set"
        if columns == "bin" and t["set"].nunique() > 1:
            raise ValueError(f"measure {measure!r} is binned; pass set=")
        return t.pivot_table(index="step", columns=columns, values="value", sort=False).sort_index()


@dataclass(frozen=True)
class _Config:
    sets: dict
    index: dict
    labels: dict
    slices: tuple
    radius: dict
    n_directions: int
    seed: int
    layers: str
    bins: np.ndarray
    batch_size: int
    keep_partitions: bool
    device: str = "cpu"

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(f"{_FORMAT}/{_VERSION}".encode())
        for name in self.sets:
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.sets[name]).tobytes())
            h.update(np.ascontiguousarray(self.index[name]).tobytes())
            if self.labels[name] is not None:
                h.update(np.ascontiguousarray(self.labels[name], dtype=np.int64).tobytes())
        for sl in self.slices:
            for a in (sl.origin, sl.basis, sl.vertices):
                h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps([{m: list(r) for m, r in self.radius.items()}, self.n_directions, self.seed,
                             self.layers, self.bins.tolist()]).encode())
        return h.hexdigest()[:20]


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _checkpoint_list(checkpoints) -> list[Path]:
    if isinstance(checkpoints, (str, Path)):
        path = Path(checkpoints)
        if path.is_dir():
            files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES),
                           key=_natural_key)
            if not files:
                raise FileNotFoundError(f"no checkpoints ({', '.join(CHECKPOINT_SUFFIXES)}) in directory {path}")
            return files
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        return [path]
    if isinstance(checkpoints, Sequence) and checkpoints:
        files = [Path(p) for p in checkpoints]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"checkpoints not found: {missing[:5]}")
        return files
    raise TypeError(f"checkpoints must be a directory, a file or a non-empty list of files; got {checkpoints!r}")


def _step_of(path: Path, position: int) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else position


def _keys(files: list[Path]) -> list[str]:
    stems = [p.stem for p in files]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{i:04d}_{s}" for i, s in enumerate(stems)]


def _point_sets(data, input_dim: int | None):
    if isinstance(data, Mapping):
        items = list(data.items())
    else:
        items = [("data", data)]
    if not items:
        raise ValueError("data must hold at least one point set; got an empty mapping")
    sets, labels = {}, {}
    for name, value in items:
        if not isinstance(name, str) or not name or name == SLICES:
            raise ValueError(f"point-set names must be non-empty strings other than {SLICES!r}; got {name!r}")
        y = None
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"data[{name!r}] must be an array X or a pair (X, y); got a {len(value)}-tuple")
            value, y = value
        X = np.asarray(value, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0 or (input_dim is not None and X.shape[1] != input_dim):
            want = f"(N, {input_dim})" if input_dim is not None else "(N, D)"
            raise ValueError(f"data[{name!r}] must have shape {want} with N >= 1; got {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError(f"data[{name!r}] contains NaN or inf")
        if y is not None:
            y = np.asarray(y)
            if y.shape != (X.shape[0],):
                raise ValueError(f"labels of data[{name!r}] must have shape ({X.shape[0]},); got {y.shape}")
            y = y.astype(np.int64)
        sets[name] = X
        labels[name] = y
    return sets, labels


def _radius_by_method(radius, methods) -> dict:
    if isinstance(radius, Mapping):
        pairs = dict(radius)
    else:
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        radii = [radius] if np.isscalar(radius) else list(radius)
        if len(set(methods)) != len(methods):
            raise ValueError(f"methods must be distinct; got {methods!r}")
        pairs = {m: radii for m in methods}
    out = {}
    for m, radii in pairs.items():
        if m not in ("exact", "vertex"):
            raise ValueError(f"methods must be among ('exact', 'vertex'); got {m!r}")
        radii = [radii] if np.isscalar(radii) else list(radii)
        if not radii or any(not (np.isscalar(r) and np.isfinite(r) and r > 0) for r in radii):
            raise ValueError(f"radius of method {m!r} must be one or more finite numbers > 0; got {radii!r}")
        out[m] = tuple(sorted({float(r) for r in radii}))
    return {m: out[m] for m in sorted(out)}


def _choose_triplets(X, y, n: int, rng) -> np.ndarray:
    out = []
    for _ in range(100 * n):
        if len(out) == n:
            break
        if y is not None and len(np.unique(y)) >= 3:
            classes = rng.choice(np.unique(y), 3, replace=False)
            idx = [int(rng.choice(np.flatnonzero(y == c))) for c in classes]
        else:
            idx = [int(i) for i in rng.choice(len(X), 3, replace=False)]
        try:
            Slice.through(*X[idx])
        except InvalidSliceError:
            continue
        out.append(idx)
    if len(out) < n:
        raise ValueError(f"could not find {n} non-collinear triplets of points for the slices")
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


# ---------------------------------------------------------------------------
# the measures of one checkpoint (runs locally or on a dask worker)
# ---------------------------------------------------------------------------
def _row(rows, set_, measure, value, radius=np.nan, b=-1, lo=np.nan, hi=np.nan):
    rows.append((set_, measure, float(radius), int(b), float(lo), float(hi), float(value)))


def _measure(net: PWANet, cfg: _Config) -> dict:
    import pandas as pd

    rows: list = []
    point_frames = []
    for name, X in cfg.sets.items():
        dist = distance_to_region_boundary(net, X)
        _row(rows, name, "dist_region_boundary", dist.mean())
        _row(rows, name, "dist_region_boundary_median", np.median(dist))
        correct = None
        if cfg.labels[name] is not None:
            correct = net.forward(X).argmax(axis=1) == cfg.labels[name]
            _row(rows, name, "accuracy", correct.mean())
        radii = sorted({r for rs in cfg.radius.values() for r in rs})
        for r in radii or [np.nan]:
            cols = {"set": name, "point": cfg.index[name], "radius": r}
            for method in cfg.radius:
                if r not in cfg.radius[method]:
                    continue
                res = local_complexity(net, X, r, dim=2, method=method, n_directions=cfg.n_directions,
                                       seed=cfg.seed, layers=cfg.layers, batch_size=cfg.batch_size,
                                       device=cfg.device)
                cols[f"lc_{method}"] = res.lc
                _row(rows, name, f"lc_{method}", res.lc.mean(), r)
                if method == "exact":
                    cols["regions_exact"] = res.regions
                    cols["boundary_density_exact"] = res.boundary_density
                    _row(rows, name, "regions_exact", res.regions.mean(), r)
                    _row(rows, name, "boundary_density_exact", res.boundary_density.mean(), r)
            cols["dist_region_boundary"] = dist
            if correct is not None:
                cols["correct"] = correct
            point_frames.append(pd.DataFrame(cols))

    region_frames, partitions = [], []
    bins = cfg.bins
    counts = np.zeros(len(bins) - 1)
    areas = np.zeros(len(bins) - 1)
    lengths = np.zeros(len(bins) - 1)
    db_length = db_area = 0.0
    for s, sl in enumerate(cfg.slices):
        part = partition(net, sl, device=cfg.device)
        if cfg.keep_partitions:
            partitions.append(part)
        h = slice_scale(part)
        shape = region_shape(part)
        dc, dn = decision_boundary_distance(part)
        n_active = np.unpackbits(part.patterns.view(np.uint8), axis=1, bitorder="little")[:, : net.n_hidden]
        region_frames.append(pd.DataFrame({
            "slice": s, "region": np.arange(part.n_regions), **shape, "dist_db_centroid": dc,
            "dist_db_nearest": dn, "prediction": part.predictions(), "n_active": n_active.sum(axis=1),
            "slice_scale": h,
        }))
        segs = part.decision_boundary
        db_length += float(np.linalg.norm(segs[:, 1] - segs[:, 0], axis=1).sum()) / h if len(segs) else 0.0
        db_area += part.domain_area / h**2
        if len(segs):
            dens = density_by_distance(part, bins, centroid_distance=dc, scale=h)
            counts += dens["n_regions"].to_numpy()
            areas += dens["area"].to_numpy()
            lengths += dens["boundary_length"].to_numpy()
    if cfg.slices:
        reg = pd.concat(region_frames, ignore_index=True)
        scale2 = reg["slice_scale"].to_numpy() ** 2
        _row(rows, SLICES, "n_regions", len(reg) / len(cfg.slices))
        _row(rows, SLICES, "region_area_median", np.median(reg["area"].to_numpy() / scale2))
        _row(rows, SLICES, "region_eccentricity_mean", reg["eccentricity"].mean())
        _row(rows, SLICES, "region_centrality_mean", reg["centrality"].mean())
        _row(rows, SLICES, "decision_boundary_length", db_length / db_area)
        with np.errstate(invalid="ignore"):
            rel_c = reg["dist_db_centroid"].to_numpy() / reg["slice_scale"].to_numpy()
            rel_n = reg["dist_db_nearest"].to_numpy() / reg["slice_scale"].to_numpy()
        _row(rows, SLICES, "dist_db_centroid_mean", np.nanmean(rel_c) if np.isfinite(rel_c).any() else np.nan)
        _row(rows, SLICES, "dist_db_nearest_mean", np.nanmean(rel_n) if np.isfinite(rel_n).any() else np.nan)
        total = counts.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            for b in range(len(bins) - 1):
                lo, hi = bins[b], bins[b + 1]
                _row(rows, SLICES, "band_regions", counts[b], b=b, lo=lo, hi=hi)
                _row(rows, SLICES, "band_area", areas[b], b=b, lo=lo, hi=hi)
                _row(rows, SLICES, "region_fraction", counts[b] / total if total else np.nan, b=b, lo=lo, hi=hi)
                _row(rows, SLICES, "region_density", counts[b] / areas[b] if areas[b] else np.nan, b=b, lo=lo,
                     hi=hi)
                _row(rows, SLICES, "boundary_density", lengths[b] / areas[b] if areas[b] else np.nan, b=b,
                     lo=lo, hi=hi)
    else:
        reg = pd.DataFrame({c: [] for c in list(_REGIONS)[2:]})

    summary = pd.DataFrame(rows, columns=list(_SUMMARY)[2:])
    points = pd.concat(point_frames, ignore_index=True)
    return {"summary": summary, "points": points, "regions": reg, "partitions": partitions or None}


# ---------------------------------------------------------------------------
# tables on disk
# ---------------------------------------------------------------------------
def _typed(df, schema: dict, checkpoint: str, step: int):
    df = df.copy()
    df.insert(0, "checkpoint", checkpoint)
    df.insert(1, "step", step)
    cols = [c for c in schema if c in df.columns]
    return df[cols].astype({c: schema[c] for c in cols}).reset_index(drop=True)


def _read_csv(path: Path, schema: dict):
    import pandas as pd

    header = pd.read_csv(path, nrows=0).columns.tolist()
    strings = {c: "str" for c in header if schema.get(c) == "str"}
    na = {c: [""] for c in header if schema.get(c) in ("float64", "Int64")}
    # pandas >= 3 parses floats exactly by default and deprecates the option
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    df = pd.read_csv(path, dtype=strings, keep_default_na=False, na_values=na, **exact)
    return df.astype({c: schema[c] for c in header if c in schema})


def _part_dir(out: Path, key: str) -> Path:
    return out / "parts" / key


def _is_done(out: Path, key: str, fingerprint: str) -> bool:
    done = _part_dir(out, key) / "done.json"
    if not done.is_file():
        return False
    try:
        return json.loads(done.read_text()).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        return False


def _write_part(out: Path, key: str, fingerprint: str, tables: dict, checkpoint: str, step: int) -> None:
    from ..io import atomic_path, write_table, write_text

    d = _part_dir(out, key)
    d.mkdir(parents=True, exist_ok=True)
    (d / "done.json").unlink(missing_ok=True)
    write_table(tables["summary"], d / "summary.csv")
    write_table(tables["points"], d / "points.csv")
    # the region table can hold ~1e5 rows per checkpoint: compressed binary columns, exact and compact
    cols = {c: tables["regions"][c].to_numpy() for c in list(_REGIONS)[2:]}
    with atomic_path(d / "regions.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **cols)
    write_text(json.dumps({"fingerprint": fingerprint, "checkpoint": checkpoint, "step": step,
                           "rows": {n: len(tables[n]) for n in _TABLES}}) + "\n", d / "done.json")


def _read_part(out: Path, key: str) -> dict:
    import pandas as pd

    d = _part_dir(out, key)
    done = json.loads((d / "done.json").read_text())
    with np.load(d / "regions.npz", allow_pickle=False) as z:
        regions = pd.DataFrame({c: z[c] for c in list(_REGIONS)[2:]})
    return {"summary": _read_csv(d / "summary.csv", _SUMMARY), "points": _read_csv(d / "points.csv", _POINTS),
            "regions": _typed(regions, _REGIONS, done["checkpoint"], done["step"])}


# ---------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------
def track(
    checkpoints,
    data,
    *,
    slices=2,
    points: int | None = 200,
    radius=0.25,
    methods=("exact", "vertex"),
    n_directions: int = 25,
    seed: int = 0,
    layers: str = "hidden",
    distance_bins=None,
    pad: float = 0.1,
    slice_set: str | None = None,
    arch=None,
    trust: bool = False,
    out=None,
    resume: bool = True,
    keep_partitions: bool = False,
    match: bool = False,
    topology: bool = False,
    batch_size: int = 1024,
    client=None,
    progress: Callable[[int, int], None] | bool | None = True,
    device: str = "cpu",
) -> TrackResult:
    """Measure region migration over an ordered series of checkpoints.

    Parameters
    ----------
    checkpoints : path or sequence of paths
        A directory (every ``.pt``, ``.pth``, ``.pt2``, ``.ckpt`` file in
        natural order, e.g. from :func:`relugeo.train.fit`) or an ordered
        list of checkpoint files that :func:`relugeo.load` reads. A
        checkpoint's step is the last number in its file name (its position
        in the list when there is none).
    data : array_like of shape (N, D), or mapping of str to array or (array, labels)
        Named point sets, e.g. ``{"train": (Xtr, ytr), "test": (Xte, yte),
        "random": Xr}``; a bare array is the set ``"data"``. Labels add the
        ``accuracy`` measure and are used to pick slices through three
        different classes.
    slices : int, array_like of shape (S, 3), or sequence of Slice, default 2
        The fixed 2-D slices: a number of triplets of points of the slice set
        drawn with ``seed`` (three different classes when labels are given),
        explicit row triplets of the slice set, or :class:`Slice` objects.
        Triplets give ``Slice.through(..., pad=pad)``. 0 skips the slices.
        Drawn triplets depend only on ``seed`` and the slice set, so runs
        with different ``points`` or radii share their slices.
    points : int or None, default 200
        At most this many points per set, drawn with ``seed`` without
        replacement (the same points at every checkpoint); None keeps all.
    radius : float, sequence of float, or mapping of method to radii, default 0.25
        Neighbourhood radii of the local complexity, for every method, or per
        method (e.g. ``{"vertex": (0.25, 1.0), "exact": (0.25,)}``: the exact
        method costs more at large radii).
    methods : sequence of {"exact", "vertex"}, default ("exact", "vertex")
        Exact 2-D local complexity and the published vertex estimator with
        ``n_directions`` directions (see :func:`relugeo.local_complexity`).
        Ignored when ``radius`` is a mapping; empty skips local complexity.
    n_directions, seed, layers, batch_size
        Passed to :func:`relugeo.local_complexity`; ``seed`` also draws the
        points and the slices.
    distance_bins : array_like, optional
        Band edges of distance to the decision boundary, in units of each
        slice's scale (half the side of a square slice); default
        :data:`DEFAULT_DISTANCE_BINS` (0, 0.1, ..., 1, inf).
    pad : float, default 0.1
        Margin of the slices through triplets.
    slice_set : str, optional
        The point set the triplets index: ``"train"`` if present, else the
        first set.
    arch, trust
        Passed to :func:`relugeo.load`.
    out : path, optional
        Directory for the results. Every finished checkpoint is written at
        once to ``out/parts/<checkpoint>/`` (``summary.csv``, ``points.csv``,
        ``regions.npz`` and, last, ``done.json``), each file atomically. At
        the end: ``track.csv`` and ``points.csv`` (with ``.parquet`` twins
        when pyarrow is installed), the region table as ``regions.parquet``
        (or ``regions.csv.gz`` without pyarrow), ``config.json`` and
        ``slices.npz``.
    resume : bool, default True
        Skip checkpoints already finished in ``out`` with the same settings.
        A directory holding a run with other settings raises ValueError
        unless ``resume=False``, which recomputes everything.
    keep_partitions : bool, default False
        Also return the partitions of the slices per step (recomputed for
        checkpoints taken from ``out``).
    match : bool, default False
        Match the regions of each slice between consecutive checkpoints
        (:func:`relugeo.regions.correspondence.correspond`) and measure their
        migration (:func:`relugeo.regions.migration.migration`, banded by
        ``distance_bins``): ``TrackResult.migration``, and
        ``migration.csv`` in ``out``. Holds every checkpoint's partitions of
        the slices in memory until the end.
    topology : bool, default False
        Per checkpoint, slice and class: Betti numbers of the decision
        region and PL Morse critical points of the class's score
        (:func:`relugeo.regions.topology_series.slice_topology`):
        ``TrackResult.topology``, and ``topology.csv`` in ``out``.
    client : dask.distributed.Client, optional
        Map the checkpoints over the cluster (the nets are loaded here and
        sent to the workers); the results are identical to a local run.
    progress : callable(done, total), bool or None, default True
        Called after each checkpoint is computed and written; ``True``
        prints ``done/total checkpoints`` to stderr, as ``relugeo track``
        does; ``False`` or ``None`` is silent.
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Kernels of the partitions and the exact local complexity (see
        :func:`relugeo.partition`); the results do not depend on it.

    Returns
    -------
    TrackResult
        ``table`` holds, per checkpoint and point set: ``lc_<method>`` (mean
        local complexity), ``regions_exact`` (mean number of regions within
        the neighbourhood of radius r) and ``boundary_density_exact`` per
        radius; ``dist_region_boundary`` and ``dist_region_boundary_median``
        (exact distance to the own region's boundary in input space, see
        :func:`~relugeo.regions.region_stats.distance_to_region_boundary`);
        ``accuracy`` with labels. For the set ``"slices"``: ``n_regions``
        (per slice), ``region_area_median`` (in scale units squared),
        ``region_eccentricity_mean``, ``region_centrality_mean``,
        ``decision_boundary_length`` (per unit area), ``dist_db_centroid_mean``
        and ``dist_db_nearest_mean`` (in scale units), and per distance band
        (see :func:`~relugeo.regions.region_stats.density_by_distance`),
        pooled over the slices that hold a decision boundary:
        ``band_regions`` (count), ``band_area`` (in scale units squared),
        ``region_fraction`` (of all their regions), ``region_density`` and
        ``boundary_density`` (per unit area).
    """
    import pandas as pd

    from ..nets.checkpoint import load

    files = _checkpoint_list(checkpoints)
    keys = _keys(files)
    steps = [_step_of(p, i) for i, p in enumerate(files)]
    radius = _radius_by_method(radius, methods)
    if points is not None and int(points) < 1:
        raise ValueError(f"points must be a positive integer or None; got {points!r}")
    if layers not in ("hidden", "all"):
        raise ValueError(f"layers must be 'hidden' or 'all'; got {layers!r}")
    bins = DEFAULT_DISTANCE_BINS if distance_bins is None else np.asarray(distance_bins, dtype=np.float64)
    if bins.ndim != 1 or len(bins) < 2 or bins[0] != 0 or (np.diff(bins) <= 0).any():
        raise ValueError(f"distance_bins must be increasing, start at 0 and have at least 2 values; got {bins!r}")

    first = load(files[0], arch, trust=trust)
    sets, labels = _point_sets(data, first.input_dim)
    rng = np.random.default_rng(seed)
    index = {}
    for name in sets:
        n = len(sets[name])
        keep = np.arange(n) if points is None or points >= n else np.sort(rng.choice(n, int(points), replace=False))
        index[name] = keep
    if slice_set is None:
        slice_set = "train" if "train" in sets else next(iter(sets))
    elif slice_set not in sets:
        raise ValueError(f"slice_set must be one of {list(sets)}; got {slice_set!r}")
    triplets = None
    if isinstance(slices, (int, np.integer)) and not isinstance(slices, bool):
        if slices < 0:
            raise ValueError(f"slices must be >= 0; got {slices}")
        # a stream of its own: the slices depend on the seed and the data, not on `points`
        triplets = _choose_triplets(sets[slice_set], labels[slice_set], int(slices),
                                    np.random.default_rng([seed, 1])) if slices else \
            np.zeros((0, 3), dtype=np.int64)
    elif isinstance(slices, Sequence) and slices and all(isinstance(s, Slice) for s in slices):
        slice_objs = list(slices)
        if any(s.dim != 2 or s.input_dim != first.input_dim for s in slice_objs):
            raise ValueError(f"slices must be 2-D slices of R^{first.input_dim}")
    else:
        triplets = np.asarray(slices, dtype=np.int64)
        if triplets.ndim != 2 or triplets.shape[1] != 3:
            raise ValueError(f"slices must be an int, an (S, 3) array of row triplets or Slice objects; "
                             f"got {slices!r}")
        n = len(sets[slice_set])
        if triplets.size and (triplets.min() < 0 or triplets.max() >= n):
            raise ValueError(f"slice triplets index rows of data[{slice_set!r}] (0..{n - 1}); "
                             f"got {triplets.tolist()}")
    if triplets is not None:
        slice_objs = [Slice.through(*sets[slice_set][t], pad=pad) for t in triplets]
    cfg = _Config(
        sets={k: np.ascontiguousarray(sets[k][index[k]]) for k in sets}, index=index,
        labels={k: None if labels[k] is None else labels[k][index[k]] for k in sets},
        slices=tuple(slice_objs), radius=radius, n_directions=int(n_directions),
        seed=int(seed), layers=layers, bins=bins, batch_size=int(batch_size),
        keep_partitions=bool(keep_partitions or match or topology), device=device,
    )
    fp = cfg.fingerprint()

    outdir = None if out is None else Path(out)
    if outdir is not None:
        _prepare_out(outdir, fp, cfg, triplets, slice_set, resume)
    done = {k for k in keys if outdir is not None and resume and _is_done(outdir, k, fp)}
    todo = [i for i, k in enumerate(keys) if k not in done]
    results: dict[int, dict] = {}
    partitions: dict[int, list[Partition]] = {}
    topo: dict[int, object] = {}
    finished = [len(done)]

    def finish(i: int, res: dict) -> None:
        tables = {name: _typed(res[name], schema, files[i].name, steps[i]) for name, schema in _TABLES.items()}
        if outdir is not None:
            _write_part(outdir, keys[i], fp, tables, files[i].name, steps[i])
        else:
            results[i] = tables
        if res["partitions"] is not None:
            if topology:
                topo[i] = topology_table(res["partitions"], files[i].name, steps[i])
            if keep_partitions or match:
                partitions[steps[i]] = res["partitions"]
        finished[0] += 1
        if progress is True:
            print(f"  {finished[0]}/{len(keys)} checkpoints", file=sys.stderr, flush=True)
        elif callable(progress):
            progress(finished[0], len(keys))

    if client is None:
        for i in todo:
            net = first if i == 0 else load(files[i], arch, trust=trust)
            finish(i, _measure(net, cfg))
    elif todo:
        _map_on_cluster(client, todo, lambda i: first if i == 0 else load(files[i], arch, trust=trust), cfg,
                        finish)

    for i in range(len(files)):
        need_parts = (keep_partitions or match) and steps[i] not in partitions
        need_topo = topology and i not in topo
        if cfg.slices and (need_parts or need_topo):
            net = load(files[i], arch, trust=trust)
            parts = [partition(net, sl, device=cfg.device) for sl in cfg.slices]
            if need_parts:
                partitions[steps[i]] = parts
            if need_topo:
                topo[i] = topology_table(parts, files[i].name, steps[i])

    frames = {name: [] for name in _TABLES}
    for i, k in enumerate(keys):
        tables = _read_part(outdir, k) if outdir is not None else results[i]
        for name in _TABLES:
            frames[name].append(tables[name])
    tables = {name: pd.concat(frames[name], ignore_index=True) for name in _TABLES}
    moved = _migration_table(files, steps, partitions, cfg.bins) if match and cfg.slices else None
    shapes = pd.concat([topo[i] for i in sorted(topo)], ignore_index=True) if topo else None
    if outdir is not None:
        from ..io import write_table

        _write_final(outdir, tables)
        if moved is not None:
            write_table(moved, outdir / "migration.csv")
        if shapes is not None:
            write_table(shapes, outdir / "topology.csv")
    return TrackResult(tables["summary"], tables["points"], tables["regions"], list(cfg.slices), triplets,
                       partitions if keep_partitions else None, outdir, moved, shapes)


def _migration_table(files: list[Path], steps: list[int], partitions: dict, bins: np.ndarray):
    """Migration measures of every slice between consecutive checkpoints, one tidy table."""
    import pandas as pd

    from .migration import migration

    frames = []
    for i in range(len(files) - 1):
        for s, (pa, pb) in enumerate(zip(partitions[steps[i]], partitions[steps[i + 1]])):
            m = migration(pa, pb, bands=bins)
            m.insert(0, "checkpoint_from", files[i].name)
            m.insert(1, "checkpoint_to", files[i + 1].name)
            m.insert(2, "step_from", steps[i])
            m.insert(3, "step_to", steps[i + 1])
            m.insert(4, "slice", s)
            frames.append(m)
    if not frames:
        return pd.DataFrame({c: [] for c in ("checkpoint_from", "checkpoint_to", "step_from", "step_to", "slice",
                                             "measure", "bin", "bin_lo", "bin_hi", "value")})
    return pd.concat(frames, ignore_index=True)


def _map_on_cluster(client, todo: list[int], get_net: Callable[[int], PWANet], cfg: _Config,
                    finish: Callable[[int, dict], None]) -> None:
    from dask.distributed import as_completed

    cfg_future = client.scatter(cfg, broadcast=True)
    window = max(2, 2 * len(client.scheduler_info().get("workers", {})))
    pending = list(todo)
    running = {}

    def submit():
        i = pending.pop(0)
        fut = client.submit(_measure, get_net(i), cfg_future, pure=False)
        running[fut] = i
        return fut

    seq = as_completed([submit() for _ in range(min(window, len(pending)))])
    for fut in seq:
        i = running.pop(fut)
        finish(i, fut.result())
        if pending:
            seq.add(submit())


def _prepare_out(out: Path, fp: str, cfg: _Config, triplets, slice_set: str, resume: bool) -> None:
    from ..io import atomic_path, write_text

    out.mkdir(parents=True, exist_ok=True)
    conf = out / "config.json"
    if conf.is_file() and resume:
        try:
            old = json.loads(conf.read_text()).get("fingerprint")
        except (OSError, ValueError):
            old = None
        if old != fp:
            raise ValueError(
                f"out directory {out} holds a tracking run with other settings (fingerprint {old}, now {fp}); "
                f"use another directory, or resume=False to recompute everything"
            )
    if not resume and (out / "parts").is_dir():
        shutil.rmtree(out / "parts")
    meta = {
        "format": _FORMAT, "version": _VERSION, "fingerprint": fp, "sets": {k: len(v) for k, v in cfg.sets.items()},
        "labels": [k for k, v in cfg.labels.items() if v is not None],
        "radius": {m: list(r) for m, r in cfg.radius.items()}, "n_directions": cfg.n_directions, "seed": cfg.seed,
        "layers": cfg.layers,
        "distance_bins": [float(b) for b in cfg.bins], "slice_set": slice_set,
        "triplets": None if triplets is None else triplets.tolist(),
    }
    write_text(json.dumps(meta, indent=1) + "\n", conf)
    arrays = {"triplets": np.zeros((0, 3), np.int64) if triplets is None else triplets}
    for s, sl in enumerate(cfg.slices):
        arrays[f"origin_{s}"], arrays[f"basis_{s}"], arrays[f"vertices_{s}"] = sl.origin, sl.basis, sl.vertices
    for name, idx in cfg.index.items():
        arrays[f"index_{name}"] = idx
    with atomic_path(out / "slices.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _write_final(out: Path, tables: dict) -> None:
    from ..io import atomic_path, write_table

    parquet = _has_pyarrow()
    write_table(tables["summary"], out / "track.csv")
    write_table(tables["points"], out / "points.csv")
    if parquet:
        write_table(tables["summary"], out / "track.parquet")
        write_table(tables["points"], out / "points.parquet")
        write_table(tables["regions"], out / "regions.parquet")
    else:
        with atomic_path(out / "regions.csv.gz") as tmp:
            tables["regions"].to_csv(tmp, index=False, compression="gzip")
