"""A clean stop for long loops: the first Ctrl-C or SIGTERM asks the loop to stop at its next safe
point (the trainer: after the current step, with a checkpoint of that step); a second one raises
KeyboardInterrupt at once. Standard library only; handlers are installed from the main thread."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = False


def stop_requested() -> bool:
    """True once a signal asked the running loop to stop (inside `stop_on_signals` only)."""
    return _requested


def _handle(signum: int, frame: object) -> None:
    global _requested
    if _requested:
        raise KeyboardInterrupt
    _requested = True
    name = signal.Signals(signum).name
    sys.stderr.write(
        f"\nchainrule: {name}: stopping after this step and saving a checkpoint "
        "(send it again to stop at once)\n"
    )
    sys.stderr.flush()


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Within the block the first of `signals` sets `stop_requested()`, the second raises
    KeyboardInterrupt. Outside the main thread (no handlers can be set) it does nothing."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in signals}
    _requested = False
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested = False
