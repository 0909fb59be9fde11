"""Figures: partition plots, LC plots, animations and the `relugeo plot` command, drawn with Agg."""

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.container import BarContainer
from PIL import Image
from typer.testing import CliRunner

import relugeo as rg
from relugeo.cli import app
from relugeo.nets import build_module
from relugeo.viz import animate_partitions, plot_lc, plot_lc_layers, plot_partition, slice_coordinates
from relugeo.viz.animate import ffmpeg_path
from relugeo.viz.partition_plot import COLOR_BY, class_color

plt.switch_backend("Agg")

runner = CliRunner()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _artist(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, f"expected one artist with gid {gid!r}; found {len(found)}"
    return found[0]


def _segments(edges) -> int:
    """Number of segments in a layer's edge artist (one path of MOVETO / LINETO pairs)."""
    path = edges.get_path()
    assert list(np.unique(path.codes[0::2])) == [path.MOVETO] and list(np.unique(path.codes[1::2])) == [path.LINETO]
    return len(path.vertices) // 2


def _render(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def _quadrants_net():
    """2-2-2 net: hidden lines x = 0 and y = 0 (4 regions of [-1, 1]^2); class 1 where relu(x) > 0.4.

    The decision boundary is x = 0.4, one segment in each of the two regions with x > 0.
    """
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    with torch.no_grad():
        m[0].weight.copy_(torch.eye(2))
        m[0].bias.zero_()
        m[2].weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        m[2].bias.copy_(torch.tensor([0.0, -0.4]))
    return rg.from_torch(m)


@pytest.fixture(scope="module")
def quadrants():
    return rg.partition(_quadrants_net(), rg.Slice.square(np.zeros(2), np.eye(2), 1.0))


@pytest.fixture(scope="module")
def deep():
    """A seeded 5-12-12-3 net on the slice through three of 30 labelled points (two classes met)."""
    torch.manual_seed(0)
    net = rg.from_torch(build_module("mlp:5-12-12-3:relu"))
    X = 3.0 * np.random.default_rng(0).normal(size=(30, 5))
    y = np.arange(30) % 3
    part = rg.partition(net, rg.Slice.through(X[4], X[7], X[11], pad=0.2))
    assert len(part.decision_boundary) > 0 and set(part.edge_layer) == {-1, 0, 1}
    return part, X, y


# -- plot_partition ---------------------------------------------------------------------


def test_tiny_partition_has_one_patch_per_region_and_the_boundary_segments(quadrants):
    part = quadrants
    assert part.n_regions == 4
    ax = plot_partition(part, color_by="random")
    regions = _artist(ax, "regions")
    assert isinstance(regions, PolyCollection)
    assert len(regions.get_paths()) == 4
    assert len(regions.get_facecolors()) == 4
    boundary = _artist(ax, "decision-boundary")
    assert isinstance(boundary, LineCollection)
    segs = boundary.get_segments()
    assert len(segs) == 2
    np.testing.assert_allclose(np.sort([s[:, 0] for s in segs], axis=None), 0.4)
    assert _segments(_artist(ax, "edges-layer-1")) == 8  # 4 interior half-lines, each drawn from both sides
    _render(ax.figure)


def test_class_colours_follow_the_pieces_cut_by_the_boundary(quadrants):
    ax = plot_partition(quadrants, color_by="class")
    face = _artist(ax, "regions").get_facecolors()
    pieces = quadrants.class_pieces()
    assert pieces.n_pieces == 6  # the two regions with x > 0 are cut at x = 0.4
    assert sorted(pieces.classes.tolist()) == [0, 0, 0, 0, 1, 1]
    np.testing.assert_allclose(pieces.areas[pieces.classes == 1].sum(), 2 * 0.6)
    same = [np.allclose(face[i], face[j]) for i in range(6) for j in range(6)]
    assert same == [pieces.classes[i] == pieces.classes[j] for i in range(6) for j in range(6)]


@pytest.mark.parametrize("color_by", COLOR_BY)
def test_every_colouring_renders(deep, color_by):
    part, X, y = deep
    fig, ax = plt.subplots(figsize=(4, 4))
    plot_partition(part, ax, color_by=color_by, points=X, labels=y)
    n_faces = part.class_pieces().n_pieces if color_by == "class" else part.n_regions
    assert len(_artist(ax, "regions").get_facecolors()) == n_faces
    _render(fig)


def test_density_colours_small_regions_dark(deep):
    part = deep[0]
    ax = plot_partition(part, color_by="density", clim=(part.areas.min(), part.areas.max()))
    face = _artist(ax, "regions").get_facecolors()
    luminance = face[:, :3] @ np.array([0.2126, 0.7152, 0.0722])
    order = np.argsort(part.areas)
    assert np.all(np.diff(luminance[order]) >= -1e-12)
    assert luminance[order[0]] < luminance[order[-1]] - 0.5


def test_edges_by_layer_and_a_legend_naming_them(deep):
    part = deep[0]
    ax = plot_partition(part)
    n1 = _segments(_artist(ax, "edges-layer-1"))
    n2 = _segments(_artist(ax, "edges-layer-2"))
    assert n1 + n2 == int((part.edge_layer >= 0).sum())
    assert not np.allclose(_artist(ax, "edges-layer-1").get_edgecolor(), _artist(ax, "edges-layer-2").get_edgecolor())
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"layer 1 edges", "layer 2 edges", "decision boundary", "slice anchors"} <= set(texts)
    assert texts.index("layer 1 edges") < texts.index("layer 2 edges")


def test_anchors_are_named_by_the_class_of_the_points_they_are(deep):
    part, X, y = deep
    ax = plot_partition(part, points=X, labels=y)
    names = sorted(a.get_text() for a in ax.get_children() if a.get_gid() == "anchor-label")
    assert names == sorted(f"class {c}" for c in y[[4, 7, 11]])
    ax = plot_partition(part, anchor_labels=[0, 2, 1], class_names=["zero", "one", "two"])
    names = [a.get_text() for a in ax.get_children() if a.get_gid() == "anchor-label"]
    assert names == ["zero", "two", "one"]
    ax = plot_partition(part)
    assert not [a for a in ax.get_children() if a.get_gid() == "anchor-label"]


def test_points_are_projected_and_filtered_by_distance(deep):
    part, X, y = deep
    ax = plot_partition(part, points=X, labels=y, max_distance=1e-9)
    offsets = _artist(ax, "points").get_offsets()
    np.testing.assert_allclose(np.sort(offsets, axis=0), np.sort(part.slice.anchors, axis=0), atol=1e-9)
    ax = plot_partition(part, points=X)
    np.testing.assert_allclose(_artist(ax, "points").get_offsets(), slice_coordinates(part.slice, X))
    ax = plot_partition(part, points=slice_coordinates(part.slice, X[:5]))
    np.testing.assert_allclose(_artist(ax, "points").get_offsets(), slice_coordinates(part.slice, X[:5]))


def test_scale_bar_in_input_units_for_an_orthonormal_basis(deep, quadrants):
    ax = plot_partition(deep[0])
    bar = _artist(ax, "scale-bar")
    assert "input units" in bar.txt_label.get_text()
    skewed = rg.partition(_quadrants_net(), rg.Slice(np.zeros(2), [[2.0, 0.0], [0.0, 1.0]], [[-1, -1], [1, -1],
                                                                                            [1, 1], [-1, 1]]))
    ax = plot_partition(skewed)
    assert "slice units" in _artist(ax, "scale-bar").txt_label.get_text()
    ax = plot_partition(quadrants, scale_bar=False)
    assert not [a for a in ax.get_children() if a.get_gid() == "scale-bar"]


def test_slice_coordinates_invert_to_input():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 7))
    sl = rg.Slice.through(*X)
    u = rng.normal(size=(10, 2))
    np.testing.assert_allclose(slice_coordinates(sl, sl.to_input(u)), u, atol=1e-12)
    skew = rg.Slice(rng.normal(size=7), rng.normal(size=(7, 2)), [[-1, -1], [1, -1], [1, 1], [-1, 1]])
    np.testing.assert_allclose(slice_coordinates(skew, skew.to_input(u)), u, atol=1e-10)
    normal = np.linalg.svd(sl.basis, full_matrices=True)[0][:, 2]
    u2, dist = slice_coordinates(sl, sl.to_input(u) + 3.0 * normal, return_distance=True)
    np.testing.assert_allclose(u2, u, atol=1e-12)
    np.testing.assert_allclose(dist, 3.0)
    with pytest.raises(ValueError, match=r"shape \(N, 7\)"):
        slice_coordinates(sl, np.zeros((2, 5)))


