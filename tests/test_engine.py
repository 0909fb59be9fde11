"""The partition engine's contracts beyond counting: geometry, labels, boundaries, limits, kernels."""

import numpy as np
import pytest
import shapely
import torch
from torch import nn

import relugeo as rg
from relugeo.kernels import cpu

SQUARE = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]


def mlp(sizes, seed, negative_slope=0.0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if negative_slope == 0 else nn.LeakyReLU(negative_slope))
    return rg.from_torch(nn.Sequential(*layers).double())


def square_slice(d=2, half=1.0, seed=0):
    if d == 2:
        return rg.Slice(np.zeros(2), np.eye(2), np.array(SQUARE) * half)
    basis = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, 2)))[0]
    return rg.Slice.square(np.zeros(d), basis, half)


def unpack(patterns, n_bits):
    return np.unpackbits(patterns.view(np.uint8), axis=1, bitorder="little")[:, :n_bits]


# -- kernels against slow references -------------------------------------------------


def test_pack_signs_matches_numpy_packbits():
    z = np.random.default_rng(0).normal(size=(50, 150))
    z[3, :] = 0.0
    packed = cpu.pack_signs(z)
    assert packed.shape == (50, 3) and packed.dtype == np.uint64
    np.testing.assert_array_equal(unpack(packed, 150), (z > 0).astype(np.uint8))
    with pytest.raises(ValueError, match="n_words"):
        cpu.pack_signs(z, 2)


@pytest.mark.parametrize("seed", range(10))
def test_split_polygon_matches_shapely_clipping(seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(12, 2))
    hull = shapely.convex_hull(shapely.multipoints(pts))
    v = np.asarray(hull.exterior.coords)[:-1]
    if shapely.is_ccw(hull.exterior):
        pass
    else:
        v = v[::-1]
    lines = rng.normal(size=(4, 3)) * [1, 1, 0.5]
    pieces = cpu.split_polygon(v, np.full((len(v), 2), -1), lines, uscale=np.abs(v).max())
    total = sum(shapely.Polygon(p).area for p, _, _ in pieces)
    assert total == pytest.approx(hull.area, rel=1e-12)
    # each piece equals the hull clipped by the half-planes its sides name
    big = 1e3
    for p, lab, sides in pieces:
        ref = hull
        for (a, b, c), s in zip(lines, sides):
            sign = 1 if s else -1
            # a half-plane a*x + b*y + c >= 0 (or <= 0) as a large polygon
            n = np.array([a, b]) * sign
            x0 = -c * sign * n / (n @ n)
            t = np.array([-n[1], n[0]]) / np.linalg.norm(n)
            nn_ = n / np.linalg.norm(n)
            half = shapely.Polygon([x0 - big * t, x0 + big * t, x0 + big * t + big * nn_, x0 - big * t + big * nn_])
            ref = ref.intersection(half)
        assert shapely.Polygon(p).symmetric_difference(ref).area < 1e-9
        # edges made by a line lie on it; boundary edges lie on the hull's boundary
        for q in range(len(p)):
            mid = 0.5 * (p[q] + p[(q + 1) % len(p)])
            layer, j = lab[q]
            if layer < 0:
                assert hull.exterior.distance(shapely.Point(mid)) < 1e-9
            else:
                a, b, c = lines[j]
                assert abs(a * mid[0] + b * mid[1] + c) / np.hypot(a, b) < 1e-9


def test_split_polygon_with_many_lines_grows_its_workspace():
    # 30 generic lines cut the unit square into hundreds of pieces, far more than the first workspace
    # holds, so the split restarts in larger ones; the count is the arrangement's: 1 + lines + crossings
    rng = np.random.default_rng(7)
    v = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    centres = rng.uniform(0.1, 0.9, size=(30, 2))
    angles = rng.uniform(0, np.pi, size=30)
    normals = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    lines = np.concatenate([normals, -(normals * centres).sum(axis=1, keepdims=True)], axis=1)
    pieces = cpu.split_polygon(v, np.full((4, 2), -1), lines, uscale=1.0)
    crossings = 0
    for i in range(30):
        for j in range(i + 1, 30):
            x = np.linalg.solve(lines[[i, j], :2], -lines[[i, j], 2])
            crossings += bool(np.all((x > 0) & (x < 1)))
    assert len(pieces) == 1 + 30 + crossings > 300
    assert sum(shapely.Polygon(p).area for p, _, _ in pieces) == pytest.approx(1.0, rel=1e-12)
    assert len({tuple(sides) for _, _, sides in pieces}) == len(pieces)


