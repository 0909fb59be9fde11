"""Metrics of one or many checkpoints as long tables (one value per row), and model loading.

Rows have the columns ``metric``, ``layer``, ``class``, ``value`` (``layer`` and
``class`` are empty where they do not apply; hidden layers are numbered from 1,
as in every relugeo table and figure); :func:`checkpoint_metrics` adds
``checkpoint`` and ``step`` in front. These are the tables ``relugeo metrics``
writes and :mod:`relugeo.viz.metrics_plot` reads.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError
from ..nets.pwanet import PWANet
from .collapse import neural_collapse
from .compression import compression_ratio
from .features import (
    MetricInputError,
    check_features_labels,
    classifier_weights,
    layer_features,
    penultimate_features,
)
from .manifold import (
    class_geometry,
    inversion_epoch,
    knn_same_class,
    soft_nearest_neighbor_loss,
)

__all__ = ["METRIC_GROUPS", "checkpoint_metrics", "inversion_rows", "load_model", "metrics_frame"]

METRIC_GROUPS = ("nc", "inversion", "compression")
_TANH_RE = re.compile(r"^\s*mlp\s*:\s*([\d\s-]+?)\s*:\s*tanh\s*$", re.IGNORECASE)


def _row(metric, value, layer=None, cls=None) -> dict:
    """One table row; an integer ``layer`` (a 0-based hidden-layer index) is written 1-based."""
    if isinstance(layer, (int, np.integer)):
        layer = int(layer) + 1
    return {"metric": metric, "layer": "" if layer is None else str(layer),
            "class": "" if cls is None else str(cls), "value": float(value)}


def _first_linear_weight(model) -> np.ndarray:
    if isinstance(model, PWANet):
        return model.layers[0].dense_weight()
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return m.weight.detach().to("cpu", torch.float64).numpy()
        if isinstance(getattr(m, "omega", None), torch.Tensor):
            return m.omega.detach().to("cpu", torch.float64).numpy()
    raise MetricInputError(f"{type(model).__name__} has no first linear layer for the compression ratio")


def metrics_frame(model, X, y=None, *, metrics: Sequence[str] = ("nc", "inversion"), layers=None,
                  X_test=None, y_test=None, informative=1, k: int = 10, temperature: float = 1.0,
                  batch_size: int = 1024):
    """Metrics of one model on one data set as a long table.

    Parameters
    ----------
    model : PWANet or torch.nn.Module
    X : array_like of shape (N, D)
        Training inputs.
    y : array_like of shape (N,), optional
        Integer labels; needed by ``"nc"`` and ``"inversion"``.
    metrics : sequence of {"nc", "inversion", "compression"}
        ``"nc"``: every field of :class:`~relugeo.metrics.NeuralCollapse` on the
        penultimate features (``layer`` empty). ``"inversion"``: per hidden
        layer, ``radius`` per class, ``centroid_distance`` per class pair
        (``class`` = ``"a-b"``), ``knn_same_class`` and ``snn_loss``.
        ``"compression"``: ``lambda`` of the first linear layer's weights.
    layers : see :func:`~relugeo.metrics.layer_features`; for ``"inversion"``.
    X_test, y_test : optional held-out set for ``wcv_test``.
    informative : informative input coordinates for ``lambda`` (see
        :func:`~relugeo.metrics.compression_ratio`).
    k, temperature : kNN neighbours and soft nearest-neighbour temperature.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``layer``, ``class``, ``value``.
    """
    import pandas as pd

    wanted = list(metrics)
    unknown = [m for m in wanted if m not in METRIC_GROUPS]
    if unknown or not wanted:
        raise MetricInputError(f"metrics must be a non-empty subset of {list(METRIC_GROUPS)}; got {wanted}")
    if y is None and {"nc", "inversion"} & set(wanted):
        raise MetricInputError("metrics 'nc' and 'inversion' need labels y")
    rows: list[dict] = []
    if "nc" in wanted:
        H = penultimate_features(model, X, batch_size=batch_size)
        W, b = classifier_weights(model)
        Ht = None if X_test is None else penultimate_features(model, X_test, batch_size=batch_size)
        classes = check_features_labels(H, y)[1]
        usable_w = W.shape[0] == len(classes) and np.array_equal(classes, np.arange(len(classes)))
        nc = neural_collapse(H, y, W if usable_w else None, b if usable_w else None,
                             H_test=Ht, y_test=None if Ht is None else y_test)
        rows += [_row(name, v) for name, v in nc.to_dict().items()]
    if "inversion" in wanted:
        feats = layer_features(model, X, layers, batch_size=batch_size)
        for key, H in feats.items():
            silent = int((np.abs(H).max(axis=1) == 0).sum())
            rows.append(_row("zero_feature_rows", silent, key))
            g = class_geometry(H, y, zero_rows="drop")
            rows += [_row("radius", r, key, c) for c, r in zip(g.classes.tolist(), g.radii)]
            for i in range(len(g.classes)):
                for j in range(i + 1, len(g.classes)):
                    rows.append(_row("centroid_distance", g.distances[i, j], key,
                                     f"{g.classes[i]}-{g.classes[j]}"))
            kk = min(k, len(H) - 1)
            rows.append(_row("knn_same_class", knn_same_class(H, y, kk), key))
            rows.append(_row("snn_loss", soft_nearest_neighbor_loss(H, y, temperature), key))
    if "compression" in wanted:
        rows.append(_row("lambda", compression_ratio(_first_linear_weight(model), informative)))
    return pd.DataFrame(rows, columns=["metric", "layer", "class", "value"])


def inversion_rows(table, *, burn_in: float = 20, smooth: int = 5):
    """Inversion steps of every ``radius`` curve in a multi-checkpoint table.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`checkpoint_metrics` (columns ``step``, ``metric``,
        ``layer``, ``class``, ``value``) over several checkpoints.
    burn_in : float, default 20
        In the units of ``step``.
    smooth : int, default 5
        Window of the smoothed variant.

    Returns
    -------
    pandas.DataFrame
        Rows ``inversion_step`` and ``inversion_step_smoothed`` per layer and
        class (value NaN when the radius never stops decreasing), with
        ``checkpoint`` and ``step`` empty.
    """
    import pandas as pd

    radius = table[table["metric"] == "radius"].dropna(subset=["step"])
    rows = []
    for (layer, cls), df in radius.groupby(["layer", "class"], sort=False):
        df = df.sort_values("step")
        if len(df) < 2:
            continue
        steps, vals = df["step"].to_numpy(), df["value"].to_numpy()
        raw = inversion_epoch(vals, epochs=steps, burn_in=burn_in)
        sm = inversion_epoch(vals, epochs=steps, burn_in=burn_in, smooth=smooth)
        for name, v in (("inversion_step", raw), ("inversion_step_smoothed", sm)):
            rows.append({"checkpoint": "", "step": np.nan, "metric": name, "layer": layer, "class": cls,
                         "value": np.nan if v is None else float(v)})
    return pd.DataFrame(rows, columns=["checkpoint", "step", "metric", "layer", "class", "value"])


def checkpoint_metrics(paths: Iterable, X, y=None, *, arch=None, trust: bool = False, steps=None,
                       burn_in: float = 20, smooth: int = 5, **kwargs):
    """:func:`metrics_frame` over checkpoint files, plus inversion rows when there are several.

    ``steps`` gives each checkpoint's step (default: the last number in each
    file name, or the position in ``paths`` when a name has no number). Other keyword arguments go to :func:`metrics_frame`.
    """
    import pandas as pd

    paths = [Path(p) for p in paths]
    if not paths:
        raise MetricInputError("no checkpoints given")
    if steps is None:
        found = [re.findall(r"\d+", p.stem) for p in paths]
        steps = [int(f[-1]) for f in found] if all(found) else list(range(len(paths)))
    elif len(steps) != len(paths):
        raise MetricInputError(f"steps has {len(steps)} entries for {len(paths)} checkpoints")
    frames = []
    for p, s in zip(paths, steps):
        df = metrics_frame(load_model(p, arch, trust=trust), X, y, **kwargs)
        df.insert(0, "checkpoint", p.name)
        df.insert(1, "step", s)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    if len(paths) > 1 and (table["metric"] == "radius").any():
        table = pd.concat([table, inversion_rows(table, burn_in=burn_in, smooth=smooth)], ignore_index=True)
    table["step"] = table["step"].astype("Int64")
    return table


def _tanh_module(spec: str) -> nn.Sequential | None:
    m = _TANH_RE.match(spec) if isinstance(spec, str) else None
    if m is None:
        return None
    sizes = [int(t) for t in re.split(r"\s*-\s*", m.group(1).strip()) if t]
    if len(sizes) < 2 or min(sizes) < 1:
        raise CheckpointError(f"invalid architecture spec {spec!r}: sizes must be positive integers")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def load_model(path, arch=None, *, trust: bool = False) -> nn.Module:
    """A checkpoint as a torch module, for feature extraction.

    Everything :func:`relugeo.load_module` reads, plus tanh MLPs (not
    piecewise affine, so outside the architecture grammar): with
    ``arch="mlp:64-20-2:tanh"`` a state_dict of ``nn.Sequential([Linear,
    Tanh, ..., Linear])`` (keys ``0.weight``, ``0.bias``, ``2.weight``, ...;
    bare or under ``"state_dict"``) is read with ``torch.load(weights_only=True)``.
    """
    from ..nets.checkpoint import load_module

    module = _tanh_module(arch) if isinstance(arch, str) else None
    if module is None:
        return load_module(path, arch, trust=trust)
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint '{p}' does not exist or is not a file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(f"checkpoint '{p}' cannot be read as a weights-only torch file: {exc}") from exc
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"checkpoint '{p}' holds no state_dict of tensors")
    expected = module.state_dict()
    if set(sd) != set(expected) or any(sd[k].shape != expected[k].shape for k in expected):
        got = {k: tuple(v.shape) for k, v in sd.items()}
        raise CheckpointError(f"checkpoint '{p}': the state_dict {got} does not match arch {arch!r}")
    dtypes = {t.dtype for t in sd.values()}
    if len(dtypes) == 1:
        module = module.to(dtypes.pop())
    module.load_state_dict(sd)
    return module
