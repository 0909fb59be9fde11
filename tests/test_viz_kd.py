"""Sections of a 3-D partition (against the 2-D engine on the same plane) and the k-D figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from common import random_net  # noqa: E402

import relugeo as rg  # noqa: E402
from relugeo.regions.sections_kd import section  # noqa: E402


@pytest.fixture(scope="module")
def cube_part():
    layers = random_net(4, (6, 6), input_dim=5, n_out=3)
    net = rg.PWANet([rg.AffineLayer(W, b, act) for W, b, act in layers])
    rng = np.random.default_rng(4)
    basis = np.linalg.qr(rng.normal(size=(5, 3)))[0]
    return rg.partition(net, rg.Slice.cube(rng.normal(size=5) * 0.2, basis, 1.2))


def test_section_is_the_2d_partition_of_its_plane(cube_part):
    part, r = cube_part, 1.2
    for t in (-0.7, 0.05, 0.9):
        sec = section(part, t)
        sl = part.slice
        plane = rg.Slice.square(sl.origin + sl.basis[:, 2] * t, sl.basis[:, :2], r)
        flat = rg.partition(part.net, plane)
        rows = np.ascontiguousarray(part.patterns[sec.regions]).view(np.dtype((np.void, 8 * part.patterns.shape[1])))
        want = np.ascontiguousarray(flat.patterns).view(np.dtype((np.void, 8 * flat.patterns.shape[1])))
        assert set(rows.ravel().tolist()) == set(want.ravel().tolist())
        assert len(sec.regions) == flat.n_regions > 3
        assert sec.areas.sum() == pytest.approx((2 * r) ** 2, rel=1e-9)
        assert (sec.areas > 0).all()


def test_kd_figures_are_written(cube_part, tmp_path):
    axes = rg.viz.plot_sections(cube_part, n=3)
    assert len(axes) == 3 and all(len(ax.collections) == 1 for ax in axes)
    axes[0].figure.savefig(tmp_path / "sections.png", dpi=60)
    plt.close("all")
    rg.viz.plot_sections(cube_part, [0.0], color_by="class")
    plt.close("all")
    assert (tmp_path / "sections.png").stat().st_size > 5000
    net = cube_part.net
    X = np.random.default_rng(1).normal(size=(6, 5)) * 0.3
    exact = [rg.local_complexity(net, X, 0.6, dim=p) for p in (2, 3)]
    vertex = [rg.local_complexity(net, X, 0.6, method="vertex", n_directions=p) for p in (2, 3)]
    ax = rg.viz.plot_lc_by_dim(exact, vertex)
    assert len(ax.lines) == 2 and ax.lines[0].get_xdata().tolist() == [2, 3]
    assert (ax.lines[0].get_ydata() >= ax.lines[1].get_ydata()).all()
    ax.figure.savefig(tmp_path / "lc_by_dim.png", dpi=60)
    plt.close("all")
    assert (tmp_path / "lc_by_dim.png").stat().st_size > 5000
    colors = rg.viz.kd_plot.pattern_colors(cube_part.patterns)
    np.testing.assert_array_equal(colors, rg.viz.kd_plot.pattern_colors(cube_part.patterns.copy()))
    assert len({tuple(c) for c in colors}) > 3
