"""A small, seeded training loop that saves checkpoints ``relugeo.load`` reads."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .nets.checkpoint import save


def log_steps(steps: int, n: int) -> list[int]:
    """``n`` distinct log-spaced steps from 0 to ``steps`` inclusive (step 0 first, ``steps`` last).

    Step ``k`` of 1..n-1 is ``round(steps ** ((k - 1) / (n - 2)))``, raised to one past
    the previous step where rounding would repeat it, so early steps are consecutive
    integers until the geometric spacing exceeds 1. With ``n > steps + 1`` every
    step 0..steps is returned.
    """
    if steps < 1 or n < 2:
        raise ValueError(f"need steps >= 1 and n >= 2; got steps={steps}, n={n}")
    if n >= steps + 1:
        return list(range(steps + 1))
    if n == 2:
        return [0, steps]
    out = [0]
    for k in range(1, n):
        target = round(steps ** ((k - 1) / (n - 2)))
        out.append(min(max(out[-1] + 1, target), steps - (n - 1 - k)))
    return out


def fit(
    model: nn.Module,
    X,
    y,
    *,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    batch_size: int | None = 200,
    loss: str = "mse",
    seed: int = 0,
    checkpoint_steps: Sequence[int] = (),
    out_dir=None,
    init_scale: float = 1.0,
    optimizer: str = "adamw",
    momentum: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    eval_data=None,
    record_steps: Sequence[int] = (),
) -> list[dict]:
    """Train ``model`` on (X, y) (AdamW by default); save checkpoints at the given steps.

    Parameters
    ----------
    model : nn.Module
        Trained in place.
    X : array_like of shape (N, D); y : array_like of shape (N,), int class labels
    steps : int
        Optimiser steps.
    lr, weight_decay : float
        Learning rate and weight decay (decoupled for AdamW, an L2 term of the
        gradient for Adam and SGD).
    batch_size : int or None
        Minibatch size; minibatches are drawn with replacement, seeded.
        ``None``: every step takes the whole training set (full-batch
        gradient descent, as in most grokking studies).
    loss : {"mse", "ce", "hinge"}
        MSE on one-hot targets (the grokking papers' choice), cross-entropy,
        or the multi-class hinge loss (``torch.nn.functional.multi_margin_loss``).
    seed : int
        Seed of the minibatch draws (the initialisation is the caller's).
    checkpoint_steps : sequence of int
        Steps (0 = before training) at which ``out_dir/step_XXXXXXX.pt`` is written
        with :func:`relugeo.save`, the architecture included; ``meta`` holds the
        record below.
    init_scale : float, default 1.0
        alpha: every parameter is multiplied by alpha before training (the
        large-initialisation knob of the grokking literature).
    optimizer : {"adamw", "adam", "sgd"}, default "adamw"
    momentum : float, default 0.0
        SGD momentum.
    betas, eps
        Adam / AdamW settings.
    eval_data : tuple (X_test, y_test), optional
        Also record ``test_loss`` and ``test_accuracy`` at every checkpoint.
    record_steps : sequence of int
        Further steps at which the record is taken without writing a
        checkpoint (``path`` is None): a dense accuracy curve for little disk.

    Returns
    -------
    list of dict
        One record per checkpoint or recorded step, in step order: ``step``,
        ``loss``, ``train_accuracy``, (``test_loss``, ``test_accuracy``,) ``path``.
    """
    if loss not in ("mse", "ce", "hinge"):
        raise ValueError(f"loss must be 'mse', 'ce' or 'hinge'; got {loss!r}")
    if optimizer not in ("adamw", "adam", "sgd"):
        raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd'; got {optimizer!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise ValueError(f"batch_size must be a positive integer or None (full batch); got {batch_size!r}")
    if not (np.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be a finite number > 0; got {init_scale!r}")
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    n_classes = int(y.max()) + 1
    evals = None
    if eval_data is not None:
        Xe, ye = eval_data
        evals = (torch.as_tensor(np.asarray(Xe), dtype=torch.float32),
                 torch.as_tensor(np.asarray(ye), dtype=torch.int64))
        n_classes = max(n_classes, int(evals[1].max()) + 1)
    gen = torch.Generator().manual_seed(seed)
    if init_scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(init_scale)
    if optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
    elif optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
    wanted = sorted({int(s) for s in checkpoint_steps})
    recorded = {int(s) for s in record_steps} - set(wanted)
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
        if loss == "hinge":
            return nn.functional.multi_margin_loss(logits, yb)
        return nn.functional.mse_loss(logits, nn.functional.one_hot(yb, n_classes).float())

    def checkpoint(step, write=True):
        with torch.no_grad():
            rec = {"step": step, "loss": float(objective(X, y)),
                   "train_accuracy": float((model(X).argmax(dim=1) == y).float().mean())}
            if evals is not None:
                rec["test_loss"] = float(objective(*evals))
                rec["test_accuracy"] = float((model(evals[0]).argmax(dim=1) == evals[1]).float().mean())
        path = str(save(out / f"step_{step:07d}.pt", model, meta=rec)) if write else None
        history.append({**rec, "path": path})

    if 0 in wanted or 0 in recorded:
        checkpoint(0, 0 in wanted)
    for step in range(1, steps + 1):
        opt.zero_grad()
        if batch_size is None:
            objective(X, y).backward()
        else:
            idx = torch.randint(0, len(X), (min(batch_size, len(X)),), generator=gen)
            objective(X[idx], y[idx]).backward()
        opt.step()
        if step in wanted or step in recorded:
            checkpoint(step, step in wanted)
    return history
