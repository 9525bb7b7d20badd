"""SIGTERM (a scheduler preempting a job, `kill`) stops `chainrule train` and `chainrule sweep` like
Ctrl-C: exit 130, a line saying how to continue, and `--resume` finishes the work. A training run
stops after its current step and checkpoints that step; a second signal stops it at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from chainrule._interrupt import stop_on_signals, stop_requested
from chainrule.cli import main
from chainrule.sweep import Store
from chainrule.train import load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "chainrule.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_stops_training_with_a_resumable_checkpoint(tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["train", "--dataset", "synthetic", "--hidden-sizes", "64", "--batch-size", "8"]
    args += ["--steps", "200000", "--eval-every", "200", "--name", "t", "--out", str(out)]
    proc = _start(args)
    _wait_for(lambda: list(out.glob("*/metrics.jsonl")), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "SIGTERM: stopping after this step" in err
    assert "checkpoint saved; continue with: chainrule train --resume" in err
    (run,) = out.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps"] < 200000
    # the checkpoint is of the step it stopped at, not of the last evaluation (every 200 steps)
    assert load_checkpoint(run / "checkpoint.npz")["step"] == summary["steps"]
    assert f"interrupted at step {summary['steps']}; checkpoint saved" in err
    # the run goes on from its checkpoint (stopped again at once by --pause-at)
    step = summary["steps"]
    rc = main(["train", "--resume", str(run), "--pause-at", str(step + 400), "--quiet"])
    assert rc == 0
    assert json.loads((run / "summary.json").read_text())["status"] == "paused"
    capsys.readouterr()


def test_the_first_signal_asks_for_a_stop_the_second_raises():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        assert not stop_requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop_requested()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert not stop_requested() and signal.getsignal(signal.SIGTERM) is before


def test_sigterm_stops_a_sweep_that_resumes(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "s"\nseeds = 2\n[base]\ndataset = "synthetic"\nhidden_sizes = [32]\nbatch_size = 8\n'
        'steps = 1500\neval_every = 300\nschedule = "constant"\n[grid]\nlr = [0.01, 0.02]\n'
    )
    out = tmp_path / "out"
    proc = _start(["sweep", str(spec), "--out", str(out), "--workers", "2", "--no-report"])
    _wait_for(lambda: list((out / "trials").glob("*/metrics.jsonl")), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"continue with: chainrule sweep --resume {out}" in err
    assert main(["sweep", "--resume", str(out), "--no-report", "--quiet"]) == 0
    with Store(out / "sweep.db", readonly=True) as store:
        trials = store.trials()
    assert len(trials) == 4 and all(t["status"] == "completed" for t in trials)
    capsys.readouterr()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_leaves_ctrl_c_to_the_parent_and_dies_of_sigterm(capfd):
    # data loading forks a pool inside the training command's handlers. Ctrl-C reaches the whole
    # process group: a worker must ignore it (a dead worker would hang the pool's map) and leave the
    # decision to the parent; closing the pool SIGTERMs the workers, which must die quietly, not
    # print the trainer's "stopping" line and go on
    with stop_on_signals():
        pid = os.fork()
        if pid == 0:  # the worker
            time.sleep(1.0)
            os._exit(7)  # still alive after the SIGINT
        time.sleep(0.2)
        os.kill(pid, signal.SIGINT)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7

        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        assert not stop_requested()
    assert "stopping" not in capfd.readouterr().err
