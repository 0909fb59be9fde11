"""How region density scales with the number of neurons, at initialisation and after training.

Run from the repository root (about two minutes on 2 cores)::

    python bench/scaling.py
    python bench/report.py

It writes ``bench/scaling.json`` and ``bench/scaling.png``; ``bench/report.py``
puts the figure and the fitted exponents into ``bench/RESULTS.md``.

Hanin & Rolnick (ICML 2019, NeurIPS 2019) predict that at initialisation the
expected number of regions per unit volume of a k-dimensional slice grows like
``(#neurons)^k`` (per unit length along a line: linearly), with a constant that
does not depend on the depth. Their experiments use He-normal weights
(variance 2 / fan_in) and biases N(0, 1e-6), trained with Adam at learning
rate 1e-3; this script uses the same, on scikit-learn's digits (64 inputs,
10 classes) instead of MNIST:

- nets 64-w-...-w-10 (ReLU) for every width w and depth d below, ``seeds`` of each;
- 2-D: the squares through fixed triplets of digits (``Slice.through``, pad 0.1),
  regions per unit area; 1-D: the segments between fixed pairs of digits,
  regions per unit length; every count is the exact partition's;
- "init": He-normal initialisation; "trained": the same net after ``steps``
  Adam steps (cross-entropy, batches of 200) on all 1,797 digits; "torch
  default": PyTorch's own initialisation (``nn.Linear``'s kaiming-uniform
  with a = sqrt(5) and uniform biases), the one ``relugeo bench`` uses;
- exponents: least squares of log density on log #neurons over the widths,
  per depth; the prefactor at the predicted exponent, ``C_k = geometric mean
  of density / N^k``, shows whether depth matters at equal N;
- cost per region: the median of 3 timed partitions of each 2-D slice (after
  a warm-up), in microseconds per region, against width and depth.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import relugeo as rg
from relugeo.benchmark import digits, machine_info
from relugeo.io import save_figure, write_text
from relugeo.nets import build_module
from relugeo.train import fit

HERE = Path(__file__).resolve().parent
PHASES = ("init", "trained", "torch default")
LABELS = {"init": "He init", "trained": "trained", "torch default": "PyTorch default init"}


def he_init(model: nn.Sequential, seed: int) -> nn.Sequential:
    """He-normal weights (variance 2 / fan_in) and N(0, 1e-6) biases, drawn from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.normal_(0.0, (2.0 / layer.in_features) ** 0.5, generator=gen)
                layer.bias.normal_(0.0, 1e-3, generator=gen)
    return model


def domains(X: np.ndarray, n_slices: int, n_segments: int, seed: int = 0):
    """Fixed 2-D squares through triplets and 1-D segments between pairs of distinct digits."""
    rng = np.random.default_rng(seed)
    squares = [rg.Slice.through(*X[rng.choice(len(X), 3, replace=False)], pad=0.1) for _ in range(n_slices)]
    segments = [rg.Slice.segment(*X[rng.choice(len(X), 2, replace=False)]) for _ in range(n_segments)]
    return squares, segments


def timed_partition(net: rg.PWANet, sl: rg.Slice, rounds: int) -> tuple[int, float]:
    """Region count and median seconds of ``rounds`` partitions (after the first, untimed)."""
    n = rg.partition(net, sl).n_regions
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        rg.partition(net, sl)
        times.append(time.perf_counter() - t0)
    return n, float(np.median(times))


def measure(net: rg.PWANet, squares, segments, rounds: int) -> list[dict]:
    """Density rows of one net: one per 2-D square, one per segment."""
    rows = []
    for i, sl in enumerate(squares):
        n, s = timed_partition(net, sl, rounds)
        rows.append({"k": 2, "domain": i, "regions": n, "measure": sl.area, "density": n / sl.area,
                     "seconds": s, "us_per_region": 1e6 * s / n})
    for i, sl in enumerate(segments):
        n = rg.partition(net, sl).n_regions
        rows.append({"k": 1, "domain": i, "regions": n, "measure": sl.area, "density": n / sl.area})
    return rows


