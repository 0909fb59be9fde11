"""Neural collapse NC1-NC4 and the within-class variance.

Conventions follow Papyan, Han & Donoho, "Prevalence of neural collapse during
the terminal phase of deep learning training", PNAS 117 (2020), and its
reference code; the trace ratio follows Sakamoto & Sato, "Explaining Grokking
and Information Bottleneck through Neural Collapse Emergence", arXiv 2509.20829
(``nc1_score`` in keitaroskmt/collapse-dynamics). Every convention on which the
two differ is a parameter:

* global mean: Papyan's ``mu_G`` is the mean of the class means
  (``global_mean="class"``); Sakamoto & Sato weight classes by their counts,
  which equals the sample mean (``global_mean="sample"``);
* ``Sigma_W = 1/N sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T`` (all samples);
  ``Sigma_B = 1/C sum_c (mu_c - mu_G)(mu_c - mu_G)^T`` (classes weighted equally);
* NC1 = ``Tr(Sigma_W Sigma_B^+) / C`` as in the PNAS paper; Papyan's code
  inverts ``Sigma_B`` on its top ``C - 1`` eigenpairs (``scipy.sparse.linalg.svds``)
  and omits the ``1/C``; a pseudo-inverse with a relative ``rcond`` is the
  alternative;
* standard deviations in NC2 use ``ddof=1`` as ``torch.std`` does in Papyan's code.

Features ``H`` are the penultimate features (the input of the last linear
layer), one row per sample; labels ``y`` are integers, classes sorted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .features import MetricInputError, check_features, check_features_labels

__all__ = [
    "NC2",
    "NeuralCollapse",
    "class_means",
    "nc1",
    "nc2",
    "nc2_of",
    "nc3",
    "nc4",
    "neural_collapse",
    "rnc1",
    "trace_ratio",
    "within_class_variance",
]

_GLOBAL = ("class", "sample")


def _global_mean(means: np.ndarray, counts: np.ndarray, global_mean: str) -> np.ndarray:
    if global_mean == "class":
        return means.mean(axis=0)
    if global_mean == "sample":
        return (counts[:, None] * means).sum(axis=0) / counts.sum()
    raise MetricInputError(f"global_mean must be one of {_GLOBAL}; got {global_mean!r}")


def _means(A: np.ndarray, codes: np.ndarray, C: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(codes, minlength=C)
    M = np.zeros((C, A.shape[1]))
    np.add.at(M, codes, A)
    return M / counts[:, None], counts


def class_means(H, y) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, means)``: the sorted labels (C,) and the class means (C, n), float64."""
    A, classes, codes = check_features_labels(H, y)
    return classes, _means(A, codes, len(classes))[0]


def _check_choice(name, value, options):
    if value not in options:
        raise MetricInputError(f"{name} must be one of {options}; got {value!r}")


def nc1(H, y, *, method: str = "svd", rcond: float = 1e-6, global_mean: str = "class",
        divide_by_classes: bool = True) -> float:
    """NC1 = ``Tr(Sigma_W Sigma_B^+) / C`` (Papyan et al. 2020), within-class variability.

    Parameters
    ----------
    H : array_like of shape (N, n)
        Penultimate features.
    y : array_like of shape (N,)
        Integer labels, at least two classes.
    method : {"svd", "pinv"}, default "svd"
        ``"svd"``: invert ``Sigma_B`` on its top ``C - 1`` eigenpairs, as
        Papyan's reference code does with ``svds(Sb, k=C-1)`` (needs
        ``n >= C - 1``; a zero among those eigenvalues gives ``inf``).
        ``"pinv"``: Moore-Penrose pseudo-inverse, eigenvalues of ``Sigma_B``
        at or below ``rcond`` times the largest are dropped (``np.linalg.pinv``).
    rcond : float, default 1e-6
        Relative cutoff of ``"pinv"``.
    global_mean : {"class", "sample"}, default "class"
        ``mu_G`` as the mean of the class means (Papyan) or the sample mean.
    divide_by_classes : bool, default True
        Divide the trace by ``C`` (the PNAS paper's definition); ``False``
        gives the value Papyan's code logs as ``Sw_invSb``.

    Returns
    -------
    float
        0 for exactly collapsed features (every sample at its class mean).

    Notes
    -----
    ``Sigma_B = M^T M / C`` with ``M`` the centred class means (C, n), so its
    eigenpairs come from the SVD of ``M`` and ``Tr(Sigma_W V diag(1/l) V^T) =
    sum_k mean_i ((h_i - mu_{y_i}) . v_k)^2 / l_k``; no (n, n) matrix is formed.
    """
    _check_choice("method", method, ("svd", "pinv"))
    _check_choice("global_mean", global_mean, _GLOBAL)
    if not (isinstance(rcond, (int, float)) and 0 <= rcond < 1):
        raise MetricInputError(f"rcond must be a number in [0, 1); got {rcond!r}")
    A, classes, codes = check_features_labels(H, y)
    C = len(classes)
    M, counts = _means(A, codes, C)
    Mc = M - _global_mean(M, counts, global_mean)
    _, s, Vt = np.linalg.svd(Mc, full_matrices=False)
    lam = s ** 2 / C                                    # eigenvalues of Sigma_B, descending
    if method == "svd":
        if A.shape[1] < C - 1:
            raise MetricInputError(
                f"method='svd' inverts the top C-1 = {C - 1} eigenpairs of Sigma_B, but the features "
                f"have only {A.shape[1]} dimensions; use method='pinv'"
            )
        keep = np.arange(C - 1)
    else:
        keep = np.flatnonzero(lam > rcond * lam[0]) if lam[0] > 0 else np.array([], dtype=int)
    R = A - M[codes]
    proj = R @ Vt[keep].T                               # (N, k)
    sw_diag = (proj ** 2).mean(axis=0)                  # v_k^T Sigma_W v_k
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(sw_diag == 0, 0.0, sw_diag / lam[keep])
    value = float(terms.sum())
    return value / C if divide_by_classes else value


