"""Sweeps end to end on the synthetic data set: spec -> sweep.db -> trials.csv -> report.html; a
diverging trial is recorded as failed while the others complete; extending a finished sweep runs
only the new trials; `kill -9` mid-way, then `--resume`, completes every trial exactly once."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from sweep_kill import kill_9_sweep_when
from threadpoolctl import threadpool_limits

from chainrule.cli import main
from chainrule.sweep import Store
from chainrule.sweep.backends import available_cores
from chainrule.train import TrainConfig, read_metrics
from chainrule.train.config import from_dict
from chainrule.train.run import train_run

SPEC = """
name = "tiny"
description = "tiny synthetic grid"
seeds = 2
[base]
dataset = "synthetic"
hidden_sizes = [8]
batch_size = 32
epochs = 2
schedule = "constant"
momentum = 0.0
[grid]
lr = [0.002, 0.05, 1e12]
"""


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def db_trials(out: Path) -> dict[str, dict]:
    with Store(out / "sweep.db", readonly=True) as store:
        return {t["trial_id"]: t for t in store.trials()}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    spec = root / "tiny.toml"
    spec.write_text(SPEC)
    out = root / "out"
    rc = main(["sweep", str(spec), "--out", str(out), "--workers", "2"])
    assert rc == 0
    return spec, out


def test_tiny_grid_end_to_end(swept, capsys):
    spec, out = swept
    assert (out / "spec.toml").read_text() == SPEC
    trials = db_trials(out)
    assert len(trials) == 6
    ok = [t for t in trials.values() if t["status"] == "completed"]
    bad = [t for t in trials.values() if t["status"] == "failed"]
    assert len(ok) == 4 and len(bad) == 2  # lr 1e12 diverges with both seeds; the others go on
    for t in bad:
        assert t["params"] == {"lr": 1e12} and "diverged" in t["error"] and "\n" not in t["error"]
        assert t["end_status"] == "diverged" and t["finished"] >= t["started"]
    for t in ok:
        assert t["attempts"] == 1 and 0 <= t["val_acc"] <= 1 and 0 <= t["test_acc"] <= 1
        assert t["epochs"] == 2.0 and t["train_time_s"] > 0 and t["end_status"] == "completed"
        run = out / "trials" / t["trial_id"]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["final"]["test_acc"] == t["test_acc"] and summary["status"] == "completed"
        assert [e["epoch"] for e in read_metrics(run / "metrics.jsonl")] == [1.0, 2.0]
    best = max(ok, key=lambda t: t["val_acc"])
    assert best["val_acc"] > 0.9

    rows = read_csv(out / "trials.csv")
    assert [r["trial_id"] for r in rows] == list(trials)  # one row per trial, creation order
    for col in (
        "trial_id",
        "status",
        "seed",
        "lr",
        "val_acc",
        "test_acc",
        "val_loss",
        "train_time_s",
        "epochs",
    ):
        assert col in rows[0], col
    for r in rows:
        t = trials[r["trial_id"]]
        assert (
            r["status"] == t["status"] and int(r["seed"]) == t["seed"] and float(r["lr"]) == t["params"]["lr"]
        )
        if t["status"] == "completed":
            assert float(r["val_acc"]) == t["val_acc"]
        else:
            assert r["val_acc"] == "" and "diverged" in r["error"]

    html = (out / "report.html").read_text()
    assert "chainrule sweep: tiny" in html and "tiny synthetic grid" in html
    assert "Failed trials (2)" in html and html.count("data:image/png;base64,") >= 3
    assert not re.search(r"""src=['"](?!data:)""", html)  # images embedded: one self-contained file
    assert (out / "val_acc_by_lr.png").read_bytes().startswith(b"\x89PNG")
    # the table is sorted by mean validation accuracy: the best configuration (lr 0.05) first
    first_row = html[html.index("<tr class='best'>") :].split("</tr>")[0]
    assert "<td>0.05</td>" in first_row and best["params"] == {"lr": 0.05}
    i_good, i_slow = html.index("<td>0.05</td>"), html.index("<td>0.002</td>")
    assert i_good < i_slow

    # each trial is an ordinary run folder: chainrule evaluate works on it
    rc, text, err = run_cli(["evaluate", out / "trials" / best["trial_id"]], capsys)
    assert rc == 0 and f"accuracy {100 * best['test_acc']:.2f}%" in text


def test_progress_lines_and_final_line(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("lr = [0.002, 0.05, 1e12]", "lr = [0.05]").replace("seeds = 2", "seeds = 1"))
    rc, out, err = run_cli(["sweep", spec, "--out", tmp_path / "o", "--workers", "1", "--no-report"], capsys)
    assert rc == 0
    lines = err.strip().splitlines()
    assert lines[0].startswith("chainrule: sweep tiny: 1 trials (1 new), 1 to run on 1 worker(s)")
    assert re.match(r"\[1/1\] trial [0-9a-f]{12} completed: lr=0.05 seed=0: val \d+\.\d+% test", lines[1])
    assert out.startswith("sweep tiny: 1 trials: 1 completed; best lr=0.05: val ") and "folder" in out
    assert not (tmp_path / "o" / "report.html").exists()
    rc, out, err = run_cli(["sweep-report", tmp_path / "o"], capsys)
    assert rc == 0 and (tmp_path / "o" / "report.html").is_file() and "report" in out
    (tmp_path / "o" / "report.html").unlink()
    rc, out, err = run_cli(["sweep", spec, "--out", tmp_path / "o", "--quiet"], capsys)  # nothing left to run
    assert rc == 0 and err == "" and "1 completed" in out and (tmp_path / "o" / "report.html").is_file()


def test_extending_a_finished_sweep_runs_only_the_new_trials(swept, tmp_path):
    spec, out = swept
    out2 = tmp_path / "out"
    shutil.copytree(out, out2)
    before = db_trials(out2)
    mtimes = {
        tid: (out2 / "trials" / tid / "summary.json").stat().st_mtime_ns
        for tid, t in before.items()
        if t["status"] == "completed"
    }
    bigger = tmp_path / "tiny.toml"
    bigger.write_text(SPEC.replace("lr = [0.002, 0.05, 1e12]", "lr = [0.002, 0.05, 1e12, 0.2]"))
    assert main(["sweep", str(bigger), "--out", str(out2), "--workers", "2", "--quiet", "--no-report"]) == 0
    after = db_trials(out2)
    new = set(after) - set(before)
    assert len(after) == 8 and len(new) == 2 and all(after[t]["params"] == {"lr": 0.2} for t in new)
    assert all(after[t]["status"] == "completed" and after[t]["attempts"] == 1 for t in new)
    for tid, t in before.items():  # nothing old ran again, failed ones stay failed
        assert after[tid]["status"] == t["status"] and after[tid]["attempts"] == 1
        assert after[tid]["finished"] == t["finished"]
    for tid, m in mtimes.items():
        assert (out2 / "trials" / tid / "summary.json").stat().st_mtime_ns == m
    assert len(read_csv(out2 / "trials.csv")) == 8
    assert (out2 / "spec.toml").read_text() == bigger.read_text()
    # a spec with another name does not mix into this folder
    other = tmp_path / "other.toml"
    other.write_text(SPEC.replace('name = "tiny"', 'name = "other"'))
    assert main(["sweep", str(other), "--out", str(out2), "--quiet"]) == 1


SLOW = """
name = "slow"
seeds = 2
[base]
dataset = "synthetic"
hidden_sizes = [32]
batch_size = 16
steps = 1500
eval_every = 300
schedule = "constant"
[grid]
lr = [0.01, 0.02]
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 and /proc: Linux")
def test_kill_9_then_resume_completes_every_trial_exactly_once(tmp_path, capsys):
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW)
    out = tmp_path / "out"

    def one_done_others_mid_way(trials: dict[str, dict]) -> bool:
        running = [t for t in trials.values() if t["status"] == "running"]
        done = [t for t in trials.values() if t["status"] == "completed"]
        mid = [t for t in running if (out / "trials" / t["trial_id"] / "metrics.jsonl").is_file()]
        return bool(done and mid)

    kill_9_sweep_when(spec, out, one_done_others_mid_way)

    killed = db_trials(out)
    was_running = {tid for tid, t in killed.items() if t["status"] == "running"}
    was_done = {tid for tid, t in killed.items() if t["status"] == "completed"}
    assert was_running and was_done and len(killed) == 4
    # A fast machine is killed before any checkpoint but the one at step 0 (they come every 15 s),
    # where resuming and restarting look alike; so one interrupted trial is put where a later kill
    # would have left it: stopped at step 700 with its checkpoint, trained here from its own config.
    # one that had started training (the kill condition ensures there is one); another trial marked
    # running may not have its folder yet on a loaded machine
    tid = sorted(t for t in was_running if (out / "trials" / t / "metrics.jsonl").is_file())[0]
    trial = out / "trials" / tid
    cfg = from_dict(killed[tid]["config"], TrainConfig(), source="test")
    shutil.rmtree(trial)
    # in-process runs at every core's BLAS threads, as the one worker that resumes below (an earlier
    # test may have left this process's limit elsewhere): 1 and 2 OpenBLAS threads differ at the
    # rounding level, and the comparison is bit for bit
    blas = threadpool_limits(limits=available_cores())
    paused = train_run(cfg.replace(run_dir=str(trial.resolve())), until_step=700, quiet=True, plots=False)
    assert paused.status == "paused"
    before = read_metrics(trial / "metrics.jsonl")
    assert before and before[-1]["step"] <= 700

    rc, text, err = run_cli(["sweep", "--resume", out, "--workers", "1", "--no-report"], capsys)
    assert rc == 0, err
    assert "continues from its checkpoint" in err
    assert err.count(f"trial {tid} continues from its checkpoint") == 1, err  # once (issue 20, item 7)
    assert all(err.count(f"trial {t} continues from its checkpoint") <= 1 for t in was_running), err
    # the worker loaded that checkpoint: the evaluations before it are the ones recorded here, to
    # their wall times (a restart would have timed them again) ...
    after = read_metrics(trial / "metrics.jsonl")
    assert after[: len(before)] == before
    # ... and the resumed trial trained exactly as one uninterrupted run of its config
    straight = train_run(cfg.replace(run_dir=str(tmp_path / "straight")), quiet=True, plots=False)
    blas.restore_original_limits()
    untimed = [{k: v for k, v in e.items() if k != "time"} for e in after]
    uninterrupted = read_metrics(straight.run_dir / "metrics.jsonl")
    assert untimed == [{k: v for k, v in e.items() if k != "time"} for e in uninterrupted]
    assert json.loads((trial / "summary.json").read_text())["final"] == straight.summary["final"]
    final = db_trials(out)
    assert len(final) == 4 and all(t["status"] == "completed" for t in final.values())
    for tid, t in final.items():
        k = killed[tid]
        assert t["attempts"] == (2 if tid in was_running else 1), (tid, k["status"], k["attempts"], err)
        if tid in was_done:
            assert t["finished"] == killed[tid]["finished"]  # never ran again
        evals = read_metrics(out / "trials" / tid / "metrics.jsonl")
        steps = [e["step"] for e in evals]
        expected = sorted(
            set(range(34, 1501, 34)) | set(range(300, 1501, 300))
        )  # epochs (34 steps), eval_every
        assert steps == expected, (tid, steps)  # no evaluation lost or repeated
        assert json.loads((out / "trials" / tid / "summary.json").read_text())["steps"] == 1500
    rows = read_csv(out / "trials.csv")
    assert sorted(r["trial_id"] for r in rows) == sorted(final) and {r["status"] for r in rows} == {
        "completed"
    }
    assert sorted(p.name for p in (out / "trials").iterdir()) == sorted(final)


def test_cli_usage_errors_are_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[grid]\nlrr = [0.1]\n')
    cases = [
        (["sweep"], "give a SPEC to run, or --resume DIR"),
        (["sweep", bad], f"{bad} [grid]: unknown key 'lrr' (did you mean 'lr'?)"),
        (["sweep", tmp_path / "missing.toml"], "does not exist"),
        (["sweep", "--resume", tmp_path], "not a sweep folder"),
        (["sweep", bad, "--resume", tmp_path], "not both"),
        (["sweep", bad, "--workers", "0"], "--workers must be >= 1"),
        (["sweep", bad, "--address", "auto"], "--address is for --backend ray"),
        (["sweeps", "seed004-gird"], "did you mean 'seed004-grid'"),
        (["sweep-report", tmp_path], "not a sweep folder"),
    ]
    for argv, needle in cases:
        rc, out, err = run_cli(argv, capsys)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chainrule: error:") and needle in lines[0], (
            argv,
            err,
        )
        assert rc == (1 if argv[0] == "sweep-report" else 2) and out == "", argv
    rc, out, _ = run_cli(["sweeps"], capsys)
    assert rc == 0 and "seed004-grid" in out and "demo" in out
    rc, out, _ = run_cli(["sweeps", "demo"], capsys)
    assert rc == 0 and 'name = "demo"' in out