def test_plot_partition_rejects_bad_arguments(quadrants):
    with pytest.raises(ValueError, match="color_by must be one of"):
        plot_partition(quadrants, color_by="rainbow")
    with pytest.raises(ValueError, match="colorbar"):
        plot_partition(quadrants, colorbar="left")
    with pytest.raises(ValueError, match="clim"):
        plot_partition(quadrants, color_by="density", clim=(1.0, 0.5))
    seg = rg.partition(_quadrants_net(), rg.Slice.segment(np.array([-1.0, -1.0]), np.array([1.0, 1.0])))
    with pytest.raises(ValueError, match="2-D partitions"):
        plot_partition(seg)
    with pytest.raises(ValueError, match="labels must have shape"):
        plot_partition(quadrants, points=np.zeros((3, 2)), labels=[0, 1])


# -- LC plots ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lc_table():
    torch.manual_seed(0)
    model = build_module("mlp:4-10-10-10-2:relu")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 4))
    groups = np.array(["train"] * 6 + ["test"] * 6)
    frames = []
    for step in (0, 10, 100):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        df = rg.local_complexity(rg.from_torch(model), X, 0.5, groups=groups).to_frame()
        df.insert(0, "step", step)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def test_lc_curves_one_line_per_group(lc_table):
    ax = plot_lc(lc_table)
    assert sorted(line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")) == [
        "test", "train"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test", "interquartile range"]
    _render(ax.figure)


def test_curves_over_checkpoints_mark_every_checkpoint_and_draw_step_0_apart(lc_table):
    ax = plot_lc(lc_table)
    assert ax.get_xscale() == "log"
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "10", "100"]
    zero = ax.get_xticks()[0]
    data = [line for line in ax.get_lines() if line.get_marker() == "o"]
    for line in data:
        x = np.asarray(line.get_xdata())
        if (x == zero).any():  # step 0 is a lone marker, joined to no later step
            assert line.get_linestyle() == "None" and (x == zero).all()
        else:
            assert (x >= 0.999 * 10 ** 0.5 * zero).all() and line.get_linestyle() == "-" and len(x) == 2
    assert sum(int((np.asarray(line.get_xdata()) == zero).sum()) for line in data) == 2
    assert "step 0 drawn apart" in ax.get_xlabel()


