"""The region adjacency graph: against the line arrangement's dual graph built with shapely."""

import numpy as np
import pytest
import shapely

import relugeo as rg
from relugeo.regions.adjacency import locate


def one_layer(W, b, n_out=1, seed=0):
    rng = np.random.default_rng(seed)
    return rg.PWANet([rg.AffineLayer(np.asarray(W, float), np.asarray(b, float), 0.0),
                      rg.AffineLayer(rng.normal(size=(n_out, len(b))), rng.normal(size=n_out), None)])


def arrangement_dual(W, b, half):
    """Faces of the lines ``W u + b = 0`` in the square, and the pairs of faces sharing a segment.

    Built from shapely alone: the lines clipped to the square are noded and polygonised; two faces
    are adjacent when their boundaries meet in a set of positive length.
    """
    box = shapely.box(-half, -half, half, half)
    lines = []
    for (wx, wy), c in zip(W, b):
        d = np.array([-wy, wx]) / np.hypot(wx, wy)
        p = -c * np.array([wx, wy]) / (wx**2 + wy**2)
        lines.append(shapely.intersection(shapely.linestrings([p - 10 * half * d, p + 10 * half * d]), box))
    noded = shapely.union_all([box.boundary, *lines])
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    shared = {}
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            inter = shapely.intersection(faces[i].boundary, faces[j].boundary)
            if inter.length > 1e-12:
                shared[i, j] = inter.length
    return faces, shared


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_layer_adjacency_is_the_arrangement_dual(seed):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(7, 2)), rng.normal(size=7) * 0.5
    net = one_layer(W, b)
    part = rg.partition(net, rg.Slice(np.zeros(2), np.eye(2), 1.5 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])))
    faces, shared = arrangement_dual(W, b, 1.5)
    assert len(faces) == part.n_regions
    # each face is the region holding its interior point
    region = locate(part, np.array([f.point_on_surface().coords[0] for f in faces]))
    assert sorted(region) == list(range(part.n_regions))
    want = {tuple(sorted((int(region[i]), int(region[j])))): length for (i, j), length in shared.items()}
    graph = part.adjacency()
    got = {tuple(map(int, p)): w for p, w in zip(graph.pairs, graph.length)}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12)
    # adjacent regions differ exactly in the neuron crossed
    bits = np.unpackbits(part.patterns.view(np.uint8), axis=1, bitorder="little")[:, :7]
    diff = bits[graph.pairs[:, 0]] != bits[graph.pairs[:, 1]]
    assert (diff.sum(axis=1) == 1).all() and (graph.flips == 1).all()
    assert (diff.argmax(axis=1) == graph.neuron).all() and (graph.layer == 0).all()
    # the sparse matrix holds the lengths symmetrically; the degrees add up
    m = graph.matrix()
    assert (m != m.T).nnz == 0 and m.sum() == pytest.approx(2 * graph.length.sum())
    assert graph.degree_distribution().sum() == part.n_regions
    assert (graph.degrees() == np.asarray((m > 0).sum(axis=1)).ravel()).all()


def test_graph_statistics_on_a_grid():
    # lines x = -1/3, 1/3 and y = -1/3, 1/3 on [-1, 1]^2: a 3 x 3 grid of regions
    W = [[1, 0], [1, 0], [0, 1], [0, 1]]
    b = [1 / 3, -1 / 3, 1 / 3, -1 / 3]
    part = rg.partition(one_layer(W, b), rg.Slice(np.zeros(2), np.eye(2), np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])))
    graph = part.adjacency()
    assert part.n_regions == 9 and graph.n_edges == 12
    assert graph.degree_distribution().tolist() == [0, 0, 4, 4, 1]  # corners 2, sides 3, centre 4
    assert graph.diameter() == 4
    centre = int(locate(part, [[0.0, 0.0]])[0])
    assert graph.diameter(sources=[centre]) == 2  # a lower bound: the centre's eccentricity
    corner, opposite = locate(part, [[-0.9, -0.9], [0.9, 0.9]])
    flips, path = graph.flips_between(corner, opposite)
    assert flips == 4 and len(path) == 5 and path[0] == corner and path[-1] == opposite
    assert np.allclose(graph.length, 2 / 3)
    g = part.to_networkx()
    assert g.number_of_nodes() == 9 and g.number_of_edges() == 12
    with pytest.raises(ValueError, match="b must be a region index"):
        graph.flips_between(0, 9)


def test_deep_net_neighbours_differ_in_their_edge_neuron():
    rng = np.random.default_rng(5)
    layers = [rg.AffineLayer(rng.normal(size=(8, 2)), rng.normal(size=8) * 0.5, 0.0),
              rg.AffineLayer(rng.normal(size=(8, 8)) / np.sqrt(8), rng.normal(size=8) * 0.5, 0.0),
              rg.AffineLayer(rng.normal(size=(3, 8)), rng.normal(size=3), None)]
    part = rg.partition(rg.PWANet(layers), rg.Slice(np.zeros(2), np.eye(2), 2.0 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])))
    graph = part.adjacency()
    bits = np.unpackbits(part.patterns.view(np.uint8), axis=1, bitorder="little")[:, :16]
    diff = bits[graph.pairs[:, 0]] != bits[graph.pairs[:, 1]]
    assert (diff.sum(axis=1) == 1).all()
    assert (diff.argmax(axis=1) == 8 * graph.layer + graph.neuron).all()
    # every region boundary inside the domain is shared: half the inner perimeter is the edge total
    assert graph.length.sum() == pytest.approx(part.boundary_length, rel=1e-9)
    # a walk never needs fewer flips than the Hamming distance
    a, b = 0, part.n_regions - 1
    flips, _ = graph.flips_between(a, b)
    assert flips >= (bits[a] != bits[b]).sum()