def within_class_variance(H, y, *, means=None, classes=None) -> float:
    """WCV = ``mean_i ||h_i - mu_{y_i}||^2`` (= ``Tr Sigma_W``).

    Parameters
    ----------
    H : array_like of shape (N, n)
    y : array_like of shape (N,)
        A single class is allowed here.
    means : array_like of shape (C, n), optional
        Class means to measure against, e.g. the training set's when ``H`` is
        held-out data; row ``c`` belongs to ``classes[c]``. ``None``: the
        means of ``H`` itself (the population within-class variance on a held-out
        set, the quantity Sakamoto & Sato tie to grokking).
    classes : array_like of shape (C,), optional
        Labels of the rows of ``means``; default ``0 .. C-1``.

    Returns
    -------
    float
    """
    A, cls, codes = check_features_labels(H, y, min_classes=1)
    if means is None:
        M, _ = _means(A, codes, len(cls))
        return float(((A - M[codes]) ** 2).sum(axis=1).mean())
    M = check_features(means, "means")
    if M.shape[1] != A.shape[1]:
        raise MetricInputError(f"means has {M.shape[1]} columns but H has {A.shape[1]}")
    labels = np.arange(len(M)) if classes is None else np.asarray(classes)
    if labels.shape != (len(M),):
        raise MetricInputError(f"classes must have shape ({len(M)},); got {labels.shape}")
    lookup = {int(c): k for k, c in enumerate(labels)}
    missing = sorted({int(c) for c in cls} - set(lookup))
    if missing:
        raise MetricInputError(f"y has classes {missing} that have no row in means (classes {labels.tolist()})")
    rows = np.array([lookup[int(c)] for c in cls])[codes]
    return float(((A - M[rows]) ** 2).sum(axis=1).mean())


def trace_ratio(H, y, *, eps: float = 1e-8) -> tuple[float, float, float]:
    """Sakamoto & Sato's ``nc1_score``: ``(WCV / (BCV + eps), WCV, BCV)``.

    ``WCV = mean_i ||h_i - mu_{y_i}||^2`` and ``BCV = sum_c (n_c/N) ||mu_c - mu_G||^2``
    with ``mu_G`` the sample mean, as in ``calc_neural_collapse_values`` of
    keitaroskmt/collapse-dynamics (which adds ``eps = 1e-8``; pass 0 for the plain ratio).

    Returns
    -------
    (ratio, wcv, bcv) : tuple of float
    """
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise MetricInputError(f"eps must be a non-negative number; got {eps!r}")
    A, classes, codes = check_features_labels(H, y)
    M, counts = _means(A, codes, len(classes))
    wcv = float(((A - M[codes]) ** 2).sum(axis=1).mean())
    mu = _global_mean(M, counts, "sample")
    bcv = float((counts / counts.sum() * ((M - mu) ** 2).sum(axis=1)).sum())
    denom = bcv + eps
    ratio = wcv / denom if denom > 0 else (0.0 if wcv == 0 else float("inf"))
    return float(ratio), wcv, bcv


