"""Which region of one partition became which region of another partition of the same slice.

Two partitions of one 2-D slice (consecutive checkpoints, or two nets of the
same architecture) are matched in two ways, both reported:

* **by overlap**: the area shared by every pair of intersecting regions, by
  exact clipping of the pairs whose bounding boxes meet, found with a grid
  (:mod:`relugeo.regions.overlap`), so not all pairs are tried;
* **by pattern**: the regions with the same activation pattern at both steps.

From the overlaps, with ``share`` (default 0.5): region ``a`` of the first
partition *feeds* region ``b`` of the second when their overlap is at least
``share`` of ``a``'s area (most of ``a`` went into ``b``) or at least
``share`` of ``b``'s area (most of ``b`` came from ``a``). Then:

* ``a`` **persisted** as ``b`` when ``a`` feeds only ``b`` and ``b`` is fed only by ``a``;
* ``a`` **split** when it feeds two or more regions;
* regions **merged** into ``b`` when two or more feed ``b``;
* ``a`` **died** when it feeds nothing (its area is scattered over regions
  of which none is mostly from ``a``); ``b`` was **born** when nothing feeds it.

Each region of the first partition gets one fate: ``split`` when it split
(whether or not one of its pieces also merged), else ``merged``, ``persisted``
or ``died``; of the second: ``merged``, else ``split`` (a piece of a split),
``persisted`` or ``born``. With ``share > 0.5`` no two regions compete for
the same majority.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .adjacency import PatternIndex
from .overlap import box_pairs, clip_areas, ring_boxes

__all__ = ["Correspondence", "correspond", "overlaps"]

#: Fates of the first partition's regions, in code order.
FATES_FROM = ("persisted", "split", "merged", "died")
#: Fates of the second partition's regions, in code order.
FATES_TO = ("persisted", "split", "merged", "born")


def _check_pair(part_a, part_b) -> None:
    from .partition import Partition

    for name, p in (("part_a", part_a), ("part_b", part_b)):
        if not isinstance(p, Partition):
            raise TypeError(f"{name} must be a relugeo.Partition; got {type(p).__name__}")
        if p.dim != 2:
            raise ValueError(f"{name} must be a 2-D partition; got a {p.dim}-D one")
    sa, sb = part_a.slice, part_b.slice
    same = (sa.origin.shape == sb.origin.shape and sa.vertices.shape == sb.vertices.shape
            and np.allclose(sa.origin, sb.origin) and np.allclose(sa.basis, sb.basis)
            and np.allclose(sa.vertices, sb.vertices))
    if not same:
        raise ValueError("part_a and part_b must partition the same slice (equal origin, basis and vertices)")


def overlaps(part_a, part_b, *, atol: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area shared by every pair of overlapping regions of two partitions of one slice.

    Parameters
    ----------
    part_a, part_b : Partition
        2-D partitions of the same slice.
    atol : float, optional
        Intersections of at most this area are dropped (regions that only
        touch along an edge, up to rounding), except a region's largest one;
        default ``1e-12`` times the domain's area.

    Returns
    -------
    a, b : ndarray of shape (P,), dtype=np.int64
        Region pairs, sorted by ``a`` then ``b``.
    area : ndarray of shape (P,), dtype=np.float64
        Their shared area, in slice units. Summed over ``b`` it is the area of
        ``a`` (and over ``a`` that of ``b``) up to rounding.
    """
    _check_pair(part_a, part_b)
    atol = 1e-12 * part_a.domain_area if atol is None else float(atol)
    ia, ib = box_pairs(*ring_boxes(part_a.vertices, part_a.ring_offsets),
                       *ring_boxes(part_b.vertices, part_b.ring_offsets))
    area = clip_areas(part_a.vertices, part_a.ring_offsets, part_b.vertices, part_b.ring_offsets, ia, ib)
    keep = area > atol
    # a region smaller than atol keeps its largest overlap
    for key, n in ((ia, part_a.n_regions), (ib, part_b.n_regions)):
        order = np.lexsort((area, key))
        last = np.r_[key[order][1:] != key[order][:-1], True]
        best = order[last]
        keep[best[area[best] > 0]] = True
    ia, ib, area = ia[keep], ib[keep], area[keep]
    order = np.lexsort((ib, ia))
    return ia[order], ib[order], area[order]


