"""Offline data sets: nothing here downloads anything.

The stripe and cylinder models of Paccolat et al. live with the compression
metrics and are re-exported here.
"""

from __future__ import annotations

import random

import numpy as np

from .metrics.compression import cylinder, stripe

__all__ = ["cylinder", "digits", "mnist1d", "modular", "moons", "sparse_parity", "stripe", "uniform_like"]

_OPS = ("add", "sub", "mul", "div")


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


def moons(n_train: int = 1000, n_test: int = 1000, *, noise: float = 0.1, seed: int = 0):
    """sklearn's two interleaving half circles in 2-D, seeded.

    Returns ``(X_train, y_train, X_test, y_test)``: X of shape (N, 2) float32,
    y of shape (N,) int64 in {0, 1}; train and test are drawn together and
    split, so they come from the same distribution.
    """
    from sklearn.datasets import make_moons

    if int(n_train) < 1 or int(n_test) < 1:
        raise ValueError(f"n_train and n_test must be positive; got {n_train} and {n_test}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0; got {noise!r}")
    X, y = make_moons(n_samples=int(n_train) + int(n_test), noise=noise, random_state=seed)
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def mnist1d(num_samples: int = 5000, *, train_split: float = 0.8, seed: int = 42, **overrides):
    """MNIST-1D (Greydanus 2020), generated locally with the ``mnist1d`` package.

    With the defaults (5,000 samples, seed 42) this regenerates the published
    data set: 4,000 train / 1,000 test signals of length 40, ten classes.
    Nothing is downloaded; the package's generator runs here. It seeds
    NumPy's and Python's global random states, which are restored afterwards.

    Parameters
    ----------
    num_samples : int, default 5000
    train_split : float, default 0.8
    seed : int, default 42
    **overrides
        Other generator settings of ``mnist1d.data.get_dataset_args()``
        (``template_len``, ``padding``, ``scale_coeff``, ``max_translation``,
        ``corr_noise_scale``, ``iid_noise_scale``, ``shear_scale``,
        ``shuffle_seq``, ``final_seq_length``).

    Returns
    -------
    ``(X_train, y_train, X_test, y_test)``: X of shape (N, 40) float32, y (N,) int64.

    Raises
    ------
    ImportError
        The ``mnist1d`` package is not installed (``pip install mnist1d``,
        or ``pip install relugeo[mnist1d]``).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ImportError("mnist1d() needs the mnist1d package: pip install mnist1d") from exc
    args = get_dataset_args(as_dict=True)
    unknown = sorted(set(overrides) - set(args) - {"url"})
    if unknown:
        raise ValueError(f"unknown mnist1d settings {unknown}; valid: {sorted(set(args) - {'url', 'seed'})}")
    if int(num_samples) < 10:
        raise ValueError(f"num_samples must be at least 10 (one per class); got {num_samples}")
    if not 0 < train_split < 1:
        raise ValueError(f"train_split must be between 0 and 1; got {train_split}")
    args.update(overrides, num_samples=int(num_samples), train_split=float(train_split), seed=int(seed))
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(type("Args", (), args)())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return (d["x"].astype(np.float32), d["y"].astype(np.int64),
            d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))


def modular(p: int, op: str = "add", train_fraction: float = 0.5, seed: int = 0):
    """The table of ``a op b mod p`` as one-hot pairs, split into train and test (grokking's task).

    Every pair (a, b) with a, b in 0..p-1 appears exactly once across train and
    test, except that ``op="div"`` (a * b^-1 mod p, p prime) skips b = 0. The
    input is ``[onehot(a), onehot(b)]``: a linear first layer on it is an
    embedding, so an MLP on it stays piecewise affine. The split is a seeded
    permutation of the table (``round(train_fraction * pairs)`` train rows).

    Returns ``(X_train, y_train, X_test, y_test)``: X of shape (N, 2p) float32
    with exactly two ones per row, y of shape (N,) int64 in 0..p-1.
    """
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 2:
        raise ValueError(f"p must be an integer >= 2; got {p!r}")
    p = int(p)
    if op not in _OPS:
        raise ValueError(f"op must be one of {list(_OPS)}; got {op!r}")
    if op == "div" and any(p % q == 0 for q in range(2, int(p**0.5) + 1)):
        raise ValueError(f"op='div' needs a prime p (every b != 0 invertible); got p={p}")
    if not (isinstance(train_fraction, (int, float)) and 0 < train_fraction < 1):
        raise ValueError(f"train_fraction must be a number strictly between 0 and 1; got {train_fraction!r}")
    a, b = (g.ravel() for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if op == "div":
        a, b = a[b != 0], b[b != 0]
    if op == "add":
        y = (a + b) % p
    elif op == "sub":
        y = (a - b) % p
    elif op == "mul":
        y = (a * b) % p
    else:
        y = (a * np.array([pow(int(v), -1, p) for v in b])) % p
    n_train = int(round(train_fraction * len(a)))
    if not 0 < n_train < len(a):
        raise ValueError(f"train_fraction={train_fraction} leaves an empty train or test set of the "
                         f"{len(a)} pairs; choose a fraction between {1 / len(a):.3g} and {1 - 1 / len(a):.3g}")
    X = np.zeros((len(a), 2 * p), dtype=np.float32)
    X[np.arange(len(a)), a] = 1.0
    X[np.arange(len(a)), p + b] = 1.0
    y = y.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(a))
    tr, te = order[:n_train], order[n_train:]
    return X[tr], y[tr], X[te], y[te]


def sparse_parity(n_bits: int, k: int, n_train: int = 1000, n_test: int = 1000, *, seed: int = 0,
                  support=None):
    """Sparse parity (Barak et al. 2022): the parity of ``k`` hidden bits among ``n_bits``.

    Inputs are uniform in {-1, +1}^n_bits; the label is 1 when the product of
    the ``k`` support bits is -1 (an odd number of them are -1), else 0. The
    support is drawn with the seed unless given.

    Returns ``(X_train, y_train, X_test, y_test, support)``: X of shape
    (N, n_bits) float32 in {-1, +1}, y of shape (N,) int64 in {0, 1}, support
    an int64 array of shape (k,), sorted.
    """
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValueError(f"n_bits must be a positive integer; got {n_bits!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_bits:
        raise ValueError(f"k must be an integer between 1 and n_bits={n_bits}; got {k!r}")
    if int(n_train) < 1 or int(n_test) < 1:
        raise ValueError(f"n_train and n_test must be positive; got {n_train} and {n_test}")
    rng = np.random.default_rng(seed)
    if support is None:
        support = np.sort(rng.choice(n_bits, size=k, replace=False))
    else:
        support = np.sort(np.asarray(support, dtype=np.int64))
        if support.shape != (k,) or len(np.unique(support)) != k or support.min() < 0 or support.max() >= n_bits:
            raise ValueError(f"support must hold {k} distinct indices in 0..{n_bits - 1}; got {support.tolist()}")
    X = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(int(n_train) + int(n_test), n_bits))
    y = (np.prod(X[:, support], axis=1) < 0).astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], support.astype(np.int64)
