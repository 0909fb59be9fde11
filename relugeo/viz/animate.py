"""Animations of the partition of one slice across training checkpoints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..io import atomic_path
from ..regions.partition import Partition
from .partition_plot import CLASS_COLORS, LAYER_COLORS, _auto_width, density_limits, plot_partition

FORMATS = (".gif", ".mp4")


def ffmpeg_path() -> str | None:
    """The ffmpeg executable that MP4 output uses, or None when there is none."""
    import matplotlib

    configured = matplotlib.rcParams.get("animation.ffmpeg_path", "ffmpeg")
    return shutil.which(configured) or shutil.which("ffmpeg")


def animate_partitions(
    partitions,
    steps,
    path,
    *,
    fps: float = 2.0,
    color_by: str = "class",
    figsize=(5.5, 6.2),
    dpi: int = 120,
    **plot_kwargs,
) -> Path:
    """Animate the partition of one slice across checkpoints, one frame per checkpoint.

    Every frame has the same axis limits (the union of the partitions'
    domains), the same edge width and the same colour limits, and a step
    counter with the region count in its title; so what changes between
    frames is the network, not the drawing.

    Parameters
    ----------
    partitions : sequence of Partition
        2-D partitions, usually of the same slice at successive checkpoints.
    steps : sequence of int
        Training step of each partition, shown as the frame's counter.
    path : str or os.PathLike
        ``.gif`` (written with pillow) or ``.mp4`` (needs ffmpeg on the
        PATH, see :func:`ffmpeg_path`). Written atomically.
    fps : float, default 2.0
        Frames per second.
    color_by : str, default "class"
        As in :func:`plot_partition`.
    figsize : (float, float), default (5.5, 6.2)
        Frame size in inches; with ``dpi`` it sets the frame's pixels.
    dpi : int, default 120
    **plot_kwargs
        Passed to :func:`plot_partition` (``edges``, ``anchors``,
        ``class_names``, ``points``, ``labels``, ...).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        Mismatched lengths, no partitions, an unknown suffix, or ``.mp4``
        without ffmpeg.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    path = Path(path)
    parts = list(partitions)
    steps = list(steps)
    if not parts:
        raise ValueError("partitions must hold at least one Partition; got none")
    if len(steps) != len(parts):
        raise ValueError(f"steps must have one entry per partition ({len(parts)}); got {len(steps)}")
    for i, p in enumerate(parts):
        if not isinstance(p, Partition) or p.dim != 2:
            raise ValueError(f"partitions[{i}] must be a 2-D Partition; got {type(p).__name__}")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"path must end in one of {FORMATS}; got {path.name!r}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a number > 0; got {fps!r}")
    ffmpeg = ffmpeg_path() if suffix == ".mp4" else None
    if suffix == ".mp4" and ffmpeg is None:
        raise ValueError(f"writing {path.name!r} needs ffmpeg on the PATH and none was found; "
                         "write a .gif instead")

    lo = np.min([p.slice.vertices.min(axis=0) for p in parts], axis=0)
    hi = np.max([p.slice.vertices.max(axis=0) for p in parts], axis=0)
    kwargs = dict(plot_kwargs)
    kwargs.setdefault("color_by", color_by)
    if kwargs.get("clim") is None and kwargs["color_by"] == "density":
        kwargs["clim"] = density_limits(np.concatenate([p.areas for p in parts]))
    elif kwargs.get("clim") is None and kwargs["color_by"] == "n_active":
        counts = [np.unpackbits(p.patterns.view(np.uint8), axis=1).sum(axis=1) for p in parts if p.n_regions]
        c = np.concatenate(counts) if counts else np.zeros(1)
        kwargs["clim"] = (float(c.min()), float(max(c.max(), c.min() + 1)))

    def new_frame():
        fig = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes([0.05, 0.17, 0.9, 0.75])
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        return fig, ax

    if kwargs.get("edge_width") is None:
        fig, ax = new_frame()
        kwargs["edge_width"] = _auto_width(ax, max(parts, key=lambda p: p.n_regions))
    user_title = kwargs.pop("title", None)
    frames = []
    for part, step in zip(parts, steps):
        fig, ax = new_frame()
        counter = f"step {step:,}" if isinstance(step, (int, np.integer)) else f"step {step}"
        title = f"{counter}  \u00b7  {part.n_regions:,} regions"
        plot_partition(part, ax, title=title if user_title is None else f"{user_title}\n{title}", **kwargs)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    with atomic_path(path) as tmp:
        if suffix == ".gif":
            palette = _gif_palette(frames)
            images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=round(1000 / fps), loop=0)
        else:
            _write_mp4(ffmpeg, frames, fps, tmp)
    return path


def _gif_palette(frames: list):
    """One 256-colour palette for every frame, so colours that stay put do not flicker.

    Built from up to 16 frames plus swatches of the class and layer colours,
    so small marks in those colours (anchors, legend keys) keep them.
    """
    from matplotlib.colors import to_rgb
    from PIL import Image

    sample = [frames[i] for i in np.unique(np.linspace(0, len(frames) - 1, 16).round().astype(int))]
    sample = np.concatenate(sample, axis=0)
    key = np.array([to_rgb(c) for c in CLASS_COLORS + LAYER_COLORS + ("#000000", "#FFFFFF")])
    key = (255 * key).round().astype(np.uint8)
    swatch = np.repeat(np.repeat(key[:, None, :], sample.shape[1], axis=1), max(1, len(sample) // 200), axis=0)
    return Image.fromarray(np.concatenate([sample, swatch], axis=0)).quantize(
        colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def _write_mp4(ffmpeg: str, frames: list, fps: float, out: Path) -> None:
    h, w, _ = frames[0].shape
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", f"{fps:g}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",
           "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", str(out)]
    proc = subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed writing MP4 (exit {proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace').strip()}")
