"""End-to-end CLI: train on the synthetic data set, check every run-folder file, evaluate, predict,
resume, the NaN stop, config precedence, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.train import TrainConfig, load_checkpoint, read_metrics

TINY = ["--dataset", "synthetic", "--hidden-sizes", "16", "--batch-size", "32", "--seed", "1", "--quiet"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_FILES = set(
    "config.toml preprocess.json checkpoint.npz metrics.jsonl metrics.csv steps.csv model.npz "
    "loss.png accuracy.png lr.png confusion.png predictions.png summary.json report.html".split()
)


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def only_run(out_dir: Path) -> Path:
    runs = [p for p in out_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run shared by the read-only tests below."""
    out = tmp_path_factory.mktemp("runs")
    rc = main(["train", *TINY, "--epochs", "3", "--eval-every", "10", "--out-dir", str(out), "--name", "e2e"])
    assert rc == 0
    return only_run(out)


def test_train_writes_every_run_file_with_consistent_contents(trained):
    run = trained
    assert re.fullmatch(r"\d{8}-\d{6}-e2e", run.name)
    assert {p.name for p in run.iterdir()} == RUN_FILES  # nothing else (no temp files left)

    cfg = tomllib.loads((run / "config.toml").read_text())
    assert cfg["dataset"] == "synthetic" and cfg["hidden_sizes"] == [16] and cfg["epochs"] == 3.0
    steps_per_epoch = int(np.ceil(540 / 32))
    total = 3 * steps_per_epoch

    evals = read_metrics(run / "metrics.jsonl")
    eval_steps = [e["step"] for e in evals]
    expected = sorted(set(range(10, total + 1, 10)) | {steps_per_epoch, 2 * steps_per_epoch, total})
    assert eval_steps == expected
    for e in evals:
        for k in ("train_acc", "val_acc"):
            assert 0.0 <= e[k] <= 1.0
        assert e["lr"] > 0 and e["time"] >= 0 and e["val_loss"] > 0
        # validation during training; the test set once, at the end (--eval-test shows it at each)
        assert e["test_acc"] is None and e["test_loss"] is None
    assert json.loads((run / "summary.json").read_text())["final"]["test_acc"] > 0.9
    assert evals[-1]["train_loss"] < evals[0]["train_loss"]

    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(evals) and float(rows[-1]["val_acc"]) == evals[-1]["val_acc"]

    steps = (run / "steps.csv").read_text().splitlines()
    assert steps[0] == "step,loss,lr,loss_window_100" and len(steps) == total + 1
    assert all(np.isfinite(float(r.split(",")[1])) for r in steps[1:])

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == total
    assert summary["final"]["val_acc"] == pytest.approx(evals[-1]["val_acc"])
    assert "test_acc" in summary["final"]
    assert summary["parameters"] == 64 * 16 + 16 + 16 * 3 + 3
    assert summary["best"]["monitor"] == "val_loss"
    assert summary["best"]["value"] == min(e["val_loss"] for e in evals)

    info = json.loads((run / "preprocess.json").read_text())
    assert info["classes"] == ["class0", "class1", "class2"] and info["image_shape"] == [1, 8, 8]

    from chainrule.nn.serialization import load

    model = load(run / "model.npz")
    assert [p.data.shape for p in model.parameters()] == [(16, 64), (16,), (3, 16), (3,)]
    state = load_checkpoint(run / "checkpoint.npz")
    assert state["step"] == total and state["history"]["steps"] == total

    for name in ("loss.png", "accuracy.png", "lr.png", "confusion.png", "predictions.png"):
        data = (run / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, name
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "e2e" in html and f"{100 * summary['final']['test_acc']:.2f}%" in html
    assert not re.search(r"""(src|href)=['"](?!data:)""", html)  # self-contained


def test_evaluate_and_predict(trained, capsys, tmp_path):
    rc, out, err = run_cli(["evaluate", trained], capsys)
    summary = json.loads((trained / "summary.json").read_text())
    assert rc == 0 and err == ""
    assert f"accuracy {100 * summary['final']['test_acc']:.2f}%" in out
    rc, out, _ = run_cli(["evaluate", trained, "--json"], capsys)
    res = json.loads(out)
    assert res["test_acc"] == pytest.approx(summary["final"]["test_acc"]) and res["n"] == 200

    from PIL import Image

    from chainrule.train import synthetic

    raw = synthetic()
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(raw.x_test[i, 0]).resize((16, 16)).save(p)  # resized back to 8x8 by predict
        paths.append(p)
    rc, out, err = run_cli(["predict", trained, *paths, "--json", "--top", "2"], capsys)
    assert rc == 0, err
    res = json.loads(out)
    assert len(res) == 3 and all(len(r["top"]) == 2 for r in res)
    assert sum(r["class"] == f"class{raw.y_test[i]}" for i, r in enumerate(res)) >= 2
    assert all(abs(r["top"][0][1] - max(p for _, p in r["top"])) == 0 for r in res)
    rc, out, _ = run_cli(["predict", trained, paths[0]], capsys)
    assert rc == 0 and out.startswith(f"{paths[0]}: class") and "%" in out

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    rc, out, err = run_cli(["predict", trained, bad], capsys)
    assert rc == 2 and "cannot be read" in err and len(err.strip().splitlines()) == 1


def test_pause_and_resume_give_the_same_metrics_as_one_run(tmp_path, capsys):
    args = [*TINY, "--epochs", "2", "--dropout", "0.1", "--eval-every", "7"]
    assert main(["train", *args, "--out-dir", str(tmp_path / "a")]) == 0
    rc, out, _ = run_cli(["train", *args, "--out-dir", tmp_path / "b", "--pause-at", "12"], capsys)
    assert rc == 0 and "paused at step 12" in out and "--resume" in out
    run_b = only_run(tmp_path / "b")
    rc, _, err = run_cli(["train", "--resume", run_b, "--quiet"], capsys)
    assert rc == 0, err
    run_a = only_run(tmp_path / "a")

    def strip(evals):
        return [{k: v for k, v in e.items() if k != "time"} for e in evals]

    assert strip(read_metrics(run_a / "metrics.jsonl")) == strip(read_metrics(run_b / "metrics.jsonl"))
    assert (run_a / "steps.csv").read_text() == (run_b / "steps.csv").read_text()

    rc, _, err = run_cli(["train", "--resume", run_b, "--lr", "0.1"], capsys)
    assert rc == 2 and "--lr cannot be given" in err


def test_nan_stop_exits_1_with_one_clear_line_and_a_valid_checkpoint(tmp_path, capsys):
    argv = ["train", *TINY, "--optimizer", "sgd", "--lr", "1e12", "--schedule", "constant"]
    argv += ["--out-dir", tmp_path]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule: error: training diverged at step")
    assert "last good checkpoint" in lines[0] and "Traceback" not in err
    run = only_run(tmp_path)
    state = load_checkpoint(run / "checkpoint.npz")
    assert all(np.isfinite(v).all() for v in state["engine"]["model"].values())
    assert json.loads((run / "summary.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--lr", "abc"], "--lr: invalid float value"),
        (["train", "--lr", "-1"], "lr = -1.0 is invalid"),
        (["train", "--bogus"], "unknown option --bogus"),
        (["train", "--activation", "relux"], "invalid choice: 'relux'"),
        (["train", "--hidden-sizes", "10", "x"], "invalid hidden size"),
        (["train", "--hidden-sizes", "0"], "hidden_sizes = [0] is invalid"),
        (["train", "--dropout", "1.5"], "dropout = 1.5 is invalid"),
        (["train", "--batch-size", "0"], "batch_size = 0 is invalid"),
        (["train", "--recipe", "seed003-relux"], "did you mean 'seed003-relu'"),
        (["train", "--config", "/nonexistent/x.toml"], "does not exist"),
        (["train", "--optimizer", "adam", "--nesterov"], "nesterov"),
        (["train", "--early-stopping", "--val-fraction", "0"], "val_fraction"),
        (["train", "--alternate-flip"], "it must be used with --random-flip"),
        (["train", "--warmup-fraction", "1"], "warmup_fraction = 1.0 is invalid: it must be in [0, 1)"),
        (["train", "--time-budget", "soon"], "--time-budget: invalid"),
        (["train", "--no-eval-each-epoch", "--early-stopping"], "eval_each_epoch = False is invalid"),
        (["evaluate", "/nonexistent/run"], "does not exist"),
        (["train", "--resume", "/nonexistent/run"], "not a run folder"),
        (["predict", "/nonexistent/run"], "the following arguments are required: IMAGE"),
        ([], "the following arguments are required"),
        (["fly"], "unknown command 'fly'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(argv, needle, capsys):
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("chainrule: error:") and needle in lines[0]
    assert "Traceback" not in err and out == ""


def test_a_run_that_cannot_start_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["train", "--dataset", "synthetic", "--batch-norm", "--batch-size", "539", "--out", out]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and err.count("\n") == 1 and "leaves a last batch of 1" in err
    assert list(out.iterdir()) == []


def test_config_file_and_flag_precedence(tmp_path, capsys):
    conf = tmp_path / "c.toml"
    conf.write_text('[model]\nhidden_sizes = [7, 5]\nactivation = "tanh"\n[optim]\nlr = 0.5\n')
    argv = ["train", "--recipe", "seed003-relu", "--config", conf, "--lr", "0.25", "--print-config"]
    rc, out, _ = run_cli(argv, capsys)
    assert rc == 0
    cfg = tomllib.loads(out)
    assert cfg["hidden_sizes"] == [7, 5] and cfg["activation"] == "tanh"  # config file over recipe
    assert cfg["lr"] == 0.25  # flag over config file
    assert cfg["l2"] == 0.005 and cfg["batch_size"] == 64  # from the recipe
    assert cfg["name"] == "seed003-relu"
    # the printed config round-trips: feeding it back prints the same text
    again = tmp_path / "again.toml"
    again.write_text(out)
    rc, out2, _ = run_cli(["train", "--config", again, "--print-config"], capsys)
    assert rc == 0 and out2 == out
    # --steps replaces the recipe's epochs and the reverse
    rc, out, _ = run_cli(["train", "--steps", "10", "--print-config"], capsys)
    assert "steps = 10" in out and "# epochs =" in out
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = 'fast'\n")
    rc, _, err = run_cli(["train", "--config", bad], capsys)
    assert rc == 2 and "lr = 'fast' should be float" in err
    bad.write_text("learning_rate = 0.1\n")
    rc, _, err = run_cli(["train", "--config", bad], capsys)
    assert rc == 2 and "unknown key 'learning_rate'" in err
    bad.write_text("lr = \n")
    rc, _, err = run_cli(["train", "--config", bad], capsys)
    assert rc == 2 and "invalid TOML" in err and len(err.strip().splitlines()) == 1


def test_defaults_are_the_documented_mnist_recipe(capsys):
    rc, out, _ = run_cli(["train", "--print-config"], capsys)
    assert rc == 0
    cfg = tomllib.loads(out)
    default = TrainConfig()
    assert cfg["dataset"] == "mnist" and cfg["hidden_sizes"] == default.hidden_sizes
    assert cfg["optimizer"] == default.optimizer and cfg["epochs"] == default.epochs


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        ([], "mnist-fast"),
        (["--seed", "3", "--data-dir", "/somewhere"], "mnist-fast"),  # same experiment, other bookkeeping
        (["--dataset", "cifar10"], "cifar10"),
        (["--hidden-sizes", "100"], "mnist"),
        (["--recipe", "seed003-relu"], "seed003-relu"),
        (["--dataset", "cifar10", "--name", "mine"], "mine"),
    ],
)
def test_run_name_says_what_was_trained(argv, name, capsys):
    rc, out, _ = run_cli(["train", *argv, "--print-config"], capsys)
    assert rc == 0 and tomllib.loads(out)["name"] == name


def test_help_all_lists_every_config_field(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help-all"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in TrainConfig.__dataclass_fields__:
        assert "--" + name.replace("_", "-") in out, name


def test_recipes_command_lists_and_prints(capsys):
    rc, out, _ = run_cli(["recipes"], capsys)
    assert rc == 0 and "uva-default" in out and "seed004-softmax" in out
    rc, out, _ = run_cli(["recipes", "uva-default"], capsys)
    assert rc == 0 and tomllib.loads(out)["steps"] == 1500


def test_cli_and_trainer_import_no_heavy_modules():
    import subprocess
    import sys

    code = (
        "import sys, chainrule.cli, chainrule.train, chainrule.report; "
        "print(sorted(m for m in ('matplotlib', 'PIL', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
