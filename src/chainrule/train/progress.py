"""A dependency-free progress bar on stderr: percentage, steps, rate, ETA and the latest metrics.

On a terminal it redraws one line (at most 5 times a second); when stderr is a file or a pipe it
prints one plain line per evaluation instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_time(seconds: float) -> str:
    s = int(max(0, round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class Progress:
    """Args:
    total: number of steps of the whole run.
    enabled: False for --quiet.
    stream: where to write (stderr).
    width: bar width in characters.
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
        self._dirty = False

    def start(self, step: int) -> None:
        self._t0 = time.perf_counter()
        self._start_step = step

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
        if not self.tty:
            return
        now = time.perf_counter()
        if now < self._next_draw:
            return
        self._next_draw = now + 0.2
        self.stream.write("\r" + self._line(step)[:200].ljust(120))
        self.stream.flush()
        self._dirty = True

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
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._dirty:
            self.stream.write("\n")
            self.stream.flush()
            self._dirty = False
