"""A small GELU transformer grokking modular addition, with the vertex local complexity across its run.

The exact method needs a piecewise-affine net; the published vertex estimator
needs only forward passes, and ``rg.local_complexity(module, X,
method="vertex", layers=[...])`` runs it through forward hooks on any module.
Here: one-hot pairs of a + b mod 31 (60% of the pairs for training) go
through a token embedding (a bias-free Linear on each one-hot token) plus a
learned position embedding, one pre-LayerNorm block (4-head attention and a
GELU MLP 64 -> 256 -> 64) and a final LayerNorm and unembedding read at
the last position: about 55,000 parameters. Full-batch AdamW (lr 3e-3,
weight decay 1, betas 0.9 / 0.98), cross-entropy.

At log-spaced checkpoints the vertex LC (P = 25, r = 0.25) is measured on 100
train, test and uniform random points, on the GELU's input (the MLP's hidden
pre-activations) and on the attention output.

Writes ``grokking_transformer.png`` and ``grokking_transformer_summary.txt``
into ``--out``.

Run: ``python examples/grokking_transformer.py`` (about 8 minutes on 2 cores shared with other jobs).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from grokking_modular import first_step  # noqa: E402
from three_phases_digits import lc_phases  # noqa: E402

OUT = Path(__file__).parent / "output"


class TinyTransformer(nn.Module):
    """One pre-LayerNorm transformer block on the two one-hot tokens of (a, b); logits of a op b mod p."""

    def __init__(self, p: int, d: int = 64, heads: int = 4, d_mlp: int = 256):
        super().__init__()
        self.p = p
        self.embed = nn.Linear(p, d, bias=False)
        self.pos = nn.Parameter(torch.randn(2, d) * 0.02)
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, d_mlp), nn.GELU(), nn.Linear(d_mlp, d))
        self.ln_f = nn.LayerNorm(d)
        self.unembed = nn.Linear(d, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(len(x), 2, self.p)) + self.pos
        a = self.ln1(h)
        h = h + self.attn(a, a, a, need_weights=False)[0]
        h = h + self.mlp(self.ln2(h))
        return self.unembed(self.ln_f(h[:, -1]))


def run(out=OUT, *, p: int = 31, fraction: float = 0.6, steps: int = 2000, n_checkpoints: int = 20,
        n_points: int = 100, radius: float = 0.25, lr: float = 3e-3, weight_decay: float = 1.0, seed: int = 0,
        log=print) -> dict:
    """Train, measure and write the figure and the summary; returns the summary as a dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import relugeo as rg
    from relugeo import data, train
    from relugeo.io import save_figure, write_text

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    Xtr, ytr, Xte, yte = data.modular(p, "add", fraction, seed=seed)
    torch.manual_seed(seed)
    model = TinyTransformer(p)
    n_params = sum(t.numel() for t in model.parameters())
    rng = np.random.default_rng(seed)
    sets = {"train": Xtr[rng.choice(len(Xtr), n_points, replace=False)],
            "test": Xte[rng.choice(len(Xte), n_points, replace=False)],
            "random": data.uniform_like(Xtr, n_points, seed=seed)}
    ckpt = set(train.log_steps(steps, n_checkpoints))
    X = torch.as_tensor(Xtr)
    y = torch.as_tensor(ytr)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    acc_rows, lc_rows = [], []
    layers = {"GELU input": "mlp.1", "attention output": "attn"}
    t_lc = 0.0
    log(f"training a {n_params:,}-parameter GELU transformer on a + b mod {p}, {steps} steps")
    for step in range(steps + 1):
        if step % 10 == 0 or step in ckpt:
            with torch.no_grad():
                model.eval()
                tr = float((model(X).argmax(1) == y).float().mean())
                te = float((model(torch.as_tensor(Xte)).argmax(1) == torch.as_tensor(yte)).float().mean())
                model.train()
            acc_rows.append((step, tr, te))
        if step in ckpt:
            t1 = time.perf_counter()
            frozen = copy.deepcopy(model)
            row = {"step": step}
            for name, pts in sets.items():
                res = rg.local_complexity(frozen, pts, radius, method="vertex", n_directions=25, seed=seed,
                                          layers=list(layers.values()))
                for j, key in enumerate(layers):
                    row[(key, name)] = float(res.neurons[:, j].mean())
            lc_rows.append(row)
            t_lc += time.perf_counter() - t1
            log(f"  step {step}: train accuracy {acc_rows[-1][1]:.3f}, test accuracy {acc_rows[-1][2]:.3f}, "
                f"vertex LC (GELU input, train) {row[('GELU input', 'train')]:.1f}")
        if step == steps:
            break
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    t_all = time.perf_counter() - t0
    acc = np.array(acc_rows)
    s_train = first_step(acc[:, 0], acc[:, 1], 0.99)
    s_test = first_step(acc[:, 0], acc[:, 2], 0.90)
    lc_steps = np.array([r["step"] for r in lc_rows])
    early = s_train if s_train is not None else steps
    lines = ["GELU transformer grokking modular addition: vertex LC through forward hooks",
             f"task          a + b mod {p}, one-hot tokens, {len(Xtr)} train / {len(Xte)} test pairs",
             f"network       1 pre-LN block, d 64, 4 heads, GELU MLP 256, {n_params:,} parameters; full-batch "
             f"AdamW lr {lr:g} wd {weight_decay:g}, {steps} steps, seed {seed}",
             f"accuracy      train passes 99% at step {s_train}, test passes 90% at step {s_test} (every 10 steps); "
             f"final train {acc[-1, 1]:.3f}, test {acc[-1, 2]:.3f}",
             f"vertex LC     P = 25, r = {radius:g}, {n_points} points per set, {len(lc_rows)} checkpoints; "
             f"first minimum looked for up to step {early}",
             "  initial / first min (step) / max after it (step) / final"]
    for key in layers:
        for name in sets:
            q = lc_phases(lc_steps, [r[(key, name)] for r in lc_rows], early=early)
            lines.append(f"  {key:<16} {name:<7} {q['initial']:7.2f} / {q['min']:7.2f} ({q['min_step']:>5}) / "
                         f"{q['max']:7.2f} ({q['max_step']:>5}) / {q['final']:7.2f}")
    lines += ["", f"time          {t_all:.0f} s in all, of which vertex LC {t_lc:.0f} s"]

    fig, axes = plt.subplots(3, 1, figsize=(8, 8.5), sharex=True, layout="constrained")
    colors = {"train": "#0072B2", "test": "#D55E00", "random": "#009E73"}
    axes[0].plot(acc[:, 0], acc[:, 1], color=colors["train"], label="train accuracy")
    axes[0].plot(acc[:, 0], acc[:, 2], color=colors["test"], label="test accuracy")
    axes[0].set_ylabel("accuracy")
    axes[0].set_title(f"GELU transformer ({n_params:,} parameters) on a + b mod {p}")
    for ax, key in zip(axes[1:], layers):
        for name, c in colors.items():
            ax.plot(lc_steps, [r[(key, name)] for r in lc_rows], "-o", ms=3, color=c, label=name)
        ax.set_ylabel(f"vertex LC, {key}")
    axes[-1].set_xlabel("training step")
    for ax in axes:
        ax.set_xscale("symlog", linthresh=10.0)
        ax.set_xlim(0, steps)
        ax.grid(alpha=0.3, lw=0.5)
        for s in (s_train, s_test):
            if s is not None:
                ax.axvline(s, color="0.5", lw=1, ls="--")
        ax.legend(frameon=False, fontsize=8)
    path = save_figure(fig, out / "grokking_transformer.png", dpi=100)
    plt.close(fig)
    write_text("\n".join(lines) + "\n", out / "grokking_transformer_summary.txt")
    log("\n".join(lines))
    log(f"wrote {path}")
    return {"train_99": s_train, "test_90": s_test, "lc": lc_rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--checkpoints", type=int, default=20)
    ap.add_argument("--points", type=int, default=100, help="points per set")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    run(a.out, steps=a.steps, n_checkpoints=a.checkpoints, n_points=a.points, lr=a.lr, seed=a.seed)


if __name__ == "__main__":
    main()
