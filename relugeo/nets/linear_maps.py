"""Linear maps applied without their matrix, for layers too large to hold densely.

A convolution of a 3x32x32 image into 16 channels is a 16384 x 3072 matrix
(400 MB in float64); applied as a convolution it costs nothing to store. A
:class:`LinearMap` can stand in for the weight of an
:class:`~relugeo.nets.pwanet.AffineLayer`: the engine then propagates each
cell's (k + 1, n) map through the layer with ``apply`` instead of a matrix
product, and never forms the matrix.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


class LinearMap:
    """A linear map ``x -> x @ W.T`` for ``W`` of shape ``shape`` = (n_out, n_in), applied by a function.

    Parameters
    ----------
    fn : callable
        Takes a float64 array (N, n_in) and returns ``x @ W.T``, (N, n_out).
    shape : (int, int)
        ``(n_out, n_in)``.
    name : str
        What the map is, for messages and ``repr``.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], shape: tuple[int, int], name: str = "linear map"):
        self.fn = fn
        self.shape = (int(shape[0]), int(shape[1]))
        self.name = name

    ndim = 2

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x @ W.T`` for ``x`` of shape (N, n_in): (N, n_out) float64."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.shape[1]:
            raise ValueError(f"{self.name}: expects inputs of shape (N, {self.shape[1]}); got {x.shape}")
        out = np.asarray(self.fn(x), dtype=np.float64)
        if out.shape != (x.shape[0], self.shape[0]):
            raise ValueError(f"{self.name}: returned shape {out.shape}; expected {(x.shape[0], self.shape[0])}")
        return out

    def dense(self) -> np.ndarray:
        """The matrix ``W``, (n_out, n_in): only for maps small enough to hold."""
        return self.apply(np.eye(self.shape[1])).T.copy()

    def __repr__(self) -> str:
        return f"LinearMap({self.name}, {self.shape[0]}x{self.shape[1]})"


def torch_map(fn: Callable[[torch.Tensor], torch.Tensor], in_shape: tuple[int, ...], n_out: int,
              name: str, chunk: int = 4096) -> LinearMap:
    """A :class:`LinearMap` from a bias-free linear torch function of image batches.

    ``fn`` takes a float64 tensor (N, *in_shape) and returns (N, ...) with
    ``n_out`` values per item; rows are applied ``chunk`` at a time.
    """
    n_in = int(np.prod(in_shape))

    def apply(x: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], n_out))
        with torch.no_grad():
            for s in range(0, x.shape[0], chunk):
                t = torch.from_numpy(x[s : s + chunk]).reshape(-1, *in_shape)
                out[s : s + chunk] = fn(t).reshape(t.shape[0], -1).numpy()
        return out

    return LinearMap(apply, (n_out, n_in), name)
