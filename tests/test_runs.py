"""`chainrule runs`: the table of run folders (differing keys, --sort, --filter, --json, a sweep's
trials with their database status) and `chainrule runs compare`'s page, on tiny synthetic runs."""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest

from chainrule.cli import main

BASE = ["--dataset", "synthetic", "--hidden-sizes", "8", "--steps", "12", "--threads", "1", "--quiet"]
SPEC = """
name = "tiny"
seeds = 1
[base]
dataset = "synthetic"
hidden_sizes = [8]
batch_size = 32
steps = 8
[grid]
lr = [0.01, 0.1]
"""


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """runs/: two plain runs that differ in lr (one named), and a two-trial sweep."""
    root = tmp_path_factory.mktemp("runs") / "runs"
    assert main(["train", *BASE, "--out-dir", str(root), "--lr", "0.05"]) == 0
    assert main(["train", *BASE, "--out-dir", str(root), "--lr", "0.2", "--name", "hi-lr"]) == 0
    spec = root.parent / "tiny.toml"
    spec.write_text(SPEC)
    assert (
        main(["sweep", str(spec), "--out", str(root / "tiny"), "--workers", "1", "--quiet", "--no-report"])
        == 0
    )
    return root


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def listed(capsys, *argv):
    rc, out, err = run_cli(["runs", "--json", *argv], capsys)
    assert rc == 0, err
    return json.loads(out)


def test_table_lists_runs_and_trials_with_the_differing_keys(runs_dir, capsys):
    rc, out, err = run_cli(["runs", runs_dir], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["name", "status", "dataset", "model"]
    assert header[-4:] == ["val_acc", "test_acc", "train_time_s", "date"]
    assert "lr" in header  # differs between the runs
    assert "dataset" not in header[4:-4] and "hidden_sizes" not in header  # the same everywhere
    names = [line.split()[0] for line in lines[1:]]
    assert names[0] == "synthetic" and names[1] == "hi-lr"  # folder order: timestamps
    assert sorted(names[2:]) == sorted(f"tiny/{p.name}" for p in (runs_dir / "tiny" / "trials").iterdir())
    assert re.search(r" 0\.05 ", lines[1]) and re.search(r" 0\.2 ", lines[2])
    assert all(line.split()[1] == "completed" for line in lines[1:])
    assert re.search(r"\d+\.\d\d%\s+\d+\.\d\d%\s+\d+\.\d s\s+\d{4}-\d\d-\d\d \d\d:\d\d$", lines[1])


def test_folders_list_in_start_order_not_by_name(runs_dir, tmp_path, capsys):
    """Two runs started within one second share their name's timestamp: the earlier start lists
    first even where its name sorts after."""
    import shutil

    root = tmp_path / "runs"
    late = shutil.copytree(next(runs_dir.glob("*-hi-lr")), root / "20260101-120000-a")
    early = shutil.copytree(next(runs_dir.glob("*-synthetic")), root / "20260101-120000-b")
    sweep = shutil.copytree(runs_dir / "tiny", root / "0-sweep")  # started last, sorts first by name
    trials = sorted((sweep / "trials").glob("*/config.toml"))
    for ns, config in enumerate([early / "config.toml", late / "config.toml", *trials], start=1):
        os.utime(config, ns=(ns * 10**18 + 5, ns * 10**18 + 5))
    names = [r["name"] for r in listed(capsys, root)]
    assert names[:2] == ["synthetic", "hi-lr"] and all(n.startswith("0-sweep/") for n in names[2:])


def test_json_has_the_run_fields_and_config(runs_dir, capsys):
    records = listed(capsys, runs_dir)
    assert len(records) == 4
    for r in records:
        for key in ("run_dir", "name", "status", "dataset", "val_acc", "test_acc", "train_time_s", "config"):
            assert key in r, key
        summary = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        assert r["test_acc"] == summary["final"]["test_acc"]
        assert r["val_acc"] == summary["final"]["val_acc"]
        assert r["train_time_s"] == summary["train_time_s"]
        assert r["config"]["dataset"] == "synthetic" and r["dataset"] == "synthetic"
    trials = [r for r in records if r["sweep"]]
    assert sorted(r["config"]["lr"] for r in trials) == [0.01, 0.1]


def test_sort_and_filter(runs_dir, capsys):
    by_lr = listed(capsys, runs_dir, "--sort", "lr")
    assert [r["config"]["lr"] for r in by_lr] == [0.01, 0.05, 0.1, 0.2]
    down = listed(capsys, runs_dir, "--sort", "lr", "--reverse")
    assert [r["config"]["lr"] for r in down] == [0.2, 0.1, 0.05, 0.01]
    assert [r["name"] for r in listed(capsys, runs_dir, "--filter", "name=hi-lr")] == ["hi-lr"]
    big = listed(capsys, runs_dir, "--filter", "lr>=0.1", "--filter", "batch_size=32")
    assert [r["config"]["lr"] for r in big] == [0.1]
    assert len(listed(capsys, runs_dir, "--filter", "lr!=0.05")) == 3
    assert len(listed(capsys, runs_dir, "--filter", "hidden_sizes=8")) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sort", "lrr"], "--sort lrr: unknown key 'lrr' (did you mean 'lr'?)"),
        (["--filter", "lrr=1"], "--filter lrr=1: unknown key 'lrr' (did you mean 'lr'?)"),
        (["--filter", "lr"], "--filter 'lr': expected KEY=VALUE"),
        (["--filter", "lr>big"], "--filter lr>big: 'big' is not a number"),
    ],
)
def test_bad_keys_are_one_line(runs_dir, capsys, argv, message):
    rc, out, err = run_cli(["runs", runs_dir, *argv], capsys)
    assert rc == 2 and out == ""
    assert err.startswith(f"chainrule: error: {message}") and err.count("\n") == 1


