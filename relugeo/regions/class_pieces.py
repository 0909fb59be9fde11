"""Class pieces: each 2-D region split along the decision boundary into the parts of one predicted class.

The logits are affine on a region, so the part of a convex region where class
``c`` wins is the region clipped by the half-planes ``L_c(u) >= L_d(u)``, one
for every other class ``d``: a convex polygon, exact up to the rounding of its
vertices. A region whose vertices all predict one class is predicted that
class everywhere (each ``L_d - L_c`` is affine, so negative at every vertex
means negative on the whole polygon) and is one piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import cpu

__all__ = ["ClassPieces", "class_pieces"]


@dataclass(frozen=True)
class ClassPieces:
    """Convex pieces of a 2-D partition, each predicted one class throughout.

    Attributes
    ----------
    vertices : ndarray of shape (V, 2), dtype=np.float64
        Piece rings in slice coordinates, counter-clockwise, CSR like the partition's.
    ring_offsets : ndarray of shape (P + 1,), dtype=np.int64
    classes : ndarray of shape (P,), dtype=np.int64
        Predicted class of each piece (a single logit ``L``: 1 where ``L > 0``).
    regions : ndarray of shape (P,), dtype=np.int64
        The partition region holding each piece.
    areas : ndarray of shape (P,), dtype=np.float64
    """

    vertices: np.ndarray
    ring_offsets: np.ndarray
    classes: np.ndarray
    regions: np.ndarray
    areas: np.ndarray

    @property
    def n_pieces(self) -> int:
        return self.ring_offsets.shape[0] - 1


def _class_maps(maps: np.ndarray) -> np.ndarray:
    """Logit maps (R, 3, C) with a single logit ``L`` read as the two classes ``[0, L]``."""
    if maps.shape[2] != 1:
        return maps
    return np.concatenate([np.zeros_like(maps), maps], axis=2)


def class_pieces(part) -> ClassPieces:
    """Split every region of a 2-D partition that the decision boundary cuts into its class pieces.

    Parameters
    ----------
    part : Partition
        A 2-D partition.

    Returns
    -------
    ClassPieces
        One piece per uncut region (in region order) followed by the pieces of
        the cut regions; pieces of zero area (a class that only touches a
        region along a line or at a point) are left out, so the areas sum to
        the domain's area.
    """
    if part.dim != 2:
        raise ValueError(f"class pieces are defined for 2-D partitions; got a {part.dim}-D partition")
    off = part.ring_offsets
    v = part.vertices
    maps = _class_maps(part.logit_maps)
    R, C = part.n_regions, maps.shape[2]
    region_of_vertex = np.repeat(np.arange(R), np.diff(off))
    logits = np.einsum("vk,vkc->vc", v, maps[region_of_vertex, :2]) + maps[region_of_vertex, 2]
    best = logits.argmax(axis=1)
    first = best[off[:-1]] if R else np.zeros(0, dtype=np.int64)
    cut = np.zeros(R, dtype=bool)
    if R:
        np.logical_or.at(cut, region_of_vertex, best != first[region_of_vertex])
    whole = np.flatnonzero(~cut)
    lengths = np.diff(off)[whole]
    rings = [v[np.repeat(off[whole], lengths) + _ranks(lengths)]]
    ring_len = [lengths]
    classes = [first[whole]]
    regions = [whole]
    for r in np.flatnonzero(cut):
        px0, py0 = np.ascontiguousarray(v[off[r]:off[r + 1], 0]), np.ascontiguousarray(v[off[r]:off[r + 1], 1])
        L = maps[r]
        for c in range(C):
            px, py, pl = px0, py0, np.full(len(px0), -1, dtype=np.int64)
            for d in range(C):
                if d == c or len(px) < 3:
                    continue
                px, py, pl = cpu._clip_halfplane(px, py, pl, L[0, c] - L[0, d], L[1, c] - L[1, d],
                                                 L[2, c] - L[2, d], d)
            if len(px) < 3 or _twice_area(px, py) <= 0.0:
                continue
            rings.append(np.stack([px, py], axis=1))
            ring_len.append(np.array([len(px)]))
            classes.append(np.array([c]))
            regions.append(np.array([r]))
    vertices = np.concatenate(rings) if rings else np.zeros((0, 2))
    ring_offsets = np.concatenate([[0], np.cumsum(np.concatenate(ring_len))]).astype(np.int64)
    areas, _ = cpu.polygon_area_centroid(ring_offsets, np.ascontiguousarray(vertices[:, 0]),
                                         np.ascontiguousarray(vertices[:, 1]))
    return ClassPieces(np.ascontiguousarray(vertices), ring_offsets, np.concatenate(classes).astype(np.int64),
                       np.concatenate(regions).astype(np.int64), areas)


def _ranks(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., n_i - 1 for every length n_i, concatenated."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(int(lengths.sum())) - starts


def _twice_area(px: np.ndarray, py: np.ndarray) -> float:
    x, y = px - px[0], py - py[0]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