def test_polygon_area_centroid_matches_shapely():
    rng = np.random.default_rng(1)
    polys = [shapely.convex_hull(shapely.multipoints(rng.normal(size=(9, 2)) + rng.normal(size=2) * 1e3))
             for _ in range(20)]
    rings = [np.asarray(p.exterior.coords)[:-1] for p in polys]
    rings = [r if shapely.is_ccw(shapely.LinearRing(r)) else r[::-1] for r in rings]
    off = np.concatenate([[0], np.cumsum([len(r) for r in rings])]).astype(np.int64)
    v = np.concatenate(rings)
    area, cen = cpu.polygon_area_centroid(off, v[:, 0].copy(), v[:, 1].copy())
    np.testing.assert_allclose(area, [p.area for p in polys], rtol=1e-10)
    np.testing.assert_allclose(cen, [[p.centroid.x, p.centroid.y] for p in polys], rtol=1e-10)


# -- partition geometry and labels ------------------------------------------------------


def test_edges_lie_on_the_zero_set_of_the_neuron_that_made_them():
    net = mlp([2, 12, 12, 12, 1], 4)
    part = rg.partition(net, square_slice())
    v = part.vertices
    nxt = np.arange(len(v)) + 1
    nxt[part.ring_offsets[1:] - 1] = part.ring_offsets[:-1]
    mids = 0.5 * (v + v[nxt])
    region = np.repeat(np.arange(part.n_regions), np.diff(part.ring_offsets))
    zs = net.preactivations(part.slice.to_input(mids))[:-1]
    inner = part.edge_layer >= 0
    assert inner.any()
    for q in np.flatnonzero(inner):
        z = zs[part.edge_layer[q]][q, part.edge_neuron[q]]
        scale = np.abs(zs[part.edge_layer[q]][q]).max()
        assert abs(z) <= 1e-7 * max(scale, 1.0), (q, region[q])
    # boundary edges lie on the square's boundary
    on_boundary = np.isclose(np.abs(mids[~inner]).max(axis=1), 1.0)
    assert on_boundary.all()


def test_logit_maps_equal_the_network_inside_each_region():
    net = mlp([2, 10, 10, 3], 2)
    part = rg.partition(net, square_slice())
    rng = np.random.default_rng(0)
    for r in rng.choice(part.n_regions, 25, replace=False):
        ring = part.polygons[r]
        w = rng.dirichlet(np.ones(len(ring)))
        u = w @ ring
        ref = net.forward(part.slice.to_input(u))[0]
        got = u @ part.logit_maps[r, :2] + part.logit_maps[r, 2]
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n_out", [1, 4])
def test_decision_boundary_separates_different_predictions(n_out):
    net = mlp([2, 16, 16, n_out], 7)
    net.layers[-1].bias[:] -= net.forward(np.zeros(2))[0]  # all classes tie at the origin
    part = rg.partition(net, square_slice(half=4.0))
    seg = part.decision_boundary
    assert seg.ndim == 3 and seg.shape[1:] == (2, 2) and len(seg) > 0
    mids = seg.mean(axis=1)
    d = seg[:, 1] - seg[:, 0]
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.linalg.norm(d, axis=1, keepdims=True)
    logits = lambda u: net.forward(part.slice.to_input(u))  # noqa: E731
    cls = (lambda z: (z[:, 0] > 0).astype(int)) if n_out == 1 else (lambda z: z.argmax(1))
    a = cls(logits(mids + 1e-7 * normal))
    b = cls(logits(mids - 1e-7 * normal))
    assert (a != b).mean() > 0.95
    # the tied classes are the ones on either side
    pairs = np.sort(np.stack([a, b], 1), axis=1)
    assert (pairs == np.sort(part.decision_boundary_classes, axis=1)).mean() > 0.95
    # a grid sees a prediction change only near the boundary segments
    u = np.linspace(-3.99, 3.99, 240)
    uu = np.stack(np.meshgrid(u, u), -1)
    pred = cls(logits(uu.reshape(-1, 2))).reshape(uu.shape[:2])
    change = np.argwhere(pred[:, 1:] != pred[:, :-1])
    pts = 0.5 * (uu[change[:, 0], change[:, 1]] + uu[change[:, 0], change[:, 1] + 1])
    lines = shapely.MultiLineString([s for s in seg])
    dist = shapely.distance(shapely.points(pts), lines)
    assert dist.max() < 2 * (u[1] - u[0])


