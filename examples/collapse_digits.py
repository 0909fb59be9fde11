"""Neural collapse over training (Papyan et al. 2020; Sakamoto & Sato 2025), on digits.

An MLP 64-128-128-10 (ReLU) is trained on 1,000 of sklearn's bundled digits
with relugeo's training helper (AdamW, MSE on one-hot targets, weight decay
0.1), saving 20 log-spaced checkpoints. ``relugeo.metrics.checkpoint_metrics``
then measures, at every checkpoint, the penultimate features' NC1 (Papyan's
Tr(Sigma_W Sigma_B^+)/C), the trace ratio WCV/BCV, NC2-NC4 and the
within-class variance on the 797 held-out digits. The same table comes from

    relugeo metrics CKPT_DIR --data digits.npz --metrics nc --out metrics.csv

    python examples/collapse_digits.py             # about 40 s on 2 cores
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from relugeo.data import digits
from relugeo.io import save_figure, write_table
from relugeo.metrics import checkpoint_metrics
from relugeo.nets import build_module
from relugeo.train import fit, log_steps
from relugeo.viz import plot_collapse

OUT = Path(__file__).parent / "output"
STEPS = 6000


def main() -> None:
    torch.set_num_threads(1)  # small tensors: one thread is fastest
    X, y, X_test, y_test = digits()
    torch.manual_seed(0)
    model = build_module("mlp:64-128-128-10:relu")
    with tempfile.TemporaryDirectory() as tmp:
        history = fit(model, X, y, steps=STEPS, lr=1e-3, weight_decay=0.1, loss="mse",
                      checkpoint_steps=log_steps(STEPS, 20), out_dir=tmp)
        table = checkpoint_metrics([h["path"] for h in history], X, y, metrics=["nc"],
                                   X_test=X_test, y_test=y_test)
    write_table(table, OUT / "collapse_digits.csv")
    wide = table.pivot_table(index="step", columns="metric", values="value")

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    plot_collapse(table, ["nc1", "trace_ratio", "rnc1", "nc2_max_angle", "nc3", "nc4"], ax=ax)
    ax.set_title("neural collapse of MLP 64-128-128-10 on digits")
    steps = wide.index.to_numpy(dtype=float)
    ax2.plot(steps, wide["wcv"], "-o", ms=3, color="#0072B2", label="WCV, training set")
    ax2.plot(steps, wide["wcv_test"], "-o", ms=3, color="#D55E00", label="WCV, held-out set")
    ax2.plot(steps, wide["bcv"], "--", color="0.4", label="BCV, training set")
    ax2.set_xscale("symlog", linthresh=1.0)
    ax2.set_xlim(left=0)
    ax2.set_yscale("log")
    ax2.set_xlabel("training step")
    ax2.set_ylabel("variance of penultimate features")
    ax2.legend(frameon=False, fontsize=8)
    ax2.grid(alpha=0.3, which="both", lw=0.5)
    ax2.set_title("within-class variance: up while the features grow, then down")
    path = save_figure(fig, OUT / "collapse_digits.png", dpi=100)
    plt.close(fig)

    first, last = wide.iloc[0], wide.iloc[-1]
    for name in ("nc1", "nc1_pinv", "trace_ratio", "rnc1", "wcv", "wcv_test", "bcv", "nc2_equinorm",
                 "nc2_max_angle", "nc3", "nc4"):
        print(f"{name:>14}: step 0 {first[name]:.4g} -> step {STEPS} {last[name]:.4g} "
              f"(minimum {wide[name].min():.4g} at step {wide[name].idxmin()}, "
              f"maximum {wide[name].max():.4g} at step {wide[name].idxmax()})")
    print(f"training accuracy at step {STEPS}: {history[-1]['train_accuracy']:.3f}")
    print(f"wrote {path} and {OUT / 'collapse_digits.csv'}")


if __name__ == "__main__":
    main()
