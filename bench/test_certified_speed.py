"""Certified predicates against tolerance mode: the cost of certification on the partition cases.

Both modes run on every case of ``test_partition_speed.py`` (the anchor nets
and the 784-input slice) and on a quantised anchor net (weights rounded to
multiples of 1/8, biases of 1/16: many exact coincidences, so the exact
fallback runs). Each certified run is checked against tolerance mode (the
same patterns on the generic nets) and records how many cells the float
filter could not decide (``n_exact_cells``). The ratio certified / tolerance
is also timed alternately in one window, so a change of load hits both alike.

    NUMBA_NUM_THREADS=1 python -m pytest bench/test_certified_speed.py -q --benchmark-json bench/certified.json
"""

import numpy as np
import pytest
from nets import Case, anchor_case, partition_cases
from test_partition_speed import alternate

import relugeo as rg

SUITE = "certified"


def quantised_case() -> Case:
    base = anchor_case(32, 3)
    layers = [rg.AffineLayer(np.round(layer.weight * 8) / 8, np.round(layer.bias * 16) / 16,
                             layer.negative_slope) for layer in base.net.layers]
    return Case("w32-d3 quantised", base.module, rg.PWANet(layers), base.slice)


CASES = partition_cases() + [quantised_case()]
IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("predicates", ["tolerance", "certified"])
def test_partition(bench, case, predicates):
    bench.label(SUITE, case.name, predicates)
    part = bench(rg.partition, case.net, case.slice, predicates=predicates, rounds=3)
    report = part.verify()
    assert report["ok"], report
    if case.expected is not None:
        assert part.n_regions == case.expected
    counts = {"regions": part.n_regions, "n_exact_cells": part.n_exact_cells}
    if predicates == "certified":
        tol = rg.partition(case.net, case.slice)
        if not case.name.endswith("quantised"):
            assert set(map(bytes, tol.patterns)) == set(map(bytes, part.patterns))
        tol_s, cert_s = alternate([lambda: rg.partition(case.net, case.slice),
                                   lambda: rg.partition(case.net, case.slice, predicates="certified")], rounds=3)
        counts.update(paired_tolerance_s=tol_s, paired_certified_s=cert_s, paired_ratio=cert_s / tol_s,
                      tolerance_regions=tol.n_regions)
    bench.counts(**counts)
