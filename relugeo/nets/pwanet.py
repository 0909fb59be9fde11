"""PWANet: a piecewise-affine network as an ordered list of affine maps and slopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InvalidNetworkError
from ..kernels.cpu import pack_signs


@dataclass(frozen=True)
class AffineLayer:
    """One layer ``z = W x + b`` followed by a two-slope activation.

    Parameters
    ----------
    weight : ndarray of shape (n_out, n_in), dtype=np.float64
    bias : ndarray of shape (n_out,), dtype=np.float64
    negative_slope : float or None
        Slope of the activation where ``z <= 0``: 0 for ReLU, ``alpha`` for
        leaky ReLU. ``None`` for the last layer, which has no activation
        (its outputs are the logits). The positive slope is always 1.
    """

    weight: np.ndarray
    bias: np.ndarray
    negative_slope: float | None = 0.0

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def has_activation(self) -> bool:
        return self.negative_slope is not None


class PWANet:
    """A piecewise-affine MLP: hidden layers with ReLU / leaky ReLU, affine logits.

    Activation patterns are the bits ``z > 0`` of every hidden neuron, layer by
    layer, packed little-endian into uint64 words (bit ``j`` of the concatenated
    hidden neurons is bit ``j % 64`` of word ``j // 64``).

    Parameters
    ----------
    layers : sequence of AffineLayer
        Every layer but the last has an activation; the last has none.
    """

    def __init__(self, layers: Sequence[AffineLayer]):
        layers = tuple(layers)
        if not layers:
            raise InvalidNetworkError("a PWANet needs at least one layer; got an empty network")
        checked = []
        for k, layer in enumerate(layers):
            w = np.ascontiguousarray(layer.weight, dtype=np.float64)
            b = np.ascontiguousarray(layer.bias, dtype=np.float64)
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise InvalidNetworkError(
                    f"layer {k}: weight must be (n_out, n_in) and bias (n_out,); "
                    f"got {w.shape} and {b.shape}"
                )
            if w.shape[0] == 0 or w.shape[1] == 0:
                raise InvalidNetworkError(f"layer {k}: has no neurons or no inputs; got weight {w.shape}")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise InvalidNetworkError(f"layer {k}: weights or biases contain NaN or inf")
            if k > 0 and w.shape[1] != checked[-1].weight.shape[0]:
                raise InvalidNetworkError(
                    f"layer {k}: expects {w.shape[1]} inputs but layer {k - 1} has "
                    f"{checked[-1].weight.shape[0]} outputs"
                )
            last = k == len(layers) - 1
            slope = layer.negative_slope
            if last and slope is not None:
                raise InvalidNetworkError("the last layer gives the logits and must have no activation")
            if not last and slope is None:
                raise InvalidNetworkError(
                    f"layer {k}: two affine maps in a row must be merged before building a PWANet"
                )
            if slope is not None and not np.isfinite(slope):
                raise InvalidNetworkError(f"layer {k}: negative slope must be finite; got {slope}")
            checked.append(AffineLayer(w, b, None if slope is None else float(slope)))
        self.layers: tuple[AffineLayer, ...] = tuple(checked)

    # -- shape facts --------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return self.layers[0].n_in

    @property
    def output_dim(self) -> int:
        return self.layers[-1].n_out

    @property
    def hidden(self) -> tuple[AffineLayer, ...]:
        """The layers with an activation (all but the last)."""
        return self.layers[:-1]

    @property
    def widths(self) -> tuple[int, ...]:
        """Number of neurons of each hidden layer."""
        return tuple(layer.n_out for layer in self.hidden)

    @property
    def n_hidden(self) -> int:
        return int(sum(self.widths))

    @property
    def n_words(self) -> int:
        """uint64 words in one packed activation pattern."""
        return max(1, -(-self.n_hidden // 64))

    def __repr__(self) -> str:
        dims = [self.input_dim, *self.widths, self.output_dim]
        slopes = sorted({layer.negative_slope for layer in self.hidden})
        return f"PWANet({'-'.join(map(str, dims))}, negative_slopes={slopes})"

    def weight_t(self, index: int) -> np.ndarray:
        """Layer ``index``'s weight transposed, C-contiguous (n_in, n_out); cached."""
        cache = self.__dict__.setdefault("_weight_t", {})
        if index not in cache:
            cache[index] = np.ascontiguousarray(self.layers[index].weight.T)
        return cache[index]

    # -- forward passes (float64 numpy, the reference for certificates) ----
    def _as_points(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"x must have shape (N, {self.input_dim}) for this network; got {np.shape(x)}"
            )
        return x

    def preactivations(self, x) -> list[np.ndarray]:
        """Pre-activations of every layer, logits last: list of (N, n_l) arrays."""
        h = self._as_points(x)
        out = []
        for layer in self.layers:
            z = h @ layer.weight.T + layer.bias
            out.append(z)
            if layer.has_activation:
                h = np.where(z > 0, z, layer.negative_slope * z)
        return out

    def forward(self, x) -> np.ndarray:
        """Logits, shape (N, output_dim), float64."""
        return self.preactivations(x)[-1]

    def patterns(self, x) -> np.ndarray:
        """Packed activation patterns ``z > 0`` of the hidden neurons, (N, n_words) uint64."""
        zs = self.preactivations(x)[:-1]
        if not zs:
            return np.zeros((len(self._as_points(x)), 1), dtype=np.uint64)
        return pack_signs(np.concatenate(zs, axis=1), self.n_words)
