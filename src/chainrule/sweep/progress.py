"""Live progress of a sweep: on a terminal, an overall rich bar with ETA (the columns of
`chainrule train`'s bar) and one line per running trial with its latest evaluation, read from the
trial's `metrics.jsonl`; elsewhere one plain line per trial that starts or ends."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from chainrule import layout
from chainrule.train.progress import fmt_time, rich_progress


def describe(params: dict[str, Any]) -> str:
    """`lr=0.01 dropout=0.1` from a trial's swept values."""
    parts = []
    for k, v in params.items():
        shown = f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)
        parts.append(f"{k}={shown}")
    return " ".join(parts)


def last_eval(run_dir: Path) -> dict[str, Any] | None:
    """The last record of a trial's metrics.jsonl (written atomically by the trainer), or None."""
    try:
        text = (run_dir / layout.METRICS).read_bytes()
    except OSError:
        return None
    lines = text.rstrip(b"\n").rsplit(b"\n", 1)
    try:
        return json.loads(lines[-1]) if lines[-1] else None
    except ValueError:
        return None


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * v:.2f}%"


class SweepProgress:
    """Args:
    total: trials in the sweep; done: how many had ended before this session.
    enabled: False for --quiet; stream: where to write (stderr).
    """

    def __init__(self, total: int, done: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.done = total, done
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.running: dict[str, dict[str, Any]] = {}  # trial id -> params, run_dir, started, last eval
        self.failed = 0
        self._bar: Any = None
        self._task: Any = None
        self._next_poll = 0.0

    def start(self) -> None:
        if not self.tty:
            return
        from rich.console import Console

        console = Console(file=self.stream, highlight=False)
        self._bar = rich_progress(console, "trials", below=self._table, speed_period=7 * 86400)
        self._task = self._bar.add_task("sweep", total=self.total, completed=self.done)
        self._bar.start()
        self._bar.refresh()

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def started(
        self,
        trial_id: str,
        params: dict[str, Any],
        run_dir: Path,
        seed: int,
        resumed: bool,
        note: str | None = None,
    ) -> None:
        self.running[trial_id] = {
            "params": params,
            "seed": seed,
            "run_dir": run_dir,
            "t0": time.perf_counter(),
            "eval": None,
            "resumed": resumed,
        }
        if self.enabled and note:
            self.message(f"trial {trial_id} {note}: {describe(params)} seed={seed}")
        elif self.enabled and not self.tty and resumed:
            self.message(f"trial {trial_id} continues from its checkpoint: {describe(params)} seed={seed}")
        self.tick(force=True)

    def lost(self, trial_id: str, why: str) -> None:
        """A trial's Ray worker or node died (not the trial): it is queued to run again."""
        self.running.pop(trial_id, None)
        self.message(f"chainrule: trial {trial_id}: {why}")
        self.tick(force=True)

    def paused(self, trial_id: str, rung: int, metric: str, value: float | None) -> None:
        """A trial reached a halving rung (it is not done: it may be promoted later)."""
        info = self.running.pop(trial_id, {"params": {}, "seed": "?"})
        if self.enabled:
            shown = _pct(value) if metric.endswith("_acc") else ("-" if value is None else f"{value:.4f}")
            self.message(
                f"[{self.done}/{self.total}] trial {trial_id} paused at rung {rung}: "
                f"{describe(info['params'])} seed={info['seed']}: {metric} {shown}"
            )
        self.tick(force=True)

    def pruned(self, n: int) -> None:
        """`n` paused trials were stopped for good at the end (successive halving)."""
        self.done += n
        if self.enabled and n:
            self.message(f"[{self.done}/{self.total}] {n} trial(s) pruned by successive halving")

    def finished(self, trial_id: str, status: str, result: dict[str, Any], error: str | None) -> None:
        info = self.running.pop(trial_id, {"params": {}, "seed": "?"})
        self.done += 1
        self.failed += status == "failed"
        if not self.enabled:
            return
        what = f"{describe(info['params'])} seed={info['seed']}"
        head = f"[{self.done}/{self.total}] trial {trial_id} {status}: {what}"
        if status == "completed":
            tail = (
                f"val {_pct(result.get('val_acc'))} test {_pct(result.get('test_acc'))} "
                f"({result.get('epochs')} epochs, {fmt_time(result.get('train_time_s') or 0)})"
            )
        else:
            tail = error or ""
        self.message(f"{head}: {tail}")
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        self.tick(force=True)

    def tick(self, force: bool = False) -> None:
        """Poll the running trials' metrics (at most once a second) and redraw."""
        if self._bar is None:
            return
        now = time.perf_counter()
        if not force and now < self._next_poll:
            return
        self._next_poll = now + 1.0
        for info in self.running.values():
            info["eval"] = last_eval(info["run_dir"]) or info["eval"]
        self._bar.refresh()

    def _table(self) -> list[Any]:
        from rich.table import Table

        if not self.running:
            return []
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, padding=(0, 1))
        for col in ("trial", "config", "seed", "epoch", "val acc", "time"):
            table.add_column(col, no_wrap=col != "config", overflow="fold")
        now = time.perf_counter()
        for tid, info in self.running.items():
            ev = info["eval"] or {}
            table.add_row(
                f"  {tid}",
                describe(info["params"]) or "(base)",
                str(info["seed"]),
                "" if ev.get("epoch") is None else f"{ev['epoch']:.2f}",
                _pct(ev.get("val_acc")),
                fmt_time(now - info["t0"]),
            )
        return [table]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            self.running.clear()
            self._bar.refresh()
            self._bar.stop()
            self._bar = None
