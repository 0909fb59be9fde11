"""The built-in demo: train on sklearn's digits, then partition and measure LC.

Nothing is downloaded: the digits ship with scikit-learn.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import data, train
from .io import save_figure, write_table, write_text
from .nets import build_module, load
from .regions import Slice, local_complexity, partition


#: The files a demo run writes into its directory (and the checkpoints under checkpoints/).
DEMO_FILES = ("partition.png", "lc.png", "lc.csv", "summary.txt")


def clear_previous_run(out: Path) -> int:
    """Make ``out`` ready for a demo run: remove a previous run's files, refuse anything else.

    Returns the number of files removed. Raises ValueError, naming them, when
    ``out`` holds files the demo does not write, so runs never mix and no
    file of the user's is touched.
    """
    if not out.exists():
        return 0
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file; the demo writes into a directory")
    ckpt = out / "checkpoints"
    own = [out / name for name in DEMO_FILES if (out / name).is_file()]
    own += sorted(ckpt.glob("step_*.pt")) if ckpt.is_dir() else []
    foreign = [p for p in out.iterdir() if p not in own and p != ckpt]
    foreign += [p for p in ckpt.iterdir() if p not in own] if ckpt.is_dir() else []
    if foreign:
        names = ", ".join(str(p.relative_to(out)) for p in sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ValueError(f"--out {out} holds files the demo does not write ({names}); choose a new or empty directory")
    for p in own:
        p.unlink()
    return len(own)


def run_demo(
    out_dir,
    *,
    steps: int = 2000,
    n_checkpoints: int = 10,
    n_points: int = 100,
    radius: float = 0.25,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict:
    """Train a 64-200-200-200-10 ReLU MLP on digits and write the demo's outputs.

    ``out_dir`` must be new, empty, or hold only a previous demo run's files,
    which are removed first (see :func:`clear_previous_run`).

    Writes into ``out_dir``: ``checkpoints/step_*.pt``, ``partition.png`` (the
    exact partition of the slice through three training digits, final
    checkpoint), ``lc.png`` and ``lc.csv`` (exact 2-D LC and the vertex
    estimator at train / test / random points over the checkpoints), and
    ``summary.txt``. Returns the summary as a dict.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from .viz import plot_lc, plot_lc_layers, plot_partition

    t_start = time.perf_counter()
    out = Path(out_dir)
    removed = clear_previous_run(out)
    if removed:
        log(f"removed the {removed} files of a previous demo run in {out}")
    out.mkdir(parents=True, exist_ok=True)
    Xtr, ytr, Xte, yte = data.digits(seed=seed)
    arch = "mlp:64-200-200-200-10:relu"
    torch.manual_seed(seed)
    model = build_module(arch)
    ckpts = train.log_steps(steps, n_checkpoints)
    log(f"training {arch} on digits for {steps} steps ({len(ckpts)} checkpoints) ...")
    history = train.fit(model, Xtr, ytr, steps=steps, seed=seed, checkpoint_steps=ckpts,
                        out_dir=out / "checkpoints")
    test_acc = float((model(torch.as_tensor(Xte)).argmax(1).numpy() == yte).mean())
    log(f"  final train accuracy {history[-1]['train_accuracy']:.3f}, test accuracy {test_acc:.3f}")

    rng = np.random.default_rng(seed)
    pts = {
        "train": Xtr[rng.choice(len(Xtr), n_points, replace=False)],
        "test": Xte[rng.choice(len(Xte), n_points, replace=False)],
        "random": data.uniform_like(Xtr, n_points, seed=seed),
    }
    X = np.concatenate(list(pts.values()))
    groups = np.repeat(list(pts), n_points)
    frames = []
    t_lc = 0.0
    for rec in history:
        net = load(rec["path"])
        for method in ("exact", "vertex"):
            lc = local_complexity(net, X, radius, method=method, dim=2, n_directions=25, seed=seed, groups=groups)
            t_lc += lc.seconds
            df = lc.to_frame()
            df.insert(0, "step", rec["step"])
            frames.append(df)
        exact_train = frames[-2][frames[-2]["group"] == "train"]
        log(f"  step {rec['step']:>6}: exact LC at train points {exact_train['lc'].mean():7.2f}, "
            f"regions {exact_train['regions'].mean():8.1f}")
    table = pd.concat(frames, ignore_index=True)
    write_table(table, out / "lc.csv")

    net = load(history[-1]["path"])
    classes = [int(np.flatnonzero(ytr == c)[0]) for c in (0, 3, 7)]
    sl = Slice.through(*Xtr[classes], pad=0.1)
    part = partition(net, sl)
    report = part.verify()
    log(f"partition of the slice through training digits {classes}: {part.n_regions} regions in "
        f"{part.seconds:.2f} s ({part.n_regions / part.seconds:,.0f} regions/s), verified: {report['ok']}")

    names = [f"digit {d}" for d in range(10)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 7.6), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.12, h_pad=0.08)
    plot_partition(part, axes[0], color_by="class", anchor_labels=ytr[classes], class_names=names,
                   title="predicted class; edges coloured by layer")
    plot_partition(part, axes[1], color_by="density", edges=False, anchor_labels=ytr[classes], class_names=names,
                   legend=False, colorbar="bottom", title="region size (small regions dark)")
    fig.suptitle(f"Exact partition of the plane through three training digits: {part.n_regions:,} activation "
                 f"regions\n{arch}, step {history[-1]['step']}", fontsize=12)
    save_figure(fig, out / "partition.png")
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    plot_lc(table[table.method == "exact"], axes[0])
    axes[0].set_title(f"exact 2-D LC (neurons met), r = {radius}")
    plot_lc(table[table.method == "vertex"], axes[1])
    axes[1].set_title(f"vertex estimator, P = 25, r = {radius}")
    steps_shown = [history[0]["step"], history[-1]["step"]]
    plot_lc_layers(table[table.method == "exact"], axes[2], step=steps_shown)
    axes[2].set_title(f"exact LC per layer, steps {steps_shown[0]} (light) and {steps_shown[1]}")
    fig.tight_layout()
    save_figure(fig, out / "lc.png")
    plt.close(fig)

    final = table[(table.step == history[-1]["step"])].groupby(["method", "group"])["lc"].mean()
    summary = {
        "architecture": arch,
        "steps": steps,
        "train_accuracy": history[-1]["train_accuracy"],
        "test_accuracy": test_acc,
        "slice_regions": part.n_regions,
        "slice_seconds": part.seconds,
        "lc_seconds": t_lc,
        "total_seconds": time.perf_counter() - t_start,
    }
    lines = [
        "relugeo demo",
        f"network        {arch}, {steps} AdamW steps on digits (MSE on one-hot)",
        f"accuracy       train {summary['train_accuracy']:.3f}, test {test_acc:.3f}",
        f"partition      {part.n_regions} regions on the slice through 3 training digits "
        f"({part.seconds:.2f} s), verified {report['ok']}",
        f"LC (r = {radius}, final checkpoint, mean over {n_points} points per set):",
    ]
    for (method, group), v in final.items():
        lines.append(f"  {method:<7} {group:<7} {v:8.2f}")
    lines.append(f"LC time        {t_lc:.1f} s for {len(history)} checkpoints x {len(X)} points x 2 methods")
    lines.append(f"total time     {summary['total_seconds']:.1f} s")
    lines.append("files          partition.png, lc.png, lc.csv, checkpoints/")
    write_text("\n".join(lines) + "\n", out / "summary.txt")
    log("\n".join(lines))
    return summary
