"""A run killed with -9 (no handler runs: an OOM kill, a power cut) loses at most the checkpoint
interval, whatever the evaluation cadence: the trainer checkpoints on the clock, not only at
evaluation points. (The interval is 15 s; this test sets it to 0.3 s in the child process.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chainrule.cli import main
from chainrule.train import CheckpointError, load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = """
import sys
import chainrule.train.callbacks as callbacks
callbacks.CHECKPOINT_EVERY_S = 0.3
from chainrule.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _checkpoint_step(run: Path) -> int:
    try:
        return int(load_checkpoint(run / "checkpoint.npz")["step"])
    except (CheckpointError, FileNotFoundError):
        return -1


def test_a_run_killed_with_sigkill_resumes_from_a_recent_step_without_any_evaluation(tmp_path, capsys):
    run = tmp_path / "run"
    # one evaluation, at the end of 10^6 steps: the old rule (a checkpoint only at evaluation points)
    # kept step 0 until then
    args = ["train", "--dataset", "synthetic", "--hidden-sizes", "32", "--batch-size", "8", "--quiet"]
    args += ["--steps", "1000000", "--eval-every", "0", "--no-eval-each-epoch", "--run-dir", str(run)]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        seen: set[int] = set()
        while len(seen - {-1, 0}) < 2:  # two checkpoints after step 0: it checkpoints on a clock
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"no checkpoint after step 0 in 120 s (saw steps {seen})"
            seen.add(_checkpoint_step(run))
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at = time.time()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    step = _checkpoint_step(run)
    assert step >= max(seen) > 0
    # at most the interval old when killed, plus one step and the test's polling (a loaded machine)
    assert killed_at - (run / "checkpoint.npz").stat().st_mtime < 0.3 + 10
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--pause-at", str(step + 5)]) == 0
    err = capsys.readouterr().err
    assert f"(resumed at step {step})" in err
    assert _checkpoint_step(run) == step + 5
