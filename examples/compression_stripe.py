"""Geometric compression in the stripe model (Paccolat et al., J. Stat. Mech. 2021).

Inputs x ~ N(0, I_5); the label depends on x_1 only (+1 inside the stripe
-0.3 < x_1 < 1.18549). A one-hidden-layer network of width 200 is trained as
F = alpha (f(w, x) - f(w0, x)) with a soft hinge loss, once in the feature
regime (alpha = 1e-3) and once in the lazy regime (alpha = 1e3). In the
feature regime the first layer compresses the four uninformative directions:
the compression ratio lambda grows far above 1, and the labels concentrate on
the top eigenvectors of the final NTK. In the lazy regime lambda stays at its
initial value and the NTK does not change. Learning curves over training-set
sizes give the exponents beta, printed next to the predicted ones.

    python examples/compression_stripe.py          # about 1 minute on 2 cores
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from relugeo import metrics as M
from relugeo.io import save_figure
from relugeo.viz import plot_compression, plot_kernel_pca

OUT = Path(__file__).parent / "output"
D, H, P = 5, 200, 512
REGIMES = {"feature (alpha=1e-3)": 1e-3, "lazy (alpha=1e3)": 1e3}
CURVE_P = (64, 128, 256, 512, 1024)


def main() -> None:
    torch.set_num_threads(1)  # small tensors: one thread is fastest
    X, y = M.stripe(P, D, seed=0)
    Xt, yt = M.stripe(4000, D, seed=1)
    Xk, yk = Xt[:400], yt[:400]  # the fixed point set of the kernel PCA

    runs = {name: M.train_alpha_model(X, y, alpha=a, h=H, steps=3000, X_test=Xt, y_test=yt)
            for name, a in REGIMES.items()}
    first = next(iter(runs.values()))
    spectra = {"initial NTK": M.kernel_pca(M.ntk_gram(first.model0, Xk), yk)}
    for name, run in runs.items():
        spectra[f"final NTK, {name.split()[0]}"] = M.kernel_pca(M.ntk_gram(run.model, Xk), yk)

    curves = {}
    for name, a in REGIMES.items():
        errs = []
        for p in CURVE_P:
            Xp, yp = M.stripe(p, D, seed=10 + p)
            res = M.train_alpha_model(Xp, yp, alpha=a, h=H, steps=2000, X_test=Xt, y_test=yt, n_records=2)
            errs.append(res.history["test_error"].iloc[-1])
        curves[name] = (np.array(errs), M.fit_learning_curve(CURVE_P, errs))
    predicted = M.predicted_exponents(D)

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
    plot_compression({k: r.history for k, r in runs.items()}, ax=axes[0, 0])
    axes[0, 0].set_title(f"stripe model, d = {D}, h = {H}, P = {P}")
    plot_kernel_pca(spectra, max_rank=400, axes=axes[1])
    axes[1, 0].set_title("label weight on NTK eigenvectors (400 test points)")
    axes[1, 1].set_title("cumulative label weight")
    ax = axes[0, 1]
    for n, (name, (errs, fit)) in enumerate(curves.items()):
        color = ["#0072B2", "#D55E00"][n]
        regime = name.split()[0]
        ax.plot(CURVE_P, errs, "o", color=color)
        ax.plot(CURVE_P, fit.predict(CURVE_P), "-", color=color,
                label=f"{regime}: beta = {fit.beta:.2f} (predicted {predicted[regime]:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training-set size P")
    ax.set_ylabel("test error")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    ax.set_title("learning curves")
    path = save_figure(fig, OUT / "compression_stripe.png", dpi=100)
    plt.close(fig)

    for name, run in runs.items():
        h = run.history
        print(f"{name}: lambda {h['lambda'].iloc[0]:.3f} -> {h['lambda'].iloc[-1]:.3f} "
              f"(max {h['lambda'].max():.2f}) over {int(h['step'].iloc[-1])} steps; "
              f"train error {h['train_error'].iloc[-1]:.3f}, test error {h['test_error'].iloc[-1]:.3f}")
    for name, res in spectra.items():
        print(f"{name}: top eigenvector holds {res.fraction[0]:.3f} of ||y||^2, top 10 hold "
              f"{res.cumulative[9]:.3f}; 90 % needs {res.rank_for(0.9)} components")
    for name, (errs, fit) in curves.items():
        regime = name.split()[0]
        print(f"{name}: test errors {np.round(errs, 4).tolist()} at P = {list(CURVE_P)}; "
              f"beta = {fit.beta:.2f} +- {fit.stderr:.2f} (predicted {predicted[regime]:.3f})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
