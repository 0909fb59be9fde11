"""Topology of the classes of a 2-D slice, per slice and per checkpoint, as one tidy table.

For each class ``c`` of a slice: the Betti numbers of its decision region
(:func:`relugeo.regions.topology.betti_numbers`) and the PL Morse critical
points of its score (:mod:`relugeo.regions.morse`): the logit ``c``, or for
a single-logit network ``-L`` for class 0 and ``L`` for class 1, so that
a class's maxima are where it is most confident.
"""

from __future__ import annotations

import numpy as np

from .morse import classify, vertex_order
from .region_complex import region_complex
from .topology import _logit_maps, betti_numbers

__all__ = ["COLUMNS", "slice_topology", "topology_table"]

#: Columns of :func:`slice_topology` (``topology_table`` adds ``checkpoint``, ``step`` and ``slice`` in front).
COLUMNS = ("class", "b0", "b1", "area", "minima", "saddles", "maxima")


def slice_topology(part):
    """Betti numbers and critical point counts of every class of a 2-D partition.

    Returns
    -------
    pandas.DataFrame
        One row per class: ``class``, ``b0``, ``b1``, ``area`` (of the
        decision region, slice units), ``minima``, ``saddles`` (counted with
        multiplicity) and ``maxima`` of the class's score.
    """
    import pandas as pd

    betti = betti_numbers(part)
    cx = region_complex(part)
    scores = _logit_maps(part)
    counts = []
    for c in betti["class"]:
        f = cx.values(part, scores[:, :, c])
        kind, mult, _ = classify(cx, vertex_order(cx, f))
        counts.append([int((kind == 0).sum()), int(mult[kind == 1].sum()), int((kind == 2).sum())])
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    out = betti.assign(minima=counts[:, 0], saddles=counts[:, 1], maxima=counts[:, 2])
    return pd.DataFrame(out, columns=list(COLUMNS))


def topology_table(parts, checkpoint: str, step: int):
    """:func:`slice_topology` of each slice's partition at one checkpoint, with ``checkpoint``, ``step``
    and ``slice`` columns in front: one row per slice x class."""
    import pandas as pd

    frames = []
    for s, part in enumerate(parts):
        t = slice_topology(part)
        t.insert(0, "slice", s)
        frames.append(t)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["slice", *COLUMNS])
    out.insert(0, "checkpoint", checkpoint)
    out.insert(1, "step", int(step))
    return out
