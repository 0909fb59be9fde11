"""Region correspondence between two partitions of one slice: constructed pairs with known events."""

import numpy as np
import pytest

import relugeo as rg
from relugeo.regions.adjacency import locate
from relugeo.regions.correspondence import correspond, overlaps

SQUARE = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])
PLANE = rg.Slice(np.zeros(2), np.eye(2), SQUARE)


def lines(rows):
    """One hidden layer whose neuron j is rows[j] = (wx, wy, b), and a fixed readout."""
    rows = np.asarray(rows, dtype=np.float64)
    return rg.PWANet([rg.AffineLayer(rows[:, :2], rows[:, 2], 0.0),
                      rg.AffineLayer(np.array([[1.0, -2.0, 0.5]])[:, : len(rows)], np.array([0.1]), None)])


def random_net(seed, widths=(8, 8)):
    rng = np.random.default_rng(seed)
    sizes = [2, *widths, 2]
    return rg.PWANet([rg.AffineLayer(rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(size=o) * 0.5,
                                     0.0 if j < len(widths) else None)
                      for j, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))])


def test_identical_nets_persist_with_full_overlap():
    part = rg.partition(random_net(3), PLANE)
    again = rg.partition(random_net(3), PLANE)
    c = correspond(part, again)
    assert (c.fate_a == "persisted").all() and (c.fate_b == "persisted").all()
    assert (c.same_pattern == np.arange(part.n_regions)).all()
    assert (c.successor == np.arange(part.n_regions)).all()
    p = c.persisted
    assert (p[:, 0] == p[:, 1]).all() and len(p) == part.n_regions
    full = c.a == c.b
    assert np.allclose(c.area[full], part.areas[c.a[full]], rtol=1e-9)
    assert c.area[~full].sum() <= 1e-9 * part.domain_area
    assert c.counts()["pattern_born"] == c.counts()["pattern_died"] == 0


def test_moved_bias_gives_the_predicted_split_and_merge():
    # lines y = 0, x = 0 and x + y = c; c = 0.1 -> -0.1 sweeps the third line across the origin
    before = rg.partition(lines([[0, 1, 0], [1, 0, 0], [1, 1, -0.1]]), PLANE)
    after = rg.partition(lines([[0, 1, 0], [1, 0, 0], [1, 1, 0.1]]), PLANE)
    assert before.n_regions == after.n_regions == 7
    c = correspond(before, after)
    at_a = lambda *p: int(locate(before, [p])[0])  # noqa: E731
    at_b = lambda *p: int(locate(after, [p])[0])  # noqa: E731
    tri, q1 = at_a(0.02, 0.02), at_a(0.5, 0.5)  # the small triangle and the rest of the first quadrant
    q3 = at_a(-0.5, -0.5)
    new_tri, q3_rest = at_b(-0.02, -0.02), at_b(-0.5, -0.5)
    ev = c.events()
    merged = ev[ev["event"] == "merged"]
    split = ev[ev["event"] == "split"]
    assert len(merged) == 1 and set(merged["a"].iloc[0]) == {tri, q1} and merged["b"].iloc[0] == (at_b(0.5, 0.5),)
    assert len(split) == 1 and split["a"].iloc[0] == (q3,) and set(split["b"].iloc[0]) == {new_tri, q3_rest}
    assert (ev["event"].isin(["persisted", "split", "merged"])).all()
    counts = c.counts()
    assert counts["persisted"] == 4 and counts["split"] == 1 and counts["merged"] == 1
    assert counts["merged_from"] == 2 and counts["split_into"] == 2
    assert counts["died"] == counts["born"] == 0
    # by pattern: the old triangle's pattern is gone, the new one's is new, the rest are kept
    assert c.died_by_pattern.tolist() == [tri] and c.born_by_pattern.tolist() == [new_tri]
    assert counts["pattern_kept"] == 6


@pytest.mark.parametrize("seed", [0, 1])
def test_overlaps_sum_to_region_areas(seed):
    a = rg.partition(random_net(seed), PLANE)
    b = rg.partition(random_net(seed + 10), PLANE)
    ia, ib, area = overlaps(a, b)
    assert np.allclose(np.bincount(ia, area, minlength=a.n_regions), a.areas, rtol=1e-9, atol=1e-12)
    assert np.allclose(np.bincount(ib, area, minlength=b.n_regions), b.areas, rtol=1e-9, atol=1e-12)
    # against all pairs, by area of the polygons' intersection
    import shapely

    pa, pb = a.to_shapely(), b.to_shapely()
    full = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    want = np.argwhere(full > 1e-12 * a.domain_area)
    assert (want[:, 0] == ia).all() and (want[:, 1] == ib).all()
    c = correspond(a, b)
    m = c.matrix()
    assert m.shape == (a.n_regions, b.n_regions) and m.sum() == pytest.approx(a.domain_area)
    # every region has a fate, and the fates agree with the feeds
    assert set(c.fate_a) <= {"persisted", "split", "merged", "died"}
    assert set(c.fate_b) <= {"persisted", "split", "merged", "born"}
    frame = c.to_frame()
    assert (frame["feeds"] == ((frame["share_a"] >= 0.5) | (frame["share_b"] >= 0.5))).all()


def test_bad_input():
    part = rg.partition(lines([[1, 0, 0]]), PLANE)
    other = rg.partition(lines([[1, 0, 0]]), rg.Slice(np.zeros(2), np.eye(2), 2 * SQUARE))
    with pytest.raises(ValueError, match="same slice"):
        correspond(part, other)
    with pytest.raises(ValueError, match=r"share must be a number in \(0, 1\]; got 1.5"):
        correspond(part, part, share=1.5)
    with pytest.raises(TypeError, match="part_b must be a relugeo.Partition"):
        correspond(part, None)
