"""A training-step axis for curves over checkpoints: logarithmic, with step 0 drawn apart.

Checkpoints are usually spaced geometrically (0, 50, 100, 200, ...). On a log
axis step 0 has no place, and a symlog axis stretches the gap 0 -> 50 over
decades where there is no data. Here step 0 sits at a fixed spot left of the
first positive step, behind a break in the axis, and is drawn as a marker
only: no line joins it to the others, so no trend is drawn where nothing was
measured. Every checkpoint gets a marker.
"""

from __future__ import annotations

import numpy as np

#: Decades between step 0's spot and the smallest positive step.
ZERO_GAP_DECADES = 0.5
MARKER = "o"


def zero_position(steps) -> float | None:
    """Where step 0 is drawn on the log axis, or None when the steps hold no 0 (or nothing but 0)."""
    s = np.asarray(steps, dtype=float)
    positive = s[s > 0]
    if not (s == 0).any():
        return None
    first = positive.min() if len(positive) else 1.0
    return float(first / 10 ** ZERO_GAP_DECADES)


def plot_steps(ax, steps, values, style: str = "-", *, zero_at: float | None, color=None, label=None,
               lw: float = 1.8):
    """Draw ``values`` over ``steps``: a line with markers through the positive steps, a lone marker at step 0.

    ``zero_at`` is :func:`zero_position` of every step on the axis (so all curves share it). Returns the
    line of the positive steps (or the marker of step 0 when there is none), for legends.
    """
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    pos = s > 0
    line = None
    if pos.any():
        (line,) = ax.plot(s[pos], v[pos], style, marker=MARKER, ms=3.5, color=color, lw=lw, label=label)
    if (~pos).any() and zero_at is not None:
        (dot,) = ax.plot(np.full(int((~pos).sum()), zero_at), v[~pos], ls="", marker=MARKER, ms=3.5,
                         color=line.get_color() if line is not None else color,
                         label=None if line is not None else label)
        line = line if line is not None else dot
    return line


def finish_step_axis(ax, zero_at: float | None, steps=None, label: str = "training step") -> None:
    """Log x-axis; when step 0 is drawn, a tick "0" at its spot and a break mark between it and step 1+.

    With ``steps`` (every checkpoint's step) and at most eight positive ones, each checkpoint gets a tick;
    otherwise the ticks are powers of ten.
    """
    from matplotlib.ticker import FixedLocator, LogLocator, NullLocator

    ax.set_xscale("log")
    ax.set_xlabel(label + (" (log scale; step 0 drawn apart)" if zero_at is not None else " (log scale)"))
    lo, hi = ax.get_xlim()
    left = lo if zero_at is None else zero_at / 10 ** (ZERO_GAP_DECADES / 2)
    if zero_at is not None:
        ax.set_xlim(left, max(hi, zero_at * 10 ** ZERO_GAP_DECADES * 1.5))
    positive = [] if steps is None else sorted({float(t) for t in np.asarray(steps, dtype=float) if t > 0})
    if 0 < len(positive) <= 8:
        major = positive
    else:
        cut = left * 10 ** (ZERO_GAP_DECADES / 2) if zero_at is not None else left
        major = [t for t in LogLocator(base=10).tick_values(max(left, 1e-300), ax.get_xlim()[1])
                 if cut < t <= ax.get_xlim()[1]]
    ticks = ([zero_at] if zero_at is not None else []) + list(major)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels((["0"] if zero_at is not None else []) + [_step_label(t) for t in major],
                       rotation=45 if len(major) > 5 else 0, ha="right" if len(major) > 5 else "center")
    if zero_at is None:
        return
    brk = zero_at * 10 ** (ZERO_GAP_DECADES / 2)
    ax.axvline(brk, color="0.55", lw=0.8, ls=(0, (2, 2)), zorder=0.5)
    trans = ax.get_xaxis_transform()
    for y in (0.0, 1.0):
        ax.plot([brk / 1.06, brk * 1.06], [y - 0.015, y + 0.015], color="black", lw=0.9, transform=trans,
                clip_on=False, zorder=5)


def _step_label(t: float) -> str:
    return f"{t:,.0f}" if t < 1e6 else f"{t:.0e}"
