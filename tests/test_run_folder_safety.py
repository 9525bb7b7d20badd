"""A user's files are never overwritten, a run is written by one process at a time, and `--resume`
never shortens a run or silently rebuilds its schedule (issue 20, items 1 and 6)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from chainrule.cli import main

TINY = ["--dataset", "synthetic", "--hidden-sizes", "8", "--batch-size", "32", "--seed", "1", "--quiet"]
SPE = 17  # ceil(540 / 32) steps per epoch of the synthetic training split


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule: error: "), err
    assert "Traceback" not in err
    return lines[0]


def users_folder(path: Path) -> dict[str, bytes]:
    path.mkdir(parents=True)
    files = {"report.html": b"<p>my notes</p>", "summary.json": b'{"mine": 1}', "trials.csv": b"a,b\n"}
    for name, data in files.items():
        (path / name).write_bytes(data)
    (path / "spec.toml").write_text('name = "mine"\n')
    files["spec.toml"] = b'name = "mine"\n'
    return files


def unchanged(path: Path, files: dict[str, bytes]) -> bool:
    return {p.name: p.read_bytes() for p in path.iterdir()} == files


def test_train_into_a_users_folder_is_refused_and_touches_nothing(tmp_path, capsys):
    d = tmp_path / "mine"
    files = users_folder(d)
    rc, out, err = run_cli(["train", *TINY, "--steps", "2", "--run-dir", d], capsys)
    assert rc == 2 and out == ""
    assert "is not empty and is not a chainrule run folder" in one_error_line(err)
    assert unchanged(d, files)


def test_train_into_a_file_or_an_existing_run_is_refused(tmp_path, capsys):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    rc, _, err = run_cli(["train", *TINY, "--steps", "2", "--run-dir", a_file], capsys)
    assert rc == 2 and "is a file, not a folder" in one_error_line(err) and a_file.read_text() == "x"
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "2", "--run-dir", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    rc, _, err = run_cli(["train", *TINY, "--steps", "3", "--run-dir", run], capsys)
    assert rc == 2 and f"use --resume {run}" in one_error_line(err)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_train_into_an_empty_folder_works(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    assert main(["train", *TINY, "--steps", "2", "--run-dir", str(d)]) == 0
    assert (d / "summary.json").is_file()


def test_sweep_into_a_users_folder_is_refused_and_touches_nothing(tmp_path, capsys):
    d = tmp_path / "mine"
    files = users_folder(d)
    rc, out, err = run_cli(["sweep", "demo", "--out", d, "--quiet"], capsys)
    assert rc == 1 and out == ""
    assert "is not empty and is not a chainrule sweep folder" in one_error_line(err)
    assert unchanged(d, files)


HOLD_LOCK = """
import sys, time
from chainrule._io import FolderLock
lock = FolderLock(sys.argv[1], "training")
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def paused_run(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--run-dir", str(run), "--pause-at", "20"]) == 0
    return run


def test_a_second_process_on_one_run_is_refused(paused_run, capsys):
    """A real second process holds the run's lock (as a running `train --resume` does)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(paused_run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = (paused_run / "config.toml").read_bytes()
        rc, _, err = run_cli(["train", "--resume", paused_run], capsys)
        line = one_error_line(err)
        assert rc == 2 and f"{paused_run} is in use by another chainrule training process" in line
        assert (paused_run / "config.toml").read_bytes() == config
    finally:
        holder.kill()
        holder.wait()
    # once the holder is gone (killed: the kernel drops its lock) the run continues
    rc, _, err = run_cli(["train", "--resume", paused_run], capsys)
    assert rc == 0, err


def test_resume_with_fewer_steps_than_done_is_refused(paused_run, capsys):
    config = (paused_run / "config.toml").read_bytes()
    summary = (paused_run / "summary.json").read_bytes()
    rc, _, err = run_cli(["train", "--resume", paused_run, "--steps", "10"], capsys)
    line = one_error_line(err)
    assert rc == 2 and "has done 20 steps; it cannot be cut to 10" in line
    assert (paused_run / "config.toml").read_bytes() == config
    assert (paused_run / "summary.json").read_bytes() == summary
    assert json.loads(summary)["status"] == "paused"


def _lrs(run: Path) -> list[float]:
    with open(run / "steps.csv") as f:
        return [float(r["lr"]) for r in csv.DictReader(f)]


def _finished(run: Path, tmp_path: Path, name: str) -> Path:
    """A copy of a completed 34-step cosine run."""
    import shutil

    copy = tmp_path / name
    shutil.copytree(run, copy)
    return copy


def test_extending_a_run_keeps_its_schedule_unless_told(paused_run, tmp_path, capsys):
    assert main(["train", "--resume", str(paused_run), "--quiet"]) == 0  # completes its 34 steps
    kept, rebuilt = _finished(paused_run, tmp_path, "kept"), _finished(paused_run, tmp_path, "rebuilt")

    rc, _, err = run_cli(["train", "--resume", kept, "--steps", "60"], capsys)
    assert rc == 0, err
    assert "cosine schedule of its first 34 steps kept" in err and "--reschedule rebuilds it" in err
    lrs = _lrs(kept)
    assert len(lrs) == 60 and lrs[34:] == [0.0] * 26  # cosine's final value (min_lr 0), not a jump up

    rc, _, err = run_cli(["train", "--resume", rebuilt, "--steps", "60", "--reschedule"], capsys)
    assert rc == 0, err
    assert "cosine schedule rebuilt for 60 steps (--reschedule)" in err
    lrs = _lrs(rebuilt)
    assert lrs[:34] == _lrs(paused_run)[:34] and lrs[34] > 0.01  # the rebuilt cosine, mid-way
    assert tomllib.loads((rebuilt / "config.toml").read_text())["steps"] == 60


def test_reschedule_needs_resume_and_a_length_dependent_schedule(paused_run, capsys):
    rc, _, err = run_cli(["train", *TINY, "--steps", "2", "--reschedule"], capsys)
    assert rc == 2 and "--reschedule is for --resume" in one_error_line(err)
    rc, _, err = run_cli(["train", "--resume", paused_run, "--reschedule"], capsys)
    assert rc == 2 and "--reschedule: nothing to rebuild" in one_error_line(err)
