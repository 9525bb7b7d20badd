"""The training progress bar: `rich` on a terminal, one plain line per evaluation elsewhere.

On a terminal it draws a rich progress bar (percentage, steps, rate, elapsed time, ETA and the
latest metrics), redrawn at most 5 times a second; `chainrule sweep` draws its bars with the
same columns (`rich_progress`). When the stream is a file or a pipe it prints one plain line per
evaluation instead, so logs stay readable. `rich` is imported only when a bar is drawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def fmt_time(seconds: float) -> str:
    s = int(max(0, round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def rich_progress(
    console: Any, unit: str, below: Callable[[], list[Any]] | None = None, speed_period: float = 30.0
) -> Any:
    """A `rich.progress.Progress` with the columns shared by `chainrule train` and `chainrule sweep`
    (description, bar, percentage, `done/total unit`, rate, elapsed, ETA) and, under the bars,
    whatever `below()` returns (the latest metrics; the running trials). The rate and ETA average
    over the last `speed_period` seconds. Refreshed by the caller."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("")
            per = f"{speed:,.0f} {unit}/s" if speed >= 1 else f"{60 * speed:.2g} {unit}/min"
            return Text(per, style="progress.data.speed")

    class WithBelow(RichProgress):
        def get_renderables(self) -> Any:
            yield self.make_tasks_table(self.tasks)
            if below is not None:
                yield from below()

    return WithBelow(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        auto_refresh=False,
        speed_estimate_period=speed_period,
    )


class Progress:
    """Progress of one training run.

    Args:
        total: number of steps of the whole run.
        enabled: False for --quiet.
        stream: where to write (stderr).
        width: bar width of the plain lines, in characters.
    """

    def __init__(
        self, total: int, enabled: bool = True, stream: TextIO | None = None, width: int = 24
    ) -> None:
        self.total = max(1, int(total))
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.metrics = ""
        self._t0 = time.perf_counter()
        self._start_step = 0
        self._next_draw = 0.0
        self._bar: Any = None  # rich.progress.Progress while a bar is shown
        self._task: Any = None
        self._step = 0

    def start(self, step: int) -> None:
        self._t0 = time.perf_counter()
        self._start_step = step
        if self.tty:
            self._close_bar()
            from rich.console import Console

            console = Console(file=self.stream, highlight=False)
            self._bar = rich_progress(console, "steps", below=self._below)
            self._task = self._bar.add_task("train", total=self.total, completed=step)
            self._bar.start()
            self._next_draw = 0.0
            self.update(step)

    def _below(self) -> list[Any]:
        from rich.text import Text

        return [Text("  " + self.metrics, overflow="ellipsis", no_wrap=True)] if self.metrics else []

    def _line(self, step: int) -> str:
        frac = min(1.0, step / self.total)
        filled = int(frac * self.width)
        elapsed = time.perf_counter() - self._t0
        done = step - self._start_step
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        eta_s = fmt_time(eta) if eta == eta else "?"
        bar = "#" * filled + "." * (self.width - filled)
        return (
            f"[{bar}] {100 * frac:5.1f}% step {step}/{self.total} "
            f"{rate:,.0f} it/s elapsed {fmt_time(elapsed)} ETA {eta_s}  {self.metrics}"
        )

    def update(self, step: int) -> None:
        """Cheap to call every step: redraws only every 0.2 s, and only on a terminal."""
        if self._bar is None:
            return
        self._step = step
        now = time.perf_counter()
        if now < self._next_draw:
            return
        self._next_draw = now + 0.2
        self._bar.update(self._task, completed=step, total=self.total)
        self._bar.refresh()

    def evaluated(self, step: int, metrics: str) -> None:
        """Called after each evaluation with a short metrics summary."""
        self.metrics = metrics
        if not self.enabled:
            return
        if self.tty:
            self._next_draw = 0.0
            self.update(step)
        else:
            self.stream.write(self._line(step) + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:  # printed above the bar
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self._step)
            self._bar.refresh()
            self._bar.stop()
            self._bar = None
            self._task = None