def rnc1(H, y) -> float:
    """Relative NC1: ``WCV / (mean_i ||h_i||)^2``, the within-class variance in units of the feature scale."""
    A = check_features_labels(H, y)[0]
    scale = float(np.linalg.norm(A, axis=1).mean())
    if scale == 0:
        raise MetricInputError("H is all zeros; RNC1 divides by the mean feature norm")
    return within_class_variance(A, y) / scale ** 2


@dataclass(frozen=True)
class NC2:
    """Convergence of the centred class means to a simplex equiangular tight frame.

    Attributes
    ----------
    equinorm : float
        ``std_c ||mu_c - mu_G|| / mean_c ||mu_c - mu_G||``.
    equiangularity : float
        Standard deviation of ``cos(mu_c - mu_G, mu_c' - mu_G)`` over pairs ``c != c'``.
    max_angle : float
        ``mean_{c != c'} |cos + 1/(C-1)|`` (Papyan's "coherence"); 0 for a simplex ETF.
    """

    equinorm: float
    equiangularity: float
    max_angle: float


def nc2(H, y, *, global_mean: str = "class", ddof: int = 1) -> NC2:
    """NC2 on the class means of ``H`` (or on the rows of a weight matrix via :func:`nc2_of`).

    Parameters
    ----------
    global_mean : {"class", "sample"}, default "class"
    ddof : int, default 1
        Delta degrees of freedom of the two standard deviations (Papyan's
        code uses ``torch.std``, i.e. 1).

    Returns
    -------
    NC2
        All three are 0 for a simplex equiangular tight frame.
    """
    _check_choice("global_mean", global_mean, _GLOBAL)
    A, classes, codes = check_features_labels(H, y)
    M, counts = _means(A, codes, len(classes))
    return nc2_of(M - _global_mean(M, counts, global_mean), ddof=ddof)


def nc2_of(V, *, ddof: int = 1) -> NC2:
    """NC2 of the rows of ``V`` (C, n): centred class means, or classifier weights ``W``."""
    V = check_features(V, "V")
    C = len(V)
    if C < 2:
        raise MetricInputError(f"NC2 needs at least two classes; got {C} rows")
    if not isinstance(ddof, (int, np.integer)) or ddof < 0:
        raise MetricInputError(f"ddof must be a non-negative integer; got {ddof!r}")
    norms = np.linalg.norm(V, axis=1)
    if (norms == 0).any():
        raise MetricInputError("a centred class mean is zero, so its angle is undefined")
    n_pairs = C * (C - 1)
    equinorm = float(np.std(norms, ddof=ddof) / norms.mean()) if C > ddof else float("nan")
    U = V / norms[:, None]
    cos = (U @ U.T)[~np.eye(C, dtype=bool)]
    equi = float(np.std(cos, ddof=ddof)) if n_pairs > ddof else float("nan")
    max_angle = float(np.abs(cos + 1.0 / (C - 1)).mean())
    return NC2(equinorm, equi, max_angle)


def _check_classifier(W, b, n: int, classes: np.ndarray):
    Wa = check_features(W, "W")
    if Wa.shape[1] != n:
        raise MetricInputError(f"W must have shape (C, {n}) to act on the features; got {Wa.shape}")
    if not np.array_equal(classes, np.arange(len(Wa))):
        raise MetricInputError(
            f"W has {len(Wa)} rows, so labels must be exactly 0..{len(Wa) - 1} with every class "
            f"present; y has classes {classes.tolist()}"
        )
    if b is None:
        return Wa, np.zeros(len(Wa))
    ba = np.asarray(b, dtype=np.float64)
    if ba.shape != (len(Wa),) or not np.isfinite(ba).all():
        raise MetricInputError(f"b must be a finite vector of shape ({len(Wa)},); got shape {ba.shape}")
    return Wa, ba