def test_migration_heat_map_names_its_units_blank_cells_and_clips_outliers():
    from relugeo.viz import plot_migration

    rows = []
    for step in (0, 50, 100):
        for b in range(4):
            value = np.nan if (step, b) == (0, 3) else 1.0 + b + step / 100
            value = 1e4 if (step, b) == (100, 0) else value
            rows.append({"step": step, "measure": "region_density", "set": "slices", "bin": b, "bin_lo": b / 4,
                         "bin_hi": (b + 1) / 4, "value": value})
    for b in range(4):
        rows += [{**r, "step": 200 + 10 * b, "value": 2.0 + 0.1 * b + 0.01 * i} for i, r in enumerate(rows[:4])]
    ax = plot_migration(pd.DataFrame(rows))
    assert "half the slice square's side" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["undefined: no slice area in this band"]
    bar = ax.figure.axes[-1]
    assert bar.get_ylabel() == "regions per slice scale\u00b2"
    mesh = next(c for c in ax.collections if c.get_array() is not None)
    assert mesh.norm.vmax < 1e4  # the outlier is clipped, not the top of the scale
    _render(ax.figure)


def test_edges_keep_a_white_halo_on_class_and_density_faces(deep):
    part = deep[0]
    for color_by, halo in (("density", True), ("class", True), ("random", False)):
        ax = plot_partition(part, color_by=color_by)
        effects = _artist(ax, "edges-layer-2").get_path_effects()
        assert bool(effects) == halo
        plt.close(ax.figure)


