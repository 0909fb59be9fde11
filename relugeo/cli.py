"""The ``relugeo`` command: parse, call the library, write files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Exact linear-region geometry of piecewise-affine PyTorch networks.",
)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pt2", ".ckpt")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _checkpoints(path: Path) -> list[Path]:
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES and p.is_file()]
        if not files:
            _fail(f"no checkpoints ({', '.join(CHECKPOINT_SUFFIXES)}) in directory {path}")
        return sorted(files, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
    if not path.exists():
        _fail(f"checkpoint not found: {path}")
    return [path]


def _step_of(path: Path) -> Optional[int]:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else None


@app.command()
def demo(
    out: Path = typer.Option(Path("relugeo-demo"), "--out", help="Directory for the demo's files."),
    steps: int = typer.Option(2000, help="Training steps of the demo network."),
    points: int = typer.Option(100, help="Points per set (train, test, random) for local complexity."),
) -> None:
    """Train a small MLP on sklearn's digits (bundled, no download), then write the exact
    partition of a slice through three training digits, local complexity over the
    checkpoints (exact and vertex estimator), their figures and a summary."""
    from .demo import run_demo

    run_demo(out, steps=steps, n_points=points, log=typer.echo)


@app.command()
def lc(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a directory of checkpoints "
                                      "(one table with a 'checkpoint' column)."),
    data: Path = typer.Option(..., "--data", help="Points: .npy (N, D), .npz (key X; optional y, group) "
                              "or .csv (one point per row)."),
    radius: List[float] = typer.Option(..., "--radius", "-r", help="Neighbourhood radius in input units; "
                                       "repeat for several radii."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture spec for bare state_dicts, e.g. "
                                       "'mlp:64-200-200-200-10:relu', or a JSON spec file."),
    method: str = typer.Option("exact", "--method", help="'exact' (every neuron and region met) or "
                               "'vertex' (the published estimator)."),
    dim: int = typer.Option(2, "--dim", help="Exact method: dimension of the neighbourhood, 1 or 2."),
    n_directions: Optional[int] = typer.Option(None, "--n-directions", "-P", help="Vertex method: number "
                                               "of directions P (default min(25, D))."),
    layers: str = typer.Option("hidden", "--layers", help="'hidden' neurons only, or 'all' (logits too)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the orthonormal frame (same for every point and "
                             "checkpoint)."),
    batch_size: int = typer.Option(1024, "--batch-size", help="Points per batch; bounds memory."),
    out: Path = typer.Option(Path("lc.csv"), "--out", "-o", help="Output table (.csv or .parquet), "
                             "written atomically."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints. Only "
                               "for files you trust: unpickling runs arbitrary code."),
) -> None:
    """Local complexity of a checkpoint (or a directory of them) around every data point."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from . import RelugeoError, load, local_complexity
    from .io import read_points, write_table

    try:
        X, _, groups = read_points(data)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    files = _checkpoints(checkpoint)
    frames = []
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        total = len(files) * len(radius) * len(X)
        task = bar.add_task("local complexity", total=total)
        for path in files:
            try:
                net = load(path, arch, trust=trust)
                for r in radius:
                    done0 = bar.tasks[0].completed
                    res = local_complexity(
                        net, X, r, dim=dim, method=method, n_directions=n_directions, seed=seed,
                        layers=layers, batch_size=batch_size, groups=groups,
                        progress=lambda d, n, base=done0: bar.update(task, completed=base + d),
                    )
                    df = res.to_frame()
                    df.insert(0, "checkpoint", path.name)
                    df.insert(1, "step", _step_of(path))
                    frames.append(df)
            except (RelugeoError, ValueError, TypeError) as exc:
                _fail(f"{path}: {exc}")
    table = pd.concat(frames, ignore_index=True)
    write_table(table, out)
    keys = ["checkpoint", "radius"] + (["group"] if "group" in table else [])
    cols = ["lc"] + [c for c in ("regions", "boundary_density") if c in table]
    summary = table.groupby(keys, sort=False)[cols].mean().reset_index()
    view = Table(title=f"mean {method} local complexity ({len(X)} points)")
    for c in summary.columns:
        view.add_column(str(c), justify="right" if c in cols or c == "radius" else "left")
    for row in summary.itertuples(index=False):
        view.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    Console().print(view)
    typer.echo(f"wrote {out} ({len(table)} rows)")


@app.command("partition")
def partition_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file."),
    data: Path = typer.Option(..., "--data", help="Points (.npy, .npz, .csv) holding the three anchors."),
    through: str = typer.Option(..., "--through", help="Row indices i,j,k of three points of --data: the "
                                "slice is the plane through them."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture spec for bare state_dicts."),
    pad: float = typer.Option(0.1, "--pad", help="Margin around the three points, as a fraction of the "
                              "square's side."),
    max_regions: int = typer.Option(10_000_000, "--max-regions", help="Stop with an error beyond this "
                                    "many regions."),
    out: Path = typer.Option(Path("partition.npz"), "--out", "-o", help="Output .npz (vertices, "
                             "ring_offsets, patterns, areas, centroids, edge labels, logit maps, "
                             "decision boundary), written atomically."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the partition to this image "
                                        "(.png, .pdf, .svg)."),
    color_by: str = typer.Option("random", "--color-by", help="Region colours for --plot: random, class, "
                                 "n_active or layer."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints you trust."),
) -> None:
    """Exact partition of the 2-D slice through three data points."""
    from . import RelugeoError, Slice, load, partition
    from .io import atomic_path, read_points, save_figure

    try:
        idx = [int(t) for t in through.split(",")]
    except ValueError:
        idx = []
    if len(idx) != 3:
        _fail(f"--through must be three comma-separated row indices such as 0,1,2; got {through!r}")
    try:
        X, labels, _ = read_points(data)
        if max(idx) >= len(X) or min(idx) < -len(X):
            _fail(f"--through {through}: --data has only {len(X)} rows")
        net = load(checkpoint, arch, trust=trust)
        part = partition(net, Slice.through(*X[idx], pad=pad), max_regions=max_regions)
        report = part.verify()
    except (RelugeoError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, vertices=part.vertices, ring_offsets=part.ring_offsets, patterns=part.patterns,
            areas=part.areas, centroids=part.centroids, edge_layer=part.edge_layer,
            edge_neuron=part.edge_neuron, logit_maps=part.logit_maps,
            decision_boundary=part.decision_boundary, origin=part.slice.origin, basis=part.slice.basis,
            domain=part.slice.vertices,
        )
    typer.echo(f"{part.n_regions} regions in {part.seconds:.2f} s; areas sum to {report['area_sum']:.6g} "
               f"(domain {report['domain_area']:.6g}); certificates failed: {report['certificate_failures']}")
    typer.echo(f"wrote {out}")
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .viz import plot_partition

        fig, ax = plt.subplots(figsize=(7, 7))
        plot_partition(part, ax, color_by=color_by)
        save_figure(fig, plot)
        plt.close(fig)
        typer.echo(f"wrote {plot}")


def main() -> None:  # pragma: no cover - entry point
    app()
