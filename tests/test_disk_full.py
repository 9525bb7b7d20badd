"""A full disk (issue 20, item 5), made real with a file-size limit (RLIMIT_FSIZE, so writes fail
with EFBIG as they would with ENOSPC): one line naming the file, the run folder and the resume
command; no half-written file; the folder resumes even when its first checkpoint failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import main

resource = pytest.importorskip("resource")

LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))
from chainrule.cli import main
sys.exit(main(sys.argv[1:]))
"""
ARGS = ["--dataset", "synthetic", "--hidden-sizes", "2000", "--batch-size", "64", "--steps", "3"]
ARGS += ["--quiet", "--threads", "1"]


def test_a_full_disk_at_the_first_checkpoint_is_one_line_and_resumable(tmp_path, capsys):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, "train", *ARGS, "--run-dir", str(run)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("chainrule: error: ") and "Traceback" not in proc.stderr
    assert f"writing {run / 'checkpoint.npz'} failed" in line
    assert f"continue with: chainrule train --resume {run}" in line
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary file left
    assert not (run / "checkpoint.npz").exists()
    # space freed (no limit here): the folder resumes, from step 0
    rc = main(["train", "--resume", str(run)])
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert Path(run / "summary.json").is_file()


SWEEP_LIMITED = """
import os, resource, signal, sys
from pathlib import Path
from chainrule.sweep import backends

out, start = Path(sys.argv[1]), backends.LocalPool.__init__

def limited(self, *args, **kwargs):
    start(self, *args, **kwargs)  # the workers are started unlimited: only the coordinator's writes fail
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = max(p.stat().st_size for p in out.iterdir() if p.is_file()) + 80_000  # a few commits of sweep.db
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

backends.LocalPool.__init__ = limited
from chainrule.cli import main
sys.exit(main(sys.argv[2:]))
"""
SWEEP = """
name = "full"
seeds = 1
[base]
dataset = "synthetic"
hidden_sizes = [8]
batch_size = 64
epochs = 1
[grid]
lr = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08]
"""


def test_a_full_disk_under_a_sweep_is_one_line_marks_what_it_can_and_resumes(tmp_path, capsys):
    from chainrule.sweep import Store

    spec, out = tmp_path / "full.toml", tmp_path / "sw"
    spec.write_text(SWEEP)
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = ["sweep", str(spec), "--out", str(out), "--workers", "2", "--no-report"]
    proc = subprocess.run(
        [sys.executable, "-c", SWEEP_LIMITED, str(out), *cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1 and errors[0] == proc.stderr.splitlines()[-1], proc.stderr
    line = errors[0]
    assert line.startswith("chainrule: error: ") and f"writing {out / 'sweep.db'} failed" in line, line
    assert f"the sweep in {out} stopped" in line and f"continue with: chainrule sweep --resume {out}" in line
    with Store(out / "sweep.db", readonly=True) as store:
        counts = store.counts()
        (session,) = store.sessions()
    assert counts["running"] == 0 and 0 < counts["completed"] < 8, counts  # nothing left marked running
    assert session["finished"] is not None
    assert ",running," not in (out / "trials.csv").read_text()
    # space freed (no limit here): the sweep resumes and ends
    capsys.readouterr()
    rc = main(["sweep", "--resume", str(out), "--workers", "2", "--quiet", "--no-report"])
    assert rc == 0, capsys.readouterr().err
    with Store(out / "sweep.db", readonly=True) as store:
        assert store.counts()["completed"] == 8
