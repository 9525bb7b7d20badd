"""One time-to-accuracy plot across CIFAR-10 recipes: test accuracy against training seconds, one
line per run (recipe and seed) through its evaluations, a star at its final figure (with test-time
augmentation where the recipe uses it), dotted lines at 5, 15 and 30 minutes.

Usage:
    python benchmarks/plot_time_to_accuracy.py RUN_DIR [RUN_DIR ...] --out docs/time_to_accuracy.png

Each RUN_DIR is a `chainrule train` run folder (metrics.jsonl, summary.json, config.toml). The
label is the run's name (its recipe) and seed; `--title` names the CPU the runs were measured on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

from chainrule.report import save_png, time_to_accuracy_runs
from chainrule.train.history import read_metrics


def run_curve(run_dir: Path) -> tuple[str, list[tuple[float, float]], tuple[float, float] | None]:
    """(label, [(seconds, test accuracy)], (seconds, final test accuracy) or None) of one run."""
    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    label = f"{cfg.get('name', run_dir.name)} seed {cfg.get('seed', 0)}"
    points = [
        (float(e["time"]), float(e["test_acc"]))
        for e in read_metrics(run_dir / "metrics.jsonl")
        if e.get("test_acc") is not None
    ]
    final = None
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        acc = (summary.get("final") or {}).get("test_acc")
        if acc is not None and summary.get("train_time_s") is not None:
            final = (float(summary["train_time_s"]), float(acc))
    return label, points, final


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    p.add_argument("--title", default="", help="the plot's title (e.g. the CPU)")
    args = p.parse_args(argv)
    curves, finals = {}, {}
    for run_dir in args.runs:
        if not (run_dir / "metrics.jsonl").is_file():
            print(f"plot_time_to_accuracy: {run_dir}: no metrics.jsonl (not a run folder?)", file=sys.stderr)
            return 2
    runs = [(run_dir, *run_curve(run_dir)) for run_dir in args.runs]
    counts = Counter(label for _, label, _, _ in runs)
    for run_dir, label, points, final in runs:
        if counts[label] > 1:  # the same recipe and seed twice (e.g. in bf16 and fp32): say which
            precision = tomllib.loads((run_dir / "config.toml").read_text()).get("precision")
            label = f"{label} {precision}" if precision else f"{label} ({run_dir.name})"
            if label in curves:
                label = f"{label} ({run_dir.name})"
        curves[label] = points
        if final is not None:
            finals[label] = final
    save_png(time_to_accuracy_runs(curves, finals, title=args.title), args.out)
    print(f"wrote {args.out} ({len(curves)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
