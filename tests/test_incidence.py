"""verify()'s combinatorial checks catch a lost or merged region that area sums cannot see."""

import numpy as np
import pytest
from common import SQUARE, random_net
from test_partition import to_pwanet

import relugeo as rg
from relugeo.regions.incidence import check_incidence
from relugeo.regions.partition import Partition


def _part(dim, seed=3):
    layers = random_net(seed, [8, 8, 6], 2, 0.1)
    sl = rg.Slice(np.zeros(2), np.eye(2), SQUARE) if dim == 2 else rg.Slice.segment([-1.0, 0.3], [1.0, -0.2])
    return rg.partition(to_pwanet(layers), sl)


def _rebuild(part, rings, patterns, labels):
    """A Partition of the given rings (list of (n, k) arrays), patterns and edge labels (list of (n, 2))."""
    off = np.concatenate([[0], np.cumsum([len(r) for r in rings])]).astype(np.int64)
    lab = np.concatenate(labels).astype(np.int32)
    maps = np.repeat(part.logit_maps[:1], len(rings), axis=0)
    return Partition(part.net, part.slice, np.concatenate(rings), off, lab[:, 0].copy(), lab[:, 1].copy(),
                     np.asarray(patterns), maps)


def _pieces(part):
    rings = part.polygons
    labels = np.split(np.stack([part.edge_layer, part.edge_neuron], 1), part.ring_offsets[1:-1])
    return list(rings), list(part.patterns), list(labels)


@pytest.mark.parametrize("dim", [1, 2])
def test_real_partitions_fit(dim):
    part = _part(dim)
    assert check_incidence(part) == {"uncovered_edges": 0, "boundary_gaps": 0, "bad_neighbours": 0, "open_vertices": 0}
    assert part.verify()["ok"]


@pytest.mark.parametrize("dim", [1, 2])
def test_a_deleted_small_region_fails(dim):
    part = _part(dim)
    rings, pats, labels = _pieces(part)
    r = int(np.argmin(part.areas))
    del rings[r], pats[r], labels[r]
    lost = _rebuild(part, rings, pats, labels)
    report = lost.verify(raise_on_error=False)
    assert not report["ok"] and report["uncovered_edges"] > 0


def test_a_deleted_sliver_fails_where_the_area_sum_passes():
    # y = 0 and y = 5e-10 + 1e-11 x bound a strip of area 1e-9, a quarter of the area check's 1e-9 * 4
    layers = [(np.array([[0.0, 1.0], [-1e-11, 1.0]]), np.array([0.0, -5e-10]), 0.0),
              (np.array([[1.0, -1.0]]), np.zeros(1), None)]
    part = rg.partition(to_pwanet(layers), rg.Slice(np.zeros(2), np.eye(2), SQUARE))
    assert part.n_regions == 3
    rings, pats, labels = _pieces(part)
    r = int(np.argmin(part.areas))
    del rings[r], pats[r], labels[r]
    report = _rebuild(part, rings, pats, labels).verify(raise_on_error=False)
    assert report["area_rel_error"] < 1e-9
    assert not report["ok"] and report["uncovered_edges"] > 0


def test_two_merged_regions_fail_2d():
    part = _part(2)
    rings, pats, labels = _pieces(part)
    from relugeo.regions.incidence import _polygons

    left, right = _polygons(part)[2][:2]
    # two neighbours whose union is convex (the hull has their summed area): one region, left's pattern
    for a, b in zip(left.tolist(), right.tolist()):
        pts = np.concatenate([rings[a], rings[b]])
        hull = _hull(pts)
        if abs(_area(hull) - part.areas[a] - part.areas[b]) < 1e-12:
            break
    else:
        pytest.fail("no two neighbours with a convex union")
    keep = [r for r in range(len(rings)) if r not in (a, b)]
    merged = _rebuild(part, [rings[r] for r in keep] + [hull], [pats[r] for r in keep] + [pats[a]],
                      [labels[r] for r in keep] + [np.full((len(hull), 2), -1)])
    report = merged.verify(raise_on_error=False)
    assert abs(report["area_sum"] - 4.0) < 1e-9
    assert not report["ok"] and report["bad_neighbours"] + report["uncovered_edges"] > 0


