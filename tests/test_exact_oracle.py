"""The engine held to the exact-rational oracle on geometry below any tolerance.

Each case's regions are found in exact arithmetic (``tests/exact_oracle.py``)
and compared with the engine's, pattern by pattern: same count, same
patterns, areas within rounding. The cases are chosen so that the engine's
centred coordinates are the caller's exactly (dyadic domains, identity basis),
so both solve the same problem.
"""

from fractions import Fraction

import numpy as np
import pytest
from common import (
    Case,
    degenerate_cases_1d,
    degenerate_cases_2d,
    hidden,
    line_x,
    net_from_rows,
    plane,
    readout,
)
from exact_oracle import exact_partition, quantised_net
from hypothesis import given, settings
from hypothesis import strategies as st
from test_partition import n_hidden, to_pwanet, unpack

import relugeo as rg

# -- the cases -----------------------------------------------------------------------------


def _deep_near_vertex(delta, slope=0.0, dim=2):
    """Layer 1 bends at x = 0 and y = 0; layer 2's neuron relu(x) + relu(y) - delta passes
    ``delta`` from their meeting point (a corner of four layer-1 cells)."""
    layers = [
        hidden([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 0, 0], slope),
        hidden([[1, 0, 1, 0]], [-delta], slope),
        readout(1),
    ]
    return layers, (plane() if dim == 2 else line_x(-1.0, 1.0))


def exact_cases():
    """Named cases with the exact region count where it is known by hand."""
    near = {d: _deep_near_vertex(d) for d in (1e-12, 1e-15, 0.0)}
    lines = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, -1, 0], [1, 2, 0], [2, -1, 0], [1, -0.25, 0]]
    cases = [
        # the examples
        Case("sliver_1e-11", net_from_rows([[1, 0, 0], [0, 1, 0], [1, 1, -1e-11]]), *plane(), expected=7),
        Case("sliver_area_1e-36", net_from_rows([[1, 0, 0], [0, 1, 0], [1, 1, -1.4e-18]]), *plane(), expected=7),
        Case("near_parallel_1e-13", net_from_rows([[0, 1, 0], [-1e-13, 1, 0], [1e-13, 1, 0]]), *plane(),
             expected=6),
        Case("deep_near_vertex_1e-12", near[1e-12][0], *near[1e-12][1], expected=7),
        Case("deep_near_vertex_1e-15", near[1e-15][0], *near[1e-15][1], expected=7),
        Case("deep_through_vertex", near[0.0][0], *near[0.0][1], expected=4),
        Case("deep_near_vertex_leaky", _deep_near_vertex(1e-15, 0.1)[0], *plane()),
        Case("many_lines_one_vertex", net_from_rows(lines), *plane(), expected=14),
        Case("many_lines_one_vertex_leaky", net_from_rows(lines, 0.25), *plane(), expected=14),
        Case("exactly_parallel", net_from_rows([[1, 0, 0], [2, 0, 0], [1, 0, -2.0 ** -40], [0, 1, 0]]), *plane(),
             expected=6),
        # 1-D
        Case("breakpoints_1e-13_apart", net_from_rows([[1, 0, -0.25], [1, 0, -0.25 - 1e-13]]), *line_x(-1.0, 1.0),
             expected=3),
        Case("deep_near_breakpoint_1e-15_1d", _deep_near_vertex(1e-15, dim=1)[0],
             *_deep_near_vertex(1e-15, dim=1)[1], expected=3),
        Case("deep_near_breakpoint_leaky_1d", _deep_near_vertex(1e-15, 0.1, dim=1)[0], *line_x(-1.0, 1.0)),
    ]
    for seed, (widths, keep, slope, dim) in enumerate([
        ([4, 4], 1.0, 0.0, 2), ([5, 4, 3], 1.0, 0.0, 2), ([4, 4], 1.0, 0.25, 2), ([6, 5], 0.4, 0.0, 2),
        ([6, 6, 4], 0.4, 0.125, 2), ([6, 6], 1.0, 0.0, 1), ([8, 6], 0.4, 0.25, 1),
    ]):
        name = f"{'pruned' if keep < 1 else 'quantised'}_{'x'.join(map(str, widths))}_a{slope}_{dim}d"
        layers = quantised_net(np.random.default_rng(seed), widths, keep=keep, slope=slope)
        cases.append(Case(name, layers, *(plane() if dim == 2 else line_x(-1.0, 1.0))))
    return cases


def all_cases():
    """The new cases and the degenerate catalogue, each with the exact regions."""
    return exact_cases() + degenerate_cases_2d() + degenerate_cases_1d()


# what tolerance mode (|z| <= 1e-10 * scale counts as zero) gets wrong in exact semantics
TOLERANCE_MISSES = {"sliver_1e-11", "sliver_area_1e-36", "near_parallel_1e-13", "deep_near_vertex_1e-12",
                    "deep_near_vertex_1e-15", "deep_near_vertex_leaky", "breakpoints_1e-13_apart",
                    "deep_near_breakpoint_1e-15_1d", "deep_near_breakpoint_leaky_1d", "concurrent_lines",
                    "vertex_touch_50d", "exactly_parallel"}

