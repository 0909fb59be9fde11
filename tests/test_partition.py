"""The partition engine held to the independent oracle (tests/oracle.py).

Regions are matched by activation pattern: the engine's region count, its
pattern set and each pattern's area must equal the oracle's; grid sampling
must find nothing the engine lacks; ``verify()`` must pass.
"""

import functools
import itertools
import types

import numpy as np
import pytest
from common import (
    ANCHORS,
    INNER,
    anchor_module,
    degenerate_cases_1d,
    degenerate_cases_2d,
    random_net,
    random_slice,
    small_feature_cases,
    to_torch,
)
from oracle import (
    arrangement_count,
    counter_clockwise,
    hidden_patterns,
    is_max,
    oracle_partition_1d,
    oracle_partition_2d,
    polygon_area,
    sample_patterns,
)

import relugeo as rg

AREA_RTOL = 1e-9
# a region's area may also differ by rounding at the scale of the domain
AREA_ATOL = 1e-13


# -- helpers -------------------------------------------------------------------------------


def to_pwanet(layers):
    return rg.PWANet([rg.AffineLayer(W, b, None, act[1], act[2]) if is_max(act) else rg.AffineLayer(W, b, act)
                      for W, b, act in layers])


def n_hidden(layers):
    """Pattern bits of an oracle net: one per neuron, one per (window, slot) of a max layer."""
    return sum(act[1].size if is_max(act) else W.shape[0] for W, _, act in layers[:-1])


