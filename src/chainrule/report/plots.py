"""Plots of a run: loss, accuracy and learning-rate curves, confusion matrix, prediction grid.

Matplotlib is imported lazily (Agg backend, no display needed) inside each function, so importing
chainrule never pulls it in. Every function renders to PNG bytes; `save_png` writes them
atomically.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._io import atomic_write_bytes

SPLIT_COLORS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}


def plotting_missing() -> str | None:
    """None where matplotlib can be imported, else the one line that says it cannot (a core
    dependency, but a `--no-deps` or broken install may lack it). Finds it without importing it."""
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None or a module without a spec
        found = False
    if found:
        return None
    return "chainrule: no plots: matplotlib cannot be imported here (pip install matplotlib)"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _to_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def save_png(png: bytes, path: str | Path) -> Path:
    return atomic_write_bytes(path, png)


def _legend(ax: Any) -> None:
    """A legend only where something is labelled (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _column(evals: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(e["step"], e[key]) for e in evals if e.get(key) is not None]
    if not pts:
        return np.empty(0), np.empty(0)
    s, v = zip(*pts, strict=True)
    return np.asarray(s, float), np.asarray(v, float)


def loss_curves(
    step_loss: np.ndarray, window: int, evals: Sequence[dict[str, Any]], title: str = ""
) -> bytes:
    """Per-step training loss (faint), its mean over windows of `window` steps (the seeds'
    `update_step`), and the train/validation/test loss at each evaluation."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    n = step_loss.size
    if n:
        steps = np.arange(1, n + 1)
        stride = max(1, n // 20000)  # at most ~20k points of the raw curve
        ax.plot(steps[::stride], step_loss[::stride], color="0.75", lw=0.5, label="train (per step)")
        k = max(1, min(window, n))
        m = n // k
        if m:
            means = step_loss[: m * k].reshape(m, k).mean(axis=1)
            ax.plot(
                np.arange(1, m + 1) * k, means, color="tab:blue", lw=1.5, label=f"train (mean of {k} steps)"
            )
    for split in ("train", "val", "test"):
        s, v = _column(evals, f"{split}_loss")
        if s.size:
            ax.plot(
                s,
                v,
                "o-",
                ms=3,
                color=SPLIT_COLORS[split],
                alpha=0.9 if split != "train" else 0.6,
                label=f"{split} (eval)",
            )
    finite = step_loss[np.isfinite(step_loss)] if n else step_loss
    if finite.size and finite.max() > 20 * max(np.median(finite), 1e-12):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title or "loss")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _to_png(fig)


def accuracy_curves(
    evals: Sequence[dict[str, Any]], title: str = "", final: Mapping[str, Any] | None = None
) -> bytes:
    """Train/validation/test accuracy (%) at each evaluation. `final` (summary.json's final metrics)
    adds the test accuracy at the end where the evaluations did not measure it (eval_test off).
    With a single evaluation, bars with their numbers: one point per split on a step axis says
    nothing."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    last_step = max((e["step"] for e in evals), default=0)
    points = {split: _column(evals, f"{split}_acc") for split in ("train", "val", "test")}
    if not points["test"][0].size and final and final.get("test_acc") is not None:
        points["test"] = (np.asarray([float(last_step)]), np.asarray([float(final["test_acc"])]))
        final_only = True
    else:
        final_only = False
    if len({e["step"] for e in evals}) == 1:
        shown = [(split, 100 * v[-1]) for split, (_, v) in points.items() if v.size]
        names = [split if not (split == "test" and final_only) else "test (final)" for split, _ in shown]
        bars = ax.barh(names, [v for _, v in shown], color=[SPLIT_COLORS[sp] for sp, _ in shown])
        ax.bar_label(bars, labels=[f"{v:.2f}%" for _, v in shown], padding=3, fontsize=9)
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.set_xlabel("accuracy (%)")
        ax.set_title((title or "accuracy") + f" (one evaluation, step {last_step})")
        ax.grid(alpha=0.3, axis="x")
        return _to_png(fig)
    for split, (s, v) in points.items():
        if not s.size:
            continue
        if split == "test" and final_only:
            ax.plot(s, 100 * v, "*", ms=10, color=SPLIT_COLORS[split], label="test (final)")
        else:
            ax.plot(s, 100 * v, "o-", ms=3, color=SPLIT_COLORS[split], label=split)
        ax.annotate(
            f"{100 * v[-1]:.2f}%",
            (s[-1], 100 * v[-1]),
            fontsize=8,
            xytext=(4, 0),
            textcoords="offset points",
            color=SPLIT_COLORS[split],
        )
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "accuracy")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _to_png(fig)


def time_to_accuracy(evals: Sequence[dict[str, Any]], title: str = "") -> bytes:
    """Test (and validation) accuracy at each evaluation against the training seconds so far."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for split in ("val", "test"):
        pts = [(e["time"], e[f"{split}_acc"]) for e in evals if e.get(f"{split}_acc") is not None]
        if pts:
            t, a = zip(*pts, strict=True)
            ax.plot(
                np.asarray(t) / 60.0,
                100 * np.asarray(a),
                marker="o",
                ms=3,
                label=split,
                color=SPLIT_COLORS[split],
            )
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    _legend(ax)  # a run stopped before its first evaluation has no line
    if title:
        ax.set_title(title)
    return _to_png(fig)


def time_to_accuracy_runs(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    finals: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    marks: Sequence[float] = (5.0, 15.0, 30.0),
) -> bytes:
    """Test accuracy against training time for several runs: one line per label (e.g. recipe and
    seed) through its (seconds, accuracy in [0, 1]) evaluations; `finals` adds a run's final
    figure (e.g. with test-time augmentation) as a star; dotted verticals at the `marks` minutes.
    Runs whose labels share the part before " seed" share a colour."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    colours: dict[str, Any] = {}
    runs_in_group: dict[str, int] = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", "-.", ":")
    for label, pts in curves.items():
        group = label.split(" seed")[0]
        colour = colours.setdefault(group, cycle[len(colours) % len(cycle)])
        style = styles[runs_in_group.get(group, 0) % len(styles)]  # the seeds of one recipe
        runs_in_group[group] = runs_in_group.get(group, 0) + 1
        if pts:
            t, a = zip(*pts, strict=True)
            ax.plot(
                np.asarray(t) / 60.0,
                100 * np.asarray(a),
                marker="o",
                ls=style,
                ms=3,
                lw=1.2,
                color=colour,
                label=label,
            )
        if finals and label in finals:
            ft, fa = finals[label]
            ax.plot([ft / 60.0], [100 * fa], "*", ms=10, color=colour)
    for m in marks:
        ax.axvline(m, color="0.6", ls=":", lw=1)
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    _legend(ax)
    ax.set_title(title or "time to accuracy (stars: the final evaluation, with test-time augmentation)")
    return _to_png(fig)


def lr_curve(step_lr: np.ndarray, title: str = "") -> bytes:
    """The learning rate of every step."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    n = step_lr.size
    if n:
        stride = max(1, n // 20000)
        ax.plot(np.arange(1, n + 1)[::stride], step_lr[::stride], color="tab:purple")
        pos = step_lr[np.isfinite(step_lr) & (step_lr > 0)]
        if pos.size and pos.max() / pos.min() > 100:
            ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(title or "learning rate")
    ax.grid(alpha=0.3)
    return _to_png(fig)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = number of samples of class i predicted as j."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def confusion_plot(cm: np.ndarray, classes: Sequence[str], title: str = "") -> bytes:
    """Confusion matrix: counts in each cell, rows (true class) shaded by their fraction."""
    plt = _plt()
    c = len(classes)
    size = 2.0 + 0.55 * c
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    for i in range(c):
        for j in range(c):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                fontsize=7 if c > 12 else 8,
                color="white" if frac[i, j] > 0.5 else ("tab:red" if i != j and cm[i, j] else "black"),
            )
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(title or f"confusion matrix (accuracy {100 * acc:.2f}%)")
    return _to_png(fig)


def pick_samples(y_true: np.ndarray, y_pred: np.ndarray, n: int = 24, seed: int = 0) -> np.ndarray:
    """Indices for the prediction grid: half random samples, half mistakes (if there are any)."""
    rng = np.random.default_rng(seed)
    wrong = np.flatnonzero(y_true != y_pred)
    k_wrong = min(wrong.size, n // 2)
    chosen = list(rng.permutation(wrong)[:k_wrong]) if k_wrong else []
    rest = np.setdiff1d(np.arange(y_true.size), chosen)
    chosen += list(rng.permutation(rest)[: n - len(chosen)])
    return np.asarray(sorted(chosen), np.int64)


def prediction_grid(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray | None,
    classes: Sequence[str],
    cols: int = 8,
    title: str = "",
) -> bytes:
    """Images (uint8, (N, C, H, W)) with 'true / predicted (probability)' under each; mistakes are
    titled in red with a red frame (as seed 003's sample predictions)."""
    plt = _plt()
    n = images.shape[0]
    cols = max(1, min(cols, n))
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.75 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        img = images[i]
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(np.transpose(img, (1, 2, 0)))
        ok = y_true[i] == y_pred[i]
        p = f" {100 * probs[i]:.0f}%" if probs is not None else ""
        color = "black" if ok else "red"
        ax.set_title(f"{classes[y_true[i]]} / {classes[y_pred[i]]}{p}", fontsize=7, color=color)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(0.5 if ok else 2.5)
    wrong = int(np.sum(y_true != y_pred))
    fig.suptitle(title or f"true / predicted (confidence); {wrong} of {n} wrong, in red", fontsize=9)
    fig.tight_layout()
    return _to_png(fig)