def test_one_dimensional_decision_boundary_points_are_sign_changes():
    net = mlp([3, 8, 8, 1], 3)
    sl = rg.Slice.segment(-2 * np.ones(3), 2 * np.ones(3))
    part = rg.partition(net, sl)
    t = np.linspace(0, sl.area, 100_001)
    z = net.forward(sl.to_input(t))[:, 0]
    changes = t[1:][np.sign(z[1:]) != np.sign(z[:-1])]
    np.testing.assert_allclose(np.sort(part.decision_boundary), changes, atol=2 * t[1])


def test_linear_regions_merge_regions_with_equal_output_maps():
    # a hidden neuron with zero outgoing weight splits activation regions but not linear regions
    W1 = np.array([[1.0, 0.0], [0.0, 1.0]])
    b1 = np.zeros(2)
    W2 = np.array([[1.0, 0.0]])
    net = rg.PWANet([rg.AffineLayer(W1, b1, 0.0), rg.AffineLayer(W2, np.zeros(1), None)])
    part = rg.partition(net, square_slice())
    assert part.n_regions == 4
    labels = part.linear_regions()
    assert part.n_linear_regions == 2
    left = part.centroids[:, 0] < 0
    assert len(set(labels[left])) == 1 and len(set(labels[~left])) == 1
    # a generic net: every activation region is its own linear region
    generic = rg.partition(mlp([2, 8, 8, 1], 0), square_slice())
    assert generic.n_linear_regions == generic.n_regions


# -- invariances, limits, certificates ---------------------------------------------


def test_partition_does_not_depend_on_batch_size():
    net = mlp([2, 24, 24, 24, 1], 5)
    a = rg.partition(net, square_slice(), batch_cells=1)
    b = rg.partition(net, square_slice(), batch_cells=100_000)
    sa = {p.tobytes(): ar for p, ar in zip(a.patterns, a.areas)}
    sb = {p.tobytes(): ar for p, ar in zip(b.patterns, b.areas)}
    assert sa.keys() == sb.keys()
    np.testing.assert_allclose([sa[k] for k in sa], [sb[k] for k in sa], rtol=1e-12)


