"""The three phases of local complexity on sklearn's digits, exact in 3-D (and 4-D) neighbourhoods.

The protocol of ``three_phases_digits.py`` (REFERENCE.md): digits / 16, seeded
split 1,000 train / 797 test; MLP 64-200-200-200-10 ReLU, float32; AdamW lr
1e-3, weight decay 0.01, MSE on one-hot targets, batch 200, 30,000 steps, 40
log-spaced checkpoints. At every checkpoint, on the first ``--points`` train and
test points and as many uniform random points, hidden layers only, r = 0.25:

- exact LC in the P-dimensional cross-polytope (``method="exact", dim=P``), and
- the vertex estimator with the same P (``method="vertex", n_directions=P``),
  on the same frame, so that the two compare point by point.

Every checkpoint checks, per point, that exact neurons >= vertex neurons and
that layer 1 agrees. Writes into ``--out``: ``lc_kd.csv`` (one row per point,
checkpoint, method and P), ``lc_kd.png`` (LC over training, exact beside vertex;
LC and regions against P at the last checkpoint) and ``summary_kd.txt``.

Run: ``python examples/three_phases_digits_kd.py --out three-phases-kd`` (add
``--dims 3,4`` for P = 4 too; ``--steps 3000 --points 20`` for a quick look;
``--checkpoints-from three-phases/checkpoints`` reuses the checkpoints of a
``three_phases_digits.py`` run instead of training).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from three_phases_digits import lc_phases  # noqa: E402


def run(out, *, steps: int = 30_000, n_checkpoints: int = 40, n_points: int = 100, dims=(3,), radius: float = 0.25,
        seed: int = 0, checkpoints=None, by_dim_points: int = 30, log=print) -> dict:
    """Train (or read ``checkpoints``, a directory of ``step_*.pt``), measure every checkpoint, write the
    table, figure and summary; returns the summary dict. The panel against P uses every
    ``len(X) // by_dim_points``-th point."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    import torch

    import relugeo as rg
    from relugeo import data, train
    from relugeo.io import write_table, write_text
    from relugeo.nets import build_module

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    Xtr, ytr, Xte, yte = data.digits(n_train=1000, seed=seed)
    arch = "mlp:64-200-200-200-10:relu"
    if checkpoints is None:
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        model = build_module(arch)
        ckpt_steps = train.log_steps(steps, n_checkpoints)
        log(f"training {arch} on digits: {steps} steps, {len(ckpt_steps)} checkpoints")
        history = train.fit(model, Xtr, ytr, steps=steps, lr=1e-3, weight_decay=0.01, batch_size=200, loss="mse",
                            seed=seed, checkpoint_steps=ckpt_steps, out_dir=out / "checkpoints",
                            eval_data=(Xte, yte))
    else:
        # the checkpoints of a finished `three_phases_digits.py` run (the same protocol)
        files = sorted(Path(checkpoints).glob("step_*.pt"), key=lambda f: int(f.stem.split("_")[-1]))
        if not files:
            raise SystemExit(f"no step_*.pt checkpoints in {checkpoints}")
        final = rg.load(files[-1])
        acc = {name: float((final.forward(Xs).argmax(axis=1) == ys).mean())
               for name, Xs, ys in (("train", Xtr, ytr), ("test", Xte, yte))}
        history = [{"step": int(f.stem.split("_")[-1]), "path": f} for f in files]
        history[-1].update(train_accuracy=acc["train"], test_accuracy=acc["test"])
        steps = history[-1]["step"]
        log(f"read {len(files)} checkpoints from {checkpoints}")
    t_train = time.perf_counter() - t0
    log(f"  {t_train:.0f} s; test accuracy {history[-1]['test_accuracy']:.3f}")

    sets = {"train": Xtr[:n_points], "test": Xte[:n_points], "random": data.uniform_like(Xtr, n_points, seed=seed)}
    X = np.concatenate(list(sets.values()))
    groups = np.repeat(list(sets), [len(v) for v in sets.values()])
    rows, t_exact, t_vertex = [], {P: 0.0 for P in dims}, {P: 0.0 for P in dims}
    below = layer1 = 0
    last = {}
    for h in history:
        net = rg.load(h["path"])
        for P in dims:
            t1 = time.perf_counter()
            ex = rg.local_complexity(net, X, radius, dim=P, groups=groups, seed=seed)
            t_exact[P] += time.perf_counter() - t1
            t1 = time.perf_counter()
            vx = rg.local_complexity(net, X, radius, method="vertex", n_directions=P, groups=groups, seed=seed)
            t_vertex[P] += time.perf_counter() - t1
            below += int((ex.neurons < vx.neurons).any(axis=1).sum())
            layer1 += int((ex.neurons[:, 0] != vx.neurons[:, 0]).sum())
            for res in (ex, vx):
                df = res.to_frame()
                df["step"] = h["step"]
                rows.append(df)
            last[P] = (ex, vx)
        log(f"  step {h['step']}: exact LC at P = {', '.join(map(str, dims))} done")
    table = pd.concat(rows, ignore_index=True)
    write_table(table, out / "lc_kd.csv")

    # -- numbers -------------------------------------------------------------------------------
    lines = [f"three phases of local complexity on digits, exact in P-dimensional neighbourhoods (P = "
             f"{', '.join(map(str, dims))})",
             f"network       {arch}, AdamW lr 1e-3 wd 0.01, MSE one-hot, batch 200, {steps} steps, seed {seed}",
             f"checkpoints   {len(history)}" + ("" if checkpoints is None else
                                                 " (of a three_phases_digits.py run, same protocol)"),
             f"accuracy      train {history[-1]['train_accuracy']:.3f}, test {history[-1]['test_accuracy']:.3f}",
             f"points        {n_points} per set (train, test, uniform random), r = {radius:g}, hidden layers",
             "", "LC per point set (mean over points): initial / first min (step) / max (step) / final",
             "  first drop = 1 - min/initial, rise = max/min - 1, final drop = 1 - final/max"]
    phases = {}
    for P in dims:
        for method in ("exact", "vertex"):
            sub = table[(table["dim"] == P) & (table["method"] == method)]
            piv = sub.pivot_table(index="step", columns="group", values="lc", aggfunc="mean")
            for name in sets:
                p = lc_phases(piv.index.to_numpy(), piv[name].to_numpy())
                phases[(P, method, name)] = p
                lines.append(
                    f"  P={P} {method:<6} {name:<7} {p['initial']:7.2f} / {p['min']:7.2f} ({p['min_step']:>5}) / "
                    f"{p['max']:7.2f} ({p['max_step']:>5}) / {p['final']:7.2f}   drop {p['first_drop']:6.1%}  "
                    f"rise {p['rise']:6.1%}  final drop {p['final_drop']:6.1%}")
        sub = table[(table["dim"] == P) & (table["method"] == "exact")]
        reg = sub.groupby("step")["regions"].mean()
        lines.append(f"  P={P} exact regions per neighbourhood (mean): {reg.iloc[0]:.1f} at step 0, "
                     f"max {reg.max():.1f} (step {reg.idxmax()}), {reg.iloc[-1]:.1f} at the end")
    ok = {k: p["first_drop"] >= 0.15 and p["rise"] >= 0.30 and p["final_drop"] >= 0.20 for k, p in phases.items()}
    lines += [f"  protocol thresholds (drop >= 15%, rise >= 30%, final drop >= 20%) met by {sum(ok.values())} of "
              f"{len(ok)} curves",
              "", f"checks over {len(history)} checkpoints x {len(X)} points x {len(dims)} P: points where an exact "
                  f"layer count is below the vertex count: {below}; points where layer 1 differs: {layer1}",
              "", "time          {} {:.0f} s; ".format("training" if checkpoints is None else "reading checkpoints",
                                                    t_train)
              + "; ".join(f"P={P}: exact {t_exact[P]:.0f} s, vertex {t_vertex[P]:.1f} s "
                          f"({len(history) * len(X) / t_exact[P]:.0f} exact neighbourhoods/s)" for P in dims)]

    # -- figure --------------------------------------------------------------------------------
    exact, vertex, Xs = figure(table, history[-1]["path"], X, dims, radius, seed, by_dim_points, out / "lc_kd.png")
    means = lambda results, attr: [round(float(getattr(r, attr).mean()), 2) for r in results]  # noqa: E731
    lines.append(f"last checkpoint, {len(Xs)} points, mean neurons met for P = {[r.dim for r in exact]}: exact "
                 f"{means(exact, 'lc')}, vertex {means(vertex, 'lc')}; exact regions {means(exact, 'regions')}")
    lines.append(f"total with figures {time.perf_counter() - t0:.0f} s")
    write_text("\n".join(lines) + "\n", out / "summary_kd.txt")
    log("\n".join(lines))
    return {"phases": phases, "below": below, "layer1": layer1, "table": table}


