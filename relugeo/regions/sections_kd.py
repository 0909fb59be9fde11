"""Planar cross-sections of a k-D partition (k >= 3): the regions met by ``u_axis = offset``.

Each region is convex, so its section by an axis-aligned hyperplane is the
convex hull of its vertices on the hyperplane and of the crossing points of
every pair of its vertices on opposite sides (the crossings of its edges are
among them). For k = 3 the section is a polygon, drawn by
:func:`relugeo.viz.plot_sections`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Section:
    """The regions of a 3-D partition met by the plane ``u_axis = offset``.

    Attributes
    ----------
    offset : float
    axis : int
        The fixed slice coordinate; the section's coordinates are the other two, in order.
    regions : ndarray of shape (S,), int64
        Region of each polygon.
    vertices : ndarray of shape (V, 2), float64
        Polygon vertices, counter-clockwise, concatenated.
    offsets : ndarray of shape (S + 1,), int64
        Polygon ``s`` is ``vertices[offsets[s]:offsets[s + 1]]``.
    """

    offset: float
    axis: int
    regions: np.ndarray
    vertices: np.ndarray
    offsets: np.ndarray

    @property
    def areas(self) -> np.ndarray:
        """Area of each polygon, (S,) float64."""
        out = np.zeros(len(self.regions))
        for s in range(len(self.regions)):
            v = self.vertices[self.offsets[s] : self.offsets[s + 1]] - self.vertices[self.offsets[s]]
            out[s] = 0.5 * float(v[:, 0] @ np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) @ v[:, 1])
        return out


def section(part, offset: float, axis: int = 2) -> Section:
    """The section of a 3-D partition by the plane ``u_axis = offset`` (slice coordinates)."""
    from scipy.spatial import ConvexHull, QhullError

    if part.dim != 3:
        raise ValueError(f"sections are drawn for 3-D partitions; got a {part.dim}-D one")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2; got {axis!r}")
    offset = float(offset)
    keep = [j for j in range(3) if j != axis]
    span = float(np.abs(part.vertices).max()) if len(part.vertices) else 1.0
    regions, rings = [], []
    for r in range(part.n_regions):
        v = part.vertices[part.offsets[r] : part.offsets[r + 1]]
        s = v[:, axis] - offset
        pos, neg = s > 0, s < 0
        if not (pos.any() and neg.any()):
            continue
        a, b = np.nonzero(pos[:, None] & neg[None, :])
        t = s[a] / (s[a] - s[b])
        pts = v[a] + t[:, None] * (v[b] - v[a])
        pts = np.concatenate([pts, v[s == 0]])[:, keep]
        try:
            hull = ConvexHull(pts)
        except QhullError:
            continue  # a sliver below float precision at this offset
        if hull.volume <= 1e-14 * span * span:
            continue
        regions.append(r)
        rings.append(pts[hull.vertices])  # counter-clockwise in 2-D
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in rings])]).astype(np.int64)
    vertices = np.concatenate(rings) if rings else np.zeros((0, 2))
    return Section(offset, axis, np.asarray(regions, dtype=np.int64), vertices, offsets)
