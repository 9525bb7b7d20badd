"""The training progress bar: `rich` on a terminal, one plain line per evaluation elsewhere.

Every evaluation prints one line (step, steps/s, elapsed time, ETA and the metrics) that stays in
the scrollback, Keras-style: on a terminal above a live rich progress bar (percentage, steps,
rate, elapsed time, ETA; redrawn at most 5 times a second, the columns `chainrule sweep` draws
too: `rich_progress`), in a file or a pipe alone, so logs stay readable. `rich` is imported only
when a bar is drawn.
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


def fmt_rate(per_second: float, unit: str) -> str:
    """`1,234 steps/s`, or `12 steps/min` below one a second: the rate of the bar and of the lines."""
    return f"{per_second:,.0f} {unit}/s" if per_second >= 1 else f"{60 * per_second:.2g} {unit}/min"


def rich_progress(
    console: Any, unit: str, below: Callable[[], list[Any]] | None = None, speed_period: float = 30.0
) -> Any:
    """A `rich.progress.Progress` with the columns shared by `chainrule train` and `chainrule sweep`
    (description, bar, percentage, `done/total unit`, rate, elapsed, ETA) and, under the bars,
    whatever `below()` returns (a sweep's running trials). The rate and ETA average
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
            return Text(fmt_rate(speed, unit), style="progress.data.speed")

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
            self._bar = rich_progress(console, "steps")
            self._task = self._bar.add_task("train", total=self.total, completed=step)
            self._bar.start()
            self._next_draw = 0.0
            self.update(step)

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
            f"{fmt_rate(rate, 'steps')} elapsed {fmt_time(elapsed)} ETA {eta_s}  {self.metrics}"
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
        """Called after each evaluation with a short metrics summary: one line that stays (above the
        bar on a terminal: the bar shows the progress, the lines the history)."""
        self.metrics = metrics
        if not self.enabled:
            return
        line = self._line(step)
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
            self._next_draw = 0.0
            self.update(step)
        else:
            self.stream.write(line + "\n")
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
