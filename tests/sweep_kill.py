"""Test helper (not a test file): run `chainrule sweep` in a subprocess and `kill -9` it at a chosen
moment, checking that its worker processes die with it (Linux: reads /proc)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chainrule.sweep import Store, StoreError


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone (or reaped between two looks)
        return False


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def kill_9_sweep_when(
    spec: Path, out: Path, ready: Callable[[dict[str, dict]], bool], timeout: float = 120.0
) -> None:
    """Run the sweep `spec` into `out` (2 workers); `kill -9` the coordinator as soon as `ready` says
    so of the database's trials (trial_id -> row); then its workers must be gone within 10 s."""
    cmd = [sys.executable, "-m", "chainrule.cli", "sweep", str(spec), "--out", str(out), "--workers", "2"]
    cmd += ["--quiet", "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    workers: list[int] = []
    try:
        while time.monotonic() < deadline:
            time.sleep(0.05)
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                with Store(out / "sweep.db", readonly=True) as store:
                    trials = {t["trial_id"]: t for t in store.trials()}
            except (StoreError, sqlite3.OperationalError):  # not created yet
                continue
            if ready(trials):
                workers = children(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail("the sweep never got mid-way")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert workers, "the coordinator had no worker processes"
    t0 = time.monotonic()
    while any(alive(w) for w in workers) and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert not [w for w in workers if alive(w)], "workers outlived the coordinator"
