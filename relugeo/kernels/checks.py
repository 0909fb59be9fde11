"""Kernels of ``Partition.verify``: one pass over a layer's pre-activations at the certificates.

CPU only: verification forwards the certificates with numpy and checks them
here, whatever device built the partition.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def check_two_slope_layer(z, patterns, bit_start, slopes, margin, failed, ambiguous):
    """Compare the signs of one two-slope layer with the packed patterns, row by row.

    ``z`` (n, w) float64 are the layer's pre-activations at n certificates;
    ``patterns`` (n, words) uint64 the regions' packed patterns, whose bits
    ``bit_start .. bit_start + w - 1`` belong to this layer; ``slopes`` (w,).
    Neuron i's bit is ``z_i > 0`` (always 0 for a pass-through neuron, slope
    1). A mismatch at a neuron with ``|z_i| <= margin * max_j |z_j|`` is
    ambiguous (the certificate lies on that neuron's plane up to rounding),
    any other mismatch fails the row: ``failed[r]`` and ``ambiguous[r]`` are
    OR-ed in place.
    """
    n, w = z.shape
    for r in prange(n):
        scale = 1e-300
        for i in range(w):
            a = abs(z[r, i])
            if a > scale:
                scale = a
        scale *= margin
        for i in range(w):
            g = bit_start + i
            want = (patterns[r, g >> 6] >> np.uint64(g & 63)) & np.uint64(1)
            have = z[r, i] > 0.0 and slopes[i] != 1.0
            if have != (want == np.uint64(1)):
                if abs(z[r, i]) <= scale:
                    ambiguous[r] = True
                else:
                    failed[r] = True
