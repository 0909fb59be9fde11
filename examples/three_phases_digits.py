"""The three phases of local complexity on sklearn's digits, and region migration.

Reproduces the protocol of REFERENCE.md ("Three-phase reproduction protocol"):
sklearn digits / 16, seeded split 1,000 train / 797 test; MLP 64-200-200-200-10
ReLU, default init, float32; AdamW lr 1e-3, weight decay 0.01, MSE on one-hot
targets, batch 200, 30,000 steps, 40 log-spaced checkpoints including step 0;
LC with P = 25 directions (vertex estimator) at r in {0.25, 1.0} on points
(200 per set) of train, test and uniform random, hidden layers only. Exact
2-D LC runs at r = 0.25 on the same points.

Then, with :func:`relugeo.track`, the migration measures: the exact distance of
every point to its own region's boundary (all checkpoints), and on a fixed
slice through three training digits of different classes (every
``slice_every``-th checkpoint) the partition, its regions' distances to the
decision boundary and the region density by distance.

During the final LC descent (from the LC maximum to the end) the regions of
the same slices are matched between consecutive checkpoints
(``track(..., match=True)``): the area share of regions moving toward the
decision boundary, and births and deaths by distance band.

Writes into ``--out``: ``checkpoints/``, ``track/``, ``slices/`` and
``descent/`` (the tables of :func:`relugeo.track`), ``lc.png``,
``migration.png``, ``descent.png`` (flow map and events by band),
``partition.gif`` (slice 0 over 12 checkpoints) and ``summary.txt``.

Run: ``python examples/three_phases_digits.py --out three-phases`` (several
minutes on 2 cores; ``--steps 3000 --points 50`` for a quick look).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

EARLY = 100  # the first minimum is looked for up to this step


def lc_phases(steps, values, *, early: int = EARLY) -> dict:
    """Initial value, first minimum (step <= ``early``), the maximum after it, and the final value.

    Returns a dict with ``initial``, ``min_step``, ``min``, ``max_step``,
    ``max``, ``final`` and the relative changes ``first_drop = 1 - min / initial``,
    ``rise = max / min - 1`` and ``final_drop = 1 - final / max``.
    """
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=float)
    order = np.argsort(steps)
    steps, values = steps[order], values[order]
    window = np.flatnonzero(steps <= early)
    i_min = window[np.argmin(values[window])]
    i_max = i_min + int(np.argmax(values[i_min:]))
    out = {"initial": values[0], "min_step": int(steps[i_min]), "min": values[i_min],
           "max_step": int(steps[i_max]), "max": values[i_max], "final": values[-1]}
    out["first_drop"] = 1.0 - out["min"] / out["initial"]
    out["rise"] = out["max"] / out["min"] - 1.0
    out["final_drop"] = 1.0 - out["final"] / out["max"]
    return out


def _pooled(table, step, bins) -> float:
    """Regions per unit area over several distance bands at one step (pooled over the slices)."""
    t = table[(table["step"] == step) & table["bin"].isin(bins)]
    count = t.loc[t["measure"] == "band_regions", "value"].sum()
    area = t.loc[t["measure"] == "band_area", "value"].sum()
    return float(count / area) if area > 0 else float("nan")


DESCENT_BANDS = (0.0, 0.1, 0.25, 0.5, 1.0, np.inf)  # distance to the decision boundary, slice scale units


def _descent_lines(table, summary: dict) -> list[str]:
    """Summary lines of the region matching during the final descent; fills ``summary``."""
    unbanded = table[table["bin"] < 0].groupby("measure")["value"]
    total = unbanded.sum()
    share = float(unbanded.mean()["toward_boundary_share"])
    toward = float(unbanded.mean()["toward_boundary"])
    change = float(unbanded.mean()["boundary_distance_change"])
    banded = table[table["bin"] >= 0].groupby(["measure", "bin"])["value"].sum()
    bands = table[table["bin"] >= 0].drop_duplicates("bin").set_index("bin").sort_index()
    born, died = banded["band_born"], banded["band_died"]
    near = float(bands["bin_hi"].iloc[0])
    summary.update(toward_share=share, born=born.to_numpy(), died=died.to_numpy())
    pairs = table[["step_from", "slice"]].drop_duplicates()
    lines = [f"  regions matched between consecutive checkpoints ({len(pairs)} checkpoint pairs x slices):",
             (f"    persisted {total['persisted']:.0f}, split {total['split']:.0f} (into "
              f"{total['split_into']:.0f}), merged {total['merged']:.0f} (from {total['merged_from']:.0f}), "
              f"died {total['died']:.0f}, born {total['born']:.0f}; patterns kept {total['pattern_kept']:.0f}"),
             f"    area share of persisted regions moving toward the decision boundary  {share:.3f}",
             f"    mean displacement component toward the boundary  {toward:+.4f} h per checkpoint pair",
             f"    mean change of centroid distance to the boundary {change:+.4f} h per checkpoint pair",
             "    births / deaths by distance band (h):"]
    for b, row in bands.iterrows():
        name = f"{row['bin_lo']:g}-{row['bin_hi']:g}" if np.isfinite(row["bin_hi"]) else f">= {row['bin_lo']:g}"
        lines.append(f"      {name:<9} born {born.get(b, 0):8.0f}   died {died.get(b, 0):8.0f}")
    near_born, near_died = born.iloc[0], died.iloc[0]
    far_born, far_died = born.iloc[1:].sum(), died.iloc[1:].sum()
    lines += ["", (f"  In words: during the final descent {share:.0%} of the area of the regions that persisted moved "
                   f"toward the decision boundary ({_migration_words(share)}). Within {near:g} h of "
                   f"the boundary {near_born:.0f} regions were born and {near_died:.0f} died "
                   f"({near_born - near_died:+.0f}); farther away {far_born:.0f} were born and {far_died:.0f} died "
                   f"({far_born - far_died:+.0f}). The centroids of persisting regions came "
                   f"{'closer to' if change < 0 else 'no closer to'} the boundary ({change:+.4f} h per checkpoint "
                   f"pair on average).")]
    return lines



def _migration_words(share: float) -> str:
    """How to read the area share of persisting regions that moved toward the boundary: within five
    points of one half it is no evidence of migration either way."""
    if share > 0.55:
        return "clearly more than moved away: a net migration toward it"
    if share < 0.45:
        return "clearly less than moved away: a net migration away from it"
    return "about as much as moved away: no net migration"

def run(
    out,
    *,
    steps: int = 30_000,
    n_checkpoints: int = 40,
    n_points: int = 200,
    vertex_radii=(0.25, 1.0),
    exact_radii=(0.25,),
    n_slices: int = 3,
    slice_every: int = 2,
    seed: int = 0,
    threads: int | None = 1,
    animate: bool = True,
    log=print,
) -> dict:
    """Train, track and write the figures; returns the summary as a dict.

    ``exact_radii=()`` skips exact LC, ``n_slices=0`` the slice measures.
    ``threads`` sets torch's thread count for training (one thread is the
    fastest for this small net on a busy machine; None leaves it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    import relugeo as rg
    from relugeo import data, train
    from relugeo.io import save_figure, write_text
    from relugeo.nets import build_module
    from relugeo.regions.tracking import SLICES
    from relugeo.viz.migration_plot import lc_figure, migration_figure

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    Xtr, ytr, Xte, yte = data.digits(n_train=1000, seed=seed)
    arch = "mlp:64-200-200-200-10:relu"
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = build_module(arch)
    ckpt_steps = train.log_steps(steps, n_checkpoints)
    ckpt_dir = out / "checkpoints"
    log(f"training {arch} on digits: {steps} steps, {len(ckpt_steps)} checkpoints")
    history = train.fit(model, Xtr, ytr, steps=steps, lr=1e-3, weight_decay=0.01, batch_size=200, loss="mse",
                        seed=seed, checkpoint_steps=ckpt_steps, out_dir=ckpt_dir, eval_data=(Xte, yte))
    t_train = time.perf_counter() - t0
    log(f"  {t_train:.0f} s; train accuracy {history[-1]['train_accuracy']:.3f}, "
        f"test accuracy {history[-1]['test_accuracy']:.3f}")

    sets = {"train": (Xtr, ytr), "test": (Xte, yte), "random": data.uniform_like(Xtr, n_points, seed=seed)}
    radius = {"vertex": tuple(vertex_radii)}
    if exact_radii:
        radius["exact"] = tuple(exact_radii)
    files = [Path(h["path"]) for h in history]
    t1 = time.perf_counter()
    res = rg.track(files, sets, slices=0, points=n_points, radius=radius, n_directions=25, seed=seed,
                   out=out / "track",
                   progress=lambda d, n: log(f"  track: {d}/{n} checkpoints") if d % 10 == 0 or d == n else None)
    t_track = time.perf_counter() - t1
    table = res.table
    sl_res = desc = None
    t_slices = 0.0
    if n_slices:
        t1 = time.perf_counter()
        picked = files[::slice_every] if files[-1] in files[::slice_every] else files[::slice_every] + [files[-1]]
        sl_res = rg.track(picked, {"train": (Xtr, ytr)}, slices=n_slices, points=n_points, methods=(), seed=seed,
                          out=out / "slices")
        t_slices = time.perf_counter() - t1

    # -- numbers -------------------------------------------------------------------------------
    lines = ["three phases of local complexity on digits (REFERENCE.md protocol)",
             f"network       {arch}, AdamW lr 1e-3 wd 0.01, MSE one-hot, batch 200, {steps} steps, seed {seed}",
             f"accuracy      train {history[-1]['train_accuracy']:.3f}, test {history[-1]['test_accuracy']:.3f}",
             f"points        {n_points} per set (train, test, uniform random)", "",
             "LC per point set and radius (mean over points): initial / first min (step) / max (step) / final",
             "  first drop = 1 - min/initial, rise = max/min - 1, final drop = 1 - final/max"]
    phases = {}
    for method, radii in radius.items():
        for r in radii:
            piv = res.pivot(f"lc_{method}", radius=r)
            for name in piv.columns:
                p = lc_phases(piv.index.to_numpy(), piv[name].to_numpy())
                phases[(method, r, name)] = p
                lines.append(
                    f"  {method:<6} r={r:<5g} {name:<7} {p['initial']:7.2f} / {p['min']:7.2f} ({p['min_step']:>5}) / "
                    f"{p['max']:7.2f} ({p['max_step']:>5}) / {p['final']:7.2f}   drop {p['first_drop']:6.1%}  "
                    f"rise {p['rise']:6.1%}  final drop {p['final_drop']:6.1%}")
    ok = {k: p["first_drop"] >= 0.15 and p["rise"] >= 0.30 and p["final_drop"] >= 0.20 for k, p in phases.items()}
    lines.append(f"  protocol thresholds (drop >= 15%, rise >= 30%, final drop >= 20%) met by "
                 f"{sum(ok.values())} of {len(ok)} curves")

    # migration during the final descent: from the LC maximum (vertex, r = first radius, train) to the end
    ref = phases[("vertex", radius["vertex"][0], "train")]
    dist = res.pivot("dist_region_boundary")
    s_max, s_end = ref["max_step"], int(dist.index[-1])
    lines += ["", (f"final descent: from step {s_max} (LC maximum, vertex r={radius['vertex'][0]:g}, train) "
                   f"to step {s_end}"),
              "  mean distance of points to their own region's boundary (input units):"]
    migration = {}
    for name in dist.columns:
        a, b = dist.loc[s_max, name], dist.loc[s_end, name]
        migration[f"dist_{name}"] = (a, b)
        lines.append(f"    {name:<7} {a:.5f} -> {b:.5f}  ({b / a - 1:+.1%})")
    if sl_res is not None:
        frac = sl_res.pivot("region_fraction", set=SLICES)
        dens = sl_res.pivot("region_density", set=SLICES)
        n_reg = sl_res.pivot("n_regions")
        dc = sl_res.pivot("dist_db_centroid_mean")
        s_a = int(frac.index[np.argmin(np.abs(frac.index.to_numpy() - s_max))])
        bands = sl_res.table[(sl_res.table["measure"] == "region_density") & (sl_res.table["step"] == s_end)]
        lo = bands.set_index("bin")["bin_lo"]
        far = [b for b in dens.columns if lo[b] >= 0.5]
        near = dens.columns[0]
        d_near = (dens.loc[s_a, near], dens.loc[s_end, near])
        d_far = (_pooled(sl_res.table, s_a, far), _pooled(sl_res.table, s_end, far))
        migration.update(near_fraction=(frac.loc[s_a, near], frac.loc[s_end, near]), near_density=d_near,
                         far_density=d_far, dist_db_centroid=(dc.loc[s_a].iloc[0], dc.loc[s_end].iloc[0]))
        lines += [(f"  {len(sl_res.slices)} slices through training digits {sl_res.triplets.tolist()} "
                   f"(checkpoints every {slice_every}), steps {s_a} -> {s_end}; h = half the slice side:"),
                  (f"    regions per slice                 {n_reg.loc[s_a].iloc[0]:9.0f} -> "
                   f"{n_reg.loc[s_end].iloc[0]:9.0f}"),
                  f"    fraction of regions within 0.1 h  {frac.loc[s_a, near]:9.3f} -> {frac.loc[s_end, near]:9.3f}",
                  f"    mean centroid distance to the DB  {dc.loc[s_a].iloc[0]:9.3f} -> {dc.loc[s_end].iloc[0]:9.3f} h",
                  f"    region density within 0.1 h       {d_near[0]:9.1f} -> {d_near[1]:9.1f}  per h^2",
                  f"    region density beyond 0.5 h       {d_far[0]:9.1f} -> {d_far[1]:9.1f}  per h^2",
                  f"    near / far density ratio          {d_near[0] / d_far[0]:9.2f} -> {d_near[1] / d_far[1]:9.2f}",
                  "    region density per band (per h^2):"]
        for b in dens.columns:
            hi = bands.set_index("bin")["bin_hi"][b]
            name = f"{lo[b]:.1f}-{hi:.1f}" if np.isfinite(hi) else f">= {lo[b]:.1f}"
            a_, b_ = dens.loc[s_a, b], dens.loc[s_end, b]
            lines.append(f"      {name:<8} {a_:9.1f} -> {b_:9.1f}  ({b_ / a_ - 1:+.0%})")
        descent_files = [f for f, h in zip(files, history) if h["step"] >= s_max]
        if len(descent_files) >= 2:
            t1 = time.perf_counter()
            desc = rg.track(descent_files, {"train": (Xtr, ytr)}, slices=sl_res.slices, points=n_points,
                            methods=(), seed=seed, out=out / "descent", match=True, keep_partitions=True,
                            distance_bins=DESCENT_BANDS)
            t_slices += time.perf_counter() - t1
            lines += _descent_lines(desc.migration, migration)
        else:
            lines.append("  the LC maximum is the last checkpoint: no final descent to match regions over")

    # -- figures -------------------------------------------------------------------------------
    fig = lc_figure(table)
    save_figure(fig, out / "lc.png")
    plt.close(fig)
    both = table if sl_res is None else pd.concat([table, sl_res.table[sl_res.table["set"] == SLICES]])
    fig = migration_figure(both)
    save_figure(fig, out / "migration.png")
    plt.close(fig)
    if desc is not None:
        from relugeo.regions.correspondence import correspond
        from relugeo.viz.flow_plot import plot_events_by_band, plot_flow

        last = sorted(desc.partitions)[-2:]
        a, b = desc.partitions[last[0]][0], desc.partitions[last[1]][0]
        fig, axes = plt.subplots(1, 2, figsize=(13, 6), layout="constrained")
        plot_flow(a, b, correspond(a, b), axes[0])
        axes[0].set_title(f"slice 0, steps {last[0]} -> {last[1]}: {axes[0].get_title()}", fontsize=9)
        plot_events_by_band(desc.migration, axes[1])
        axes[1].set_title(f"region events during the final descent (steps {s_max} -> {s_end}, "
                          f"{len(desc.slices)} slices)", fontsize=10)
        save_figure(fig, out / "descent.png")
        plt.close(fig)
    if sl_res is not None and animate:
        # slice 0 at up to 12 evenly spaced checkpoints, recomputed one at a time
        from relugeo.viz.animate import animate_partitions

        pick = np.unique(np.round(np.linspace(0, len(picked) - 1, min(12, len(picked)))).astype(int))
        parts = [rg.partition(rg.load(picked[i]), sl_res.slices[0]) for i in pick]
        animate_partitions(parts, [int(picked[i].stem.split("_")[-1]) for i in pick], out / "partition.gif")
    lines += ["", (f"time          training {t_train:.0f} s, tracking {t_track:.0f} s, slices {t_slices:.0f} s, "
                   f"total with figures {time.perf_counter() - t0:.0f} s")]
    write_text("\n".join(lines) + "\n", out / "summary.txt")
    log("\n".join(lines))
    return {"phases": phases, "migration": migration, "history": history, "table": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("three-phases"))
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--checkpoints", type=int, default=40)
    ap.add_argument("--points", type=int, default=200, help="points per set")
    ap.add_argument("--slices", type=int, default=3)
    ap.add_argument("--slice-every", type=int, default=2)
    ap.add_argument("--no-exact", action="store_true", help="skip exact 2-D LC")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    run(a.out, steps=a.steps, n_checkpoints=a.checkpoints, n_points=a.points, n_slices=a.slices,
        slice_every=a.slice_every, exact_radii=() if a.no_exact else (0.25,), seed=a.seed)


if __name__ == "__main__":
    main()
