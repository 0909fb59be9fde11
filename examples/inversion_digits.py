"""Class-manifold inversion and stragglers (Ciceri et al., Nature Machine Intelligence 2024), on digits.

The paper's reference setup, shrunk to a laptop: parity labels (even / odd) of
sklearn's bundled 8x8 digits (1,000 training images, standardised), an MLP
64-20-2 with tanh, full-batch gradient descent with learning rate 0.1 on the
cross-entropy. Every epoch the hidden layer's features of the training set are
projected to the unit sphere and each class's radius is measured. The radii
first shrink (the classes separate), then grow again (they re-entangle): the
inversion. The training points still misclassified at the inversion are the
stragglers; a second seed shows how much the two straggler sets overlap
compared with chance (hypergeometric z-score).

    python examples/inversion_digits.py            # about 30 s on 2 cores
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from relugeo import metrics as M
from relugeo.data import digits
from relugeo.io import save_figure
from relugeo.viz import plot_inversion

OUT = Path(__file__).parent / "output"
EPOCHS = 500
BURN_IN = 20
SMOOTH = 21


def run(seed: int, X: np.ndarray, y: np.ndarray) -> dict:
    """Train one network; return per-epoch radii, centroid distance, errors and logits."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 20), nn.Tanh(), nn.Linear(20, 2)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    radii, dist, err, knn, logits = [], [], [], [], []
    for epoch in range(EPOCHS + 1):
        H = M.layer_features(model, X)[0]
        g = M.class_geometry(H, y)
        radii.append(g.radii)
        dist.append(g.distances[0, 1])
        out = M.model_outputs(model, X)
        logits.append(out)
        err.append(np.mean(out.argmax(1) != y))
        if epoch % 10 == 0:
            knn.append((epoch, M.knn_same_class(H, y, k=10)))
        if epoch < EPOCHS:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
    return {"radii": np.array(radii), "distance": np.array(dist), "error": np.array(err),
            "knn": np.array(knn), "logits": logits}


def inversion(res: dict) -> dict:
    """Raw and smoothed inversion epochs per class and of the mean radius."""
    R = res["radii"]
    raw = [M.inversion_epoch(R[:, c], burn_in=BURN_IN) for c in range(R.shape[1])]
    smooth = [M.inversion_epoch(R[:, c], burn_in=BURN_IN, smooth=SMOOTH) for c in range(R.shape[1])]
    mean = M.inversion_epoch(R.mean(1), burn_in=BURN_IN, smooth=SMOOTH)
    return {"raw": raw, "smoothed": smooth, "mean": mean}


def main() -> None:
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest
    X, digit, _, _ = digits()
    X = X.astype(np.float64)
    sd = X.std(0)
    X = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    y = (digit % 2).astype(np.int64)  # 0 = even, 1 = odd

    runs = [run(seed, X, y) for seed in (0, 1)]
    inv = [inversion(r) for r in runs]
    strag = [M.stragglers(r["logits"][i["mean"]], y) for r, i in zip(runs, inv)]
    overlap = M.straggler_overlap(strag[0], strag[1], len(y))

    r0, i0 = runs[0], inv[0]
    epochs = np.arange(EPOCHS + 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    smoothed = np.stack([M.smooth_curve(r0["radii"][:, c], SMOOTH) for c in range(2)], 1)
    plot_inversion(epochs, r0["radii"], distances=r0["distance"], inversion=i0["smoothed"],
                   classes=["even", "odd"], smoothed=smoothed, ax=ax)
    ax.set_title("tanh 64-20-2 on digit parity: hidden-layer class radii")
    ax2.plot(epochs, r0["error"], color="#0072B2", label="training error")
    ax2.plot(r0["knn"][:, 0], 1 - r0["knn"][:, 1], color="#D55E00", label="1 - kNN same-class fraction (k=10)")
    ax2.axvline(i0["mean"], color="0.3", ls="--", lw=1)
    ax2.annotate(f"{len(strag[0])} stragglers at t* = {i0['mean']}", (i0["mean"], r0["error"][i0["mean"]]),
                 textcoords="offset points", xytext=(6, 20), fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.legend(frameon=False, fontsize=8)
    ax2.grid(alpha=0.3, lw=0.5)
    ax2.set_title(f"straggler overlap of two seeds: {overlap.overlap} (null {overlap.expected:.1f}), "
                  f"z = {overlap.z:.1f}", fontsize=9)
    path = save_figure(fig, OUT / "inversion_digits.png", dpi=110)
    plt.close(fig)

    for seed, (r, i, s) in enumerate(zip(runs, inv, strag)):
        R = r["radii"]
        print(f"seed {seed}: radii even/odd at epoch 0: {R[0, 0]:.3f}/{R[0, 1]:.3f}, "
              f"minimum {R[:, 0].min():.3f}/{R[:, 1].min():.3f}, at epoch {EPOCHS}: {R[-1, 0]:.3f}/{R[-1, 1]:.3f}")
        print(f"  inversion epoch even/odd: raw {i['raw']}, smoothed {i['smoothed']}; mean radius {i['mean']}")
        print(f"  training error at t*: {r['error'][i['mean']]:.3f} ({len(s)} stragglers); "
              f"at epoch {EPOCHS}: {r['error'][-1]:.3f}")
    print(f"straggler overlap: {overlap.overlap} of {overlap.size_a} and {overlap.size_b}, "
          f"expected {overlap.expected:.2f} +- {overlap.std:.2f} by chance, z = {overlap.z:.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
