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
