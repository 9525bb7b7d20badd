"""Plots of a sweep, from plain numbers: a metric against one swept key, learning curves with
mean ± std bands over seeds, and a heatmap over two keys. Each returns PNG bytes (matplotlib is
imported only when plotting, see `plots._plt`). Nothing here knows about the store or trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .plots import _plt, _to_png


def value_label(v: Any) -> str:
    """How a swept value is written on an axis or in a table: 0.001 -> "0.001", [100, 50] -> "[100, 50]"."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(value_label(x) for x in v) + "]"
    return str(v)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _spread_out(pos: np.ndarray, log: bool) -> bool:
    """At most 8 values, none closer to the next than 6% of the axis (else the labels collide)."""
    if pos.size > 8:
        return False
    if pos.size < 2:
        return True
    t = np.log10(pos) if log else pos
    return bool(np.min(np.diff(np.sort(t))) >= 0.06 * (t.max() - t.min()))


def _cap(ax: Any, cap: float | None) -> None:
    if cap is not None and ax.get_ylim()[1] > cap:
        ax.set_ylim(top=cap)


def metric_by_value(
    key: str,
    values: Sequence[Any],
    means: Sequence[float],
    stds: Sequence[float],
    ylabel: str = "validation accuracy (%)",
    title: str = "",
    log: bool | None = None,
    cap: float | None = None,
) -> bytes:
    """A metric against the values of one swept key.

    Args:
        key: the swept key (x axis label).
        values: the key's value for each configuration (several configurations may share a value
            when other keys are swept too).
        means, stds: the metric of each configuration, mean and std over its seeds.
        log: a log x axis (a key drawn log-uniformly); None: where positive numbers span more
            than two decades.
        cap: the y axis ends there at the most (100 for an accuracy in %: a std bar cannot go
            past it).

    Each configuration is a point with a ±std error bar; the line joins the best configuration at
    each value (with one swept key: simply every configuration). Numbers spanning more than two
    decades get a log axis; other values are categories in the order given.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    means_a = np.asarray(means, float)
    stds_a = np.nan_to_num(np.asarray(stds, float))
    distinct, numeric, xs, pos, log = _positions(values, log)
    several = len(values) > len(distinct)
    ok = np.isfinite(means_a)
    xs_plot = _jittered(xs, pos, log) if several else xs
    ax.errorbar(
        xs_plot[ok],
        means_a[ok],
        yerr=stds_a[ok],
        fmt="o",
        ms=4,
        alpha=0.45 if several else 0.9,
        color="tab:blue",
        capsize=3,
        label="a configuration (mean ± std over seeds)" if several else "mean ± std over seeds",
        clip_on=cap is None,  # a point on the cap is drawn whole
    )
    _best_line(ax, xs, pos, means_a, ok, several)
    _value_axis(ax, distinct, pos, numeric, log)
    _cap(ax, cap)
    ax.set_xlabel(key)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} against {key}", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _to_png(fig)


def _positions(
    values: Sequence[Any], log: bool | None
) -> tuple[list[Any], bool, np.ndarray, np.ndarray, bool]:
    """The distinct values in axis order, whether they are numbers, each configuration's x, each
    distinct value's x, and whether the axis is logarithmic (numbers: sorted, log where positive
    numbers span two decades unless `log` says; other values: categories in the order given)."""
    distinct: list[Any] = []
    for v in values:
        if v not in distinct:
            distinct.append(v)
    if _numeric(distinct):
        distinct.sort()
        xs = np.asarray([float(v) for v in values])
        pos = np.asarray([float(v) for v in distinct])
        log = bool(np.all(pos > 0)) and (pos.max() / pos.min() >= 100 if log is None else log)
        return distinct, True, xs, pos, log
    idx = {value_label(v): i for i, v in enumerate(distinct)}
    xs = np.asarray([idx[value_label(v)] for v in values], float)
    return distinct, False, xs, np.arange(len(distinct), dtype=float), False


def _jittered(xs: np.ndarray, pos: np.ndarray, log: bool) -> np.ndarray:
    """x positions moved a little (seeded): where other keys vary too, points sharing a value stay apart."""
    span = (np.log10(pos.max() / pos.min()) if log else (pos.max() - pos.min())) if pos.size > 1 else 1.0
    jitter = (np.random.default_rng(0).uniform(-1, 1, xs.size) * 0.012 * max(span, 1e-12)) if span else 0
    return xs * 10**jitter if log else xs + jitter


def _best_line(
    ax: Any, xs: np.ndarray, pos: np.ndarray, means: np.ndarray, ok: np.ndarray, several: bool
) -> None:
    """The line through the best configuration at each value, its highest point labelled."""
    best_x, best_y = [], []
    for p in pos:
        sel = ok & (xs == p)
        if sel.any():
            best_x.append(p)
            best_y.append(means[sel].max())
    if not best_x:
        return
    ax.plot(
        best_x,
        best_y,
        "-",
        color="tab:red" if several else "tab:blue",
        lw=1.6,
        label="best configuration at each value" if several else None,
    )
    i = int(np.argmax(best_y))
    ax.annotate(
        f"{best_y[i]:.2f}", (best_x[i], best_y[i]), xytext=(4, 4), textcoords="offset points", fontsize=8
    )


def _value_axis(ax: Any, distinct: list[Any], pos: np.ndarray, numeric: bool, log: bool) -> None:
    """The x axis: log ticks written as numbers; a grid's few values one labelled tick each."""
    if log:
        # drawn values: ticks at 1, 2 and 5 of each decade, written as numbers (matplotlib's default
        # labels every minor tick of a short log axis in scientific notation, one over the other)
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if not numeric or _spread_out(pos, log):
        ax.set_xticks(pos)
        ax.set_xticklabels(
            [value_label(v) for v in distinct],
            rotation=30 if not numeric else 0,
            ha="right" if not numeric else "center",
            fontsize=8,
        )
        ax.minorticks_off()


