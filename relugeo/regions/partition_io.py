"""A partition saved as one ``.npz`` of plain arrays (no pickles), and read back.

The file holds the partition's arrays (``vertices``, ``ring_offsets``,
``edge_layer``, ``edge_neuron``, ``patterns``, ``logit_maps``), the derived
``areas``, ``centroids`` and ``decision_boundary`` for readers that only want
arrays, the slice (``origin``, ``basis``, ``domain``, and ``anchors`` when the
slice was built through three points), and the network, layer by layer
(``layer<i>_weight``, ``layer<i>_bias`` and, where the layer has them,
``layer<i>_negative_slope``, ``layer<i>_windows``, ``layer<i>_keep``), so
that :meth:`Partition.verify` works on a loaded partition. It is read with
``np.load(allow_pickle=False)``: loading runs no code from the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import RelugeoError
from ..io import atomic_path
from ..nets.pwanet import AffineLayer, PWANet
from .slices import Slice

__all__ = ["load_partition", "save_partition"]

FORMAT = "relugeo-partition"
VERSION = 1
_ARRAYS = ("vertices", "ring_offsets", "edge_layer", "edge_neuron", "patterns", "logit_maps")


class PartitionFileError(RelugeoError, ValueError):
    """A file is not a saved relugeo partition, or is truncated or corrupt."""


def save_partition(part, path) -> Path:
    """Write ``part`` to ``path`` (``.npz``) atomically; see the module docstring for its keys."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz; got {path.name!r}")
    arrays = {name: getattr(part, name) for name in _ARRAYS}
    arrays.update(format=np.array(FORMAT), version=np.array(VERSION), areas=part.areas, centroids=part.centroids,
                  decision_boundary=part.decision_boundary, origin=part.slice.origin, basis=part.slice.basis,
                  domain=part.slice.vertices, tol=np.array(part.tol), seconds=np.array(part.seconds))
    anchors = getattr(part.slice, "anchors", None)
    if anchors is not None:
        arrays["anchors"] = anchors
    arrays.update(net_arrays(part.net))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def net_arrays(net: PWANet) -> dict:
    """The network as plain arrays, layer by layer (``n_layers``, ``layer<i>_weight``, ...)."""
    arrays = {"n_layers": np.array(len(net.layers))}
    for i, layer in enumerate(net.layers):
        arrays[f"layer{i}_weight"] = layer.dense_weight()
        arrays[f"layer{i}_bias"] = layer.bias
        for name in ("negative_slope", "windows", "keep"):
            value = getattr(layer, name)
            if value is not None:
                arrays[f"layer{i}_{name}"] = np.asarray(value)
    return arrays


def net_from_arrays(data: dict) -> PWANet:
    """The network written by :func:`net_arrays`."""
    layers = []
    for i in range(int(data["n_layers"])):
        extra = {name: data[f"layer{i}_{name}"] for name in ("windows", "keep") if f"layer{i}_{name}" in data}
        slope = data.get(f"layer{i}_negative_slope")
        slope = None if slope is None else (float(slope) if slope.ndim == 0 else slope)
        layers.append(AffineLayer(data[f"layer{i}_weight"], data[f"layer{i}_bias"], slope, **extra))
    return PWANet(layers)


def read_npz(path: Path) -> dict:
    """The arrays of a saved partition's ``.npz`` file, read without unpickling anything."""
    if not path.is_file():
        raise FileNotFoundError(f"partition file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise PartitionFileError(f"{path} is not a readable .npz file: {exc}") from exc


def load_partition(path):
    """Read a partition written by :func:`save_partition` (``relugeo partition --out``)."""
    from .partition import Partition

    path = Path(path)
    data = read_npz(path)
    if str(data.get("format", "")) == FORMAT + "-kd":
        raise PartitionFileError(f"{path} holds a partition of a {np.shape(data.get('basis'))[-1]}-D domain; "
                                 f"read it with rg.PartitionKD.load")
    if str(data.get("format", "")) != FORMAT:
        raise PartitionFileError(f"{path} is not a saved relugeo partition (no format '{FORMAT}' entry); "
                                 f"write one with relugeo partition --out or Partition.save")
    if int(data["version"]) > VERSION:
        raise PartitionFileError(f"{path} is a partition file of version {int(data['version'])}; this relugeo "
                                 f"reads versions up to {VERSION}")
    missing = [k for k in _ARRAYS + ("origin", "basis", "domain", "n_layers") if k not in data]
    if missing:
        raise PartitionFileError(f"{path} is truncated: it lacks the arrays {missing}")
    layers = net_from_arrays(data)
    sl = Slice(data["origin"], data["basis"], data["domain"])
    if "anchors" in data:
        sl.anchors = data["anchors"]
    return Partition(layers, sl, *(data[name] for name in _ARRAYS), seconds=float(data["seconds"]),
                     tol=float(data["tol"]))
