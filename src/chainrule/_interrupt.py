"""A clean stop for long loops: the first Ctrl-C or SIGTERM asks the loop to stop at its next safe
point (the trainer: after the current step, with a checkpoint of that step); a second one raises
KeyboardInterrupt at once. Standard library only; handlers are installed from the main thread."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = False
_owner = 0  # the process that installed the handlers (forked workers inherit them)


def stop_requested() -> bool:
    """True once a signal asked the running loop to stop (inside `stop_on_signals` only)."""
    return _requested


def _handle(signum: int, frame: object) -> None:
    global _requested
    if os.getpid() != _owner:
        # a forked worker (a data-loading pool): Ctrl-C reaches the whole process group, and the
        # parent decides what it means, so ignore it; SIGTERM (the pool being closed) kills as usual
        if signum != signal.SIGINT:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        return
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
    global _requested, _owner
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _owner = os.getpid()
    previous = {s: signal.signal(s, _handle) for s in signals}
    _requested = False
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested = False
