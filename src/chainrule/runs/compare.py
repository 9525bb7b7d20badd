"""`chainrule runs compare RUN RUN ... --out FILE.html`: the curves of several runs overlaid (loss,
accuracy, learning rate), the config keys that differ, and the final metrics side by side."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import layout
from chainrule._io import atomic_write_text

from .index import RunRecord, RunsError, differing_keys, read_run

MAX_POINTS = 2000  # per-step curves are thinned to about this many points


def read_evals(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's records ([] when absent; a torn last line of a running run is skipped)."""
    path = run_dir / layout.METRICS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def read_step_lr(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(step, lr) of every step from steps.csv, thinned to about MAX_POINTS; empty when absent."""
    path = run_dir / layout.STEPS_CSV
    if not path.is_file():
        return np.empty(0), np.empty(0)
    with path.open(encoding="utf-8", newline="") as f:
        pts = [(float(r["step"]), float(r["lr"])) for r in csv.DictReader(f) if r.get("lr")]
    if not pts:
        return np.empty(0), np.empty(0)
    arr = np.asarray(pts)  # (steps, 2)
    stride = max(1, len(arr) // MAX_POINTS)
    return arr[::stride, 0], arr[::stride, 1]


def _column(evals: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(e["step"], e[key]) for e in evals if e.get(key) is not None and e.get("step") is not None]
    if not pts:
        return np.empty(0), np.empty(0)
    a = np.asarray(pts, float)  # (evaluations, 2)
    return a[:, 0], a[:, 1]


def labels_for(records: Sequence[RunRecord]) -> list[str]:
    """The runs' names, with the folder name added where two runs share a name."""
    names = [r.name for r in records]
    return [
        n if names.count(n) == 1 else f"{n} ({r.run_dir.name})" for n, r in zip(names, records, strict=True)
    ]


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * v:.2f}%"


def compare_runs(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write the comparison page of `run_dirs` (at least two run folders) to `out`."""
    from chainrule import report

    if len(run_dirs) < 2:
        raise RunsError("runs compare needs at least two run folders")
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise RunsError(f"--out {out}: expected an .html file")
    records = [read_run(d) for d in run_dirs]
    labels = labels_for(records)
    evals = [read_evals(r.run_dir) for r in records]
    loss = {
        lab: {"train": _column(ev, "train_loss_running"), "val": _column(ev, "val_loss")}
        for lab, ev in zip(labels, evals, strict=True)
    }
    acc = {
        lab: {"val": _column(ev, "val_acc"), "test": _column(ev, "test_acc")}
        for lab, ev in zip(labels, evals, strict=True)
    }
    lr = {lab: {"": read_step_lr(r.run_dir)} for lab, r in zip(labels, records, strict=True)}
    images = {
        "Loss": report.overlay_curves(loss, "loss"),
        "Accuracy": report.overlay_curves(acc, "accuracy (%)", scale=100.0, log_y=False),
        "Learning rate": report.overlay_curves(lr, "learning rate"),
    }
    rows = [r.row() for r in records]
    metrics: list[tuple[str, list[Any]]] = [
        ("status", [r.status for r in records]),
        ("data set", [row["dataset"] for row in rows]),
        ("model", [row["model"] for row in rows]),
        ("final validation accuracy", [_pct(row["val_acc"]) for row in rows]),
        ("final test accuracy", [_pct(row["test_acc"]) for row in rows]),
        ("final validation loss", [row["val_loss"] for row in rows]),
        ("final test loss", [row["test_loss"] for row in rows]),
        ("steps", [row["steps"] for row in rows]),
        ("epochs", [row["epochs"] for row in rows]),
        ("training time (s)", [row["train_time_s"] for row in rows]),
        ("started", [row["date"] for row in rows]),
    ]
    diff = [(k, [r.config.get(k) for r in records]) for k in differing_keys(records)]
    page = report.render_runs_comparison(
        labels, metrics, diff, images, folders=[str(r.run_dir) for r in records]
    )
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, page)
