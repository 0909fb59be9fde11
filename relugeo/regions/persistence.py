"""H0 and H1 persistence of the sublevel filtration of a logit on a 2-D slice (with gudhi).

A logit is affine on every region, so triangulating the region complex
(:mod:`relugeo.regions.region_complex`) and interpolating its vertex values
gives the logit exactly; the sublevel sets of a piecewise-linear function
deform-retract onto the lower-star filtration of the triangulation (each
simplex enters at the largest value of its vertices), whose persistent
homology gudhi computes. H0 agrees with the union-find of
:func:`relugeo.regions.topology.sublevel_persistence`; H1 pairs each hole of
a sublevel set with the level at which it fills. The slice's domain is a
disc, so every H1 class dies: an essential (never dying) class cannot occur.

gudhi is an optional dependency: ``pip install relugeo[topology]``.
"""

from __future__ import annotations

import numpy as np

from .region_complex import RegionComplex, region_complex

__all__ = ["sublevel_diagrams"]


def _gudhi():
    try:
        import gudhi
    except ImportError as exc:
        raise ImportError("H1 persistence needs gudhi: pip install 'relugeo[topology]' (or pip install gudhi)") \
            from exc
    return gudhi


def sublevel_diagrams(part, *, logit: int = 0, min_persistence: float = 0.0,
                      complex_: RegionComplex | None = None) -> dict[int, np.ndarray]:
    """0- and 1-dimensional persistence diagrams of the sublevel sets ``{f <= c}`` of one logit ``f``.

    Parameters
    ----------
    part : Partition
        A 2-D partition.
    logit : int, default 0
    min_persistence : float, default 0.0
        Keep pairs with ``death - birth`` above this.
    complex_ : RegionComplex, optional
        The partition's region complex, when already built.

    Returns
    -------
    dict of int to ndarray of shape (n, 2), dtype=np.float64
        ``{0: H0 pairs, 1: H1 pairs}``, each ``(birth, death)`` sorted by
        birth (then death); the component that never dies has death ``inf``.
    """
    from .topology import _check, _check_logit

    _check(part)
    logit = _check_logit(part, logit)
    gudhi = _gudhi()
    cx = region_complex(part) if complex_ is None else complex_
    f = cx.values(part, part.logit_maps[:, :, logit])
    tri = cx.triangles()
    st = gudhi.SimplexTree()
    st.insert_batch(np.arange(cx.n_vertices)[None, :], f)
    st.insert_batch(cx.edges.T, f[cx.edges].max(axis=1))
    st.insert_batch(tri.T, f[tri].max(axis=1))
    st.compute_persistence(homology_coeff_field=2, min_persistence=min_persistence)
    out = {}
    for dim in (0, 1):
        d = np.asarray(st.persistence_intervals_in_dimension(dim), dtype=np.float64).reshape(-1, 2)
        out[dim] = d[np.lexsort((d[:, 1], d[:, 0]))]
    return out