def test_two_merged_intervals_fail_1d():
    part = _part(1)
    rings, pats, labels = _pieces(part)
    order = np.argsort([r[0, 0] for r in rings])
    a, b = order[2], order[3]
    merged_ring = np.array([[rings[a][0, 0]], [rings[b][1, 0]]])
    keep = [r for r in range(len(rings)) if r not in (a, b)]
    merged = _rebuild(part, [rings[r] for r in keep] + [merged_ring], [pats[r] for r in keep] + [pats[a]],
                      [labels[r] for r in keep] + [np.array([labels[a][0], labels[b][1]])])
    report = merged.verify(raise_on_error=False)
    assert not report["ok"] and report["bad_neighbours"] > 0


def _area(poly):
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _hull(points):
    pts = sorted(map(tuple, points))
    cross = lambda o, a, b: (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])  # noqa: E731
    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 1e-15:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 1e-15:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


# -- vertices close up ------------------------------------------------------------------------


def _fan(rows):
    """Lines through the origin of the square (rows (wx, wy, b)): one vertex where they all meet."""
    from common import net_from_rows

    return rg.partition(to_pwanet(net_from_rows(rows)), rg.Slice(np.zeros(2), np.eye(2), SQUARE))


def _labels_of(ring, rings, labels):
    """Edge labels of a ring cut from the union of ``rings``: each edge takes the label of an original
    edge that starts at its start vertex and runs along it."""
    out = []
    for q in range(len(ring)):
        p, d = ring[q], ring[(q + 1) % len(ring)] - ring[q]
        for r, lab in zip(rings, labels):
            for s in range(len(r)):
                e = r[(s + 1) % len(r)] - r[s]
                if np.allclose(r[s], p, atol=1e-15) and abs(e[0] * d[1] - e[1] * d[0]) < 1e-12 and e @ d > 0:
                    out.append(lab[s])
                    break
            else:
                continue
            break
    return np.array(out)


def test_a_region_merged_into_its_neighbour_at_a_vertex_of_degree_six_leaves_it_open():
    part = _fan([[1, 0, 0], [0, 1, 0], [1, -1, 0]])
    assert part.n_regions == 6 and part.verify()["open_vertices"] == 0
    rings, pats, labels = _pieces(part)
    # the wedges 0 < angle < 45 and 45 < angle < 90 degrees: their union is the first quadrant (convex)
    angle = np.degrees(np.arctan2(part.centroids[:, 1], part.centroids[:, 0]))
    a, b = int(np.argmin(np.abs(angle - 22.5))), int(np.argmin(np.abs(angle - 67.5)))
    hull = _hull(np.concatenate([rings[a], rings[b]]))
    union_labels = _labels_of(hull, [rings[a], rings[b]], [labels[a], labels[b]])
    assert len(union_labels) == len(hull)
    keep = [r for r in range(len(rings)) if r not in (a, b)]
    # the merged region keeps the pattern of the wedge that holds its centroid: its certificate passes
    merged = _rebuild(part, [rings[r] for r in keep] + [hull], [pats[r] for r in keep] + [pats[a]],
                      [labels[r] for r in keep] + [union_labels])
    assert merged.n_regions == 5
    report = merged.verify(raise_on_error=False)
    assert report["area_rel_error"] < 1e-12 and report["certificate_failures"] == 0
    assert report["uncovered_edges"] == 0 and report["boundary_gaps"] == 0  # the edge checks pass
    assert report["open_vertices"] > 0 and not report["ok"]


def test_two_opposite_quadrants_lost_at_a_vertex_of_degree_four_leave_it_open():
    part = _fan([[1, 0, 0], [0, 1, 0]])
    rings, pats, labels = _pieces(part)
    # on the symmetric cross the lost edges cancel along both lines: the edge check alone passes
    keep = [r for r in range(4) if np.sign(part.centroids[r, 0]) != np.sign(part.centroids[r, 1])]
    lost = _rebuild(part, [rings[r] for r in keep], [pats[r] for r in keep], [labels[r] for r in keep])
    report = lost.verify(raise_on_error=False)
    assert report["uncovered_edges"] == 0 and report["bad_neighbours"] == 0
    assert report["open_vertices"] > 0 and not report["ok"]


def test_vertices_close_up_on_every_degenerate_case():
    from common import degenerate_cases_2d
    from test_exact_oracle import exact_cases

    cases = [c for c in exact_cases() + degenerate_cases_2d() if c.dim == 2]
    for case in cases:
        for predicates in ("tolerance", "certified"):
            part = rg.partition(to_pwanet(case.layers), rg.Slice(case.origin, case.basis, case.vertices),
                                predicates=predicates)
            assert check_incidence(part)["open_vertices"] == 0, (case.name, predicates)