def test_max_regions_guard_raises_a_clear_error():
    net = mlp([2, 32, 32, 1], 1)
    full = rg.partition(net, square_slice())
    with pytest.raises(rg.RegionLimitError, match="max_regions"):
        rg.partition(net, square_slice(), max_regions=full.n_regions // 2)
    assert rg.partition(net, square_slice(), max_regions=full.n_regions).n_regions == full.n_regions


def test_verify_catches_a_wrong_pattern_and_a_lost_region():
    net = mlp([2, 10, 10, 1], 6)
    part = rg.partition(net, square_slice())
    report = part.verify()
    assert report["ok"] and report["certificate_failures"] == 0
    bad = rg.partition(net, square_slice())
    bad.patterns = bad.patterns.copy()
    bad.patterns[3, 0] ^= np.uint64(1)
    with pytest.raises(rg.CertificateError):
        bad.verify()
    lost = rg.partition(net, square_slice())
    lost.areas = lost.areas.copy()
    lost.areas[0] = 0.0
    assert not lost.verify(raise_on_error=False)["ok"]


def test_slice_of_a_high_dimensional_input_and_to_shapely():
    net = mlp([50, 16, 16, 2], 8)
    sl = square_slice(50, 3.0, seed=2)
    part = rg.partition(net, sl)
    part.verify()
    polys = part.to_shapely()
    assert len(polys) == part.n_regions
    np.testing.assert_allclose(shapely.area(polys), part.areas, rtol=1e-12)
    # regions meet at T-junctions, which GEOS only unions cleanly on a snapping grid
    assert shapely.union_all(polys, grid_size=1e-9).area == pytest.approx(sl.area, rel=1e-8)


def test_network_without_hidden_layers_has_one_region():
    net = rg.PWANet([rg.AffineLayer(np.array([[1.0, -1.0]]), np.zeros(1), None)])
    part = rg.partition(net, square_slice())
    assert part.n_regions == 1
    assert len(part.decision_boundary) == 1
    part.verify()


# -- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: rg.Slice(np.zeros(2), np.eye(2), [[0, 0], [1, 1], [2, 2]]), "zero area"),
        (lambda: rg.Slice(np.zeros(2), np.eye(2), [[0, 0], [1, 0]]), "at least 3"),
        (lambda: rg.Slice(np.zeros(2), np.eye(2), [[0, 0], [2, 0], [1, 0.2], [1, 2]]), "convex"),
        (lambda: rg.Slice(np.zeros(3), np.ones((3, 2)), SQUARE), "linearly independent"),
        (lambda: rg.Slice(np.zeros(3), np.eye(2), SQUARE), "basis must have shape"),
        (lambda: rg.Slice(np.zeros(2), np.eye(2), [[0, 0], [np.nan, 1], [1, 1]]), "NaN"),
        (lambda: rg.Slice.through(np.zeros(4), np.ones(4), 2 * np.ones(4)), "collinear"),
        (lambda: rg.Slice.through(np.zeros(4), np.zeros(4), np.ones(4)), "same point"),
        (lambda: rg.Slice.segment(np.ones(3), np.ones(3)), "same point"),
        (lambda: rg.Slice.square(np.zeros(2), np.eye(2), 0.0), "half_width"),
        (lambda: rg.Slice.through(np.zeros(3), np.eye(3)[0], np.eye(3)[1], pad=-1), "pad"),
    ],
)
def test_degenerate_slices_get_clear_errors(make, match):
    with pytest.raises(rg.InvalidSliceError, match=match):
        make()


def test_partition_rejects_mismatched_inputs():
    net = mlp([3, 4, 1], 0)
    with pytest.raises(rg.InvalidSliceError, match="R\\^2 but the network takes 3"):
        rg.partition(net, square_slice())
    with pytest.raises(TypeError, match="PWANet"):
        rg.partition(object(), square_slice())


def test_clockwise_domain_is_reoriented_and_through_builds_an_orthonormal_square():
    sl = rg.Slice(np.zeros(2), np.eye(2), SQUARE[::-1])
    assert sl.area == pytest.approx(4.0)
    xa, xb, xc = np.random.default_rng(0).normal(size=(3, 7))
    th = rg.Slice.through(xa, xb, xc, pad=0.1)
    np.testing.assert_allclose(th.basis.T @ th.basis, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(th.to_input(th.anchors), [xa, xb, xc], atol=1e-12)
    assert (np.abs(th.anchors) < np.abs(th.vertices).max()).all()


def test_split_ring_sides_beyond_64_lines_ignore_a_reused_workspace():
    # a workspace reused from an earlier ring holds stale side words; a piece's bits for lines
    # 64 and up must come from this ring's own lines
    rng = np.random.default_rng(1)
    k = 150
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    ws = cpu._new_workspace(16, 4, k)
    for trial in range(3):
        lines = np.column_stack([rng.normal(size=(k, 2)), rng.uniform(-0.3, 0.3, size=k)])
        lines[:, 2] *= 1 if trial % 2 == 0 else -1
        pre = np.ascontiguousarray(lines.T[None])
        ws, npc, slot = cpu._split_ring(ws, square[:, 0].copy(), square[:, 1].copy(), np.full(4, -1, np.int32),
                                        np.full(4, -1, np.int32), 0, 4, pre, 0, np.arange(k, dtype=np.int32), k,
                                        1.0, 1e-10, 0)
        X, Y, _, _, OFF, SID = ws[:6]
        assert npc > 1000
        for p in range(npc):
            a, b = OFF[slot, p], OFF[slot, p + 1]
            c = np.array([X[slot, a:b].mean(), Y[slot, a:b].mean()])
            expected = (lines[:, :2] @ c + lines[:, 2] > 0).astype(np.uint8)
            np.testing.assert_array_equal(cpu._unpack_bits(SID[slot, p], k), expected)


@pytest.mark.parametrize("width,batch_cells", [(12, None), (40, 16)])
def test_domain_split_in_one_pass_equals_counting_then_writing(width, batch_cells, monkeypatch):
    # split_cell_once cuts the domain once instead of counting then writing: the partition must be the
    # same bit for bit, whether its children get their maps all at once or a range at a time
    from relugeo.regions import engine

    net = mlp([2, width, 10, 1], 3, negative_slope=0.1)
    sl = square_slice()
    fast = rg.partition(net, sl, batch_cells=batch_cells)
    monkeypatch.setattr(engine, "_splits_once", lambda *a: False)
    slow = rg.partition(net, sl, batch_cells=batch_cells)
    assert fast.n_regions == slow.n_regions > 20
    for name in ("vertices", "ring_offsets", "edge_layer", "edge_neuron", "patterns", "logit_maps"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))


