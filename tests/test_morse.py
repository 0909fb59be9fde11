"""PL Morse critical points and H1 persistence of a logit on a slice, on nets with known answers."""

import numpy as np
import pytest
from test_topology import ABS, PLANE, SQUARE, annulus, blobs

import relugeo as rg
from relugeo.regions.morse import critical_points, euler_check
from relugeo.regions.region_complex import region_complex
from relugeo.regions.topology import sublevel_betti, sublevel_persistence


def head(weights, bias=0.0):
    """Output layer on ``ABS`` = relu(x), relu(-x), relu(y), relu(-y)."""
    return rg.PWANet([ABS, rg.AffineLayer(np.asarray([weights], dtype=float), np.array([bias]), None)])


def star_saddle():
    """f = -|x| - |y| + (|x - y| + |x + y|) / sqrt(2): positive on the axes, negative on the diagonals,
    so its sign changes 8 times around 0 (a saddle of multiplicity 3)."""
    s = np.sqrt(0.5)
    n = np.array([[1, 0], [0, 1], [s, -s], [s, s]])
    return rg.PWANet([rg.AffineLayer(np.r_[n, -n], np.zeros(8), 0.0),
                      rg.AffineLayer(np.array([[-1, -1, 1, 1, -1, -1, 1, 1.0]]), np.zeros(1), None)])


def bumps(centres, radius=0.3):
    """f = sum of pyramids relu(radius - |x - cx| - |y - cy|) around ``centres``."""
    w1, b1 = [], []
    for cx, cy in centres:
        w1 += [[1, 0], [-1, 0], [0, 1], [0, -1]]
        b1 += [-cx, cx, -cy, cy]
    k = len(centres)
    w2 = np.kron(np.eye(k), -np.ones((1, 4)))
    return rg.PWANet([rg.AffineLayer(np.array(w1, float), np.array(b1, float), 0.0),
                      rg.AffineLayer(w2, np.full(k, radius), 0.0),
                      rg.AffineLayer(np.ones((1, k)), np.zeros(1), None)])


def kinds(points, boundary=None):
    t = points if boundary is None else points[points["boundary"] == boundary]
    return t["kind"].value_counts().to_dict()


def test_abs_sum_has_one_minimum():
    pts = critical_points(rg.partition(head([1, 1, 1, 1]), PLANE))
    assert kinds(pts) == {"minimum": 1}
    assert pts[["x", "y", "value"]].values.tolist() == [[0, 0, 0]]
    assert euler_check(pts) == 1


def test_abs_difference_has_one_saddle():
    pts = critical_points(rg.partition(head([1, 1, -1, -1]), PLANE))
    saddle = pts[pts["kind"] == "saddle"]
    assert saddle[["x", "y", "multiplicity", "boundary"]].values.tolist() == [[0, 0, 1, False]]
    # on the slice's edge, f = |x| - |y| is lowest at (0, +-1): boundary minima; its boundary maxima at
    # (+-1, 0) change no Betti number and are regular
    mins = pts[pts["kind"] == "minimum"]
    assert sorted(mins[["x", "y"]].values.tolist()) == [[0, -1], [0, 1]] and mins["boundary"].all()
    assert euler_check(pts) == 1


def test_monkey_saddle_multiplicity():
    pts = critical_points(rg.partition(star_saddle(), PLANE))
    inner = pts[~pts["boundary"]]
    assert inner[["x", "y", "kind", "multiplicity", "lower_runs"]].values.tolist() == [[0, 0, "saddle", 3, 4]]
    assert euler_check(pts) == 1


