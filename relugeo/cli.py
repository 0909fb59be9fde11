"""The ``relugeo`` command: parse, call the library, write files."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

app = typer.Typer(
    add_completion=False,
    rich_markup_mode="markdown",
    no_args_is_help=True,
    help="Exact linear-region geometry of piecewise-affine PyTorch networks.",
)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pt2", ".ckpt")


def _cli_words(message: str) -> str:
    """A library message in the command's spellings: ``trust=True`` is ``--trust``, ``arch=`` is ``--arch``."""
    message = message.replace("arch='module:", "--module '").replace("'module:", "'")
    message = re.sub(r"\btrust=True\b", "--trust", message)
    message = re.sub(r"\bresume=False\b", "--no-resume", message)
    message = re.sub(r"\barch=(?=')", "--arch ", message)
    return re.sub(r"\barch=", "--arch", message)


def _fail(message: str) -> None:
    typer.secho(f"error: {_cli_words(message)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _warn(message: str) -> None:
    typer.secho(f"warning: {_cli_words(message)}", fg=typer.colors.YELLOW, err=True)


MODULE_HELP = ("Your own model class for a state_dict: 'path/to/model.py:ClassName' or 'package.module:ClassName' "
               "(imported and built without arguments; the weights are then loaded into it, weights only).")


def _arch_of(arch: Optional[str], module: Optional[str]) -> Optional[str]:
    """The library's ``arch=`` for ``--arch`` or ``--module`` (at most one of them)."""
    if module is None:
        return arch
    if arch is not None:
        _fail(f"pass either --arch or --module, not both; got --arch {arch!r} and --module {module!r}")
    return f"module:{module}"


def _load_for(path: Path, arch, trust: bool, X: np.ndarray, data: Path):
    """Load a checkpoint and check that the points of ``data`` have the network's input width."""
    from . import load

    net = load(path, arch, trust=trust)
    if X.shape[1] != net.input_dim:
        _fail(f"--data {data}: its points have {X.shape[1]} coordinates, but the network in {path} takes "
              f"{net.input_dim} inputs; pass points of the network's input space (one flattened input per row)")
    return net


def _check_table_out(out: Path) -> None:
    """Refuse an output table that could not be written, before any computation."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        _fail(f"--out must end in .csv or .parquet; got {out.name!r}")
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            _fail(f"--out {out} needs pyarrow to write Parquet: pip install 'relugeo[parquet]', or write a .csv")


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


def _partition_through(checkpoint: Path, data: Path, through: str, arch, pad: float, max_regions: int,
                       trust: bool):
    """Load a checkpoint and partition the slice through rows i,j,k of a point file.

    Returns ``(partition, X, labels, rows)``; exits with a clear message on bad input.
    """
    from . import RelugeoError, Slice, partition
    from .io import read_points

    try:
        idx = [int(t) for t in through.split(",")]
    except ValueError:
        idx = []
    if len(idx) != 3:
        _fail(f"--through must be three comma-separated row indices such as 0,1,2; got {through!r}")
    try:
        X, y, _ = read_points(data)
        if max(idx) >= len(X) or min(idx) < -len(X):
            _fail(f"--through {through}: --data has only {len(X)} rows")
        net = _load_for(checkpoint, arch, trust, X, data)
        part = partition(net, Slice.through(*X[idx], pad=pad), max_regions=max_regions)
    except (RelugeoError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    return part, X, y, idx


def _saved_partition(path: Path, data: Optional[Path], through: Optional[str]):
    """A partition saved by `relugeo partition`, and the points of --data when given."""
    from . import Partition, RelugeoError
    from .io import read_points

    try:
        part = Partition.load(path)
        X, y, _ = read_points(data) if data is not None else (None, None, None)
    except (RelugeoError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    if X is not None and X.shape[1] != part.slice.input_dim:
        _fail(f"--data {data}: its points have {X.shape[1]} coordinates, but the partition's slice lies in "
              f"R^{part.slice.input_dim}")
    idx = None
    if through is not None and X is not None:
        try:
            idx = [int(t) for t in through.split(",")]
        except ValueError:
            idx = []
        if len(idx) != 3 or max(idx) >= len(X):
            _fail(f"--through must be three comma-separated row indices of --data such as 0,1,2; got {through!r}")
    return part, X, y, idx


@app.command()
def demo(
    out: Path = typer.Option(Path("relugeo-demo"), "--out", help="Directory for the demo's files: new, empty, or "
                             "a previous demo run's (its files are replaced); anything else is refused."),
    steps: int = typer.Option(2000, help="Training steps of the demo network."),
    points: int = typer.Option(100, help="Points per set (train, test, random) for local complexity."),
) -> None:
    """Train a small MLP on sklearn's digits (bundled, no download), then write the exact
    partition of a slice through three training digits, local complexity over the
    checkpoints (exact and vertex estimator), their figures and a summary."""
    from .demo import clear_previous_run, run_demo

    try:
        removed = clear_previous_run(out)
    except ValueError as exc:
        _fail(str(exc))
    if removed:
        typer.echo(f"removed the {removed} files of a previous demo run in {out}")
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
    dim: int = typer.Option(2, "--dim", help="Exact method: dimension P of the neighbourhood, 1 to 8 (the "
                            "cross-polytope of the first P frame directions)."),
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
    module: Optional[str] = typer.Option(None, "--module", help=MODULE_HELP),
) -> None:
    """Local complexity of a checkpoint (or a directory of them) around every data point. In a
    directory, a checkpoint that cannot be read is skipped with a warning (exit status 1), and
    the table holds the others."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from . import CheckpointError, RelugeoError, local_complexity
    from .io import read_points, write_table

    arch = _arch_of(arch, module)
    _check_table_out(out)
    try:
        X, _, groups = read_points(data)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    files = _checkpoints(checkpoint)
    frames, skipped = [], []
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        total = len(files) * len(radius) * len(X)
        task = bar.add_task("local complexity", total=total)
        for path in files:
            try:
                net = _load_for(path, arch, trust, X, data)
            except CheckpointError as exc:
                if len(files) == 1:
                    _fail(str(exc))
                _warn(f"skipped {path.name}: {exc}")
                skipped.append(path.name)
                bar.update(task, advance=len(radius) * len(X))
                continue
            except RelugeoError as exc:
                _fail(str(exc))
            try:
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
    if not frames:
        _fail(f"none of the {len(files)} checkpoints in {checkpoint} could be read; nothing written")
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
    if skipped:
        typer.secho(f"error: {len(skipped)} of {len(files)} checkpoints could not be read and are not in the "
                    f"table: {', '.join(skipped)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command("partition")
def partition_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file."),
    data: Path = typer.Option(..., "--data", help="Points (.npy, .npz, .csv) holding the anchors."),
    through: Optional[str] = typer.Option(None, "--through", help="Row indices of k + 1 points of --data "
                                          "(k = 2..8): i,j,k is the plane through three points, i,j,k,l the "
                                          "3-D slice through four, ...; cut to a square (cube) around them."),
    around: Optional[int] = typer.Option(None, "--around", help="Row index of one point of --data: with --dim P "
                                         "and --radius, the P-D cross-polytope of local complexity around it "
                                         "(the frame of `relugeo lc --dim P`, seed 0)."),
    dim: int = typer.Option(3, "--dim", help="With --around: dimension P of the neighbourhood, 1..8."),
    radius: float = typer.Option(0.25, "--radius", help="With --around: radius of the neighbourhood (input "
                                 "units)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture spec for bare state_dicts."),
    pad: float = typer.Option(0.1, "--pad", help="Margin around the --through points, as a fraction of the "
                              "square's (cube's) side."),
    max_regions: int = typer.Option(10_000_000, "--max-regions", help="Stop with an error beyond this "
                                    "many regions."),
    out: Path = typer.Option(Path("partition.npz"), "--out", "-o", help="Output, written atomically. 2-D: "
                             ".npz (vertices, ring_offsets, patterns, areas, centroids, edge labels, logit maps, "
                             "decision boundary, the slice and the network; read it back with `relugeo plot "
                             "PARTITION.npz` or rg.Partition.load). k-D: .npz (vertices, offsets, incidences, "
                             "patterns, volumes, centroids, logit maps, the slice and the network; "
                             "rg.PartitionKD.load), or a region table .csv / .parquet."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints you trust."),
    module: Optional[str] = typer.Option(None, "--module", help=MODULE_HELP),
) -> None:
    """Exact partition of the slice through k + 1 data points (a plane for three), or of the
    P-D neighbourhood of one point, checked and saved as arrays (draw a 2-D one with `relugeo plot`)."""
    from . import RelugeoError

    if (through is None) == (around is None):
        _fail("pass exactly one of --through i,j,k[,l,...] and --around ROW")
    n_through = None if through is None else len(through.split(","))
    k = dim if through is None else n_through - 1
    if k <= 2:
        if out.suffix != ".npz":
            _fail(f"--out must end in .npz; got {out.name!r}")
    elif out.suffix.lower() not in (".npz", ".csv", ".parquet"):
        _fail(f"--out must end in .npz, .csv or .parquet; got {out.name!r}")
    elif out.suffix.lower() == ".parquet":
        _check_table_out(out)
    if through is not None and n_through == 3:
        part, _, _, _ = _partition_through(checkpoint, data, through, _arch_of(arch, module), pad, max_regions,
                                           trust)
    else:
        part = _partition_kd(checkpoint, data, through, around, dim, radius, _arch_of(arch, module), pad,
                             max_regions, trust)
    try:
        report = part.verify()
    except RelugeoError as exc:
        _fail(str(exc))
    try:
        part.save(out)
    except ValueError as exc:
        _fail(str(exc))
    if part.dim >= 3:
        typer.echo(f"{part.n_regions} regions of a {part.dim}-D domain in {part.seconds:.2f} s; volumes sum to "
                   f"{report['volume_sum']:.6g} (domain {report['domain_volume']:.6g}); certificates failed: "
                   f"{report['certificate_failures']}")
    else:
        typer.echo(f"{part.n_regions} regions in {part.seconds:.2f} s; areas sum to {report['area_sum']:.6g} "
                   f"(domain {report['domain_area']:.6g}); certificates failed: {report['certificate_failures']}")
    typer.echo(f"wrote {out}")


def _partition_kd(checkpoint: Path, data: Path, through: Optional[str], around: Optional[int], dim: int,
                  radius: float, arch, pad: float, max_regions: int, trust: bool):
    """Load a checkpoint and partition the slice through k + 1 rows of a point file (k != 2), or the
    cross-polytope of local complexity around one row; exits with a clear message on bad input."""
    from . import RelugeoError, Slice, partition
    from .io import read_points
    from .regions.complexity import frame

    try:
        X, _, _ = read_points(data)
    except (RelugeoError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    if through is not None:
        try:
            idx = [int(t) for t in through.split(",")]
        except ValueError:
            _fail(f"--through must be comma-separated row indices such as 0,1,2,3; got {through!r}")
        if not 2 <= len(idx) <= 9:
            _fail(f"--through takes 2 to 9 row indices (a slice of dimension 1 to 8); got {len(idx)}")
        bad = [i for i in idx if not -len(X) <= i < len(X)]
        if bad:
            _fail(f"--through {through}: --data has only {len(X)} rows")
    else:
        if not -len(X) <= around < len(X):
            _fail(f"--around {around}: --data has only {len(X)} rows")
        if not 1 <= dim <= 8:
            _fail(f"--dim must be from 1 to 8; got {dim}")
        if not (np.isfinite(radius) and radius > 0):
            _fail(f"--radius must be a finite number > 0; got {radius}")
    try:
        net = _load_for(checkpoint, arch, trust, X, data)
        if through is not None:
            sl = Slice.through_points(X[idx], pad=pad)
        else:
            if dim > net.input_dim:
                _fail(f"--dim {dim} exceeds the network's input dimension {net.input_dim}")
            sl = Slice.cross_polytope(X[around], frame(net.input_dim, dim, 0), radius)
        return partition(net, sl, max_regions=max_regions)
    except (RelugeoError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))


@app.command("plot")
def plot_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file, or a partition saved by `relugeo partition` "
                                      "(.npz; then --data is optional and --through is not needed)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Points (.npy, .npz, .csv) holding the three "
                                        "anchors; an .npz may carry class labels y."),
    through: Optional[str] = typer.Option(None, "--through", help="Row indices i,j,k of three points of --data: "
                                          "the slice is the plane through them."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture spec for bare state_dicts, e.g. "
                                       "'mlp:64-200-200-200-10:relu'."),
    pad: float = typer.Option(0.1, "--pad", help="Margin around the three points, as a fraction of the "
                              "square's side."),
    color_by: str = typer.Option("class", "--color-by", help="Region colours: random, class, n_active, layer "
                                 "or density."),
    labels: bool = typer.Option(True, "--labels/--no-labels", help="Name the anchors by their class (and colour "
                                "--points) from the y of an .npz --data."),
    points: bool = typer.Option(False, "--points/--no-points", help="Also draw the points of --data that lie "
                                "near the slice's plane (see --max-distance), projected onto it."),
    max_distance: Optional[float] = typer.Option(None, "--max-distance", help="With --points: only points "
                                                 "within this distance of the slice's plane (input units; "
                                                 "default a tenth of the square's side; 'inf' for all)."),
    edges: bool = typer.Option(True, "--edges/--no-edges", help="Region edges, coloured by layer."),
    decision_boundary: bool = typer.Option(True, "--decision-boundary/--no-decision-boundary",
                                           help="The decision boundary in bold."),
    ticks: bool = typer.Option(False, "--ticks/--no-ticks", help="Slice-coordinate ticks (the scale bar is "
                               "always drawn)."),
    title: Optional[str] = typer.Option(None, "--title", help="Figure title (default: the region count)."),
    size: float = typer.Option(6.5, "--size", help="Figure width and height in inches."),
    dpi: int = typer.Option(300, "--dpi", help="Resolution of a .png."),
    max_regions: int = typer.Option(10_000_000, "--max-regions", help="Stop with an error beyond this "
                                    "many regions."),
    out: Path = typer.Option(Path("partition.png"), "--out", "-o", help="Image file (.png, .pdf or .svg), "
                             "written atomically."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints you trust."),
    module: Optional[str] = typer.Option(None, "--module", help=MODULE_HELP),
) -> None:
    """Draw the exact partition of the 2-D slice through three data points: regions, edges by
    layer, decision boundary, anchors and a scale bar."""
    from .io import save_figure
    from .viz.partition_plot import COLOR_BY

    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        _fail(f"--out must end in .png, .pdf or .svg; got {out.name!r}")
    if color_by not in COLOR_BY:
        _fail(f"--color-by must be one of {', '.join(COLOR_BY)}; got {color_by!r}")
    if not (size > 0 and dpi > 0):
        _fail(f"--size and --dpi must be > 0; got {size} and {dpi}")
    if checkpoint.suffix == ".npz" and _plot_kd_file(checkpoint, out, size, dpi):
        return
    if checkpoint.suffix == ".npz":
        part, X, y, idx = _saved_partition(checkpoint, data, through)
    else:
        if data is None or through is None:
            _fail("--data and --through are needed to slice a checkpoint (a partition .npz from `relugeo "
                  "partition` needs neither)")
        part, X, y, idx = _partition_through(checkpoint, data, through, _arch_of(arch, module), pad, max_regions,
                                             trust)
    if points and X is None:
        _fail("--points draws the points of --data: pass --data")
    if points and max_distance is None:
        max_distance = 0.1 * float(np.ptp(part.slice.vertices[:, 0]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import plot_partition

    y = y if labels else None
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        plot_partition(part, ax, color_by=color_by, edges=edges, decision_boundary=decision_boundary,
                       points=X if points else None, labels=y if points else None,
                       anchor_labels=None if y is None or idx is None else np.asarray(y)[idx],
                       max_distance=None if max_distance == float("inf") else max_distance, ticks=ticks, title=title)
    except ValueError as exc:
        plt.close(fig)
        _fail(str(exc))
    save_figure(fig, out, dpi=dpi)
    plt.close(fig)
    if points:
        from .viz import slice_coordinates

        _, dist = slice_coordinates(part.slice, X, return_distance=True)
        typer.echo(f"drew the {int((dist <= max_distance).sum())} of {len(X)} points within {max_distance:.3g} of "
                   f"the slice's plane (--max-distance), projected onto it")
    typer.echo(f"{part.n_regions} regions in {part.seconds:.2f} s; wrote {out}")




def _plot_kd_file(path: Path, out: Path, size: float, dpi: int) -> bool:
    """Draw a saved 3-D partition as four sections ``u_3 = t`` (regions coloured by pattern); False when
    ``path`` is not a saved k-D partition."""
    from . import PartitionKD, RelugeoError
    from .io import save_figure
    from .regions.partition_io_kd import FORMAT_KD

    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or str(z["format"]) != FORMAT_KD:
                return False
        part = PartitionKD.load(path)
    except (OSError, ValueError, EOFError, RelugeoError) as exc:
        _fail(str(exc))
    if part.dim != 3:
        _fail(f"{path} holds a {part.dim}-D partition; `relugeo plot` draws sections of 3-D partitions only")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import plot_sections

    axes = plot_sections(part)
    fig = axes[0].figure
    fig.set_size_inches(size * 4 / 3, size / 3 + 0.4)
    save_figure(fig, out, dpi=dpi)
    plt.close(fig)
    typer.echo(f"{part.n_regions} regions of a 3-D domain; drew 4 sections u3 = t; wrote {out}")
    return True


@app.command("topology")
def topology_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file."),
    data: Path = typer.Option(..., "--data", help="Points (.npy, .npz, .csv) holding the three anchors."),
    through: str = typer.Option(..., "--through", help="Row indices i,j,k of three points of --data: the "
                                "slice is the plane through them."),
    logit: int = typer.Option(0, "--logit", help="The logit whose sublevel sets are studied."),
    levels: int = typer.Option(50, "--levels", help="Levels of the Betti curve, evenly spaced over the logit's "
                               "range on the slice."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture spec for bare state_dicts."),
    pad: float = typer.Option(0.1, "--pad", help="Margin around the three points, as a fraction of the "
                              "square's side."),
    max_regions: int = typer.Option(10_000_000, "--max-regions", help="Stop with an error beyond this "
                                    "many regions."),
    out: Path = typer.Option(Path("topology"), "--out", "-o", help="Output directory: betti.csv, "
                             "sublevel.csv, persistence.csv, critical.csv, diagrams.csv (with gudhi), "
                             "topology.png."),
    figure: bool = typer.Option(True, "--figure/--no-figure", help="Write topology.png."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints you trust."),
) -> None:
    """Betti numbers of every class's decision region in the slice through three data points; the
    Betti curve, H0 persistence (and H1 with gudhi) of the sublevel sets of one logit, and its PL Morse
    critical points."""
    import pandas as pd

    from .io import save_figure, write_table
    from .regions.morse import critical_points, euler_check
    from .regions.topology import betti_numbers, critical_values, sublevel_betti, sublevel_persistence

    if levels < 1:
        _fail(f"--levels must be >= 1; got {levels}")
    part, _, _, _ = _partition_through(checkpoint, data, through, arch, pad, max_regions, trust)
    try:
        betti = betti_numbers(part)
        values = critical_values(part, logit=logit)
        curve = sublevel_betti(part, np.linspace(values[0], values[-1], levels), logit=logit)
        diagram = sublevel_persistence(part, logit=logit)
        crit = critical_points(part, logit=logit)
        diagrams = _h1_diagrams(part, logit)
    except ValueError as exc:
        _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    write_table(betti, out / "betti.csv")
    write_table(curve, out / "sublevel.csv")
    write_table(pd.DataFrame(diagram, columns=["birth", "death"]), out / "persistence.csv")
    write_table(crit, out / "critical.csv")
    for row in betti.itertuples():
        typer.echo(f"class {row[1]}: b0 = {row.b0}, b1 = {row.b1}, area {row.area:.4g}")
    n = crit["kind"].value_counts()
    typer.echo(f"critical points of logit {logit}: {n.get('minimum', 0)} minima, "
               f"{int(crit.loc[crit['kind'] == 'saddle', 'multiplicity'].sum())} saddles (with multiplicity), "
               f"{n.get('maximum', 0)} maxima; #min - #saddles + #max = {euler_check(crit)}")
    typer.echo(f"{len(diagram)} H0 pairs of logit {logit}; wrote {out}/betti.csv, sublevel.csv, persistence.csv, "
               f"critical.csv")
    if diagrams is None:
        typer.echo("H1 persistence skipped: it needs gudhi (pip install 'relugeo[topology]')")
    else:
        write_table(diagrams, out / "diagrams.csv")
        h1 = diagrams[diagrams["dim"] == 1]
        typer.echo(f"{len(h1)} H1 pairs of logit {logit}"
                   + (f" (longest: born {h1['birth'].iloc[(h1['death'] - h1['birth']).argmax()]:.4g}, "
                      f"dies {h1['death'].iloc[(h1['death'] - h1['birth']).argmax()]:.4g})" if len(h1) else "")
                   + f"; wrote {out}/diagrams.csv")
    if figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .viz import plot_partition
        from .viz.topology_plot import plot_betti_curve, plot_critical_points, plot_persistence

        fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
        plot_partition(part, axes[0], color_by="class", legend=False, colorbar=False)
        plot_critical_points(crit, axes[0])
        plot_betti_curve(curve, axes[1])
        plot_persistence(diagram, axes[2], h1=None if diagrams is None else
                         diagrams.loc[diagrams["dim"] == 1, ["birth", "death"]].to_numpy())
        save_figure(fig, out / "topology.png")
        plt.close(fig)
        typer.echo(f"wrote {out}/topology.png")


def _h1_diagrams(part, logit: int):
    """H0 and H1 of the sublevel filtration as a table (dim, birth, death), or None without gudhi."""
    import pandas as pd

    try:
        import gudhi  # noqa: F401
    except ImportError:
        return None
    from .regions.persistence import sublevel_diagrams

    d = sublevel_diagrams(part, logit=logit)
    return pd.DataFrame({"dim": np.repeat([0, 1], [len(d[0]), len(d[1])]),
                         "birth": np.r_[d[0][:, 0], d[1][:, 0]], "death": np.r_[d[0][:, 1], d[1][:, 1]]})


@app.command("metrics")
def metrics_cmd(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file, or a directory of checkpoints (one table "
                                      "with 'checkpoint' and 'step' columns, plus inversion steps)."),
    data: Path = typer.Option(..., "--data", help="Points: .npz with X and integer labels y (optional group: "
                              "'train' rows are measured, 'test' rows give the held-out within-class "
                              "variance), or .npy / .csv for --metrics compression."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture spec for bare state_dicts, e.g. "
                                       "'mlp:64-200-10:relu', or 'mlp:64-20-2:tanh' for tanh MLPs."),
    metrics: str = typer.Option("nc,inversion", "--metrics", help="Comma-separated: nc (neural collapse on the "
                                "penultimate layer), inversion (class radii, centroid distances, kNN, soft "
                                "nearest-neighbour loss per hidden layer), compression (lambda of the first "
                                "layer)."),
    layers: str = typer.Option("all", "--layers", help="Hidden layers for inversion: 'all' or comma-separated "
                               "layer numbers, 1 for the first hidden layer as in every relugeo table (-1 is the "
                               "last)."),
    informative: int = typer.Option(1, "--informative", help="Compression: number of leading informative "
                                    "input coordinates."),
    k: int = typer.Option(10, "--k", help="Neighbours of the kNN same-class fraction."),
    temperature: float = typer.Option(1.0, "--temperature", help="Temperature of the soft nearest-neighbour "
                                      "loss."),
    burn_in: float = typer.Option(20, "--burn-in", help="Inversion steps are searched from this step on."),
    smooth: int = typer.Option(5, "--smooth", help="Odd window of the smoothed radius curves."),
    batch_size: int = typer.Option(1024, "--batch-size", help="Samples per forward pass."),
    out: Path = typer.Option(Path("metrics.csv"), "--out", "-o", help="Output table (.csv or .parquet), "
                             "written atomically."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints you trust."),
    module: Optional[str] = typer.Option(None, "--module", help=MODULE_HELP),
) -> None:
    """Manifold metrics of a checkpoint or a directory of them: neural collapse, class-manifold
    inversion, geometric compression. One long table: metric, layer, class, value."""
    from . import RelugeoError
    from .io import read_points, write_table
    from .metrics import METRIC_GROUPS, checkpoint_metrics

    arch = _arch_of(arch, module)
    _check_table_out(out)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()]
    bad = [m for m in wanted if m not in METRIC_GROUPS]
    if bad or not wanted:
        _fail(f"--metrics must be a comma-separated subset of {','.join(METRIC_GROUPS)}; got {metrics!r}")
    if layers.strip().lower() == "all":
        chosen = None
    else:
        try:
            chosen = [int(t) for t in layers.split(",")]
        except ValueError:
            chosen = []
        if not chosen or 0 in chosen:
            _fail(f"--layers must be 'all' or comma-separated layer numbers such as 1,-1 (1 is the first hidden "
                  f"layer); got {layers!r}")
        chosen = [c - 1 if c > 0 else c for c in chosen]
    if smooth < 1 or smooth % 2 == 0:
        _fail(f"--smooth must be a positive odd integer; got {smooth}")
    if k < 1:
        _fail(f"--k must be >= 1; got {k}")
    if not temperature > 0:
        _fail(f"--temperature must be > 0; got {temperature}")
    try:
        X, y, groups = read_points(data)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    if y is None and {"nc", "inversion"} & set(wanted):
        _fail(f"--metrics {','.join(wanted)} needs class labels: --data {data} has no 'y' array (an .npz with "
              f"keys X and y)")
    X_test = y_test = None
    if groups is not None:
        groups = np.asarray(groups).astype(str)
        if "train" in groups:
            if "test" in groups and y is not None:
                X_test, y_test = X[groups == "test"], y[groups == "test"]
            X, y = X[groups == "train"], (None if y is None else y[groups == "train"])
    files = _checkpoints(checkpoint)
    try:
        table = checkpoint_metrics(
            files, X, y, arch=arch, trust=trust, burn_in=burn_in,
            smooth=smooth, metrics=wanted, layers=chosen, X_test=X_test, y_test=y_test,
            informative=informative, k=k, temperature=temperature, batch_size=batch_size,
        )
    except (RelugeoError, ValueError, TypeError) as exc:
        _fail(str(exc))
    write_table(table, out)
    last = table[table["checkpoint"] == files[-1].name]
    for metric in ("nc1", "trace_ratio", "wcv_test", "lambda"):
        hit = last[last["metric"] == metric]
        if len(hit):
            typer.echo(f"{files[-1].name}: {metric} = {hit['value'].iloc[0]:.4g}")
    inv = table[table["metric"] == "inversion_step_smoothed"]
    for row in inv.head(12).itertuples(index=False):
        typer.echo(f"inversion (smoothed) layer {row.layer} class {row[4]}: step {row.value:g}")
    if len(inv) > 12:
        typer.echo(f"... {len(inv) - 12} more inversion steps in the table")
    typer.echo(f"wrote {out} ({len(table)} rows)")


@app.command("track")
def track_cmd(
    checkpoints: Path = typer.Argument(..., help="Directory of checkpoints (natural order; the step is the last "
                                       "number of each file name)."),
    data: Path = typer.Option(..., "--data", help="Points: .npz with X (optional y labels and group names such "
                              "as train/test: one point set per group), .npy or .csv."),
    radius: List[float] = typer.Option([0.25], "--radius", "-r", help="LC radius in input units; repeat for "
                                       "several."),
    exact_radius: Optional[List[float]] = typer.Option(None, "--exact-radius", help="Radii of the exact method "
                                                       "only (default: every --radius)."),
    methods: str = typer.Option("exact,vertex", "--methods", help="Comma-separated LC methods: exact, vertex; "
                                "'none' skips LC."),
    random: int = typer.Option(0, "--random", help="Add this many uniform random points (bounding box of the "
                               "data) as the set 'random'."),
    points: int = typer.Option(200, "--points", help="At most this many points per set (seeded)."),
    slices: int = typer.Option(2, "--slices", help="Fixed slices through random triplets of the slice set "
                               "(three classes when labelled); 0 for none."),
    through: Optional[List[str]] = typer.Option(None, "--through", help="Explicit slice triplet i,j,k of rows "
                                                "of the slice set; repeat for several (overrides --slices)."),
    n_directions: int = typer.Option(25, "--n-directions", "-P", help="Vertex method: directions P."),
    layers: str = typer.Option("hidden", "--layers", help="'hidden' neurons only, or 'all' (logits too)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the frame, the point subsets and the slices."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture spec for bare state_dicts."),
    module: Optional[str] = typer.Option(None, "--module", help=MODULE_HELP),
    out: Path = typer.Option(Path("track"), "--out", "-o", help="Output directory: track.csv, points.csv, "
                             "regions.parquet (regions.csv.gz without pyarrow), per-checkpoint parts, figures."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Keep the checkpoints already finished in "
                                "--out."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a dask.distributed "
                                            "scheduler to fan the checkpoints out to."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write lc.png and migration.png."),
    animate: int = typer.Option(20, "--animate", help="Frames of partition.gif (slice 0 over evenly spaced "
                                "checkpoints); 0 for none."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints you trust."),
    match: bool = typer.Option(False, "--match", help="Match the regions of each slice between consecutive "
                               "checkpoints: migration.csv, and flow.png and events.png with --figures."),
    topology: bool = typer.Option(False, "--topology", help="Betti numbers of every class's decision region "
                                  "and critical points of the class scores, per checkpoint and slice: "
                                  "topology.csv, and topology.png with --figures."),
) -> None:
    """Region migration over a directory of checkpoints: LC, distances to region and decision
    boundaries, region statistics on fixed slices; tables and figures, resumable."""
    from . import RelugeoError, load, partition, track
    from .data import uniform_like
    from .io import read_points, save_figure

    if not checkpoints.is_dir():
        _fail(f"CHECKPOINTS must be a directory of checkpoints; got {checkpoints}")
    files = _checkpoints(checkpoints)
    wanted = [] if methods.strip().lower() == "none" else [m.strip() for m in methods.split(",") if m.strip()]
    if any(m not in ("exact", "vertex") for m in wanted) or len(set(wanted)) != len(wanted):
        _fail(f"--methods must be a comma-separated subset of exact,vertex or 'none'; got {methods!r}")
    radii = {m: list(radius) for m in wanted}
    if exact_radius and "exact" in radii:
        radii["exact"] = list(exact_radius)
    arch = _arch_of(arch, module)
    try:
        X, y, groups = read_points(data)
        _load_for(files[0], arch, trust, X, data)
    except (RelugeoError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    sets = {}
    if groups is None:
        sets["data"] = X if y is None else (X, y)
    else:
        groups = np.asarray(groups).astype(str)
        for g in dict.fromkeys(groups):
            rows = groups == g
            sets[g] = X[rows] if y is None else (X[rows], y[rows])
    if random > 0:
        sets["random"] = uniform_like(X, random, seed=seed)
    slice_arg = slices
    if through:
        try:
            slice_arg = [[int(t) for t in s.split(",")] for s in through]
        except ValueError:
            slice_arg = []
        if not slice_arg or any(len(t) != 3 for t in slice_arg):
            _fail(f"--through must be three comma-separated row indices such as 0,1,2; got {through!r}")
    client = None
    if scheduler is not None:
        try:
            from dask.distributed import Client
        except ImportError:
            _fail("--scheduler needs dask.distributed: pip install 'relugeo[dask]'")
        client = Client(scheduler)
    try:
        res = track(files, sets, slices=slice_arg, points=points, radius=radii, n_directions=n_directions,
                    seed=seed, layers=layers, arch=arch, trust=trust, out=out, resume=resume, client=client,
                    progress=lambda d, n: typer.echo(f"  {d}/{n} checkpoints", err=True), match=match,
                    keep_partitions=match and figures, topology=topology)
    except (RelugeoError, ValueError, TypeError, FileNotFoundError) as exc:
        _fail(str(exc))
    finally:
        if client is not None:
            client.close()
    typer.echo(f"wrote {out}/track.csv ({len(res.table)} rows), points.csv and the region table")
    if figures or animate:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    if figures:
        from .viz.migration_plot import lc_figure, migration_figure

        if (res.table["measure"].isin(["lc_vertex", "lc_exact", "accuracy"])).any():
            fig = lc_figure(res.table)
            save_figure(fig, out / "lc.png")
            plt.close(fig)
        fig = migration_figure(res.table)
        save_figure(fig, out / "migration.png")
        plt.close(fig)
        typer.echo(f"wrote {out}/lc.png, {out}/migration.png")
    if match and res.migration is not None:
        typer.echo(f"wrote {out}/migration.csv ({len(res.migration)} rows)")
    if match and figures and res.migration is not None and len(res.migration):
        from .regions.correspondence import correspond
        from .viz.flow_plot import plot_events_by_band, plot_flow

        last = sorted(res.partitions)[-2:]
        a, b = res.partitions[last[0]][0], res.partitions[last[1]][0]
        fig, ax = plt.subplots(figsize=(6.5, 6.5))
        plot_flow(a, b, correspond(a, b), ax)
        ax.set_title(f"slice 0, steps {last[0]} -> {last[1]}: {ax.get_title()}", fontsize=9)
        save_figure(fig, out / "flow.png")
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        plot_events_by_band(res.migration, ax)
        save_figure(fig, out / "events.png")
        plt.close(fig)
        typer.echo(f"wrote {out}/flow.png, {out}/events.png")
    if topology and res.topology is not None:
        typer.echo(f"wrote {out}/topology.csv ({len(res.topology)} rows)")
        if figures:
            from .viz.topology_plot import topology_over_steps_figure

            fig = topology_over_steps_figure(res.topology)
            save_figure(fig, out / "topology.png")
            plt.close(fig)
            typer.echo(f"wrote {out}/topology.png")
    if animate > 0 and res.slices:
        from .viz.animate import animate_partitions

        pick = np.unique(np.round(np.linspace(0, len(files) - 1, min(animate, len(files)))).astype(int))
        parts = [partition(load(files[i], arch, trust=trust), res.slices[0]) for i in pick]
        frame_steps = [_step_of(files[i]) if _step_of(files[i]) is not None else int(i) for i in pick]
        animate_partitions(parts, frame_steps, out / "partition.gif")
        typer.echo(f"wrote {out}/partition.gif ({len(parts)} frames)")


@app.command("bench")
def bench_cmd(
    suite: str = typer.Option("quick", "--suite", help="'quick' (under two minutes on 2 cores) or 'full'. With "
                              "--model it sets the rounds and grid resolutions only."),
    device: str = typer.Option("cpu", "--device", help="Where the exact engine runs: 'cpu' or 'cuda' (fails "
                               "when numba sees no GPU)."),
    methods: str = typer.Option("exact,grid,vertex", "--methods", help="Comma-separated: exact (required), grid "
                                "(dense sampling; on 3-D and larger domains the naive per-cell LP enumerator), vertex (the "
                                "published LC estimator, LC cases only)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every measurement, the checks and the "
                                            "machine (CPU, cores, threads, versions, BLAS, GPU) here, atomically."),
    case: Optional[List[str]] = typer.Option(None, "--case", help="Run only this suite case (repeat for several; "
                                             "see --list)."),
    list_cases: bool = typer.Option(False, "--list", help="List the suite's cases and recorded counts, then exit."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Hold numba, BLAS and torch to this many "
                                          "threads (default: numba's, all cores)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Benchmark your own checkpoint instead of the "
                                         "suite (needs --data)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="With --model: architecture spec for a bare "
                                       "state_dict, e.g. 'mlp:64-200-200-200-10:relu'."),
    data: Optional[Path] = typer.Option(None, "--data", help="With --model: points (.npy, .npz, .csv); slices "
                                        "run through them and LC is measured at them."),
    slices: int = typer.Option(3, "--slices", help="With --model: 2-D slices through three random points."),
    segments: int = typer.Option(3, "--segments", help="With --model: 1-D segments between two random points."),
    points: int = typer.Option(200, "--points", help="With --model: points for local complexity (0: none)."),
    radius: Optional[float] = typer.Option(None, "--radius", help="With --model: LC radius in input units "
                                           "(default 8% of the median distance between two points)."),
    seed: int = typer.Option(0, "--seed", help="With --model: seed of the random points."),
    trust: bool = typer.Option(False, "--trust", help="Allow unpickling whole-module checkpoints you trust."),
    module: Optional[str] = typer.Option(None, "--module", help="With --model: " + MODULE_HELP),
) -> None:
    """Count regions on a fixed, versioned suite of nets and domains (or on your own network), time
    the exact engine against grid sampling and the vertex estimator, and check every count
    against the one recorded for the suite. Exits 1 when a count or check fails."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from . import RelugeoError, benchmark
    from .io import read_points, write_text

    if suite not in benchmark.SUITES:
        _fail(f"--suite must be one of {', '.join(benchmark.SUITES)}; got {suite!r}")
    try:
        wanted = benchmark.parse_methods(methods)
        benchmark.engine_options(device)
    except benchmark.BenchmarkError as exc:
        _fail(str(exc))
    if model is None and (data is not None or arch is not None):
        _fail("--data and --arch describe your own network: pass them with --model CHECKPOINT")
    if model is not None and case:
        _fail("--case selects suite cases; it cannot be combined with --model")
    if list_cases:
        for c in benchmark.cases(suite):
            counts = ", ".join(f"{k} {v:,}" for k, v in c.expected.items())
            typer.echo(f"{c.name:24s} {counts:34s} {c.describe()}")
        return
    if model is None:
        chosen = benchmark.cases(suite)
        if case:
            names = {c.name: c for c in benchmark.cases("full")}
            bad = [n for n in case if n not in names]
            if bad:
                _fail(f"unknown --case {', '.join(map(repr, bad))}; the cases are: {', '.join(names)}")
            chosen = [names[n] for n in case]
        workloads = [c.build() for c in chosen]
        what = f"suite v{benchmark.SUITE_VERSION} '{suite}'"
    else:
        if data is None:
            _fail("--model needs --data POINTS: the slices run through them and LC is measured at them")
        try:
            X, _, _ = read_points(data)
            net = _load_for(model, _arch_of(arch, module), trust, X, data)
            workloads = benchmark.user_workloads(net, X, slices=slices, segments=segments, points=points,
                                                 radius=radius, seed=seed)
        except (RelugeoError, ValueError, FileNotFoundError) as exc:
            _fail(str(exc))
        what = f"{model.name} on {data.name}"
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("warm-up", total=len(workloads) + 1)
        try:
            result = benchmark.run(workloads, methods=wanted, suite=suite, device=device, threads=threads,
                                   progress=lambda d, n, label: bar.update(task, completed=d, description=label))
        except benchmark.BenchmarkError as exc:
            _fail(str(exc))
    result.command = " ".join(
        ["relugeo bench", f"--suite {suite}", f"--device {device}", f"--methods {','.join(wanted)}"]
        + [f"--case {c!r}" for c in case or []] + ([f"--threads {threads}"] if threads else [])
        + ([f"--model {model}", f"--data {data}"] + ([f"--arch {arch}"] if arch else []) if model else [])
        + ([f"--json {json_out}"] if json_out else []))
    view = Table(title=f"relugeo bench: {what}, {len(workloads)} cases on {device} "
                       f"({result.machine['threads']['numba']} numba threads)")
    for col in benchmark.table.COLUMNS:
        view.add_column(col, justify="left" if col in ("case", "check") else "right", no_wrap=col == "case")
    for row in benchmark.table.rows(result):
        view.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 120).print(view)
    fresh = result.extra["numba_cache_files_before"] == 0
    typer.echo(f"warm-up ({'first numba compilation' if fresh else 'numba cache load or recompilation'}, "
               f"not timed): {result.warmup_seconds:.2f} s; whole run {result.total_seconds:.2f} s")
    if json_out is not None:
        import json

        write_text(json.dumps(result.to_dict(), indent=1) + "\n", json_out)
        typer.echo(f"wrote {json_out}")
    if not result.ok:
        for line in result.problems:
            typer.secho(f"FAILED {line}", fg=typer.colors.RED, err=True)
        typer.secho(f"error: {len(result.problems)} check(s) failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command("compile")
def compile_cmd() -> None:
    """Compile relugeo's numba kernels now (once per machine, about a minute), so that the first
    partition or LC starts at once. Prints the thread settings relugeo chose."""
    from .regions import warmup
    from .threads import settings

    s = settings()
    typer.echo(f"threads: {s.numba_threads} numba ({s.layer} layer), torch {s.torch_threads}, "
               f"BLAS {s.blas_threads}; {s.cpus_available} CPUs available")
    cold = not all(warmup.cache_is_warm(f) for f in warmup.FAMILIES)
    seconds = warmup.compile_kernels(log=typer.echo, families=warmup.FAMILIES)
    typer.echo(f"kernels {'compiled' if cold else 'loaded from the cache'} in {seconds:.0f} s")


def main() -> None:  # pragma: no cover - entry point
    app()