def test_cell_signs_from_the_box_equal_every_vertex():
    # neurons are decided from their range over the ring's box where the margin allows: the bits, cuts
    # and their order must be those of evaluating every neuron at every vertex, also for neurons whose
    # extreme value sits right at +-eps or at zero on a vertex
    rng = np.random.default_rng(7)
    tol = 1e-10
    for trial in range(60):
        scale = 10.0 ** rng.uniform(-3, 3)
        if trial % 2:  # a rectangle: the box's extremes are vertices
            x0, y0, w, h = rng.normal(size=2).tolist() + rng.uniform(0.1, 2, size=2).tolist()
            vx = scale * np.array([x0, x0 + w, x0 + w, x0])
            vy = scale * np.array([y0, y0, y0 + h, y0 + h])
        else:
            t = np.sort(rng.uniform(0, 2 * np.pi, size=rng.integers(3, 9)))
            vx = scale * (rng.normal() + np.cos(t))
            vy = scale * (rng.normal() + np.sin(t))
        uscale = float(np.abs(np.concatenate([vx, vy])).max())
        n = 60
        g = rng.normal(size=(n, 2)) * 10.0 ** rng.uniform(-2, 2, size=(n, 1))
        vals = g @ np.stack([vx, vy])
        # put extremes at +-eps, within rounding, or a zero on a vertex
        edge = rng.integers(0, 5, size=n)
        c0 = np.select([edge == 1, edge == 2, edge == 3, edge == 4],
                       [-vals.max(axis=1), -vals.min(axis=1), -vals.min(axis=1), -vals[:, 0]],
                       -rng.uniform(vals.min(axis=1) - scale, vals.max(axis=1) + scale))
        eps = tol * (np.abs(g).sum(axis=1) * uscale + np.abs(c0))  # the kernel's eps, to 1e-10 relative
        near = eps * (1 + rng.choice([-1e-6, -1e-7, 0, 1e-7, 1e-6], size=n))
        # top at +eps (positive or not), bottom at +eps, bottom at -eps (a cut or not)
        c = c0 + np.select([edge == 1, edge == 2, edge == 3], [near, near, -near], 0.0)
        pre = np.ascontiguousarray(np.stack([g[:, 0], g[:, 1], c])[None])
        slopes = np.where(rng.random(n) < 0.1, 1.0, 0.0)
        bits = np.empty(n, np.uint8)
        cuts = np.empty(n, np.int32)
        k = cpu._cell_signs(pre, 0, vx, vy, 0, len(vx), uscale, tol, bits, cuts, np.empty(n), np.empty(n), slopes)
        v = g[:, :1] * vx + g[:, 1:] * vy + c[:, None]
        e = tol * ((np.abs(g[:, 0]) + np.abs(g[:, 1])) * uscale + np.abs(c))
        pos = v.max(axis=1) > e
        cut = pos & (v.min(axis=1) < -e) & (slopes != 1.0)
        np.testing.assert_array_equal(cuts[:k], np.flatnonzero(cut))
        np.testing.assert_array_equal(bits, (pos & ~cut & (slopes != 1.0)).astype(np.uint8))