def test_bumps_have_their_maxima():
    centres = [(-0.5, -0.5), (0.5, -0.4), (0.4, 0.5), (-0.5, 0.5)]
    pts = critical_points(rg.partition(bumps(centres), PLANE))
    top = pts[pts["kind"] == "maximum"].sort_values(["x", "y"])
    np.testing.assert_allclose(top[["x", "y"]], sorted(centres), atol=1e-12)
    np.testing.assert_allclose(top["value"], 0.3)
    assert not top["boundary"].any()
    assert euler_check(pts) == 1
    # the logit of the four-blob net is the same shape upside down: four minima at -0.3
    low = critical_points(rg.partition(blobs(), PLANE))
    mins = low[low["kind"] == "minimum"].sort_values(["x", "y"])
    np.testing.assert_allclose(mins[["x", "y", "value"]], [[-0.5, -0.5, -0.3], [-0.5, 0.5, -0.3], [0.5, -0.5, -0.3],
                                                          [0.5, 0.5, -0.3]], atol=1e-12)
    assert euler_check(low) == 1


def random_part(seed, n_out=2):
    rng = np.random.default_rng(seed)
    layers = [rg.AffineLayer(rng.normal(size=(8, 2)), rng.normal(size=8) * 0.5, 0.0),
              rg.AffineLayer(rng.normal(size=(8, 8)) / np.sqrt(8), rng.normal(size=8) * 0.5, 0.0),
              rg.AffineLayer(rng.normal(size=(n_out, 8)), rng.normal(size=n_out) * 0.3, None)]
    return rg.partition(rg.PWANet(layers), rg.Slice(np.zeros(2), np.eye(2), 2 * SQUARE))


def circle_sign_changes(part, logit, p, rho, boundary):
    """Oracle: which points q of a small circle about p have f(q) < f(p), f from the network's forward pass
    (ties, where f is flat, count as lower when q comes before p in (x, y) order, as in the engine's
    simulation of simplicity); returns the sign changes around the circle (on the slice's edge: along the
    arc inside the domain) and the lower flags in order."""
    theta = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    d = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    q = p + rho * d
    inside = (np.abs(q) <= 2).all(axis=1)
    f = part.net.forward(part.slice.to_input(np.r_[p[None], q]))[:, logit]
    tie = np.abs(f[1:] - f[0]) <= 1e-12 * max(1.0, abs(f[0]))
    lower = np.where(tie, (d[:, 0] < 0) | ((d[:, 0] == 0) & (d[:, 1] < 0)), f[1:] < f[0])
    if not boundary:
        return int((lower != np.roll(lower, 1)).sum()), lower
    start = np.flatnonzero(inside & ~np.roll(inside, 1))[0]  # the arc inside the domain, in order
    arc = np.roll(lower, -start)[: inside.sum()]
    return int((arc[1:] != arc[:-1]).sum()), arc


@pytest.mark.parametrize("seed", [0, 1])
def test_critical_points_agree_with_forward_pass_on_small_circles(seed):
    part = random_part(seed)
    cx = region_complex(part)
    f = cx.values(part, part.logit_maps[:, :, 1])
    pts = critical_points(part, logit=1, complex_=cx)
    assert euler_check(pts) == 1
    assert euler_check(critical_points(part, logit=0, complex_=cx)) == 1
    gap = np.sort(np.linalg.norm(cx.points[:, None] - cx.points[None], axis=2), axis=1)[:, 1]
    crit = {(round(x, 9), round(y, 9)): k for x, y, k in pts[["x", "y", "kind"]].values}
    checked = 0
    for v in range(cx.n_vertices):
        p, b = cx.points[v], bool(cx.boundary_vertex[v])
        changes, lower = circle_sign_changes(part, 1, p, 1e-3 * gap[v], b)
        if b:
            runs = int(lower[0]) + int((lower[1:] & ~lower[:-1]).sum())
            want = "minimum" if runs == 0 else "saddle" if runs >= 2 else None
        else:
            want = ("minimum" if not lower.any() else "maximum" if lower.all() else
                    "saddle" if changes >= 4 else None)
        assert crit.get((round(p[0], 9), round(p[1], 9))) == want, (v, p, changes, f[v])
        checked += want is not None
    assert checked >= 3


