"""Drawing a 100,000-region partition to PNG: the figure a paper would print.

The partition is the w = 256, depth-3 anchor net on [-1.2, 1.2]^2 (100,964
regions), computed once; each round builds the figure with
``plot_partition`` and writes it as a 6.5 x 6.5 inch PNG at 200 dpi into
memory. ``extra_info`` records the median seconds and the regions and edge
segments drawn.
"""

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from nets import anchor_module

import relugeo as rg
from relugeo.viz import plot_partition

plt.switch_backend("Agg")

SUITE = "plot"
CASE = "w256-d3 on [-1.2, 1.2]^2"
HALF_WIDTH = 1.2
DPI = 200


@pytest.fixture(scope="module")
def big_partition():
    net = rg.from_torch(anchor_module(256, 3))
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), HALF_WIDTH))
    assert 95_000 <= part.n_regions <= 110_000, part.n_regions
    return part


def render(part, **kwargs) -> int:
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    plot_partition(part, ax, **kwargs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.tell()


@pytest.mark.parametrize(
    "method,kwargs",
    [
        ("random colours + edges by layer + decision boundary", {"color_by": "random"}),
        ("density colours, no edges", {"color_by": "density", "edges": False}),
    ],
    ids=["random-edges", "density"],
)
def test_render_png(bench, big_partition, method, kwargs):
    bench.label(SUITE, CASE, method)
    size = bench(render, big_partition, rounds=3, **kwargs)
    assert size > 10_000
    segments = int((big_partition.edge_layer >= 0).sum()) if kwargs.get("edges", True) else 0
    bench.counts(regions=big_partition.n_regions, segments=segments, png_bytes=size, dpi=DPI)
    bench.benchmark.extra_info["seconds"] = bench.median
