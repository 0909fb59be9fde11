"""A small, seeded training loop that saves checkpoints ``relugeo.load`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .nets.checkpoint import save


def log_steps(steps: int, n: int) -> list[int]:
    """``n`` distinct log-spaced steps from 0 to ``steps`` inclusive (step 0 first)."""
    if steps < 1 or n < 2:
        raise ValueError(f"need steps >= 1 and n >= 2; got steps={steps}, n={n}")
    grid = np.unique(np.round(np.logspace(0, np.log10(steps), n - 1)).astype(int))
    return [0] + [int(s) for s in grid]


def fit(
    model: nn.Module,
    X,
    y,
    *,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    batch_size: int = 200,
    loss: str = "mse",
    seed: int = 0,
    checkpoint_steps: Sequence[int] = (),
    out_dir=None,
) -> list[dict]:
    """Train ``model`` with AdamW on (X, y); save checkpoints at the given steps.

    Parameters
    ----------
    model : nn.Module
        Trained in place.
    X : array_like of shape (N, D); y : array_like of shape (N,), int class labels
    steps : int
        Optimiser steps.
    loss : {"mse", "ce"}
        MSE on one-hot targets (the grokking papers' choice) or cross-entropy.
    checkpoint_steps : sequence of int
        Steps (0 = before training) at which ``out_dir/step_XXXXXXX.pt`` is written
        with :func:`relugeo.save`, the architecture included.

    Returns
    -------
    list of dict
        One record per checkpoint: ``step``, ``loss``, ``train_accuracy``, ``path``.
    """
    if loss not in ("mse", "ce"):
        raise ValueError(f"loss must be 'mse' or 'ce'; got {loss!r}")
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    n_classes = int(y.max()) + 1
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    wanted = sorted(set(int(s) for s in checkpoint_steps))
    if wanted and out_dir is None:
        raise ValueError("checkpoint_steps needs out_dir")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    history = []

    def objective(xb, yb):
        logits = model(xb)
        if loss == "ce":
            return nn.functional.cross_entropy(logits, yb)
        return nn.functional.mse_loss(logits, nn.functional.one_hot(yb, n_classes).float())

    def checkpoint(step):
        with torch.no_grad():
            full = float(objective(X, y))
            acc = float((model(X).argmax(dim=1) == y).float().mean())
        path = save(out / f"step_{step:07d}.pt", model, meta={"step": step, "loss": full, "train_accuracy": acc})
        history.append({"step": step, "loss": full, "train_accuracy": acc, "path": str(path)})

    if 0 in wanted:
        checkpoint(0)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(X), (min(batch_size, len(X)),), generator=gen)
        opt.zero_grad()
        objective(X[idx], y[idx]).backward()
        opt.step()
        if step in wanted:
            checkpoint(step)
    return history