def test_lc_layer_bars_one_bar_per_layer_and_group(lc_table):
    ax = plot_lc_layers(lc_table)
    containers = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len([p for c in containers for p in c.patches]) == 3 * 2
    last = lc_table[(lc_table.step == 100) & (lc_table.group == "train")]
    np.testing.assert_allclose([p.get_height() for p in containers[0].patches],
                               last[["layer_1", "layer_2", "layer_3"]].mean().to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer 1", "layer 2", "layer 3"]
    ax = plot_lc_layers(lc_table, step=[0, 100])
    assert len([p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]) == 3 * 2 * 2
    _render(ax.figure)
    with pytest.raises(ValueError, match=r"step \[5\] not in the table"):
        plot_lc_layers(lc_table, step=5)
    with pytest.raises(ValueError, match="per-layer columns"):
        plot_lc_layers(lc_table.drop(columns=["layer_1", "layer_2", "layer_3"]))


# -- animation --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints_partitions():
    torch.manual_seed(1)
    model = build_module("mlp:2-8-8-3:relu")
    sl = rg.Slice.square(np.zeros(2), np.eye(2), 1.5)
    parts = []
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
        parts.append(rg.partition(rg.from_torch(model), sl))
    return parts


@pytest.mark.parametrize("color_by", ["class", "density"])
def test_animation_has_one_frame_per_checkpoint(tmp_path, checkpoints_partitions, color_by):
    out = tmp_path / "anim.gif"
    steps = [0, 10, 100, 1000]
    assert animate_partitions(checkpoints_partitions, steps, out, fps=4, color_by=color_by, dpi=50) == out
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == len(steps)
        sizes = set()
        for i in range(im.n_frames):
            im.seek(i)
            sizes.add(im.size)
        assert len(sizes) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif"]


@pytest.mark.skipif(ffmpeg_path() is None, reason="ffmpeg is not installed")
def test_animation_as_mp4(tmp_path, checkpoints_partitions):
    out = tmp_path / "anim.mp4"
    animate_partitions(checkpoints_partitions, [1, 2, 3, 4], out, dpi=50)
    assert out.read_bytes()[4:8] == b"ftyp"


def test_animation_rejects_bad_arguments(tmp_path, checkpoints_partitions):
    parts = checkpoints_partitions
    with pytest.raises(ValueError, match="one entry per partition"):
        animate_partitions(parts, [0, 1], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="must end in one of"):
        animate_partitions(parts, [0, 1, 2, 3], tmp_path / "a.avi")
    with pytest.raises(ValueError, match="at least one"):
        animate_partitions([], [], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="fps"):
        animate_partitions(parts, [0, 1, 2, 3], tmp_path / "a.gif", fps=0)
    if ffmpeg_path() is None:
        with pytest.raises(ValueError, match="needs ffmpeg"):
            animate_partitions(parts, [0, 1, 2, 3], tmp_path / "a.mp4")
    assert not list(tmp_path.iterdir())


# -- the plot command ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plot_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    torch.manual_seed(0)
    rg.save(d / "net.pt", build_module("mlp:64-16-16-10:relu"))
    rng = np.random.default_rng(0)
    np.savez(d / "points.npz", X=rng.uniform(0, 1, size=(20, 64)), y=np.arange(20) % 10)
    return d


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_command_writes_the_figure(plot_inputs, tmp_path, suffix, magic):
    out = tmp_path / f"partition{suffix}"
    res = runner.invoke(app, ["plot", str(plot_inputs / "net.pt"), "--arch", "mlp:64-16-16-10:relu", "--data",
                              str(plot_inputs / "points.npz"), "--through", "0,1,2", "--pad", "0.1",
                              "--color-by", "density", "--points", "--dpi", "60", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "regions" in res.output
    assert out.read_bytes()[: len(magic)] == magic
    if suffix == ".png":
        with Image.open(out) as im:
            assert im.size[0] > 200


@pytest.mark.parametrize(
    "args,match",
    [
        (["--out", "p.jpg"], ".png, .pdf or .svg"),
        (["--color-by", "rainbow"], "--color-by must be one of"),
        (["--through", "0,1"], "three comma-separated"),
        (["--through", "0,1,99"], "only 20 rows"),
    ],
)
def test_plot_command_fails_cleanly(plot_inputs, tmp_path, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    base = {"--through": "0,1,2", "--out": "p.png"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [t for kv in base.items() for t in kv]
    res = runner.invoke(app, ["plot", str(plot_inputs / "net.pt"), "--data", str(plot_inputs / "points.npz"), *flat])
    assert res.exit_code == 2
    assert match in res.output
    assert not list(tmp_path.iterdir())


def _lab(rgb):
    """CIE L*a*b* of sRGB colours (D65)."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    f = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(f > (6 / 29) ** 3, np.cbrt(f), f / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def test_class_colours_are_distinct_from_each_other_and_from_white_for_twelve_classes():
    from relugeo.viz.partition_plot import CLASS_FACE_LIGHTEN

    for lighten in (0.0, CLASS_FACE_LIGHTEN):
        rgb = class_color(np.arange(12))[:, :3]
        lab = _lab(rgb + (1 - rgb) * lighten)
        pair = np.linalg.norm(lab[:, None] - lab[None], axis=2)[np.triu_indices(12, 1)]
        assert pair.min() >= 15, (lighten, pair.min())
        assert np.linalg.norm(lab - _lab(np.ones((1, 3))), axis=1).min() >= 25
