"""Grokking on modular addition: local complexity and within-class variance against the jump in test accuracy.

Power et al.'s task: a + b mod p (p = 31), 60% of the 961 pairs for training,
one-hot pairs in (an embedding is a linear layer on them, so the net stays
piecewise affine and exact local complexity applies). A ReLU MLP 62-128-128-31,
full-batch AdamW (lr 3e-3, weight decay 1), cross-entropy, 6,000 steps: train
accuracy saturates within a few hundred steps, test accuracy jumps thousands of
steps later. At 40 log-spaced checkpoints, :func:`relugeo.track` measures exact
2-D LC (neurons and regions met by the neighbourhood) and the vertex estimator
(P = 25) at radius r = 0.25 on 100 train, test and uniform random points, and
:func:`relugeo.metrics.checkpoint_metrics` the neural-collapse measures (NC1,
within-class variance on train and held-out pairs; Sakamoto & Sato 2025).

Writes ``grokking_modular.png`` (accuracy, LC and WCV on one figure with the
two accuracy thresholds marked), ``grokking_modular.csv`` (every measure per
step) and ``grokking_modular_summary.txt`` into ``--out``.

Run: ``python examples/grokking_modular.py`` (8 to 12 minutes on 2 cores shared with other jobs;
``--steps 1000 --points 30`` for a quick look, which stops before the jump).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from three_phases_digits import lc_phases  # noqa: E402

OUT = Path(__file__).parent / "output"


def first_step(steps, values, threshold: float):
    """First step whose value reaches ``threshold`` (None if none does)."""
    hit = np.flatnonzero(np.asarray(values) >= threshold)
    return int(np.asarray(steps)[hit[0]]) if len(hit) else None


def run(out=OUT, *, p: int = 31, fraction: float = 0.6, width: int = 128, depth: int = 2, steps: int = 6000,
        n_checkpoints: int = 40, n_points: int = 100, radius: float = 0.25, lr: float = 3e-3,
        weight_decay: float = 1.0, seed: int = 0, log=print) -> dict:
    """Train, measure and write the figure, the table and the summary; returns the summary as a dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    import relugeo as rg
    from relugeo import data, train
    from relugeo.io import save_figure, write_table, write_text
    from relugeo.metrics import checkpoint_metrics
    from relugeo.nets import build_module

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # small tensors: one thread is fastest on a shared machine
    Xtr, ytr, Xte, yte = data.modular(p, "add", fraction, seed=seed)
    arch = f"mlp:{2 * p}-{'-'.join([str(width)] * depth)}-{p}:relu"
    torch.manual_seed(seed)
    model = build_module(arch)
    ckpt_steps = train.log_steps(steps, n_checkpoints)
    dense = range(0, steps + 1, max(1, steps // 400))
    with tempfile.TemporaryDirectory() as tmp:
        log(f"training {arch} on a + b mod {p} ({len(Xtr)} train / {len(Xte)} test pairs), {steps} steps")
        history = train.fit(model, Xtr, ytr, steps=steps, lr=lr, weight_decay=weight_decay, batch_size=None,
                            loss="ce", seed=seed, checkpoint_steps=ckpt_steps, record_steps=dense, out_dir=tmp,
                            eval_data=(Xte, yte))
        t_train = time.perf_counter() - t0
        acc = pd.DataFrame(history).set_index("step")
        log(f"  {t_train:.0f} s; train accuracy {acc['train_accuracy'].iloc[-1]:.3f}, "
            f"test accuracy {acc['test_accuracy'].iloc[-1]:.3f}")
        files = [Path(h["path"]) for h in history if h["path"] is not None]
        t1 = time.perf_counter()
        sets = {"train": (Xtr, ytr), "test": (Xte, yte), "random": data.uniform_like(Xtr, n_points, seed=seed)}
        res = rg.track(files, sets, slices=0, points=n_points, radius=radius, n_directions=25, seed=seed,
                       progress=lambda d, n: log(f"  track: {d}/{n} checkpoints") if d % 10 == 0 else None)
        t_track = time.perf_counter() - t1
        t1 = time.perf_counter()
        nc = checkpoint_metrics(files, Xtr, ytr, metrics=["nc"], X_test=Xte, y_test=yte)
        t_nc = time.perf_counter() - t1
    nc = nc.pivot_table(index="step", columns="metric", values="value")
    nc.index = nc.index.astype(int)

    # -- one table per step ----------------------------------------------------------------------
    measures = {"lc_exact": "exact LC", "regions_exact": "regions", "lc_vertex": "vertex LC"}
    cols = {}
    for m in measures:
        piv = res.pivot(m)
        for name in piv.columns:
            cols[f"{m}_{name}"] = piv[name]
    table = pd.DataFrame(cols)
    table.index = table.index.astype(int)
    table = table.join(nc[["nc1", "trace_ratio", "wcv", "wcv_test", "bcv"]]).join(
        acc[["loss", "test_loss", "train_accuracy", "test_accuracy"]])
    table.index.name = "step"
    write_table(table.reset_index(), out / "grokking_modular.csv")

    # -- numbers -------------------------------------------------------------------------------
    s_train = first_step(acc.index, acc["train_accuracy"], 0.99)
    s_test = first_step(acc.index, acc["test_accuracy"], 0.90)
    early = s_train if s_train is not None else steps
    lines = ["grokking on modular addition: LC, WCV and accuracy",
             f"task          a + b mod {p}, one-hot pairs, {len(Xtr)} train / {len(Xte)} test (fraction {fraction})",
             f"network       {arch}, full-batch AdamW lr {lr:g} wd {weight_decay:g}, cross-entropy, {steps} steps, "
             f"seed {seed}",
             f"accuracy      train passes 99% at step {s_train}, test passes 90% at step {s_test} "
             f"(recorded every {dense.step} steps); final train {acc['train_accuracy'].iloc[-1]:.3f}, "
             f"test {acc['test_accuracy'].iloc[-1]:.3f}",
             f"points        {n_points} per set (train, test, uniform random in the box of the inputs), "
             f"r = {radius:g}, vertex P = 25", "",
             f"LC phases (mean over points; first minimum looked for up to step {early}, where train accuracy "
             "passes 99%):", "  initial / first min (step) / max after it (step) / min after the max (step) / final"]
    phases = {}
    for m in measures:
        for name in ("train", "test", "random"):
            v = table[f"{m}_{name}"]
            q = lc_phases(table.index, v, early=early)
            after = v.loc[q["max_step"]:]
            q.update(low_step=int(after.idxmin()), low=float(after.min()))
            phases[(m, name)] = q
            lines.append(f"  {measures[m]:<9} {name:<7} {q['initial']:7.2f} / {q['min']:7.2f} ({q['min_step']:>4}) / "
                         f"{q['max']:7.2f} ({q['max_step']:>4}) / {q['low']:7.2f} ({q['low_step']:>4}) / "
                         f"{q['final']:7.2f}   drop {q['first_drop']:6.1%}  rise {q['rise']:6.1%}  "
                         f"descent {1 - q['low'] / q['max']:6.1%}")
    wcv = {}
    lines += ["", "within-class variance of the hidden features (train / held-out): initial, maximum (step), "
              "step where it falls below half the maximum, final"]
    for col, name in (("wcv", "train"), ("wcv_test", "held-out")):
        v = table[col]
        s_max = int(v.idxmax())
        after = v.loc[s_max:]
        half = after.index[after.to_numpy() <= v.max() / 2]
        wcv[name] = {"max_step": s_max, "half_step": int(half[0]) if len(half) else None}
        lines.append(f"  {name:<9} {v.iloc[0]:.4g}, {v.max():.4g} ({s_max}), "
                     f"{wcv[name]['half_step']}, {v.iloc[-1]:.4g}")
    lines.append(f"  NC1 {table['nc1'].iloc[0]:.4g} -> minimum {table['nc1'].min():.4g} at step "
                 f"{int(table['nc1'].idxmin())} -> {table['nc1'].iloc[-1]:.4g}")

    # -- the figure ----------------------------------------------------------------------------
    fig, axes = plt.subplots(3, 1, figsize=(8, 9.5), sharex=True, layout="constrained")
    colors = {"train": "#0072B2", "test": "#D55E00", "random": "#009E73"}
    ax = axes[0]
    ax.plot(acc.index, acc["train_accuracy"], color=colors["train"], label="train accuracy")
    ax.plot(acc.index, acc["test_accuracy"], color=colors["test"], label="test accuracy")
    ax.set_ylabel("accuracy")
    ax.set_title(f"grokking: {arch} on a + b mod {p}, {fraction:.0%} of pairs for training")
    ax = axes[1]
    for name, c in colors.items():
        ax.plot(table.index, table[f"lc_exact_{name}"], "-o", ms=3, color=c, label=f"exact 2-D LC, {name}")
        ax.plot(table.index, table[f"lc_vertex_{name}"], "--", color=c, label=f"vertex LC (P = 25), {name}")
    ax.set_ylabel(f"neurons met, r = {radius:g}")
    ax = axes[2]
    ax.plot(table.index, table["wcv"], "-o", ms=3, color=colors["train"], label="WCV, train")
    ax.plot(table.index, table["wcv_test"], "-o", ms=3, color=colors["test"], label="WCV, held-out")
    ax.set_yscale("log")
    ax.set_ylabel("within-class variance")
    ax2 = ax.twinx()
    ax2.plot(table.index, table["nc1"], ":", color="0.3", label="NC1 (right)")
    ax2.set_yscale("log")
    ax2.set_ylabel("NC1")
    ax.set_xlabel("training step")
    for a in axes:
        a.set_xscale("symlog", linthresh=10.0)
        a.set_xlim(0, steps)
        a.grid(alpha=0.3, lw=0.5)
        for s, label in ((s_train, "train 99%"), (s_test, "test 90%")):
            if s is not None:
                a.axvline(s, color="0.5", lw=1, ls="--")
        a.legend(frameon=False, fontsize=7, loc="best", ncol=2 if a is axes[1] else 1)
    for s, label in ((s_train, "train 99%"), (s_test, "test 90%")):
        if s is not None:
            axes[0].annotate(label, (s, 0.5), rotation=90, fontsize=8, ha="right", va="center", color="0.3")
    path = save_figure(fig, out / "grokking_modular.png", dpi=100)
    plt.close(fig)
    lines += ["", f"time          training {t_train:.0f} s, LC tracking {t_track:.0f} s, NC metrics {t_nc:.0f} s, "
              f"total with figure {time.perf_counter() - t0:.0f} s (one torch thread, NUMBA_NUM_THREADS as set)"]
    write_text("\n".join(lines) + "\n", out / "grokking_modular_summary.txt")
    log("\n".join(lines))
    log(f"wrote {path}")
    return {"train_99": s_train, "test_90": s_test, "phases": phases, "wcv": wcv, "table": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--p", type=int, default=31)
    ap.add_argument("--fraction", type=float, default=0.6)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=2, help="hidden layers")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--checkpoints", type=int, default=40)
    ap.add_argument("--points", type=int, default=100, help="points per set")
    ap.add_argument("--radius", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    run(a.out, p=a.p, fraction=a.fraction, width=a.width, depth=a.depth, steps=a.steps, lr=a.lr,
        n_checkpoints=a.checkpoints, n_points=a.points, radius=a.radius, seed=a.seed)


if __name__ == "__main__":
    main()