def test_region_complex_is_a_disc_with_shared_vertices():
    part = random_part(3, n_out=1)
    cx = region_complex(part)
    assert cx.euler_characteristic == 1
    assert cx.n_faces == part.n_regions
    assert cx.n_vertices < len(part.vertices) / 2  # interior vertices are shared by 3 or more rings
    # boundary edges lie on the square and cover its perimeter
    e = cx.edges[cx.boundary_edge]
    a, b = cx.points[e[:, 0]], cx.points[e[:, 1]]
    assert np.isclose(np.abs(np.r_[a, b]).max(axis=1), 2).all()
    assert np.linalg.norm(b - a, axis=1).sum() == pytest.approx(16)
    # the fan triangles cover each face once
    tri = cx.triangles()
    p = cx.points[tri]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    area = 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert (area > -1e-12).all() and area.sum() == pytest.approx(part.domain_area)


def test_region_complex_splits_t_junctions():
    # the left half of a square cut in two by y = 0, beside a right half left whole: (1, 0) is a T-junction
    from relugeo.regions.region_complex import _split_t_junctions

    pts = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [0, -1], [1, -1], [2, -1.0]])
    rings = np.array([0, 1, 4, 3, 6, 7, 1, 0, 7, 8, 5, 4])
    fv, off = _split_t_junctions(pts, rings, np.array([0, 4, 8, 12]), 1e-12)
    assert fv.tolist() == [0, 1, 4, 3, 6, 7, 1, 0, 7, 8, 5, 4, 1] and off.tolist() == [0, 4, 8, 13]


def test_h1_of_the_annulus_and_the_blobs():
    pytest.importorskip("gudhi")
    from relugeo.regions.persistence import sublevel_diagrams

    # the annulus net's logit is lowest (-0.2) on the loop |x| + |y| = 0.6: the loop closes at once and
    # its hole fills when the centre enters at 0.4
    d = sublevel_diagrams(rg.partition(annulus(), PLANE))
    np.testing.assert_allclose(d[0], [[-0.2, np.inf]], atol=1e-12)
    np.testing.assert_allclose(d[1], [[-0.2, 0.4]], atol=1e-12)
    # four blobs meet at 0.2 around the centre, which fills at 0.7
    part = rg.partition(blobs(), PLANE)
    d = sublevel_diagrams(part)
    np.testing.assert_allclose(d[0], sublevel_persistence(part), atol=1e-12)
    np.testing.assert_allclose(d[1], [[0.2, 0.7]], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_persistence_agrees_with_union_find_and_sublevel_betti(seed):
    pytest.importorskip("gudhi")
    from relugeo.regions.persistence import sublevel_diagrams

    part = random_part(seed)
    for logit in (0, 1):
        d = sublevel_diagrams(part, logit=logit, min_persistence=1e-9)
        np.testing.assert_allclose(d[0], sublevel_persistence(part, logit=logit, min_persistence=1e-9),
                                   rtol=1e-9, atol=1e-9)
        assert np.isfinite(d[1]).all()  # the domain is a disc: every hole fills
        # Betti numbers of sublevel sets between the diagram's values, from the pieces of topology.py
        ends = np.unique(np.r_[d[0].ravel(), d[1].ravel()])
        ends = ends[np.isfinite(ends)]
        mids = 0.5 * (ends[1:] + ends[:-1])
        mids = mids[np.diff(ends) > 1e-6]
        sub = sublevel_betti(part, mids, logit=logit)
        for dim, col in ((0, "b0"), (1, "b1")):
            alive = ((d[dim][:, 0][None] <= mids[:, None]) & (d[dim][:, 1][None] > mids[:, None])).sum(axis=1)
            np.testing.assert_array_equal(sub[col].to_numpy(), alive, err_msg=f"logit {logit} H{dim}")
    assert max(len(sublevel_diagrams(part, logit=k)[1]) for k in (0, 1)) >= 1 or seed != 0


def test_bad_input():
    part = rg.partition(blobs(), PLANE)
    with pytest.raises(ValueError, match=r"logit must be an integer in \[0, 1\); got 1"):
        critical_points(part, logit=1)
    with pytest.raises(TypeError, match="part must be a relugeo.Partition"):
        critical_points(None)