@dataclass
class Correspondence:
    """Regions of ``part_a`` matched to regions of ``part_b`` (see the module docstring).

    Attributes
    ----------
    a, b : ndarray of shape (P,), dtype=np.int64
        Every overlapping pair of regions.
    area : ndarray of shape (P,), dtype=np.float64
        Their shared area (slice units).
    feeds : ndarray of shape (P,), dtype=bool
        Whether ``a`` feeds ``b``.
    fate_a : ndarray of shape (Ra,), dtype=object
        ``"persisted"``, ``"split"``, ``"merged"`` or ``"died"``.
    fate_b : ndarray of shape (Rb,), dtype=object
        ``"persisted"``, ``"split"``, ``"merged"`` or ``"born"``.
    successor : ndarray of shape (Ra,), dtype=np.int64
        The region of ``part_b`` holding most of each region of ``part_a``.
    predecessor : ndarray of shape (Rb,), dtype=np.int64
        The region of ``part_a`` that most of each region of ``part_b`` comes from.
    same_pattern : ndarray of shape (Ra,), dtype=np.int64
        The region of ``part_b`` with the same activation pattern, -1 if none.
    share : float
    """

    a: np.ndarray
    b: np.ndarray
    area: np.ndarray
    feeds: np.ndarray
    fate_a: np.ndarray
    fate_b: np.ndarray
    successor: np.ndarray
    predecessor: np.ndarray
    same_pattern: np.ndarray
    share: float
    areas_a: np.ndarray = field(repr=False)
    areas_b: np.ndarray = field(repr=False)

    @property
    def n_from(self) -> int:
        return len(self.fate_a)

    @property
    def n_to(self) -> int:
        return len(self.fate_b)

    def matrix(self):
        """The shared areas as a ``scipy.sparse.csr_matrix`` of shape (Ra, Rb)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.area, (self.a, self.b)), shape=(self.n_from, self.n_to))

    @property
    def persisted(self) -> np.ndarray:
        """Pairs ``(a, b)`` where ``a`` persisted as ``b``, shape (n, 2) int64."""
        rows = self.feeds & (self.fate_a[self.a] == "persisted")
        return np.stack([self.a[rows], self.b[rows]], axis=1)

    @property
    def born_by_pattern(self) -> np.ndarray:
        """Regions of ``part_b`` whose pattern ``part_a`` does not have, (n,) int64."""
        seen = np.zeros(self.n_to, dtype=bool)
        seen[self.same_pattern[self.same_pattern >= 0]] = True
        return np.flatnonzero(~seen)

    @property
    def died_by_pattern(self) -> np.ndarray:
        """Regions of ``part_a`` whose pattern ``part_b`` does not have, (n,) int64."""
        return np.flatnonzero(self.same_pattern < 0)

    def counts(self) -> dict:
        """Number of regions of each fate, and of patterns kept, born and died.

        Keys ``persisted``, ``split`` and ``died`` count regions of
        ``part_a``; ``merged``, ``born`` count regions of ``part_b``;
        ``split_into`` the pieces splits made, ``merged_from`` the regions
        that merged; ``pattern_kept``, ``pattern_born``, ``pattern_died``.
        """
        fa, fb = self.fate_a, self.fate_b
        return {
            "persisted": int((fa == "persisted").sum()), "split": int((fa == "split").sum()),
            "split_into": int((fb == "split").sum()), "merged": int((fb == "merged").sum()),
            "merged_from": int((fa == "merged").sum()), "died": int((fa == "died").sum()),
            "born": int((fb == "born").sum()), "pattern_kept": int((self.same_pattern >= 0).sum()),
            "pattern_born": len(self.born_by_pattern), "pattern_died": len(self.died_by_pattern),
        }

    def events(self):
        """One row per event: ``event`` and the regions ``a`` and ``b`` involved (tuples).

        A split lists its region of ``part_a`` and every region it feeds; a
        merge every region feeding its region of ``part_b``; persisted, died
        and born one region each.
        """
        import pandas as pd

        fa, fb = self.fate_a, self.fate_b
        la, lb = self.a[self.feeds], self.b[self.feeds]
        rows = [("persisted", (int(x),), (int(y),)) for x, y in self.persisted]
        for x in np.flatnonzero(fa == "split"):
            rows.append(("split", (int(x),), tuple(int(y) for y in lb[la == x])))
        for y in np.flatnonzero(fb == "merged"):
            rows.append(("merged", tuple(int(x) for x in la[lb == y]), (int(y),)))
        rows += [("died", (int(x),), ()) for x in np.flatnonzero(fa == "died")]
        rows += [("born", (), (int(y),)) for y in np.flatnonzero(fb == "born")]
        return pd.DataFrame(rows, columns=["event", "a", "b"])

    def to_frame(self):
        """The overlapping pairs as a tidy table: ``a``, ``b``, ``area``, ``share_a``, ``share_b``,
        ``feeds`` and ``same_pattern`` (the two regions have one pattern)."""
        import pandas as pd

        return pd.DataFrame({
            "a": self.a, "b": self.b, "area": self.area, "share_a": self.area / self.areas_a[self.a],
            "share_b": self.area / self.areas_b[self.b], "feeds": self.feeds,
            "same_pattern": self.same_pattern[self.a] == self.b,
        })


def _main(key: np.ndarray, other: np.ndarray, area: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` regions (``key``), the ``other`` with the largest shared ``area``; -1 if none."""
    out = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((area, key))  # ascending: the last row of each key is its largest overlap
    out[key[order]] = other[order]
    return out


