"""Geometric compression of invariant manifolds, and the NTK kernel PCA.

Following Paccolat, Petrini, Geiger, Tyloo & Wyart, "Geometric compression of
invariant manifolds in neural networks", J. Stat. Mech. (2021), arXiv 2007.11471
(reference code: mariogeiger/feature_lazy):

* data: the stripe model (label +1 iff -0.3 < x_1 < 1.18549, balanced) and the
  cylinder model (label by the norm of the first ``d_par`` coordinates), with
  ``x ~ N(0, I_d)``;
* model: ``f(w, x) = (1/h) sum_n beta_n sigma(omega_n . x / sqrt(d) + b_n)``
  with standard Gaussian initial parameters, trained through
  ``F(w, x) = alpha (f(w, x) - f(w0, x))``: small ``alpha`` is the feature
  regime, large ``alpha`` the lazy regime (the crossover is at ``alpha sqrt(h) ~ 1``);
* compression ratio ``lambda``: ``w_j = sqrt(mean_n omega_nj^2)``;
  ``lambda = mean_{j informative} w_j / mean_{j uninformative} w_j``;
* NTK ``Theta = J J^T`` on a fixed point set and its kernel PCA, with the
  label projections ``omega_r^2 / ||y||^2`` on the eigenvectors;
* learning curves ``eps(P) ~ P^-beta`` and the predicted exponents.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .features import MetricInputError, check_features

__all__ = [
    "AlphaNet",
    "AlphaRun",
    "KernelPCA",
    "LearningCurveFit",
    "compression_ratio",
    "cylinder",
    "fit_learning_curve",
    "kernel_pca",
    "ntk_gram",
    "predicted_exponents",
    "stripe",
    "train_alpha_model",
]

STRIPE_BOUNDS = (-0.3, 1.18549)


def _check_size(n, name, low=1):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < low:
        raise MetricInputError(f"{name} must be an integer >= {low}; got {n!r}")
    return int(n)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def stripe(n: int, d: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The stripe model: ``x ~ N(0, I_d)``, ``y = +1`` iff ``-0.3 < x_1 < 1.18549``, else ``-1``.

    The bounds make the classes balanced (``Phi(1.18549) - Phi(-0.3) = 0.5``);
    only the first coordinate is informative.

    Returns
    -------
    X : ndarray of shape (n, d), dtype=np.float64
    y : ndarray of shape (n,), dtype=np.float64, values in {-1, +1}
    """
    n, d = _check_size(n, "n"), _check_size(d, "d")
    X = np.random.default_rng(seed).standard_normal((n, d))
    lo, hi = STRIPE_BOUNDS
    y = np.where((X[:, 0] > lo) & (X[:, 0] < hi), 1.0, -1.0)
    return X, y