def curve_bands(
    groups: dict[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    xlabel: str = "epoch",
    ylabel: str = "validation accuracy (%)",
    title: str = "",
    log_y: bool = False,
    cap: float | None = None,
) -> bytes:
    """Learning curves, one colour per group, as the mean over the group's runs with a ±std band
    (seed 002's figure 5). Runs of a group are aligned on their x values (runs that stopped early
    simply end: the mean at each x is over the runs that reached it).

    Args:
        groups: label -> a list of (x, y) arrays, one pair per run (seed).
        cap: the y axis ends there at the most (100 for an accuracy in %).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(groups.items()):
        at: dict[float, list[float]] = {}
        for x, y in runs:
            for xi, yi in zip(np.asarray(x, float), np.asarray(y, float), strict=True):
                if np.isfinite(yi):
                    at.setdefault(round(float(xi), 6), []).append(float(yi))
        if not at:
            continue
        xs = np.asarray(sorted(at))
        mean = np.asarray([np.mean(at[x]) for x in xs])
        std = np.asarray([np.std(at[x], ddof=1) if len(at[x]) > 1 else 0.0 for x in xs])
        color = colors[i % len(colors)]
        ax.plot(xs, mean, "-", color=color, lw=1.6, label=f"{label} (n={len(runs)})")
        if len(runs) > 1:
            ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, lw=0)
    if log_y:
        ax.set_yscale("log")
    _cap(ax, cap)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or ylabel, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _to_png(fig)


def heatmap(
    row_key: str,
    row_values: Sequence[Any],
    col_key: str,
    col_values: Sequence[Any],
    cells: np.ndarray,
    title: str = "",
    label: str = "validation accuracy (%)",
) -> bytes:
    """A metric over a two-key grid, each cell annotated; NaN cells (no result) are left blank.

    Shape: cells (len(row_values), len(col_values)).
    """
    plt = _plt()
    cells = np.asarray(cells, float)
    r, c = cells.shape
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * c + 2.5), max(3.0, 0.6 * r + 1.6)))
    finite = cells[np.isfinite(cells)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(
        np.ma.masked_invalid(cells), cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1e-9, aspect="auto"
    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    mid = (lo + hi) / 2
    for i in range(r):
        for j in range(c):
            if np.isfinite(cells[i, j]):
                ax.text(
                    j,
                    i,
                    f"{cells[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if cells[i, j] > mid else "white",
                )
    ax.set_xticks(range(c))
    ax.set_xticklabels([value_label(v) for v in col_values], fontsize=8)
    ax.set_yticks(range(r))
    ax.set_yticklabels([value_label(v) for v in row_values], fontsize=8)
    ax.set_xlabel(col_key)
    ax.set_ylabel(row_key)
    ax.set_title(title or f"{label}: {row_key} x {col_key}", fontsize=10)
    return _to_png(fig)


def rung_trajectories(
    trajectories: Sequence[tuple[Sequence[float], Sequence[float], bool]],
    ylabel: str = "validation accuracy (%)",
    title: str = "",
    cap: float | None = None,
) -> bytes:
    """Successive halving: each trial's metric at the rungs it reached (x: fraction of its steps, log
    scale), trials that trained to the end in colour, pruned ones in grey.

    Args:
        trajectories: (fractions, values, finished) per trial.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    # a few failed trials (10% accuracy) would squash the range that matters: the axis starts a
    # little below the 10th percentile, and what lies below is drawn on the edge as a triangle
    every = np.asarray([v for _, y, _ in trajectories for v in y], float)
    low = None
    if every.size >= 5:
        lo, hi = float(np.percentile(every, 10)), float(every.max())
        low = lo - 0.15 * max(hi - lo, 1e-9)
        if float(every.min()) >= low:
            low = None
    n_done = 0
    for x, y, finished in sorted(trajectories, key=lambda t: t[2]):  # finished ones drawn on top
        if finished:
            n_done += 1
        style = (
            dict(color=f"C{n_done % 10}", lw=1.6, alpha=0.95, zorder=3)
            if finished
            else dict(color="0.6", lw=0.8, alpha=0.6, zorder=2)
        )
        yy = np.asarray(y, float)
        if low is not None:
            below = yy < low
            yy = np.where(below, low, yy)
            if below.any():
                ax.plot(np.asarray(x, float)[below], yy[below], "v", ms=5, color=style["color"], zorder=4)
        ax.plot(x, yy, "o-", ms=3, **style)
    if low is not None:
        ax.set_ylim(bottom=low)
    _cap(ax, cap)
    ax.set_xscale("log")
    xs = sorted({round(float(v), 6) for x, _, _ in trajectories for v in x})
    if xs:
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{v:.3g}" for v in xs])
        ax.minorticks_off()
    ax.plot([], [], "o-", color="C1", label=f"trained to the end ({n_done})")
    ax.plot([], [], "o-", color="0.6", label=f"pruned ({len(trajectories) - n_done})")
    ax.set_xlabel("fraction of the trial's steps (rung)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or ylabel, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _to_png(fig)
