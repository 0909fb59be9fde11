"""PWANet: a piecewise-affine network as an ordered list of affine maps and slopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InvalidNetworkError
from ..kernels.cpu import pack_signs
from .linear_maps import LinearMap


@dataclass(frozen=True)
class AffineLayer:
    """One layer ``z = W x + b`` followed by its activation.

    Three activations are possible:

    - two-slope (``negative_slope`` set, ``windows`` None): ``h_i = z_i`` where
      ``z_i > 0``, else ``slope_i * z_i``. ``negative_slope`` is 0 for ReLU,
      ``alpha`` for leaky ReLU, or an array (n_out,) giving each neuron its
      own slope; a slope of exactly 1 makes a linear pass-through neuron, which
      never splits a region (residual connections are carried this way).
    - max (``windows`` set): ``h = [max_s z[windows[w, s]] for each w] + z[keep]``,
      a max-pooling whose pattern is the winning slot of every window. Entries
      -1 in ``windows`` are padding. Ties go to the lowest slot.
    - none (the last layer): ``negative_slope`` and ``windows`` both None;
      its outputs are the logits.

    Parameters
    ----------
    weight : ndarray of shape (n_out, n_in), dtype=np.float64, or LinearMap
        A :class:`~relugeo.nets.linear_maps.LinearMap` stands for a weight too
        large to hold (a convolution of a large image): it is applied, never
        formed.
    bias : ndarray of shape (n_out,), dtype=np.float64
    negative_slope : float, ndarray of shape (n_out,), or None
    windows : ndarray of shape (n_windows, m), int64, or None
    keep : ndarray of shape (n_keep,), int64, or None
        Neurons of a max layer passed through unchanged after the maxima.
    """

    weight: np.ndarray
    bias: np.ndarray
    negative_slope: float | np.ndarray | None = 0.0
    windows: np.ndarray | None = None
    keep: np.ndarray | None = None

    @property
    def n_out(self) -> int:
        """Pre-activations of the layer."""
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def is_dense(self) -> bool:
        """True when the weight is a matrix, False for a :class:`LinearMap`."""
        return not isinstance(self.weight, LinearMap)

    def linear(self, x: np.ndarray) -> np.ndarray:
        """``x @ W.T`` for ``x`` of shape (N, n_in): (N, n_out)."""
        return x @ self.weight.T if self.is_dense else self.weight.apply(x)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The pre-activations ``x @ W.T + b``: (N, n_in) -> (N, n_out)."""
        return self.linear(x) + self.bias

    def dense_weight(self) -> np.ndarray:
        """The weight as a matrix (n_out, n_in), formed from a LinearMap when needed."""
        return self.weight if self.is_dense else self.weight.dense()

    @property
    def is_max(self) -> bool:
        return self.windows is not None

    @property
    def has_activation(self) -> bool:
        return self.negative_slope is not None or self.windows is not None

    @property
    def n_act(self) -> int:
        """Outputs after the activation: the next layer's inputs."""
        if self.is_max:
            return self.windows.shape[0] + (0 if self.keep is None else len(self.keep))
        return self.n_out

    @property
    def n_bits(self) -> int:
        """Pattern bits: one per neuron, or one per (window, slot) of a max layer."""
        return self.windows.size if self.is_max else self.n_out

    @property
    def slopes(self) -> np.ndarray:
        """Negative slope of every neuron of a two-slope layer, (n_out,) float64."""
        if self.negative_slope is None:
            raise ValueError("a max layer or the last layer has no slopes")
        cache = self.__dict__.get("_slopes")
        if cache is None:
            cache = np.ascontiguousarray(np.broadcast_to(
                np.asarray(self.negative_slope, dtype=np.float64), (self.n_out,)))
            object.__setattr__(self, "_slopes", cache)
        return cache

    @property
    def uniform_slope(self) -> float | None:
        """The one negative slope shared by every neuron, or None when they differ."""
        s = np.unique(self.slopes)
        return float(s[0]) if len(s) == 1 else None

    def winners(self, z: np.ndarray) -> np.ndarray:
        """Winning slot of every window of a max layer: (N, n_windows) int64, ties to the lowest slot."""
        w = self.windows
        vals = np.where(w >= 0, z[:, np.maximum(w, 0)], -np.inf)
        return vals.reshape(len(z), *w.shape).argmax(axis=2)

    def activate(self, z: np.ndarray) -> np.ndarray:
        """The layer's outputs from its pre-activations: (N, n_out) -> (N, n_act)."""
        if self.is_max:
            win = self.winners(z)
            idx = np.take_along_axis(np.broadcast_to(self.windows, (len(z), *self.windows.shape)),
                                     win[:, :, None], axis=2)[:, :, 0]
            out = np.take_along_axis(z, idx, axis=1)
            if self.keep is not None and len(self.keep):
                out = np.concatenate([out, z[:, self.keep]], axis=1)
            return out
        if self.negative_slope is None:
            return z
        slopes = self.slopes
        if self.uniform_slope == 0.0:
            return np.maximum(z, 0.0)
        if ((slopes >= 0.0) & (slopes <= 1.0)).all():
            return np.maximum(z, slopes * z)  # the larger of z and s z is z where z > 0 when 0 <= s <= 1
        return np.where(z > 0, z, slopes * z)

    def pattern_bits(self, z: np.ndarray) -> np.ndarray:
        """The layer's activation pattern: (N, n_out) -> (N, n_bits) bool."""
        if self.is_max:
            win = self.winners(z)
            m = self.windows.shape[1]
            return (np.arange(m)[None, None, :] == win[:, :, None]).reshape(len(z), -1)
        return (z > 0) & (self.slopes != 1.0)