def test_missing_folder_and_empty_folder(tmp_path, capsys):
    rc, _, err = run_cli(["runs", tmp_path / "nope"], capsys)
    assert rc == 2 and err == f"chainrule: error: {tmp_path / 'nope'} is not a folder\n"
    rc, out, _ = run_cli(["runs", tmp_path], capsys)
    assert rc == 0 and out == f"no runs in {tmp_path}\n"


def test_a_trial_takes_the_sweep_database_status(runs_dir, tmp_path, capsys):
    import shutil

    sweep = tmp_path / "tiny"
    shutil.copytree(runs_dir / "tiny", sweep)
    trial = sorted((sweep / "trials").iterdir())[0].name
    with sqlite3.connect(sweep / "sweep.db") as con:
        con.execute("UPDATE trials SET status = 'running' WHERE trial_id = ?", (trial,))
    status = {r["name"]: r["status"] for r in listed(capsys, sweep)}
    assert status[f"tiny/{trial}"] == "running"
    assert sorted(status.values()) == ["completed", "running"]
    # a trial folder given by itself is named after its sweep
    assert [r["name"] for r in listed(capsys, sweep / "trials" / trial)] == [f"tiny/{trial}"]


def test_compare_page_overlays_curves_and_diffs_configs(runs_dir, tmp_path, capsys):
    # in the order given: lr 0.05, then lr 0.2 (both folders may carry the same timestamp)
    folders = [next(runs_dir.glob("*-synthetic")), next(runs_dir.glob("*-hi-lr"))]
    out = tmp_path / "page" / "cmp.html"
    rc, stdout, err = run_cli(["runs", "compare", *folders, "--out", out], capsys)
    assert rc == 0, err
    assert stdout == f"2 runs compared: {out}\n"
    page = out.read_text()
    pngs = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(pngs) == 3 and all(base64.b64decode(p).startswith(b"\x89PNG") for p in pngs)
    for caption in ("Loss", "Accuracy", "Learning rate", "Final metrics", "Configuration differences"):
        assert f"<h2>{caption}</h2>" in page
    diff = page.split("Configuration differences")[1].split("<h2>")[0]
    assert "<th>lr</th><td class='num'>0.05</td><td class='num'>0.2</td>" in diff
    assert "batch_size" not in diff  # the same in both
    tests = [json.loads((f / "summary.json").read_text())["final"]["test_acc"] for f in folders]
    assert "<th>final test accuracy</th>" + "".join(f"<td>{100 * a:.2f}%</td>" for a in tests) in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained


def test_compare_refuses_bad_input(runs_dir, tmp_path, capsys):
    one = next(p for p in runs_dir.iterdir() if (p / "config.toml").is_file())
    rc, _, err = run_cli(["runs", "compare", one, "--out", tmp_path / "x.html"], capsys)
    assert rc == 2 and "at least two run folders" in err
    rc, _, err = run_cli(["runs", "compare", one, tmp_path, "--out", tmp_path / "x.html"], capsys)
    assert rc == 2 and f"{tmp_path} is not a run folder" in err
    rc, _, err = run_cli(["runs", "compare", one, one, "--out", tmp_path / "x.png"], capsys)
    assert rc == 2 and "expected an .html file" in err
    rc, _, err = run_cli(["runs", "compare", one, one], capsys)
    assert rc == 2 and "--out" in err
    assert not list(tmp_path.glob("x.*"))


def test_report_page_module_imports_neither_train_nor_sweep():
    import chainrule.report.runs_compare as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if "train" in m or "sweep" in m]