def correspond(part_a, part_b, *, share: float = 0.5, atol: float | None = None) -> Correspondence:
    """Match the regions of two partitions of the same 2-D slice by overlap and by pattern.

    Parameters
    ----------
    part_a, part_b : Partition
        The earlier and the later partition (same slice, nets of the same
        hidden widths for the pattern match).
    share : float, default 0.5
        Fraction of a region's area that makes one region feed another
        (see :mod:`relugeo.regions.correspondence`); in (0, 1].
    atol : float, optional
        Passed to :func:`overlaps`.

    Returns
    -------
    Correspondence
    """
    if not (np.isscalar(share) and 0 < float(share) <= 1):
        raise ValueError(f"share must be a number in (0, 1]; got {share!r}")
    share = float(share)
    a, b, area = overlaps(part_a, part_b, atol=atol)
    Ra, Rb = part_a.n_regions, part_b.n_regions
    feeds = (area >= share * part_a.areas[a]) | (area >= share * part_b.areas[b])
    out_deg = np.bincount(a[feeds], minlength=Ra)
    in_deg = np.bincount(b[feeds], minlength=Rb)
    fate_a = np.full(Ra, "died", dtype=object)
    fate_b = np.full(Rb, "born", dtype=object)
    single = feeds & (out_deg[a] == 1) & (in_deg[b] == 1)
    fate_a[a[single]] = "persisted"
    fate_b[b[single]] = "persisted"
    fate_b[b[feeds & (out_deg[a] >= 2)]] = "split"
    fate_b[in_deg >= 2] = "merged"
    fate_a[a[feeds & (in_deg[b] >= 2)]] = "merged"
    fate_a[out_deg >= 2] = "split"
    same = np.full(Ra, -1, dtype=np.int64)
    if part_a.patterns.shape[1] == part_b.patterns.shape[1] and part_a.net.widths == part_b.net.widths:
        same = PatternIndex(part_b.patterns).find(part_a.patterns)
    return Correspondence(a, b, area, feeds, fate_a, fate_b, _main(a, b, area, Ra), _main(b, a, area, Rb), same,
                          share, part_a.areas, part_b.areas)