def nc3(H, y, W, *, global_mean: str = "class") -> float:
    """NC3 = ``|| W/||W||_F - M/||M||_F ||_F^2`` with ``M`` the centred class means (self-duality).

    ``W`` has shape (C, n), row ``c`` for label ``c``; labels must be ``0..C-1``.
    0 when the classifier is proportional to the centred class means.
    """
    _check_choice("global_mean", global_mean, _GLOBAL)
    A, classes, codes = check_features_labels(H, y)
    Wa, _ = _check_classifier(W, None, A.shape[1], classes)
    M, counts = _means(A, codes, len(classes))
    Mc = M - _global_mean(M, counts, global_mean)
    nw, nm = np.linalg.norm(Wa), np.linalg.norm(Mc)
    if nw == 0 or nm == 0:
        raise MetricInputError("W or the centred class means are all zeros; NC3 normalises both")
    return float(((Wa / nw - Mc / nm) ** 2).sum())


def nc4(H, y, W, b=None) -> float:
    """NC4: fraction of samples where ``argmax(W h + b)`` differs from the nearest class mean.

    The class means are those of ``H`` itself (pass training features, as
    Papyan's ``NCC_mismatch``). ``W`` (C, n), ``b`` (C,) or ``None`` for zeros.
    """
    A, classes, codes = check_features_labels(H, y)
    Wa, ba = _check_classifier(W, b, A.shape[1], classes)
    M, _ = _means(A, codes, len(classes))
    net_pred = (A @ Wa.T + ba).argmax(axis=1)
    d2 = (A ** 2).sum(1)[:, None] - 2 * A @ M.T + (M ** 2).sum(1)[None, :]
    ncc_pred = d2.argmin(axis=1)
    return float((net_pred != ncc_pred).mean())


@dataclass(frozen=True)
class NeuralCollapse:
    """All neural-collapse metrics of one checkpoint (see the module docstring).

    ``nc1``, ``nc1_pinv`` (Papyan, SVD and pinv variants), ``trace_ratio``,
    ``wcv``, ``bcv`` (Sakamoto & Sato), ``rnc1``, ``nc2_equinorm``,
    ``nc2_equiangularity``, ``nc2_max_angle``, ``nc3`` and ``nc4`` (NaN without
    a classifier), ``wcv_test`` (population within-class variance on held-out
    data; NaN without it). ``nc1`` is NaN when the features have fewer than
    ``C - 1`` dimensions (use ``nc1_pinv`` then).
    """

    nc1: float
    nc1_pinv: float
    trace_ratio: float
    wcv: float
    bcv: float
    rnc1: float
    nc2_equinorm: float
    nc2_equiangularity: float
    nc2_max_angle: float
    nc3: float
    nc4: float
    wcv_test: float

    def to_dict(self) -> dict:
        return asdict(self)


def neural_collapse(H, y, W=None, b=None, *, H_test=None, y_test=None, rcond: float = 1e-6,
                    global_mean: str = "class", divide_by_classes: bool = True, ddof: int = 1,
                    eps: float = 1e-8) -> NeuralCollapse:
    """Every neural-collapse metric at once, with the conventions of the functions above.

    Parameters
    ----------
    H, y : training features (N, n) and labels (N,).
    W, b : classifier (C, n) and (C,), optional; needed for NC3 and NC4.
    H_test, y_test : held-out features and labels, optional; their
        within-class variance about their own class means is ``wcv_test``.
    rcond, global_mean, divide_by_classes, ddof, eps :
        See :func:`nc1`, :func:`nc2` and :func:`trace_ratio`.

    Returns
    -------
    NeuralCollapse
    """
    A, classes, _ = check_features_labels(H, y)
    C = len(classes)
    kw = {"global_mean": global_mean, "divide_by_classes": divide_by_classes}
    v_svd = nc1(A, y, method="svd", **kw) if A.shape[1] >= C - 1 else float("nan")
    v_pinv = nc1(A, y, method="pinv", rcond=rcond, **kw)
    ratio, wcv, bcv = trace_ratio(A, y, eps=eps)
    two = nc2(A, y, global_mean=global_mean, ddof=ddof)
    v3 = nc3(A, y, W, global_mean=global_mean) if W is not None else float("nan")
    v4 = nc4(A, y, W, b) if W is not None else float("nan")
    if (H_test is None) != (y_test is None):
        raise MetricInputError("H_test and y_test must be given together")
    wt = within_class_variance(H_test, y_test) if H_test is not None else float("nan")
    if H_test is not None and np.asarray(H_test).shape[1] != A.shape[1]:
        raise MetricInputError(f"H_test has {np.asarray(H_test).shape[1]} columns but H has {A.shape[1]}")
    return NeuralCollapse(v_svd, v_pinv, ratio, wcv, bcv, rnc1(A, y), two.equinorm, two.equiangularity,
                          two.max_angle, v3, v4, wt)