class PWANet:
    """A piecewise-affine network as a chain of layers (see :class:`AffineLayer`).

    Plain MLPs are two-slope layers throughout; convolutional, pooling and
    residual networks are lowered to this form by :func:`relugeo.from_torch`
    (convolutions as dense maps, skip connections as pass-through neurons,
    max-pooling as max layers). Activation patterns are the pattern bits of
    every hidden layer, layer by layer, packed little-endian into uint64 words
    (bit ``j`` of the concatenated bits is bit ``j % 64`` of word ``j // 64``).

    Parameters
    ----------
    layers : sequence of AffineLayer
        Every layer but the last has an activation; the last has none.
    """

    def __init__(self, layers: Sequence[AffineLayer]):
        layers = tuple(layers)
        if not layers:
            raise InvalidNetworkError("a PWANet needs at least one layer; got an empty network")
        checked: list[AffineLayer] = []
        for k, layer in enumerate(layers):
            checked.append(_checked_layer(k, layer, checked[-1] if checked else None, k == len(layers) - 1))
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
        """Pattern bits of each hidden layer (its neurons, for a two-slope layer)."""
        return tuple(layer.n_bits for layer in self.hidden)

    @property
    def n_hidden(self) -> int:
        return int(sum(self.widths))

    @property
    def n_words(self) -> int:
        """uint64 words in one packed activation pattern."""
        return max(1, -(-self.n_hidden // 64))

    @property
    def is_mlp(self) -> bool:
        """True when every hidden layer is a two-slope layer with one slope for all its neurons."""
        return all(not layer.is_max and layer.uniform_slope is not None for layer in self.hidden)

    def __repr__(self) -> str:
        if self.is_mlp:
            dims = [self.input_dim, *self.widths, self.output_dim]
            slopes = sorted({layer.uniform_slope for layer in self.hidden})
            return f"PWANet({'-'.join(map(str, dims))}, negative_slopes={slopes})"
        kinds = ["max" if layer.is_max else "act" for layer in self.hidden]
        dims = [f"{layer.n_out}{'(max)' if layer.is_max else ''}" for layer in self.hidden]
        return f"PWANet({self.input_dim}-{'-'.join(dims)}-{self.output_dim}, {len(kinds)} hidden layers)"

    def weight_t(self, index: int) -> np.ndarray:
        """Layer ``index``'s weight transposed, C-contiguous (n_in, n_out); cached. Dense layers only."""
        if not self.layers[index].is_dense:
            raise ValueError(f"layer {index} is a {self.layers[index].weight!r}; it has no matrix to transpose")
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
        """Pre-activations of every layer, logits last: list of (N, n_out) arrays."""
        h = self._as_points(x)
        out = []
        for layer in self.layers:
            z = layer.linear(h)
            z += layer.bias
            out.append(z)
            if layer.has_activation:
                h = layer.activate(z)
        return out

    def forward(self, x) -> np.ndarray:
        """Logits, shape (N, output_dim), float64."""
        return self.preactivations(x)[-1]

    def patterns(self, x) -> np.ndarray:
        """Packed activation patterns of the hidden layers, (N, n_words) uint64."""
        zs = self.preactivations(x)[:-1]
        if not zs:
            return np.zeros((len(self._as_points(x)), 1), dtype=np.uint64)
        bits = np.concatenate([layer.pattern_bits(z) for layer, z in zip(self.hidden, zs)], axis=1)
        return pack_signs(bits.astype(np.float64), self.n_words)


def _checked_layer(k: int, layer: AffineLayer, prev: AffineLayer | None, last: bool) -> AffineLayer:
    """``layer`` with float64 C-contiguous arrays, or an InvalidNetworkError naming what is wrong."""
    b = np.ascontiguousarray(layer.bias, dtype=np.float64)
    if isinstance(layer.weight, LinearMap):
        w = layer.weight
        probe = w.apply(np.ones((1, w.shape[1])))
        if not np.isfinite(probe).all():
            raise InvalidNetworkError(f"layer {k}: {w!r} gives NaN or inf (its weights contain NaN or inf)")
    else:
        w = np.ascontiguousarray(layer.weight, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise InvalidNetworkError(
            f"layer {k}: weight must be (n_out, n_in) and bias (n_out,); got {w.shape} and {b.shape}"
        )
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise InvalidNetworkError(f"layer {k}: has no neurons or no inputs; got weight {w.shape}")
    if not (np.isfinite(b).all() and (isinstance(w, LinearMap) or np.isfinite(w).all())):
        raise InvalidNetworkError(f"layer {k}: weights or biases contain NaN or inf")
    if prev is not None and w.shape[1] != prev.n_act:
        raise InvalidNetworkError(
            f"layer {k}: expects {w.shape[1]} inputs but layer {k - 1} has {prev.n_act} outputs"
        )
    slope, windows, keep = layer.negative_slope, layer.windows, layer.keep
    if last:
        if slope is not None or windows is not None:
            raise InvalidNetworkError("the last layer gives the logits and must have no activation")
        return AffineLayer(w, b, None)
    if windows is not None:
        if slope is not None:
            raise InvalidNetworkError(f"layer {k}: a max layer takes no negative_slope")
        windows = np.ascontiguousarray(windows, dtype=np.int64)
        keep = np.zeros(0, dtype=np.int64) if keep is None else np.ascontiguousarray(keep, dtype=np.int64)
        if windows.ndim != 2 or windows.shape[0] == 0 or windows.shape[1] == 0 or keep.ndim != 1:
            raise InvalidNetworkError(
                f"layer {k}: windows must be (n_windows, m) and keep (n_keep,); got {windows.shape}, {keep.shape}"
            )
        if ((windows < -1) | (windows >= w.shape[0])).any() or ((keep < 0) | (keep >= w.shape[0])).any():
            raise InvalidNetworkError(f"layer {k}: windows or keep index a neuron outside 0..{w.shape[0] - 1}")
        if (windows < 0).all(axis=1).any():
            raise InvalidNetworkError(f"layer {k}: a window has no neuron")
        return AffineLayer(w, b, None, windows, keep)
    if keep is not None:
        raise InvalidNetworkError(f"layer {k}: keep is only for max layers")
    if slope is None:
        raise InvalidNetworkError(f"layer {k}: two affine maps in a row must be merged before building a PWANet")
    if np.ndim(slope) == 0:
        if not np.isfinite(slope):
            raise InvalidNetworkError(f"layer {k}: negative slope must be finite; got {slope}")
        return AffineLayer(w, b, float(slope))
    slope = np.ascontiguousarray(slope, dtype=np.float64)
    if slope.shape != (w.shape[0],) or not np.isfinite(slope).all():
        raise InvalidNetworkError(
            f"layer {k}: negative_slope must be a finite number or one per neuron ({w.shape[0]},); "
            f"got shape {slope.shape}"
        )
    return AffineLayer(w, b, slope)