CASES = all_cases()
# hand counts of the real-number geometry; the float64 weights make more regions (0.1 + 0.2 != 0.3)
REAL_NUMBER_COUNTS = {"concurrent_lines", "vertex_touch_50d"}


# -- the comparison ------------------------------------------------------------------------


def engine_regions(case, **kw):
    part = rg.partition(to_pwanet(case.layers), rg.Slice(case.origin, case.basis, case.vertices), **kw)
    return part, dict(zip(unpack(part.patterns, n_hidden(case.layers)), part.areas.tolist()))


def assert_exact(case, **kw):
    """The engine's regions are the exact ones: same patterns, none repeated, areas within rounding."""
    want = exact_partition(case.layers, case.origin, case.basis, case.vertices)
    if case.expected is not None and case.name not in REAL_NUMBER_COUNTS:
        assert len(want) == case.expected, "the exact oracle disagrees with the hand count"
    part, got = engine_regions(case, **kw)
    assert part.n_regions == len(got), "the engine repeats a pattern"
    missing, extra = set(want) - set(got), set(got) - set(want)
    assert not missing and not extra, f"engine lacks {sorted(missing)[:3]}, has extra {sorted(extra)[:3]}"
    total = float(sum(want.values()))
    for pattern, area in want.items():
        assert got[pattern] == pytest.approx(float(area), rel=1e-6, abs=case.area_atol * total)
    return part


def _marked(cases, misses):
    return [pytest.param(c, id=c.name, marks=pytest.mark.xfail(strict=True, reason="below the tolerance"))
            if c.name in misses else pytest.param(c, id=c.name) for c in cases]


# -- the oracle's own checks ---------------------------------------------------------------


def test_exact_oracle_counts_by_hand():
    for case in CASES:
        if case.expected is not None and case.name not in REAL_NUMBER_COUNTS:
            assert len(exact_partition(case.layers, case.origin, case.basis, case.vertices)) == case.expected, case


def test_exact_oracle_finds_the_float_weights_geometry():
    # 0.1 + 0.2 != 0.3 in float64: the three "concurrent" lines bound a triangle of area ~1e-33
    case = next(c for c in CASES if c.name == "concurrent_lines")
    regions = exact_partition(case.layers, case.origin, case.basis, case.vertices)
    assert len(regions) == 7
    assert 0 < min(regions.values()) < Fraction(1, 10**30)


def test_exact_oracle_areas_sum_to_the_domain():
    for case in CASES:
        regions = exact_partition(case.layers, case.origin, case.basis, case.vertices)
        if case.dim == 1:
            size = Fraction(case.vertices[1, 0]) - Fraction(case.vertices[0, 0])
        else:
            v = [tuple(map(Fraction, row)) for row in case.vertices]
            size = abs(sum(v[i][0] * v[i - 1][1] - v[i - 1][0] * v[i][1] for i in range(len(v)))) / 2
        assert sum(regions.values()) == size, case
        assert all(a > 0 for a in regions.values()), case


def test_exact_oracle_patterns_are_the_forward_pass_at_interior_points():
    case = next(c for c in CASES if c.name.startswith("pruned_6x6x4"))
    net = to_pwanet(case.layers)
    part = rg.partition(net, rg.Slice(case.origin, case.basis, case.vertices))
    regions = exact_partition(case.layers, case.origin, case.basis, case.vertices)
    # every engine centroid whose certificate is unambiguous has one of the oracle's patterns
    seen = unpack(net.patterns(part.interior_points), n_hidden(case.layers))
    assert set(seen) <= set(regions)


def test_comparison_fails_when_a_region_is_missing():
    case = next(c for c in CASES if c.name == "sliver_1e-11")
    with pytest.raises(AssertionError, match="engine lacks"):
        assert_exact(case)


# -- the engine against it -----------------------------------------------------------------


@pytest.mark.parametrize("case", _marked(CASES, TOLERANCE_MISSES))
def test_tolerance_mode_against_exact_oracle(case):
    assert_exact(case, predicates="tolerance")
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_certified_mode_against_exact_oracle(case):
    part = assert_exact(case, predicates="certified")
    part.verify()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), widths=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       keep=st.sampled_from([1.0, 0.5]), slope=st.sampled_from([0.0, 0.25]), dim=st.sampled_from([1, 2]))
def test_certified_mode_on_quantised_nets(seed, widths, keep, slope, dim):
    layers = quantised_net(np.random.default_rng(seed), widths, keep=keep, slope=slope)
    case = Case("hypothesis", layers, *(plane() if dim == 2 else line_x(-1.0, 1.0)))
    assert_exact(case, predicates="certified")
