"""A table of bad inputs to the command line (issue 20, items 8-10): each is one line naming the
key, file or value (exit 2), or a warning in the run's header, never a traceback or a silently
wrong result."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

import chainrule.train.run as run_module
from chainrule.cli import main

TINY = ["--dataset", "synthetic", "--hidden-sizes", "8", "--batch-size", "32", "--quiet", "--threads", "1"]


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs of different architectures."""
    root = tmp_path_factory.mktemp("runs")
    for name, width in (("a", "8"), ("b", "16")):
        argv = ["train", *TINY, "--hidden-sizes", width, "--steps", "3", "--run-dir", str(root / name)]
        assert main(argv) == 0
    return root


def _copy(runs: Path, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(runs / "a", run)
    return run


def _other_model(runs, tmp):
    run = _copy(runs, tmp)
    shutil.copy(runs / "b" / "model.npz", run / "model.npz")
    return ["evaluate", run]


def _other_model_predict(runs, tmp):
    argv = _other_model(runs, tmp)
    img = tmp / "x.png"
    _png(img, 8, 8)
    return ["predict", argv[1], img]


def _random_model(runs, tmp):
    run = _copy(runs, tmp)
    (run / "model.npz").write_bytes(np.random.default_rng(0).bytes(3000))
    return ["evaluate", run]


def _random_checkpoint(runs, tmp):
    run = tmp / "paused"
    assert main(["train", *TINY, "--steps", "6", "--pause-at", "2", "--run-dir", str(run)]) == 0
    (run / "checkpoint.npz").write_bytes(np.random.default_rng(0).bytes(3000))
    return ["train", "--resume", run]


def _npy_checkpoint(runs, tmp):
    run = tmp / "paused"
    assert main(["train", *TINY, "--steps", "6", "--pause-at", "2", "--run-dir", str(run)]) == 0
    with open(run / "checkpoint.npz", "wb") as f:  # a single array where the archive should be
        np.save(f, np.zeros(3))
    return ["train", "--resume", run]


def _png(path: Path, w: int, h: int) -> None:
    from PIL import Image

    Image.new("L", (w, h), 0).save(path)


def _predict_folder(runs, tmp):
    return ["predict", runs / "a", tmp]


def _bomb(runs, tmp, monkeypatch):
    from PIL import Image

    img = tmp / "bomb.png"
    _png(img, 200, 200)  # 40,000 pixels: a bomb to a PIL that allows 1,000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    return ["predict", runs / "a", img]


def _two_tables(runs, tmp):
    conf = tmp / "c.toml"
    conf.write_text("[optim]\nlr = 0.1\n[train]\nlr = 0.5\n")
    return ["train", "--config", conf, *TINY, "--steps", "2", "--out-dir", tmp / "out"]


def argv_of(*argv):
    return lambda runs, tmp: ["train", *TINY, *argv, "--out-dir", tmp / "out"]


# id -> (argv builder, what the one error line says); exit 2 unless in EXIT_1
BAD = {
    "seed -1": (argv_of("--seed", "-1", "--steps", "2"), "seed = -1 is invalid: it must be >= 0"),
    "pause-at -3": (argv_of("--pause-at", "-3", "--steps", "2"), "--pause-at must be a step >= 1, got -3"),
    "batch norm, batch 1": (argv_of("--batch-norm", "--batch-size", "1", "--steps", "2"), "batch_size = 1"),
    "hidden 1e8": (
        argv_of("--hidden-sizes", "100000000", "--steps", "2"),
        "hidden_sizes = [100000000] gives",
    ),
    "epochs 1e20": (argv_of("--epochs", "1e20"), "epochs = 1e+20 means"),
    "steps 1e12 as an integer": (argv_of("--steps", "1000000000000"), "steps = 1000000000000 means"),
    "steps 1e12": (argv_of("--steps", "1e12"), "--steps: invalid int value: '1e12'"),
    "lr inf": (argv_of("--lr", "inf", "--steps", "2"), "lr = inf is invalid"),
    "epochs inf": (argv_of("--epochs", "inf"), "epochs = inf is invalid: it must be a finite number"),
    "min-lr inf": (argv_of("--min-lr", "inf", "--steps", "2"), "min_lr = inf is invalid"),
    "warmup-fraction nan": (argv_of("--warmup-fraction", "nan", "--steps", "2"), "warmup_fraction = nan"),
    "key in two tables": (_two_tables, "key 'lr' is given twice (in [optim] and in [train])"),
    "reschedule without resume": (argv_of("--reschedule", "--steps", "2"), "--reschedule is for --resume"),
    "predict a folder": (_predict_folder, "is a folder: name the image files"),
    "model of another run (evaluate)": (_other_model, "is not the model of"),
    "model of another run (predict)": (_other_model_predict, "hidden_sizes [16] (config: [8])"),
    "random bytes as model.npz": (_random_model, "not an .npz archive"),
    "random bytes as checkpoint.npz": (_random_checkpoint, "not an .npz archive"),  # exit 1: a damaged file
    "an .npy array as checkpoint.npz": (_npy_checkpoint, "a .npy array, not an .npz"),
}
EXIT_1 = {"random bytes as checkpoint.npz", "an .npy array as checkpoint.npz"}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_one_line(case, runs, tmp_path, capsys, monkeypatch):
    build, needle = BAD[case]
    argv = build(runs, tmp_path)
    capsys.readouterr()  # what setting the case up printed
    rc, out, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert rc == (1 if case in EXIT_1 else 2) and out == "" and len(lines) == 1, err
    assert lines[0].startswith("chainrule: error: ") and needle in lines[0], lines[0]
    assert "allow_pickle" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no folder left


def test_decompression_bomb_is_one_line(runs, tmp_path, capsys, monkeypatch):
    rc, out, err = run_cli(_bomb(runs, tmp_path, monkeypatch), capsys)
    assert rc == 2 and out == "" and "cannot be read" in err and "decompression bomb" in err.lower()
    assert len(err.strip().splitlines()) == 1


WARN = {
    "random flip on digits": (["--random-flip"], "--random-flip on mnist"),
    "warmup beyond the run": (["--warmup-steps", "100"], "warmup_steps = 100 is not below the run's 3 steps"),
}


@pytest.mark.parametrize("case", WARN, ids=list(WARN))
def test_suspicious_settings_warn_in_the_header(case, tmp_path, capsys, monkeypatch):
    from chainrule.data.synthetic import write_idx_dataset

    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    write_idx_dataset(tmp_path / "data" / "mnist", n_train=100, n_test=20)
    flags, needle = WARN[case]
    argv = ["train", "--data-dir", tmp_path / "data", "--hidden-sizes", "8", "--batch-size", "20"]
    argv += ["--steps", "3", "--quiet", "--threads", "1", *flags, "--out-dir", tmp_path / "out"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 0 and f"chainrule: warning: {needle}" in err, err


def test_a_signal_during_the_final_evaluation_exits_130(tmp_path, capsys, monkeypatch):
    real = run_module.finalize

    def finalize_with_a_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, after the last step
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "finalize", finalize_with_a_signal)
    rc, out, err = run_cli(["train", *TINY, "--steps", "3", "--run-dir", tmp_path / "r"], capsys)
    assert rc == 130 and "interrupted during the final evaluation" in err
    assert (tmp_path / "r" / "summary.json").is_file()
