"""A k-D partition (k >= 3) saved as one ``.npz`` of plain arrays, or as a region table; and read back.

The ``.npz`` holds the regions (``vertices`` (V, k), ``offsets`` (R + 1,),
``incidence`` (V, W) uint64, ``patterns`` (R, n_words) uint64, ``logit_maps``
(R, k + 1, n_out)), the derived ``volumes``, ``centroids``, ``n_vertices`` and
``n_facets`` for readers that only want arrays, the slice (``origin``,
``basis``, ``domain``) and the network layer by layer as in
:mod:`.partition_io`, so that :meth:`PartitionKD.verify` works on a loaded
partition. It is read with ``np.load(allow_pickle=False)``.

The table (``.csv`` or ``.parquet``) has one row per region: ``region``,
``volume``, ``n_vertices``, ``n_facets``, ``prediction``, the centroid
``u_1..u_k`` in slice coordinates and the pattern as a hexadecimal string
(word 0 first, 16 digits a word).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_path, write_table
from .partition_io import FORMAT, PartitionFileError, net_arrays, net_from_arrays, read_npz
from .slices import Slice

__all__ = ["load_partition_kd", "region_table", "save_partition_kd"]

FORMAT_KD = FORMAT + "-kd"
VERSION_KD = 1
_ARRAYS = ("vertices", "offsets", "incidence", "patterns", "logit_maps")


def save_partition_kd(part, path) -> Path:
    """Write a :class:`~.partition_kd.PartitionKD` to ``path`` atomically: ``.npz`` (every array, see the
    module docstring) or ``.csv`` / ``.parquet`` (:func:`region_table`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        return write_table(region_table(part), path)
    if suffix != ".npz":
        raise ValueError(f"path must end in .npz, .csv or .parquet; got {path.name!r}")
    if part.slice.is_full:
        raise ValueError("a partition of all of R^D is not saved as a k-D partition file")
    arrays = {name: getattr(part, name) for name in _ARRAYS}
    arrays.update(format=np.array(FORMAT_KD), version=np.array(VERSION_KD), volumes=part.volumes,
                  centroids=part.centroids, n_vertices=part.n_vertices, n_facets=part.n_facets,
                  origin=part.slice.origin, basis=part.slice.basis, domain=part.slice.vertices,
                  n_domain_facets=np.array(part.n_domain_facets), tol=np.array(part.tol),
                  seconds=np.array(part.seconds))
    arrays.update(net_arrays(part.net))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def region_table(part):
    """One row per region (see the module docstring), a pandas DataFrame."""
    import pandas as pd

    cols = {"region": np.arange(part.n_regions), "volume": part.volumes, "n_vertices": part.n_vertices,
            "n_facets": part.n_facets, "prediction": part.predictions()}
    for j in range(part.dim):
        cols[f"u_{j + 1}"] = part.centroids[:, j]
    words = np.ascontiguousarray(part.patterns)
    cols["pattern"] = ["".join(f"{int(w):016x}" for w in row) for row in words]
    return pd.DataFrame(cols)


def load_partition_kd(path):
    """Read a partition written by :func:`save_partition_kd` as ``.npz``."""
    from .partition_kd import PartitionKD

    path = Path(path)
    data = read_npz(path)
    if str(data.get("format", "")) == FORMAT:
        raise PartitionFileError(f"{path} holds a partition of a 1-D or 2-D slice; read it with rg.Partition.load")
    if str(data.get("format", "")) != FORMAT_KD:
        raise PartitionFileError(f"{path} is not a saved relugeo k-D partition (no format '{FORMAT_KD}' entry); "
                                 f"write one with relugeo partition --out or PartitionKD.save")
    if int(data["version"]) > VERSION_KD:
        raise PartitionFileError(f"{path} is a k-D partition file of version {int(data['version'])}; this "
                                 f"relugeo reads versions up to {VERSION_KD}")
    missing = [k for k in _ARRAYS + ("origin", "basis", "domain", "n_domain_facets", "n_layers") if k not in data]
    if missing:
        raise PartitionFileError(f"{path} is truncated: it lacks the arrays {missing}")
    sl = Slice(data["origin"], data["basis"], data["domain"])
    return PartitionKD(net_from_arrays(data), sl, *(data[name] for name in _ARRAYS), int(data["n_domain_facets"]),
                       seconds=float(data["seconds"]), tol=float(data["tol"]))