def fit_loglog(n: np.ndarray, density: np.ndarray, k: int) -> dict:
    """Slope and intercept of log density on log n, their standard errors, R^2, and C_k at slope k."""
    x, y = np.log(n), np.log(density)
    A = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    dof = max(len(x) - 2, 1)
    cov = (resid @ resid / dof) * np.linalg.inv(A.T @ A)
    r2 = 1.0 - (resid @ resid) / max(((y - y.mean()) ** 2).sum(), 1e-300)
    return {"exponent": float(coef[0]), "exponent_se": float(np.sqrt(cov[0, 0])),
            "log_intercept": float(coef[1]), "r2": float(r2),
            "prefactor_at_k": float(np.exp(np.mean(y - k * x)))}


def fits(rows: list[dict]) -> list[dict]:
    """One fit per (phase, k, depth) on the per-net mean densities, plus every depth pooled."""
    out = []
    for phase in PHASES:
        for k in (1, 2):
            sel = [r for r in rows if r["phase"] == phase and r["k"] == k]
            if not sel:
                continue
            for depth in sorted({r["depth"] for r in sel}) + ["all"]:
                pts = {}
                for r in sel:
                    if depth == "all" or r["depth"] == depth:
                        pts.setdefault((r["depth"], r["width"], r["seed"]), []).append(r["density"])
                n = np.array([d * w for d, w, _ in pts], dtype=float)
                dens = np.array([np.mean(v) for v in pts.values()])
                out.append({"phase": phase, "k": k, "depth": depth, "points": len(n), **fit_loglog(n, dens, k)})
    return out


