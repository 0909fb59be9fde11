"""Partitions too large to hold: their regions, piece by piece.

:func:`relugeo.partition` keeps every region (about 0.3-0.5 KB each, mostly
the packed pattern and the ring). :func:`iter_regions` walks the same slice
with the same engine and hands the regions over in pieces of about
``batch_regions`` instead, so memory stays bounded by that knob and the
engine's ``batch_cells`` whatever the number of regions: count them, reduce
them, or write each piece to disk (``piece.save`` or ``np.savez``).
"""

from __future__ import annotations

import time
from typing import Iterator

from ..nets.pwanet import PWANet
from . import engine, warmup
from .partition import Partition, _check_inputs, _domain_centre, _from_leaves, _slice_roots
from .slices import Slice


def iter_regions(
    net: PWANet,
    slice_: Slice,
    *,
    batch_regions: int = 100_000,
    max_regions: int | None = None,
    batch_cells: int | None = None,
    tol: float = engine.DEFAULT_TOL,
    device: str = "cpu",
) -> Iterator[Partition]:
    """The exact partition of ``slice_``, yielded as pieces of at least ``batch_regions`` regions.

    Each piece is a :class:`Partition` of some of the regions (``is_part`` is
    True: its areas sum to a share of the domain's; ``verify()`` checks its
    certificates). Together the pieces hold every region exactly once, with
    the same patterns, rings and areas as :func:`relugeo.partition`.

    Parameters
    ----------
    batch_regions : int, default 100_000
        Regions gathered before a piece is yielded: the memory knob (about
        0.5 KB per region for a 2-512^3-1 net) beside ``batch_cells``.
    max_regions : int or None, default None
        As in :func:`relugeo.partition`, but off by default: streaming is for
        partitions too large to hold.
    Other parameters as in :func:`relugeo.partition`.
    """
    _check_inputs(net, slice_)
    if int(batch_regions) < 1:
        raise ValueError(f"batch_regions must be a positive integer; got {batch_regions!r}")
    warmup.ensure_compiled()
    centre = _domain_centre(slice_)
    pending: list[engine.CellBatch] = []
    held = 0
    t0 = time.perf_counter()
    roots = _slice_roots(net, slice_, centre)
    for leaves in engine.iter_leaves(net, roots, tol=tol, batch_cells=batch_cells, max_regions=max_regions,
                                     device=device):
        pending.append(leaves)
        held += leaves.n_cells
        if held >= batch_regions:
            yield _from_leaves(net, slice_, pending, centre, time.perf_counter() - t0, tol, is_part=True)
            pending, held, t0 = [], 0, time.perf_counter()
    if pending:
        yield _from_leaves(net, slice_, pending, centre, time.perf_counter() - t0, tol, is_part=True)

