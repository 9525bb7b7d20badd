"""Training history and early stopping.

`History` keeps the per-step training loss and learning rate in preallocated float64 arrays (no
Python list grows in the hot loop) and one record per evaluation; it writes `metrics.jsonl`,
`metrics.csv` and `steps.csv`. `EarlyStopping` implements the seeds' rule: stop when the relative
improvement of a metric stays below `min_delta` for `patience` evaluations.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import layout
from chainrule._io import atomic_write_text

EVAL_FIELDS = (
    "step",
    "epoch",
    "time",
    "lr",
    "train_loss_running",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "penalty",
)


class History:
    """Per-step loss/lr arrays and per-evaluation records.

    Args:
        capacity: expected number of steps (the arrays grow by doubling if a run is extended).
        window: k, the number of steps averaged into one point of the smoothed loss curve
            (the seeds' `update_step`).
    """

    def __init__(self, capacity: int, window: int = 100) -> None:
        self.loss = np.full(max(capacity, 1), np.nan)
        self.lr = np.full(max(capacity, 1), np.nan)
        self.steps = 0
        self.window = int(window)
        self.evals: list[dict[str, Any]] = []

    def ensure(self, capacity: int) -> None:
        if capacity > self.loss.size:
            n = max(capacity, 2 * self.loss.size)
            for name in ("loss", "lr"):
                old = getattr(self, name)
                new = np.full(n, np.nan)
                new[: old.size] = old
                setattr(self, name, new)

    def add_eval(self, record: dict[str, Any]) -> None:
        self.evals.append({k: record.get(k) for k in EVAL_FIELDS})

    def windowed(self, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean training loss over consecutive windows of k steps: (last step of each window, mean)."""
        k = self.window if k is None else int(k)
        n = self.steps // k
        if n == 0:
            return np.empty(0, np.int64), np.empty(0)
        means = self.loss[: n * k].reshape(n, k).mean(axis=1)
        return np.arange(1, n + 1) * k, means

    def running_mean(self, start: int, stop: int) -> float | None:
        if stop <= start:
            return None
        return float(self.loss[start:stop].mean())

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss[: self.steps].copy(),
            "lr": self.lr[: self.steps].copy(),
            "steps": self.steps,
            "window": self.window,
            "evals": [dict(e) for e in self.evals],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.window = int(state["window"])
        self.ensure(self.steps)
        self.loss[: self.steps] = state["loss"]
        self.lr[: self.steps] = state["lr"]
        self.loss[self.steps :] = np.nan
        self.lr[self.steps :] = np.nan
        self.evals = [dict(e) for e in state["evals"]]

    # ---- files ----------------------------------------------------------------------------------
    def write(self, run_dir: str | Path) -> None:
        """metrics.jsonl, metrics.csv and steps.csv."""
        self.write_evals(run_dir)
        self.write_steps(run_dir)

    def write_evals(self, run_dir: str | Path) -> None:
        """metrics.jsonl and metrics.csv: one record per evaluation."""
        run_dir = Path(run_dir)
        atomic_write_text(
            run_dir / layout.METRICS, "".join(json.dumps(_jsonable(e)) + "\n" for e in self.evals)
        )
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(EVAL_FIELDS)
        for e in self.evals:
            w.writerow(["" if e.get(k) is None else e[k] for k in EVAL_FIELDS])
        atomic_write_text(run_dir / layout.METRICS_CSV, buf.getvalue())

    def write_steps(self, run_dir: str | Path) -> None:
        """steps.csv: one row per step (loss, lr) with the window mean on each window's last step."""
        run_dir = Path(run_dir)
        ends, means = self.windowed()
        mean_at = dict(zip(ends.tolist(), means.tolist(), strict=True))
        lines = [f"step,loss,lr,loss_window_{self.window}"]
        loss, lr = self.loss[: self.steps].tolist(), self.lr[: self.steps].tolist()
        for i in range(self.steps):
            m = mean_at.get(i + 1)
            lines.append(f"{i + 1},{loss[i]!r},{lr[i]!r},{'' if m is None else repr(m)}")
        atomic_write_text(run_dir / layout.STEPS_CSV, "\n".join(lines) + "\n")


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a `metrics.jsonl` file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


class EarlyStopping:
    """Stop when the monitored metric has not improved by a relative `min_delta` for `patience`
    evaluations in a row.

    An evaluation counts as an improvement when, for a loss (mode "min"),
    `value < best * (1 - min_delta)`, and for an accuracy (mode "max"),
    `value > best * (1 + min_delta)`. Seed 004 stops at a 0.1% change (`min_delta=0.001`,
    `patience=1`). Any strictly better value still becomes the best (its weights are the ones
    restored); only the patience counter uses the threshold.

    Args:
        patience: evaluations without a significant improvement before `should_stop` is True.
        min_delta: relative improvement that counts (0.001 = 0.1%).
        mode: "min" (losses) or "max" (accuracies).
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.001, mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' or 'max', got {mode!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.best: float | None = None
        self.best_step: int | None = None
        self.anchor: float | None = None  # last value that counted as a significant improvement
        self.bad_evals = 0

    def update(self, value: float, step: int) -> bool:
        """Record one evaluation; return True if `value` is the best so far (save the weights)."""
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if self.anchor is None:
            significant = True
        elif self.mode == "min":
            significant = value < self.anchor - self.min_delta * abs(self.anchor)
        else:
            significant = value > self.anchor + self.min_delta * abs(self.anchor)
        if significant:
            self.anchor = value
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        if better:
            self.best, self.best_step = value, step
        return better

    @property
    def should_stop(self) -> bool:
        return self.bad_evals >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "anchor": self.anchor,
            "bad_evals": self.bad_evals,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state["best"], state["best_step"]
        self.anchor, self.bad_evals = state["anchor"], int(state["bad_evals"])