def train(model: nn.Sequential, X: np.ndarray, y: np.ndarray, steps: int, seed: int) -> float:
    """Adam, learning rate 1e-3, cross-entropy, batches of 200; returns the training accuracy."""
    fit(model, X, y, steps=steps, lr=1e-3, weight_decay=0.0, loss="ce", optimizer="adam", seed=seed)
    with torch.no_grad():
        return float((model(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy() == y).mean())


def run(widths, depths, seeds, steps, n_slices, n_segments, rounds, log=print) -> dict:
    from sklearn.datasets import load_digits

    X = digits(1797)
    y = load_digits().target
    squares, segments = domains(X, n_slices, n_segments)
    rows = []
    t_start = time.perf_counter()
    for depth in depths:
        for width in widths:
            arch = "mlp:" + "-".join(map(str, [64] + [width] * depth + [10])) + ":relu"
            for seed in seeds:
                t0 = time.perf_counter()
                torch.manual_seed(seed)
                default = build_module(arch)
                model = he_init(build_module(arch), seed)
                nets = {"init": rg.from_torch(model), "torch default": rg.from_torch(default)}
                acc = train(model, X, y, steps, seed)
                nets["trained"] = rg.from_torch(model)
                for phase, net in nets.items():
                    for r in measure(net, squares, segments, rounds):
                        rows.append({"phase": phase, "depth": depth, "width": width, "neurons": width * depth,
                                     "seed": seed, **r, **({"train_accuracy": acc} if phase == "trained" else {})})
                log(f"depth {depth} width {width:4d} seed {seed}: {time.perf_counter() - t0:5.1f} s, "
                    f"trained accuracy {acc:.3f}")
    return {"rows": rows, "fits": fits(rows), "seconds": time.perf_counter() - t_start}


def figure(data: dict):
    """Four panels: 2-D and 1-D density against #neurons, prefactors by depth, cost per region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["rows"]
    depths = sorted({r["depth"] for r in rows})
    colors = dict(zip(depths, plt.cm.viridis(np.linspace(0.0, 0.85, len(depths)))))
    styles = {"init": ("o", "-"), "trained": ("s", "--"), "torch default": ("^", ":")}
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for ax, k in ((axes[0, 0], 2), (axes[0, 1], 1)):
        for phase, (marker, line) in styles.items():
            for d in depths:
                sel = [r for r in rows if r["phase"] == phase and r["k"] == k and r["depth"] == d]
                ns = sorted({r["neurons"] for r in sel})
                dens = [np.mean([r["density"] for r in sel if r["neurons"] == n]) for n in ns]
                ax.plot(ns, dens, line, marker=marker, color=colors[d], ms=4, lw=1,
                        mfc=colors[d] if phase == "init" else "none",
                        label=f"{LABELS[phase]}, depth {d}" if k == 2 else None)
        init = [r for r in rows if r["phase"] == "init" and r["k"] == k]
        n_ref = np.array([min(r["neurons"] for r in init), max(r["neurons"] for r in init)], dtype=float)
        c = next(f["prefactor_at_k"] for f in data["fits"]
                 if f["phase"] == "init" and f["k"] == k and f["depth"] == "all")
        ax.plot(n_ref, c * n_ref ** k, color="k", lw=2, alpha=0.35, label=f"C N^{k} (Hanin & Rolnick)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("neurons N (width x depth)")
        ax.set_ylabel("regions per unit area" if k == 2 else "regions per unit length")
        ax.set_title(f"{k}-D: {'squares through three digits' if k == 2 else 'segments between two digits'}")
        ax.legend(fontsize=6, ncol=2 if k == 2 else 1, loc="lower right")
    ax = axes[1, 0]
    for k, line in ((2, "-"), (1, "--")):
        for phase, (marker, _) in styles.items():
            fs = sorted((f for f in data["fits"] if f["phase"] == phase and f["k"] == k and f["depth"] != "all"),
                        key=lambda f: f["depth"])
            ax.plot([f["depth"] for f in fs], [f["prefactor_at_k"] for f in fs], line, marker=marker,
                    label=f"{LABELS[phase]}, k={k}")
    ax.set_yscale("log")
    ax.set_xticks(depths)
    ax.set_xlabel("depth (hidden layers)")
    ax.set_ylabel("C_k = geometric mean of density / N^k")
    ax.set_title("prefactor at the predicted exponent, by depth")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    widths = sorted({r["width"] for r in rows})
    for d in depths:
        cost = [np.median([r["us_per_region"] for r in rows if r["k"] == 2 and r["depth"] == d
                           and r["width"] == w and r["regions"] >= 100]) if any(
            r["k"] == 2 and r["depth"] == d and r["width"] == w and r["regions"] >= 100 for r in rows) else np.nan
            for w in widths]
        ax.plot(widths, cost, "-o", color=colors[d], ms=4, label=f"depth {d}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width")
    ax.set_ylabel("microseconds per region (exact 2-D partition)")
    ax.set_title("cost per region (slices with >= 100 regions)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="8,16,32,64,128,256")
    parser.add_argument("--depths", default="1,2,3,4")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=500, help="Adam steps of the trained nets")
    parser.add_argument("--slices", type=int, default=3, help="2-D squares through three digits")
    parser.add_argument("--segments", type=int, default=16, help="1-D segments between two digits")
    parser.add_argument("--rounds", type=int, default=3, help="timed partitions per 2-D slice")
    parser.add_argument("--json", default=str(HERE / "scaling.json"))
    parser.add_argument("--figure", default=str(HERE / "scaling.png"))
    parser.add_argument("--replot", action="store_true", help="only redraw the figure from the JSON")
    args = parser.parse_args(argv)
    if args.replot:
        save_figure(figure(json.loads(Path(args.json).read_text())), args.figure, dpi=150)
        print(f"wrote {args.figure}")
        return
    torch.set_num_threads(1)  # the nets are small; one thread keeps their training reproducible
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    config = {"widths": _ints(args.widths), "depths": _ints(args.depths), "seeds": _ints(args.seeds),
              "steps": args.steps, "slices": args.slices, "segments": args.segments, "rounds": args.rounds,
              "inputs": "sklearn load_digits().data / 16 (1,797 x 64)",
              "init": "He normal weights (variance 2 / fan_in), biases N(0, 1e-6)",
              "training": "Adam, lr 1e-3, no weight decay, cross-entropy, batches of 200",
              "torch default": "nn.Linear's own initialisation, torch.manual_seed(seed)"}
    data = run(config["widths"], config["depths"], config["seeds"], args.steps, args.slices, args.segments,
               args.rounds, log=lambda m: print(m, file=sys.stderr, flush=True))
    command = " ".join(["python bench/scaling.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    data = {"config": config, "command": command,
            "started": started, "machine": machine_info(), **data}
    write_text(json.dumps(data, indent=1) + "\n", args.json)
    fig = figure(data)
    save_figure(fig, args.figure, dpi=150)
    print(f"wrote {args.json} and {args.figure} in {data['seconds']:.0f} s")
    for f in data["fits"]:
        if f["depth"] != "all":
            continue
        print(f"{f['phase']:13s} k={f['k']}: exponent {f['exponent']:.2f} +- {f['exponent_se']:.2f} "
              f"(Hanin & Rolnick: {f['k']})")


if __name__ == "__main__":
    main()
