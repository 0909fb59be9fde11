"""Class pieces: regions split along the exact decision boundary, and the class-coloured plot drawn from them."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import relugeo as rg
from relugeo.nets import build_module
from relugeo.viz import plot_partition
from relugeo.viz.partition_plot import CLASS_FACE_LIGHTEN, class_color

plt.switch_backend("Agg")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module", params=[("mlp:2-16-16-3:leaky_relu(0.1)", 2), ("mlp:2-12-12-1:relu", 4)],
                ids=["three-classes", "one-logit"])
def cut(request):
    """A seeded net on a square where the decision boundary cuts many regions."""
    spec, seed = request.param
    torch.manual_seed(seed)
    net = rg.from_torch(build_module(spec))
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 2.0))
    assert len(np.unique(part.decision_boundary_regions)) >= 5
    return part


def _classes(net, X):
    logits = net.forward(X)
    return (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else logits.argmax(axis=1)


def test_pieces_tile_the_domain_and_hold_one_class_each(cut):
    part = cut
    pieces = part.class_pieces()
    assert pieces.n_pieces > part.n_regions
    assert abs(pieces.areas.sum() - part.domain_area) <= 1e-9 * part.domain_area
    assert (pieces.areas > 0).all()
    np.testing.assert_allclose(np.bincount(pieces.regions, pieces.areas, minlength=part.n_regions), part.areas,
                               rtol=1e-9, atol=1e-12)
    # every vertex of a piece is classified as the piece (ties allowed at the boundary)
    region_of_vertex = np.repeat(pieces.regions, np.diff(pieces.ring_offsets))
    cls_of_vertex = np.repeat(pieces.classes, np.diff(pieces.ring_offsets))
    X = part.slice.to_input(pieces.vertices)
    logits = part.net.forward(X)
    logits = np.concatenate([np.zeros_like(logits), logits], axis=1) if logits.shape[1] == 1 else logits
    own = logits[np.arange(len(X)), cls_of_vertex]
    assert (own >= logits.max(axis=1) - 1e-9 * (1 + np.abs(logits).max(axis=1))).all()
    # a piece's centroid, forwarded through the real network, has the piece's class
    starts = pieces.ring_offsets[:-1]
    centroids = np.stack([np.add.reduceat(pieces.vertices[:, k], starts) / np.diff(pieces.ring_offsets)
                          for k in range(2)], axis=1)
    np.testing.assert_array_equal(_classes(part.net, part.slice.to_input(centroids)), pieces.classes)
    # uncut regions are one piece of the region's predicted class
    cut_regions = set(part.decision_boundary_regions.tolist())
    whole = np.array([r not in cut_regions for r in pieces.regions])
    np.testing.assert_array_equal(pieces.classes[whole], part.predictions()[pieces.regions[whole]])
    assert len(region_of_vertex) == len(pieces.vertices)


def test_the_class_colours_agree_with_the_forward_pass_on_both_sides_of_the_boundary(cut):
    """Pixels a few pixels either side of the exact boundary are drawn in the class the network predicts there."""
    part = cut
    fig = plt.figure(figsize=(4, 4), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    plot_partition(part, ax, color_by="class", edges=False, decision_boundary=False, anchors=False,
                   scale_bar=False, legend=False, title="")
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(float) / 255.0
    height = image.shape[0]
    n_classes = max(part.logit_maps.shape[2], 2)
    palette = class_color(np.arange(n_classes))[:, :3]
    palette = palette + (1 - palette) * CLASS_FACE_LIGHTEN
    segs = part.decision_boundary
    per_unit = ax.transData.transform([[1, 0]])[0, 0] - ax.transData.transform([[0, 0]])[0, 0]
    offset = 3.0 / per_unit  # three pixels
    rng = np.random.default_rng(0)
    checked = 0
    for s in rng.permutation(len(segs))[:60]:
        a, b = segs[s]
        if np.linalg.norm(b - a) < 8 * offset:
            continue
        mid = 0.5 * (a + b)
        normal = np.array([a[1] - b[1], b[0] - a[0]]) / np.linalg.norm(b - a)
        for side in (-1.0, 1.0):
            u = mid + side * offset * normal
            if np.abs(u).max() > 2.0 - 2 * offset or _distance_to_segments(u, segs) < 2.0 / per_unit:
                continue
            want = _classes(part.net, part.slice.to_input(u[None]))[0]
            x, y = ax.transData.transform(u[None])[0]
            pixel = image[height - 1 - int(y), int(x)]
            drawn = int(np.argmin(np.linalg.norm(palette - pixel, axis=1)))
            assert drawn == want, f"pixel at u = {u} drawn as class {drawn}; the network predicts {want}"
            checked += 1
    assert checked >= 10


def _distance_to_segments(p, segs) -> float:
    a, b = segs[:, 0], segs[:, 1]
    d = b - a
    t = np.clip(np.einsum("sk,sk->s", p - a, d) / np.maximum(np.einsum("sk,sk->s", d, d), 1e-300), 0, 1)
    return float(np.linalg.norm(a + t[:, None] * d - p, axis=1).min())


def test_class_pieces_need_a_2d_partition():
    torch.manual_seed(0)
    net = rg.from_torch(build_module("mlp:2-4-2:relu"))
    part = rg.partition(net, rg.Slice.segment(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match="2-D partitions; got a 1-D partition"):
        part.class_pieces()
