"""Offline data sets: nothing here downloads anything."""

from __future__ import annotations

import numpy as np


def digits(n_train: int = 1000, seed: int = 0):
    """sklearn's bundled 8x8 digits scaled to [0, 1], with a seeded train/test split.

    Returns ``(X_train, y_train, X_test, y_test)``: X of shape (N, 64) float32,
    y of shape (N,) int64. The default split is 1,000 train / 797 test.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    if not 0 < n_train < len(X):
        raise ValueError(f"n_train must be between 1 and {len(X) - 1}; got {n_train}")
    order = np.random.default_rng(seed).permutation(len(X))
    tr, te = order[:n_train], order[n_train:]
    return X[tr], y[tr], X[te], y[te]


def uniform_like(X: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` points drawn uniformly from the bounding box of ``X``, shape (n, D)."""
    X = np.asarray(X)
    rng = np.random.default_rng(seed)
    lo, hi = X.min(axis=0), X.max(axis=0)
    return (lo + (hi - lo) * rng.random((n, X.shape[1]))).astype(X.dtype)
