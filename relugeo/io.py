"""Reading point sets and writing results atomically (temp file + rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file is fsynced before the rename and the directory after it.
    On any exception the temporary file is removed and ``path`` is left as it
    was, so a failed run never leaves a truncated result that looks complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp makes the file private; give it the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_table(df, path) -> Path:
    """Write a DataFrame as CSV, or Parquet for a ``.parquet`` path, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def write_text(text: str, path) -> Path:
    """Write a text file atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def save_figure(fig, path, dpi: int = 200) -> Path:
    """Save a matplotlib figure atomically; the format follows the path's suffix."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def read_points(path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Read points from ``.npy``, ``.npz`` or ``.csv``.

    Returns ``(X, labels, groups)``: X of shape (N, D) float64; labels (N,) and
    groups (N,) when the file has them (``.npz`` keys ``X``/``x``, ``y``,
    ``group``; otherwise its first array is X). A CSV holds one point per
    row, numbers only, with or without a header line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    labels = groups = None
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            X = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if not keys:
                    raise ValueError("the archive holds no arrays")
                key = next((k for k in ("X", "x", "points", "data") if k in keys), keys[0])
                X = z[key]
                labels = z["y"] if "y" in keys else None
                groups = z["group"] if "group" in keys else None
        elif suffix in (".csv", ".txt"):
            with open(path) as fh:
                first = fh.readline()
            skip = 0 if _is_numeric_row(first) else 1
            X = np.loadtxt(path, delimiter="," if "," in first else None, skiprows=skip, ndmin=2)
        else:
            raise ValueError(f"unknown data format {suffix!r}; use .npy, .npz or .csv")
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot read points from {path}: {exc}") from exc
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    return X, labels, groups


def _is_numeric_row(line: str) -> bool:
    parts = line.replace(",", " ").split()
    try:
        [float(p) for p in parts]
    except ValueError:
        return False
    return bool(parts)
