"""The certificate kernel of ``Partition.verify`` against a NumPy reference."""

import numpy as np
import pytest

import relugeo as rg
from relugeo.kernels import checks, cpu


def _reference(z, bits, slopes, margin):
    have = (z > 0) & (slopes != 1.0)
    mismatch = have != bits
    scale = margin * np.maximum(np.abs(z).max(axis=1, keepdims=True), 1e-300)
    near = np.abs(z) <= scale
    return (mismatch & ~near).any(axis=1), (mismatch & near).any(axis=1)


@pytest.mark.parametrize("bit_start", [0, 5, 60, 64, 130])
def test_kernel_matches_the_reference(bit_start):
    rng = np.random.default_rng(bit_start)
    n, w = 300, 90
    z = rng.standard_normal((n, w))
    z[rng.random((n, w)) < 0.02] = 1e-15  # on the plane, up to rounding
    slopes = np.where(rng.random(w) < 0.1, 1.0, 0.01)
    bits = (z > 0) & (slopes != 1.0)
    flip = rng.random((n, w)) < 0.01
    bits ^= flip
    full = np.zeros((n, bit_start + w + 7), dtype=np.float64)
    full[:, bit_start : bit_start + w] = bits
    patterns = cpu.pack_signs(full)
    failed = np.zeros(n, dtype=bool)
    ambiguous = np.zeros(n, dtype=bool)
    bias = rng.standard_normal(w)
    out = z - bias
    checks.check_two_slope_layer(out, bias, patterns, bit_start, slopes, 1e-9, failed, ambiguous)
    z = (z - bias) + bias  # the pre-activations as the kernel forms them
    want_failed, want_ambiguous = _reference(z, bits, slopes, 1e-9)
    np.testing.assert_array_equal(failed, want_failed)
    np.testing.assert_array_equal(ambiguous, want_ambiguous)
    assert want_failed.any() and want_ambiguous.any()
    np.testing.assert_array_equal(out, np.where(z > 0, z, slopes * z))  # the layer's outputs, in place


def test_verify_fails_a_wrong_bit_in_a_later_word():
    from common import random_net, to_torch

    net = rg.from_torch(to_torch(random_net(2, [70, 30])))
    part = rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 1.0))
    assert part.verify()["ok"]
    g = 70 + 3  # a neuron of layer 2, in the second word
    r = int(np.argmax(part.areas))
    part.patterns = part.patterns.copy()
    part.patterns[r, g >> 6] ^= np.uint64(1) << np.uint64(g & 63)
    report = part.verify(raise_on_error=False)
    assert report["certificate_failures"] == 1 and not report["ok"]


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_second_layer_maps_equal_the_forward_pass(slope):
    """verify() forms the second layer once per run of regions sharing a first-layer pattern:
    the same pre-activations as the plain forward pass, on a slice of a 5-D input."""
    from common import random_net, to_torch

    rng = np.random.default_rng(3)
    net = rg.from_torch(to_torch(random_net(5, [40, 30, 8], input_dim=5, negative_slope=slope)))
    sl = rg.Slice.square(rng.standard_normal(5), np.linalg.qr(rng.standard_normal((5, 2)))[0], 2.0)
    part = rg.partition(net, sl)
    u = part.centroids
    maps = part._second_layer_maps(u, np.ascontiguousarray(part.patterns))
    assert maps is not None  # runs of regions share a first-layer pattern
    zs = net.preactivations(sl.to_input(u))
    np.testing.assert_allclose(maps + net.layers[1].bias, zs[1], rtol=0, atol=1e-11 * np.abs(zs[1]).max())
    assert part.verify()["ok"]
    # a wrong second-layer bit is still caught
    r = int(np.argmax(part.areas))
    g = 40 + int(np.argmax(np.abs(zs[1][r])))
    part.patterns = part.patterns.copy()
    part.patterns[r, g >> 6] ^= np.uint64(1) << np.uint64(g & 63)
    assert part.verify(raise_on_error=False)["certificate_failures"] == 1
