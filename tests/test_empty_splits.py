"""Empty splits (issue 20, item 4): a data set without a test split trains without one and says
so; a training or validation split that would be empty, or images without pixels, is one line
naming the folder or the key, never a traceback from deep inside."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.data.idx import write_idx
from chainrule.data.registry import IDX_FILES

ARGS = ["--hidden-sizes", "8", "--batch-size", "4", "--steps", "3", "--quiet", "--threads", "1"]


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def png_tree(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """cifar10/<split>/<class>/*.png, 32x32 RGB, `counts[split][class]` images each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, classes in counts.items():
        for c, n in classes.items():
            d = root / "cifar10" / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def idx_set(root: Path, n_train: int, n_test: int, h: int = 28, w: int = 28) -> Path:
    rng = np.random.default_rng(0)
    d = root / "mnist"
    for split, n in (("train", n_train), ("test", n_test)):
        write_idx(d / (IDX_FILES[f"x_{split}"] + ".gz"), rng.integers(0, 256, (n, h, w), dtype=np.uint8))
        write_idx(d / (IDX_FILES[f"y_{split}"] + ".gz"), (np.arange(n) % 10).astype(np.uint8))
    return root


def test_an_image_tree_with_only_train_trains_without_a_test_split(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    data = png_tree(tmp_path / "data", {"train": {"cat": 10, "dog": 10}})
    run = tmp_path / "run"
    argv = ["train", "--dataset", "cifar10", "--data-dir", data, *ARGS, "--run-dir", run]
    rc, out, err = run_cli([a for a in argv if a != "--quiet"], capsys)
    assert rc == 0, err
    assert "cifar10 has no test split here: training without one" in err
    assert "validation accuracy" in out and "test accuracy" not in out
    summary = json.loads((run / "summary.json").read_text())
    assert "test_acc" not in summary["final"] and summary["final"]["val_acc"] is not None
    assert (run / "report.html").is_file() and not (run / "confusion.png").exists()
    rc, out, err = run_cli(["evaluate", run], capsys)
    assert rc == 2 and "has no test split here: nothing to evaluate" in err and "Traceback" not in err


def test_idx_files_with_no_test_images_train_without_a_test_split(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    data = idx_set(tmp_path / "data", 100, 0)
    rc, out, err = run_cli(["train", "--data-dir", data, *ARGS, "--out-dir", tmp_path / "runs"], capsys)
    assert rc == 0 and "validation accuracy" in out, err


# (name, make the data folder, extra flags, what the one line says)
BAD = {
    "no training images (IDX)": (lambda d: idx_set(d, 0, 10), [], "the training split holds no images"),
    "0x0 images (IDX)": (lambda d: idx_set(d, 10, 10, 0, 0), [], "no pixels to train on"),
    "0x28 images (IDX)": (lambda d: idx_set(d, 10, 10, 0, 28), [], "no pixels to train on"),
    "5 images, val 0.5": (
        lambda d: idx_set(d, 5, 5),
        ["--val-fraction", "0.5"],
        "leaves no validation images",
    ),
    "10 images, val 0.9": (
        lambda d: idx_set(d, 20, 5),
        ["--val-fraction", "0.9"],
        "leaves no training images",
    ),
    "a class of one image, val 0.1": (
        lambda d: png_tree(d, {"train": {"cat": 1}, "test": {"cat": 1}}),
        ["--dataset", "cifar10"],
        "leaves no validation images",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_an_empty_split_is_one_line(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    make, flags, needle = BAD[case]
    data = make(tmp_path / "data")
    argv = ["train", "--data-dir", data, *ARGS, *flags, "--out-dir", tmp_path / "runs"]
    rc, out, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert rc in (1, 2) and out == "" and len(lines) == 1, err
    assert lines[0].startswith("chainrule: error: ") and needle in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