def cylinder(n: int, d: int, d_par: int = 2, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The cylinder model: ``y = +1`` iff ``||x_par|| > r``, ``x_par`` the first ``d_par`` coordinates.

    ``r`` is the median of the chi distribution with ``d_par`` degrees of
    freedom, so the classes are balanced: ``r = sqrt(2 ln 2)`` for ``d_par = 2``.

    Returns
    -------
    X : ndarray of shape (n, d), dtype=np.float64
    y : ndarray of shape (n,), dtype=np.float64, values in {-1, +1}
    """
    from scipy.stats import chi2

    n, d, d_par = _check_size(n, "n"), _check_size(d, "d"), _check_size(d_par, "d_par")
    if d_par > d:
        raise MetricInputError(f"d_par must be at most d = {d}; got {d_par}")
    X = np.random.default_rng(seed).standard_normal((n, d))
    r = math.sqrt(chi2.ppf(0.5, d_par))
    y = np.where(np.linalg.norm(X[:, :d_par], axis=1) > r, 1.0, -1.0)
    return X, y


# ---------------------------------------------------------------------------
# compression ratio
# ---------------------------------------------------------------------------
def _informative_mask(informative, d: int) -> np.ndarray:
    if isinstance(informative, (int, np.integer)) and not isinstance(informative, bool):
        k = int(informative)
        if not 1 <= k < d:
            raise MetricInputError(
                f"informative = {k} leading coordinates leaves no uninformative one among d = {d}; "
                f"it must be from 1 to {d - 1}"
            )
        mask = np.zeros(d, dtype=bool)
        mask[:k] = True
        return mask
    arr = np.asarray(informative)
    if arr.dtype == bool:
        if arr.shape != (d,):
            raise MetricInputError(f"informative as a mask must have shape ({d},); got {arr.shape}")
        mask = arr.copy()
    else:
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or arr.size == 0:
            raise MetricInputError("informative must be a count, a boolean mask or a list of coordinate indices")
        if arr.min() < -d or arr.max() >= d:
            raise MetricInputError(f"informative holds coordinates outside 0..{d - 1}")
        mask = np.zeros(d, dtype=bool)
        mask[arr] = True
    if mask.all() or not mask.any():
        raise MetricInputError("informative must select some but not all coordinates")
    return mask


def compression_ratio(omega, informative=1) -> float:
    """``lambda = mean_{j inf} w_j / mean_{j uninf} w_j`` with ``w_j = sqrt(mean_n omega_nj^2)``.

    Parameters
    ----------
    omega : array_like of shape (h, d)
        First-layer weights, one row per neuron (``nn.Linear.weight`` layout).
    informative : int, boolean mask (d,) or sequence of int, default 1
        The informative input coordinates: a count ``k`` means the first ``k``.

    Returns
    -------
    float
        About 1 for isotropic weights; it grows as the first layer aligns
        with the informative directions (``~ sqrt(P)`` in the feature regime).

    Examples
    --------
    >>> compression_ratio(np.array([[3.0, 1.0, 1.0], [-3.0, 1.0, -1.0]]))
    3.0
    """
    W = check_features(omega, "omega")
    mask = _informative_mask(informative, W.shape[1])
    w = np.sqrt((W ** 2).mean(axis=0))
    den = w[~mask].mean()
    if den == 0:
        raise MetricInputError("the uninformative weights are all zero; lambda is infinite")
    return float(w[mask].mean() / den)


# ---------------------------------------------------------------------------
# the alpha-scaled one-hidden-layer model
# ---------------------------------------------------------------------------
_ACTS = {
    "relu": lambda z: math.sqrt(2.0) * torch.relu(z),
    "tanh": torch.tanh,
    "softplus": torch.nn.functional.softplus,
}


class AlphaNet(nn.Module):
    """``f(x) = (1/h) sum_n beta_n sigma(omega_n . x / sqrt(d) + b_n)``, one output per sample.

    Parameters
    ----------
    d : int
        Input dimension.
    h : int
        Hidden neurons.
    activation : {"relu", "tanh", "softplus"}, default "relu"
        ``"relu"`` is ``sqrt(2) max(0, z)`` (unit second moment on a standard
        Gaussian), as in the reference code.
    seed : int, default 0
        All parameters start standard Gaussian from this seed.

    Attributes
    ----------
    omega : Parameter of shape (h, d)
    bias : Parameter of shape (h,)
    beta : Parameter of shape (h,)
    """

    def __init__(self, d: int, h: int, activation: str = "relu", *, seed: int = 0,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        d, h = _check_size(d, "d"), _check_size(h, "h")
        if activation not in _ACTS:
            raise MetricInputError(f"activation must be one of {sorted(_ACTS)}; got {activation!r}")
        gen = torch.Generator().manual_seed(int(seed))
        self.omega = nn.Parameter(torch.randn(h, d, generator=gen, dtype=dtype))
        self.bias = nn.Parameter(torch.randn(h, generator=gen, dtype=dtype))
        self.beta = nn.Parameter(torch.randn(h, generator=gen, dtype=dtype))
        self.d, self.h, self.activation = d, h, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.omega.T / math.sqrt(self.d) + self.bias
        return _ACTS[self.activation](z) @ self.beta / self.h

    def extra_repr(self) -> str:
        return f"d={self.d}, h={self.h}, activation={self.activation!r}"


@dataclass
class AlphaRun:
    """A trained alpha-model.

    Attributes
    ----------
    model : AlphaNet
        The trained network ``f(w, .)``.
    model0 : AlphaNet
        A frozen copy at initialisation, ``f(w0, .)``.
    alpha : float
    history : pandas.DataFrame
        One row per recorded step: ``step``, ``t`` (the summed step sizes,
        gradient-flow time), ``train_loss``, ``train_error``, ``test_error``
        (NaN without a test set), ``margin_fraction`` (training points with
        ``F y >= 1``) and ``lambda`` (compression ratio of ``omega``).
    converged : bool
        Every training margin ``F y`` reached 1 before ``steps`` ran out.
    """

    model: AlphaNet
    model0: AlphaNet
    alpha: float
    history: object
    converged: bool

    def predict(self, X) -> np.ndarray:
        """``F(x) = alpha (f(w, x) - f(w0, x))``, shape (N,), float64."""
        x = torch.as_tensor(np.asarray(X, dtype=np.float64))
        with torch.no_grad():
            return (self.alpha * (self.model(x) - self.model0(x))).numpy()


def _pm1(y, n, name):
    lab = np.asarray(y, dtype=np.float64).reshape(-1)
    if lab.shape != (n,):
        raise MetricInputError(f"{name} must have shape ({n},); got {np.shape(y)}")
    if not np.isin(lab, (-1.0, 1.0)).all():
        raise MetricInputError(f"{name} must hold labels -1 and +1 (binary task)")
    return lab


def train_alpha_model(X, y, *, alpha: float, h: int = 200, steps: int = 2000, informative=1,
                      X_test=None, y_test=None, activation: str = "relu", seed: int = 0,
                      loss_beta: float = 20.0, max_dout: float = 0.1, n_records: int = 40,
                      stop_at_margin: bool = True) -> AlphaRun:
    """Train ``F = alpha (f(w, .) - f(w0, .))`` by full-batch gradient descent with an adaptive step.

    The loss is the reference code's soft hinge,
    ``L = mean_i softplus_beta(1 - F(x_i) y_i) / alpha`` (``beta = loss_beta``),
    whose gradient does not depend on ``alpha`` at initialisation; small
    ``alpha`` must move the weights far to reach margin 1 (feature regime),
    large ``alpha`` barely moves them (lazy regime). The step ``dt`` grows by
    10 % after an accepted step and halves whenever a step would raise the
    loss or change any output ``F`` by more than ``max_dout`` (a discretised
    gradient flow, like the reference dynamics without momentum).

    Parameters
    ----------
    X : array_like of shape (P, d)
    y : array_like of shape (P,), labels in {-1, +1}
    alpha : float
        Output scale, ``> 0``.
    h : int, default 200
        Hidden width.
    steps : int, default 2000
        Maximum number of accepted steps.
    informative : int, mask or indices, default 1
        Informative coordinates for ``lambda`` (see :func:`compression_ratio`).
    X_test, y_test : optional held-out set for ``test_error``.
    activation : see :class:`AlphaNet`.
    seed : int, default 0
        Initial weights.
    loss_beta : float, default 20
        Sharpness of the soft hinge.
    max_dout : float, default 0.1
        Largest output change accepted in one step.
    n_records : int, default 40
        Log-spaced steps (0 and the last included) recorded in the history.
    stop_at_margin : bool, default True
        Stop once every training point has ``F y >= 1``.

    Returns
    -------
    AlphaRun
    """
    import pandas as pd

    from ..train import log_steps

    A = check_features(X, "X")
    P, d = A.shape
    lab = _pm1(y, P, "y")
    if not (isinstance(alpha, (int, float)) and np.isfinite(alpha) and alpha > 0):
        raise MetricInputError(f"alpha must be a positive finite number; got {alpha!r}")
    steps = _check_size(steps, "steps")
    _informative_mask(informative, d)
    has_test = X_test is not None
    if has_test != (y_test is not None):
        raise MetricInputError("X_test and y_test must be given together")
    if has_test:
        At = check_features(X_test, "X_test")
        if At.shape[1] != d:
            raise MetricInputError(f"X_test must have {d} columns like X; got {At.shape[1]}")
        lab_t = _pm1(y_test, len(At), "y_test")
        xt, yt = torch.from_numpy(At), torch.from_numpy(lab_t)
    x, yy = torch.from_numpy(A), torch.from_numpy(lab)
    model = AlphaNet(d, h, activation, seed=seed)
    model0 = copy.deepcopy(model).requires_grad_(False)
    with torch.no_grad():
        out0 = model0(x)
        out0_t = model0(xt) if has_test else None
    params = list(model.parameters())
    alpha = float(alpha)

    def evaluate():
        F = alpha * (model(x) - out0)
        loss = torch.nn.functional.softplus(1 - F * yy, beta=loss_beta).mean() / alpha
        return loss, F

    record_at = set(log_steps(steps, n_records)) if steps > 1 else {0, 1}
    rows = []

    def record(step, t, loss, F):
        with torch.no_grad():
            test_err = float("nan")
            if has_test:
                Ft = alpha * (model(xt) - out0_t)
                test_err = float((Ft * yt <= 0).double().mean())
            margins = (F * yy).detach()
            rows.append({
                "step": step, "t": t, "train_loss": loss.item(),
                "train_error": float((margins <= 0).double().mean()),
                "test_error": test_err, "margin_fraction": float((margins >= 1).double().mean()),
                "lambda": compression_ratio(model.omega.detach().numpy(), informative),
            })

    dt, t = float(h), 0.0
    loss, F = evaluate()
    record(0, 0.0, loss, F)
    converged = bool((F.detach() * yy >= 1).all())
    step = 0
    while step < steps and not (converged and stop_at_margin):
        grads = torch.autograd.grad(loss, params)
        saved = [p.detach().clone() for p in params]
        for _ in range(200):
            with torch.no_grad():
                for p, s, g in zip(params, saved, grads):
                    p.copy_(s - dt * g)
            new_loss, new_F = evaluate()
            if new_loss.item() <= loss.item() and (new_F - F).detach().abs().max().item() <= max_dout:
                break
            dt /= 2
        else:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
            break
        step += 1
        t += dt
        dt *= 1.1
        loss, F = new_loss, new_F
        converged = bool((F.detach() * yy >= 1).all())
        if step in record_at or step == steps or (converged and stop_at_margin):
            record(step, t, loss, F)
    return AlphaRun(model, model0, alpha, pd.DataFrame(rows), converged)


# ---------------------------------------------------------------------------
# NTK and kernel PCA
# ---------------------------------------------------------------------------
def ntk_gram(model: nn.Module, X, *, chunk_size: int = 256, output: int | None = None,
             params: Sequence[str] | None = None) -> np.ndarray:
    """Neural tangent kernel Gram matrix ``Theta = J J^T`` of a scalar-output module, float64.

    ``J[i] = d f(w, x_i) / d w`` over the chosen parameters. Parameters are
    streamed one tensor at a time and per-sample gradients computed
    (``torch.func.vmap`` of ``grad``) in chunks of ``chunk_size`` points, so
    memory is ``P x P`` for the Gram matrix plus ``P x (largest parameter
    tensor)`` for one block of ``J``. The module runs as a float64 copy in
    eval mode; the caller's module is not changed.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch (B, ...) to (B,) or (B, k) outputs.
    X : array_like of shape (P, ...)
    chunk_size : int, default 256
        Points per vectorised gradient call.
    output : int, optional
        Which output to differentiate when the module has several; required then.
    params : sequence of str, optional
        Names of the parameters to include (default: all of them, frozen
        ones too, so a frozen copy of the initial network gives the initial NTK).

    Returns
    -------
    ndarray of shape (P, P), dtype=np.float64
        Symmetric positive semi-definite. For the alpha-model, the NTK of
        ``F = alpha (f - f0)`` is ``alpha^2`` times the NTK of ``model``.
    """
    from torch.func import functional_call, grad, vmap

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    chunk_size = _check_size(chunk_size, "chunk_size")
    A = np.asarray(X, dtype=np.float64)
    if A.ndim < 2 or len(A) == 0:
        raise MetricInputError(f"X must have shape (P, ...) with P >= 1; got {A.shape}")
    if not np.isfinite(A).all():
        raise MetricInputError("X contains NaN or inf")
    m = copy.deepcopy(model).to(torch.float64).eval()
    for sub in m.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks"):
            getattr(sub, attr).clear()
    named = {k: v.detach() for k, v in m.named_parameters()}
    if params is not None:
        unknown = [p for p in params if p not in named]
        if unknown:
            raise MetricInputError(f"params {unknown} are not parameters of the model; choose from {list(named)}")
        chosen = list(params)
    else:
        chosen = list(named)
    if not chosen:
        raise MetricInputError("the model has no parameters")
    x = torch.from_numpy(A)
    with torch.no_grad():
        probe = m(x[:1]).reshape(-1)
    if probe.numel() > 1 and output is None:
        raise MetricInputError(f"the model has {probe.numel()} outputs per sample; pass output= the index "
                               f"to differentiate")
    if output is not None and not -probe.numel() <= output < probe.numel():
        raise MetricInputError(f"output must index one of {probe.numel()} outputs; got {output}")

    K = np.zeros((len(A), len(A)))
    for name in chosen:
        others = {k: v for k, v in named.items() if k != name}

        def f_one(p, xi, name=name, others=others):
            out = functional_call(m, {**others, name: p}, (xi[None],)).reshape(-1)
            return out[output if output is not None else 0]

        per_sample = vmap(grad(f_one), in_dims=(None, 0))
        J = np.empty((len(A), named[name].numel()))
        for s in range(0, len(A), chunk_size):
            J[s:s + chunk_size] = per_sample(named[name], x[s:s + chunk_size]).reshape(
                len(x[s:s + chunk_size]), -1).numpy()
        K += J @ J.T
    return (K + K.T) / 2


@dataclass(frozen=True)
class KernelPCA:
    """Eigen-decomposition of a kernel and the labels' weight on each eigenvector.

    Attributes
    ----------
    eigenvalues : ndarray of shape (P,)
        ``lambda_r``, descending.
    eigenvectors : ndarray of shape (P, P)
        Column ``r`` is ``phi_r`` (unit norm).
    omega : ndarray of shape (P,)
        ``omega_r = phi_r^T y``.
    fraction : ndarray of shape (P,)
        ``omega_r^2 / ||y||^2``; sums to 1.
    cumulative : ndarray of shape (P,)
        ``cumsum(fraction)``: the share of the labels in the top ``r + 1`` components.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    omega: np.ndarray
    fraction: np.ndarray
    cumulative: np.ndarray

    def rank_for(self, share: float) -> int:
        """Smallest number of top components holding ``share`` of ``||y||^2``."""
        return int(np.searchsorted(self.cumulative, share - 1e-12) + 1)


def kernel_pca(K, y, *, center: bool = False) -> KernelPCA:
    """Kernel PCA of a Gram matrix with the label projections ``omega_r^2 / ||y||^2``.

    Parameters
    ----------
    K : array_like of shape (P, P)
        Symmetric kernel matrix (e.g. :func:`ntk_gram`); symmetrised as
        ``(K + K^T)/2`` after a check that it is symmetric to 1e-8 relative.
    y : array_like of shape (P,)
        Labels or targets on the same points; not all zero.
    center : bool, default False
        Double-centre ``K`` (``H K H`` with ``H = I - 11^T/P``) first, as in
        textbook kernel PCA; the paper uses the raw NTK.

    Returns
    -------
    KernelPCA
    """
    Ka = np.asarray(K, dtype=np.float64)
    if Ka.ndim != 2 or Ka.shape[0] != Ka.shape[1] or len(Ka) == 0:
        raise MetricInputError(f"K must be a square (P, P) matrix; got shape {Ka.shape}")
    if not np.isfinite(Ka).all():
        raise MetricInputError("K contains NaN or inf")
    scale = max(np.abs(Ka).max(), np.finfo(float).tiny)
    if np.abs(Ka - Ka.T).max() > 1e-8 * scale:
        raise MetricInputError("K must be symmetric; it differs from its transpose by "
                               f"{np.abs(Ka - Ka.T).max():.3g}")
    yv = np.asarray(y, dtype=np.float64).reshape(-1)
    if yv.shape != (len(Ka),):
        raise MetricInputError(f"y must have shape ({len(Ka)},) to match K; got {np.shape(y)}")
    if not np.isfinite(yv).all():
        raise MetricInputError("y contains NaN or inf")
    norm2 = float(yv @ yv)
    if norm2 == 0:
        raise MetricInputError("y is all zeros; its projections cannot be normalised")
    Ks = (Ka + Ka.T) / 2
    if center:
        Ks = Ks - Ks.mean(0, keepdims=True) - Ks.mean(1, keepdims=True) + Ks.mean()
    vals, vecs = np.linalg.eigh(Ks)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    omega = vecs.T @ yv
    frac = omega ** 2 / norm2
    return KernelPCA(vals, vecs, omega, frac, np.cumsum(frac))


# ---------------------------------------------------------------------------
# learning curves
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LearningCurveFit:
    """``eps(P) = prefactor * P^-beta``, fitted by least squares in log-log.

    Attributes
    ----------
    beta : float
    prefactor : float
    stderr : float
        Standard error of ``beta`` (NaN with two points).
    """

    beta: float
    prefactor: float
    stderr: float

    def predict(self, P) -> np.ndarray:
        return self.prefactor * np.asarray(P, dtype=np.float64) ** (-self.beta)


def fit_learning_curve(P, errors) -> LearningCurveFit:
    """Fit the learning-curve exponent ``beta`` from test errors at training-set sizes ``P``.

    Parameters
    ----------
    P : array_like of shape (k,)
        Training-set sizes, positive, at least two distinct.
    errors : array_like of shape (k,)
        Test errors, positive (a zero error has no logarithm: drop or
        average it with more test points first).

    Returns
    -------
    LearningCurveFit
    """
    p = np.asarray(P, dtype=np.float64).reshape(-1)
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if p.shape != e.shape:
        raise MetricInputError(f"P and errors must have the same length; got {p.shape} and {e.shape}")
    if not (np.isfinite(p).all() and np.isfinite(e).all()):
        raise MetricInputError("P and errors must be finite")
    if (p <= 0).any() or (e <= 0).any():
        raise MetricInputError("P and errors must be positive to fit a power law in log-log")
    if len(np.unique(p)) < 2:
        raise MetricInputError("need at least two distinct training-set sizes")
    lx, ly = np.log(p), np.log(e)
    slope, icpt = np.polyfit(lx, ly, 1)
    stderr = float("nan")
    if len(p) > 2:
        resid = ly - (slope * lx + icpt)
        stderr = float(np.sqrt(resid @ resid / (len(p) - 2) / ((lx - lx.mean()) ** 2).sum()))
    return LearningCurveFit(float(-slope), float(np.exp(icpt)), stderr)


def predicted_exponents(d: int, d_par: int = 1) -> dict:
    """Predicted learning-curve exponents of Paccolat et al. for the stripe / cylinder models.

    ``beta_lazy = d / (3d - 2)``; ``beta_feature = (2d - 1) / (3d - 2)`` for
    ``d_par = 1`` (stripe) and ``(d + d_perp / 2) / (3d - 2)`` for ``d_par > 1``,
    ``d_perp = d - d_par``.

    Returns
    -------
    dict
        ``{"lazy": float, "feature": float}``.

    Examples
    --------
    >>> predicted_exponents(5)
    {'lazy': 0.38461538461538464, 'feature': 0.6923076923076923}
    """
    d, d_par = _check_size(d, "d", 2), _check_size(d_par, "d_par")
    if d_par >= d:
        raise MetricInputError(f"d_par must be smaller than d = {d}; got {d_par}")
    lazy = d / (3 * d - 2)
    feature = (2 * d - 1) / (3 * d - 2) if d_par == 1 else (d + (d - d_par) / 2) / (3 * d - 2)
    return {"lazy": lazy, "feature": feature}
