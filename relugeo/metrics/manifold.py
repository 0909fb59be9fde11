"""Class-manifold geometry: radii, centroid distances, inversion, stragglers, entanglement.

Definitions follow Ciceri et al., "Inversion dynamics of class manifolds in
deep learning reveals tradeoffs underlying generalisation", Nature Machine
Intelligence 6, 40-47 (2024): a hidden layer's features of the training set
are projected to the unit sphere, ``h^ = h / ||h||``; class ``c`` has centroid
``mu_c = mean_i h^_i`` and radius ``R_c = sqrt(mean_i ||h^_i - mu_c||^2)``. The
inversion epoch is where the radii stop shrinking; stragglers are the training
points still misclassified then. The kNN same-class fraction and the soft
nearest-neighbour loss (Frosst, Papernot & Hinton, ICML 2019) are offered as
entanglement measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import MetricInputError, check_features, check_features_labels

__all__ = [
    "ClassGeometry",
    "OverlapTest",
    "centroid_distances",
    "class_geometry",
    "class_radii",
    "inversion_epoch",
    "knn_same_class",
    "smooth_curve",
    "soft_nearest_neighbor_loss",
    "sphere_project",
    "straggler_overlap",
    "stragglers",
]


_ZERO_ROWS = ("error", "drop", "keep")


def sphere_project(H, *, zero_rows: str = "error") -> np.ndarray:
    """Rows of ``H`` divided by their Euclidean norm, (N, n) float64.

    Parameters
    ----------
    H : array_like of shape (N, n)
    zero_rows : {"error", "keep"}, default "error"
        An all-zero row (a ReLU layer can be silent on an input) has no
        direction: raise, or keep it at the origin.

    Raises
    ------
    MetricInputError
        A row is zero and ``zero_rows="error"``, or ``H`` is not a finite 2-D array.
    """
    if zero_rows not in ("error", "keep"):
        raise MetricInputError(f"zero_rows must be 'error' or 'keep'; got {zero_rows!r}")
    A = check_features(H)
    norms = np.linalg.norm(A, axis=1)
    zero = norms == 0
    if zero.any() and zero_rows == "error":
        rows = np.flatnonzero(zero)
        raise MetricInputError(
            f"H has {len(rows)} all-zero rows (first: row {rows[0]}); they cannot be projected "
            f"to the unit sphere; pass zero_rows='drop' or 'keep', or normalize=False"
        )
    return A / np.where(zero, 1.0, norms)[:, None]


@dataclass(frozen=True)
class ClassGeometry:
    """Per-class geometry of one layer's features.

    Attributes
    ----------
    classes : ndarray of shape (C,)
        The distinct labels, sorted; row ``c`` of the other arrays is ``classes[c]``.
    counts : ndarray of shape (C,), dtype=np.int64
    centroids : ndarray of shape (C, n), dtype=np.float64
    radii : ndarray of shape (C,), dtype=np.float64
        ``R_c = sqrt(mean_{i in c} ||h_i - mu_c||^2)``.
    distances : ndarray of shape (C, C), dtype=np.float64
        ``||mu_c - mu_c'||``, symmetric with a zero diagonal.
    """

    classes: np.ndarray
    counts: np.ndarray
    centroids: np.ndarray
    radii: np.ndarray
    distances: np.ndarray


def class_geometry(H, y, *, normalize: bool = True, zero_rows: str = "error") -> ClassGeometry:
    """Class centroids, radii and all pairwise centroid distances of one layer.

    Parameters
    ----------
    H : array_like of shape (N, n)
        One layer's features of the training set.
    y : array_like of shape (N,)
        Integer class labels; at least two classes.
    normalize : bool, default True
        Project every row to the unit sphere first (the paper's convention),
        which makes the metrics blind to the overall scale of the features.
    zero_rows : {"error", "drop", "keep"}, default "error"
        With ``normalize``, what to do with all-zero rows, which have no
        direction: raise, leave those samples out, or keep them at the origin.

    Returns
    -------
    ClassGeometry

    Examples
    --------
    >>> H = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> g = class_geometry(H, [0, 0, 1, 1])
    >>> g.radii.round(4).tolist(), round(float(g.distances[0, 1]), 4)
    ([0.7071, 0.7071], 1.4142)
    """
    if zero_rows not in _ZERO_ROWS:
        raise MetricInputError(f"zero_rows must be one of {_ZERO_ROWS}; got {zero_rows!r}")
    A, classes, codes = check_features_labels(H, y)
    if normalize:
        if zero_rows == "drop":
            live = np.linalg.norm(A, axis=1) > 0
            A, codes = A[live], codes[live]
            gone = np.setdiff1d(np.arange(len(classes)), codes)
            if len(gone):
                raise MetricInputError(f"every sample of classes {classes[gone].tolist()} has all-zero features")
        A = sphere_project(A, zero_rows="keep" if zero_rows == "keep" else "error")
    C = len(classes)
    counts = np.bincount(codes, minlength=C)
    centroids = np.zeros((C, A.shape[1]))
    np.add.at(centroids, codes, A)
    centroids /= counts[:, None]
    sq = ((A - centroids[codes]) ** 2).sum(axis=1)
    radii = np.sqrt(np.bincount(codes, weights=sq, minlength=C) / counts)
    diff = centroids[:, None, :] - centroids[None, :, :]
    distances = np.sqrt((diff ** 2).sum(axis=2))
    return ClassGeometry(classes, counts.astype(np.int64), centroids, radii, distances)


def class_radii(H, y, *, normalize: bool = True, zero_rows: str = "error") -> np.ndarray:
    """Radius ``R_c`` of every class manifold, (C,) float64, classes sorted. See :func:`class_geometry`."""
    return class_geometry(H, y, normalize=normalize, zero_rows=zero_rows).radii


def centroid_distances(H, y, *, normalize: bool = True, zero_rows: str = "error") -> np.ndarray:
    """All pairwise centroid distances ``||mu_c - mu_c'||``, (C, C) float64. See :func:`class_geometry`."""
    return class_geometry(H, y, normalize=normalize, zero_rows=zero_rows).distances


# ---------------------------------------------------------------------------
# inversion
# ---------------------------------------------------------------------------
def _check_curve(curve, name="curve") -> np.ndarray:
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1 or len(c) < 2:
        raise MetricInputError(f"{name} must be a 1-D sequence of at least two values; got shape {c.shape}")
    if not np.isfinite(c).all():
        raise MetricInputError(f"{name} contains NaN or inf at positions {np.flatnonzero(~np.isfinite(c))[:5].tolist()}")
    return c


def smooth_curve(curve, window: int = 9) -> np.ndarray:
    """Centred moving average; near the ends the window shrinks symmetrically.

    Parameters
    ----------
    curve : array_like of shape (T,)
    window : int, default 9
        Odd window length in samples; 1 returns the curve unchanged.

    Returns
    -------
    ndarray of shape (T,), dtype=np.float64
        ``s[t] = mean(curve[t-k : t+k+1])`` with ``k = min(window // 2, t, T-1-t)``,
        so the first and last values are kept and a linear trend is preserved.
    """
    c = _check_curve(curve)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1 or window % 2 == 0:
        raise MetricInputError(f"window must be a positive odd integer; got {window!r}")
    half = window // 2
    csum = np.concatenate([[0.0], np.cumsum(c)])
    t = np.arange(len(c))
    k = np.minimum(half, np.minimum(t, len(c) - 1 - t))
    return (csum[t + k + 1] - csum[t - k]) / (2 * k + 1)


def inversion_epoch(curve, *, epochs=None, burn_in: float = 20, smooth: int | None = None):
    """The first epoch after the burn-in at which a radius curve stops decreasing.

    Parameters
    ----------
    curve : array_like of shape (T,)
        A class radius ``R_c`` (or any curve) at successive checkpoints.
    epochs : array_like of shape (T,), optional
        The epoch (or step) of each value, increasing; ``None`` means
        ``0, 1, ..., T-1``.
    burn_in : float, default 20
        Only epochs ``>= burn_in`` can be the inversion (Ciceri et al.'s
        default of 20 epochs), so early transients are skipped.
    smooth : int, optional
        Odd window of :func:`smooth_curve` applied first (the "smoothed
        curve" variant); ``None`` uses the raw curve.

    Returns
    -------
    epoch or None
        ``epochs[t]`` for the first ``t`` with ``epochs[t] >= burn_in`` and
        ``curve[t + 1] >= curve[t]``, i.e. the last value of the decrease (a
        local minimum); ``None`` when the curve keeps decreasing to the end.

    Examples
    --------
    >>> inversion_epoch([5, 4, 3, 2, 3, 4], burn_in=0)
    3
    >>> inversion_epoch([5, 4, 3, 2, 1, 0], burn_in=0) is None
    True
    """
    c = _check_curve(curve)
    if epochs is None:
        e = np.arange(len(c))
    else:
        e = np.asarray(epochs)
        if e.shape != c.shape:
            raise MetricInputError(f"epochs must have the curve's shape {c.shape}; got {e.shape}")
        if not np.all(np.diff(e.astype(np.float64)) > 0):
            raise MetricInputError("epochs must be strictly increasing")
    if smooth is not None:
        c = smooth_curve(c, smooth)
    stops = np.flatnonzero((c[1:] >= c[:-1]) & (e[:-1] >= burn_in))
    if len(stops) == 0:
        return None
    value = e[stops[0]]
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------
# stragglers
# ---------------------------------------------------------------------------
def stragglers(outputs, y) -> np.ndarray:
    """Indices of the training points misclassified at a checkpoint (the inversion epoch).

    Parameters
    ----------
    outputs : array_like of shape (N, C) or (N,)
        Logits (the prediction is their argmax over classes ``0 .. C-1``), or
        predicted labels when 1-D.
    y : array_like of shape (N,)
        True labels.

    Returns
    -------
    ndarray of shape (S,), dtype=np.int64
        Sorted indices ``i`` with prediction ``!= y[i]``.
    """
    out = np.asarray(outputs)
    lab = np.asarray(y)
    if lab.ndim != 1:
        raise MetricInputError(f"y must have shape (N,); got shape {lab.shape}")
    if out.ndim == 2:
        if not np.isfinite(out).all():
            raise MetricInputError("outputs contain NaN or inf")
        pred = out.argmax(axis=1)
    elif out.ndim == 1:
        pred = out
    else:
        raise MetricInputError(f"outputs must be logits (N, C) or labels (N,); got shape {out.shape}")
    if len(pred) != len(lab):
        raise MetricInputError(f"outputs have {len(pred)} rows but y has {len(lab)} labels")
    return np.flatnonzero(pred != lab).astype(np.int64)


@dataclass(frozen=True)
class OverlapTest:
    """Overlap of two subsets of ``n`` items against a hypergeometric null.

    Attributes
    ----------
    overlap : int
        ``|A & B|``.
    expected : float
        ``|A| |B| / n``, the null mean.
    std : float
        ``sqrt(|A| |B| (n - |A|) (n - |B|) / (n^2 (n - 1)))``, the null standard deviation.
    z : float
        ``(overlap - expected) / std``; NaN when ``std`` is 0.
    size_a, size_b, n : int
    """

    overlap: int
    expected: float
    std: float
    z: float
    size_a: int
    size_b: int
    n: int


def _index_set(a, n: int, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise MetricInputError(f"{name} as a mask must have shape ({n},); got {arr.shape}")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise MetricInputError(f"{name} must be a 1-D array of integer indices or a boolean mask")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise MetricInputError(f"{name} holds indices outside 0..{n - 1}")
    uniq = np.unique(arr)
    if len(uniq) != len(arr):
        raise MetricInputError(f"{name} holds repeated indices")
    return uniq


def straggler_overlap(a, b, n: int) -> OverlapTest:
    """Stability of two runs' straggler sets: their overlap's z-score under a hypergeometric null.

    Under the null, run B's ``|B|`` stragglers are a uniformly random subset of
    the ``n`` training points, so ``|A & B|`` is hypergeometric with mean
    ``|A||B|/n``. A large z means the same points straggle in both runs
    (Ciceri et al. report them stable across seeds).

    Parameters
    ----------
    a, b : array_like
        Straggler indices (as :func:`stragglers` returns) or boolean masks of length ``n``.
    n : int
        Number of training points both runs share.

    Returns
    -------
    OverlapTest

    Examples
    --------
    >>> t = straggler_overlap(np.arange(20), np.arange(10, 30), 100)
    >>> t.overlap, t.expected, round(t.z, 3)
    (10, 4.0, 3.731)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise MetricInputError(f"n must be an integer >= 2 (the number of training points); got {n!r}")
    n = int(n)
    A, B = _index_set(a, n, "a"), _index_set(b, n, "b")
    ka, kb = len(A), len(B)
    k = len(np.intersect1d(A, B, assume_unique=True))
    mean = ka * kb / n
    var = ka * kb * (n - ka) * (n - kb) / (n * n * (n - 1))
    std = float(np.sqrt(var))
    z = (k - mean) / std if std > 0 else float("nan")
    return OverlapTest(int(k), float(mean), std, float(z), ka, kb, n)


# ---------------------------------------------------------------------------
# entanglement measures
# ---------------------------------------------------------------------------
def _sq_dists(A: np.ndarray, rows: slice) -> np.ndarray:
    block = A[rows]
    sq = (block ** 2).sum(1)[:, None] + (A ** 2).sum(1)[None, :] - 2.0 * block @ A.T
    return np.maximum(sq, 0.0)


def _chunk(N: int, n: int, batch_size: int | None) -> int:
    if batch_size is None:
        return max(1, min(N, 2 ** 22 // max(N, 1)))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MetricInputError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    return int(batch_size)


def knn_same_class(H, y, k: int = 10, *, per_point: bool = False, batch_size: int | None = None):
    """Fraction of each point's ``k`` nearest neighbours (Euclidean, itself excluded) in its class.

    Parameters
    ----------
    H : array_like of shape (N, n)
    y : array_like of shape (N,)
    k : int, default 10
        Neighbours per point, ``1 <= k <= N - 1``. Ties at the k-th distance
        are broken by index.
    per_point : bool, default False
        Return the per-point fractions instead of their mean.
    batch_size : int, optional
        Rows of the distance matrix held at once (default: about 4M entries).

    Returns
    -------
    float, or ndarray of shape (N,) when ``per_point``
        1 for perfectly separated classes; about ``sum_c (n_c/N)^2`` for
        labels independent of the features.
    """
    A, _, codes = check_features_labels(H, y)
    N = len(A)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= N - 1:
        raise MetricInputError(f"k must be an integer from 1 to N-1 = {N - 1}; got {k!r}")
    step = _chunk(N, A.shape[1], batch_size)
    frac = np.empty(N)
    for s in range(0, N, step):
        rows = slice(s, min(N, s + step))
        D = _sq_dists(A, rows)
        idx = np.arange(rows.start, rows.stop)
        D[np.arange(len(idx)), idx] = np.inf
        nn_idx = np.argsort(D, axis=1, kind="stable")[:, :k]
        frac[rows] = (codes[nn_idx] == codes[idx, None]).mean(axis=1)
    return frac if per_point else float(frac.mean())


def soft_nearest_neighbor_loss(H, y, temperature: float = 1.0, *, batch_size: int | None = None) -> float:
    """Soft nearest-neighbour loss of Frosst, Papernot & Hinton (ICML 2019).

    ``L = -1/N sum_i log( sum_{j != i, y_j = y_i} exp(-||h_i - h_j||^2 / T)
    / sum_{k != i} exp(-||h_i - h_k||^2 / T) )``, computed with log-sum-exp.
    Low values: classes are far apart relative to ``T``; high: entangled.

    Parameters
    ----------
    H : array_like of shape (N, n)
    y : array_like of shape (N,)
        Every class needs at least two points.
    temperature : float, default 1.0
        ``T > 0``, in the units of squared feature distances.
    batch_size : int, optional
        Rows of the distance matrix held at once.

    Returns
    -------
    float
        ``>= 0``; ``log((N - 1)/(n_c - 1))`` on average when all distances are equal.
    """
    from scipy.special import logsumexp

    A, classes, codes = check_features_labels(H, y)
    counts = np.bincount(codes)
    if counts.min() < 2:
        lone = classes[counts < 2].tolist()
        raise MetricInputError(f"soft nearest-neighbour loss needs at least two points per class; "
                               f"classes {lone} have one")
    if not (isinstance(temperature, (int, float, np.floating)) and np.isfinite(temperature) and temperature > 0):
        raise MetricInputError(f"temperature must be a positive finite number; got {temperature!r}")
    N = len(A)
    step = _chunk(N, A.shape[1], batch_size)
    total = 0.0
    for s in range(0, N, step):
        rows = slice(s, min(N, s + step))
        logits = -_sq_dists(A, rows) / float(temperature)
        idx = np.arange(rows.start, rows.stop)
        logits[np.arange(len(idx)), idx] = -np.inf
        same = codes[None, :] == codes[idx, None]
        num = logsumexp(np.where(same, logits, -np.inf), axis=1)
        den = logsumexp(logits, axis=1)
        total += float((den - num).sum())
    return total / N