def unpack(patterns, n_bits):
    """Packed patterns (R, words) uint64 -> list of R tuples of 0/1: bit j is bit j % 64 of word j // 64."""
    patterns = np.asarray(patterns, dtype=np.uint64)
    bits = [(patterns[:, j // 64] >> np.uint64(j % 64)) & np.uint64(1) for j in range(n_bits)]
    if not bits:
        return [()] * len(patterns)
    return [tuple(int(v) for v in row) for row in np.stack(bits, axis=1)]


def run_oracle(layers, origin, basis, vertices):
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.shape[1] == 1:
        return oracle_partition_1d(layers, origin, basis, vertices[0, 0], vertices[1, 0])
    return oracle_partition_2d(layers, origin, basis, vertices)


def domain_size(vertices):
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.shape[1] == 1:
        return float(abs(vertices[1, 0] - vertices[0, 0]))
    return polygon_area(counter_clockwise(vertices))


def engine_areas(part, n_bits):
    return dict(zip(unpack(part.patterns, n_bits), part.areas.tolist()))


def assert_matches_oracle(part, layers, regions, vertices, area_atol=AREA_ATOL):
    """Same count, same pattern set (no repeats), same area per pattern, areas summing to the domain."""
    n = n_hidden(layers)
    assert (part.areas > 0).all(), f"regions of zero size: {np.flatnonzero(part.areas <= 0).tolist()}"
    engine_patterns = unpack(part.patterns, n)
    oracle_patterns = [p for p, _, _ in regions]
    assert len(set(engine_patterns)) == len(engine_patterns), "the engine repeats a pattern"
    missing = set(oracle_patterns) - set(engine_patterns)
    extra = set(engine_patterns) - set(oracle_patterns)
    assert not missing and not extra, f"engine lacks {sorted(missing)[:3]}, has extra {sorted(extra)[:3]}"
    assert part.n_regions == len(regions)
    size = domain_size(vertices)
    mine = engine_areas(part, n)
    got = np.array([mine[p] for p, _, _ in regions])
    want = np.array([a for _, a, _ in regions])
    np.testing.assert_allclose(got, want, rtol=AREA_RTOL, atol=area_atol * size)
    assert part.domain_area == pytest.approx(size, rel=1e-12)
    assert part.areas.sum() == pytest.approx(size, rel=AREA_RTOL)


def test_unpack_follows_the_packing_convention():
    layers = random_net(0, [70, 30], 3, 0.1)  # 100 hidden neurons: two words
    x = np.random.default_rng(0).normal(size=(200, 3))
    packed = to_pwanet(layers).patterns(x)
    assert packed.shape == (200, 2) and packed.dtype == np.uint64
    assert unpack(packed, 100) == [tuple(map(int, row)) for row in hidden_patterns(layers, x)]


def test_comparison_fails_on_a_corrupted_partition():
    layers = random_net(1, [6, 5], 2)
    origin, basis, vertices = random_slice(0, 2, 2)
    regions = run_oracle(layers, origin, basis, vertices)
    part = rg.partition(to_pwanet(layers), rg.Slice(origin, basis, vertices))
    assert_matches_oracle(part, layers, regions, vertices)

    def corrupted(**changes):
        fields = {"patterns": part.patterns, "areas": part.areas, "n_regions": part.n_regions,
                  "domain_area": part.domain_area}
        fields.update(changes)
        return types.SimpleNamespace(**fields)

    flipped = part.patterns.copy()
    flipped[0, 0] ^= np.uint64(1 << 3)
    areas = part.areas.copy()
    areas[[0, 1]] = areas[0] + areas[1], 0.0
    moved = part.areas.copy()
    moved[0], moved[1] = moved[0] * (1 + 1e-6), moved[1] - moved[0] * 1e-6
    bad = [
        corrupted(patterns=flipped),
        corrupted(patterns=part.patterns[1:], areas=part.areas[1:], n_regions=part.n_regions - 1),
        corrupted(areas=areas),
        corrupted(areas=moved),
        corrupted(areas=part.areas * (1 + 1e-8)),
    ]
    for fake in bad:
        with pytest.raises(AssertionError):
            assert_matches_oracle(fake, layers, regions, vertices)


# -- seeded random nets --------------------------------------------------------------------

# Hidden widths are drawn in 2..MAX_WIDTH[depth] (2-D) or 2..32 (1-D), which keeps the oracle fast.
MAX_WIDTH_2D = {1: 32, 2: 24, 3: 16, 4: 12}


def _random_configs():
    configs = []
    kinds = itertools.product((2, 1), (2, 50), (0.0, 0.1), (np.float64, np.float32))
    for k, input_dim, slope, dtype in kinds:
        for depth in (1, 2, 3, 4):
            seed = 1000 * k + 100 * (input_dim == 50) + 10 * (slope > 0) + 2 * (dtype == np.float32) + depth - 1
            hi = MAX_WIDTH_2D[depth] if k == 2 else 32
            widths = tuple(int(w) for w in np.random.default_rng(seed).integers(2, hi + 1, size=depth))
            name = (f"k{k}-D{input_dim}-{'leaky' if slope else 'relu'}-{np.dtype(dtype).name}"
                    f"-{'x'.join(map(str, widths))}-s{seed}")
            configs.append(pytest.param((seed, widths, input_dim, k, slope, dtype), id=name))
    return configs


RANDOM = _random_configs()


@functools.cache
def random_case(config):
    """(layers, slice arrays, oracle regions, engine partition) for one config, computed once."""
    seed, widths, input_dim, k, slope, dtype = config
    layers = random_net(seed, list(widths), input_dim, slope, dtype)
    origin, basis, vertices = random_slice(seed, input_dim, k)
    regions = run_oracle(layers, origin, basis, vertices)
    part = rg.partition(to_pwanet(layers), rg.Slice(origin, basis, vertices))
    return layers, (origin, basis, vertices), regions, part


def test_random_configs_cover_the_required_families():
    configs = [p.values[0] for p in RANDOM]
    assert len(configs) >= 50
    assert {c[3] for c in configs} == {1, 2} and {c[2] for c in configs} == {2, 50}
    assert {c[4] for c in configs} == {0.0, 0.1} and {c[5] for c in configs} == {np.float64, np.float32}
    assert {len(c[1]) for c in configs} == {1, 2, 3, 4}
    assert min(min(c[1]) for c in configs) == 2 and max(max(c[1]) for c in configs) == 32


@pytest.mark.parametrize("config", RANDOM)
def test_random_net_matches_oracle(config):
    layers, (_, _, vertices), regions, part = random_case(config)
    assert_matches_oracle(part, layers, regions, vertices)


@pytest.mark.parametrize("config", RANDOM)
def test_random_net_verifies(config):
    _, _, _, part = random_case(config)
    report = part.verify()
    assert report["ok"]
    assert report["certificate_failures"] == 0 and report["duplicate_patterns"] == 0
    assert report["area_rel_error"] <= 1e-9


@pytest.mark.parametrize("config", RANDOM)
def test_random_net_bounds_grid_sampling(config):
    layers, (origin, basis, vertices), _, part = random_case(config)
    sampled = sample_patterns(layers, origin, basis, vertices, 150 if basis.shape[1] == 2 else 5000)
    engine_patterns = set(unpack(part.patterns, n_hidden(layers)))
    assert sampled <= engine_patterns, f"sampling found {len(sampled - engine_patterns)} patterns the partition lacks"
    assert len(sampled) <= part.n_regions


# -- one hidden layer: the closed form -----------------------------------------------------

ONE_LAYER = [
    pytest.param(seed, width, input_dim, k, id=f"s{seed}-w{width}-D{input_dim}-k{k}")
    for seed, (width, input_dim, k) in enumerate(
        [(4, 2, 2), (16, 2, 2), (32, 2, 2), (64, 2, 2), (12, 50, 2), (32, 50, 2), (8, 2, 1), (64, 50, 1)],
        start=500,
    )
]


@pytest.mark.parametrize("seed,width,input_dim,k", ONE_LAYER)
def test_one_layer_equals_arrangement_count(seed, width, input_dim, k):
    layers = random_net(seed, [width], input_dim)
    origin, basis, vertices = random_slice(seed, input_dim, k)
    W, b, _ = layers[0]
    expected = arrangement_count(W, b, origin, basis, vertices)
    part = rg.partition(to_pwanet(layers), rg.Slice(origin, basis, vertices))
    assert expected > 1
    assert part.n_regions == expected


# -- the degenerate catalogue --------------------------------------------------------------


@pytest.mark.parametrize("case", degenerate_cases_2d() + degenerate_cases_1d(), ids=lambda c: f"{c.dim}d-{c.name}")
def test_degenerate_case(case):
    part = rg.partition(to_pwanet(case.layers), rg.Slice(case.origin, case.basis, case.vertices))
    regions = run_oracle(case.layers, case.origin, case.basis, case.vertices)
    assert_matches_oracle(part, case.layers, regions, case.vertices, case.area_atol)
    if case.expected is not None:
        assert part.n_regions == case.expected
    assert part.verify()["ok"]
    sampled = sample_patterns(case.layers, case.origin, case.basis, case.vertices, 200 if case.dim == 2 else 5000)
    assert sampled <= set(unpack(part.patterns, n_hidden(case.layers)))


@pytest.mark.parametrize("case", small_feature_cases(), ids=lambda c: c.name)
def test_small_features_on_a_huge_domain(case):
    part = rg.partition(to_pwanet(case.layers), rg.Slice(case.origin, case.basis, case.vertices))
    inner = run_oracle(case.layers, case.origin, case.basis, INNER)
    assert set(unpack(part.patterns, n_hidden(case.layers))) == {p for p, _, _ in inner}
    assert part.n_regions == len(inner)
    if case.expected is not None:
        W, b, _ = case.layers[0]
        assert case.expected == arrangement_count(W, b, case.origin, case.basis, case.vertices)
        assert part.n_regions == case.expected
    assert part.verify()["ok"]


# -- other ways in: torch modules and the Slice constructors ------------------------------


@pytest.mark.parametrize("seed,slope", [(0, 0.0), (1, 0.1), (2, 0.01)])
def test_from_torch_gives_the_oracle_partition(seed, slope):
    layers = random_net(seed, [9, 7, 5], 2, slope, n_out=3)
    origin, basis, vertices = random_slice(seed, 2, 2)
    part = rg.partition(rg.from_torch(to_torch(layers)), rg.Slice(origin, basis, vertices))
    assert_matches_oracle(part, layers, run_oracle(layers, origin, basis, vertices), vertices)


@pytest.mark.parametrize("seed,widths", [(0, [12, 10]), (1, [12, 10]), (2, [40, 30])])
def test_slice_through_and_segment_give_the_oracle_partition(seed, widths):
    layers = random_net(seed, widths, 50, 0.0)
    rng = np.random.default_rng(seed)
    xa, xb, xc = rng.normal(size=(3, 50)) * 2
    for sl in (rg.Slice.through(xa, xb, xc, pad=0.1), rg.Slice.segment(xa, xb)):
        regions = run_oracle(layers, sl.origin, sl.basis, sl.vertices)
        part = rg.partition(to_pwanet(layers), sl)
        assert len(regions) > 1
        assert_matches_oracle(part, layers, regions, sl.vertices)


# -- the regression anchors ----------------------------------------------------------------

ANCHOR_PARAMS = [
    pytest.param(w, d, n, id=f"w{w}-d{d}", marks=[pytest.mark.slow] if w >= 64 else [])
    for w, d, n in ANCHORS
]


@pytest.mark.parametrize("w,depth,expected", ANCHOR_PARAMS)
def test_anchor_count(w, depth, expected):
    net = rg.from_torch(anchor_module(w, depth, seed=0))
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 1.0))
    assert part.n_regions == expected
    assert part.verify()["ok"]