def figure(table, last_checkpoint, X, dims, radius, seed, by_dim_points, path):
    """``lc_kd.png``: LC over training per P (exact beside vertex), and at the last checkpoint neurons
    and regions met against P = 2..max(dims, 4) on every ``len(X) // by_dim_points``-th point.
    Returns the exact and vertex results against P and those points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import relugeo as rg
    from relugeo.io import save_figure
    from relugeo.viz import plot_lc, plot_lc_by_dim

    fig, axes = plt.subplots(1, len(dims) + 2, figsize=(6 * len(dims) + 8, 4.5), layout="constrained",
                             gridspec_kw={"width_ratios": [1.4] * len(dims) + [1, 1]})
    for ax, P in zip(axes, dims):
        sub = table[table["dim"] == P]
        plot_lc(sub[["step", "group", "method", "lc"]], ax, spread=False)
        ax.set_title(f"LC at r = {radius:g} in {P}-D neighbourhoods: exact and vertex estimator", fontsize=9)
    more = list(range(2, max(max(dims), 4) + 1))
    net = rg.load(last_checkpoint)
    Xs = X[:: max(1, len(X) // by_dim_points)]
    exact = [rg.local_complexity(net, Xs, radius, dim=P, seed=seed) for P in more]
    vertex = [rg.local_complexity(net, Xs, radius, method="vertex", n_directions=P, seed=seed) for P in more]
    plot_lc_by_dim(exact, vertex, axes[-2])
    axes[-2].set_title(f"last checkpoint: neurons met against P ({len(Xs)} points)", fontsize=9)
    plot_lc_by_dim(exact, ax=axes[-1], value="regions")
    axes[-1].set_yscale("log")
    axes[-1].set_title("last checkpoint: exact regions met against P", fontsize=9)
    save_figure(fig, path)
    plt.close(fig)
    return exact, vertex, Xs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("three-phases-kd"))
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--checkpoints", type=int, default=40)
    ap.add_argument("--points", type=int, default=100, help="points per set")
    ap.add_argument("--dims", default="3", help="comma-separated P, e.g. 3,4")
    ap.add_argument("--radius", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoints-from", type=Path, default=None,
                    help="skip training: read the step_*.pt of a three_phases_digits.py run (its checkpoints/)")
    a = ap.parse_args()
    run(a.out, steps=a.steps, n_checkpoints=a.checkpoints, n_points=a.points,
        dims=tuple(int(t) for t in a.dims.split(",")), radius=a.radius, seed=a.seed, checkpoints=a.checkpoints_from)


if __name__ == "__main__":
    main()
