"""`--data-dir` names the only folder searched: an empty or partial folder is an error, never a
quiet fall back to `$CHAINRULE_DATA` or the cache; `summary.json` records the files read (issue 20,
item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainrule import data
from chainrule.cli import main
from chainrule.data.cache import file_md5
from chainrule.data.registry import IDX_FILES
from chainrule.data.synthetic import write_idx_dataset

ARGS = ["--hidden-sizes", "8", "--batch-size", "20", "--steps", "2", "--quiet", "--threads", "1"]


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A complete MNIST copy in $CHAINRULE_DATA and the user cache: what must not be used."""
    good = tmp_path / "good"
    write_idx_dataset(good / "mnist", n_train=100, n_test=20)
    monkeypatch.setenv("CHAINRULE_DATA", str(good))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    write_idx_dataset(tmp_path / "xdg" / "chainrule" / "mnist", n_train=40, n_test=20)
    return good


def _empty(d: Path) -> None:
    d.mkdir()


def _three_of_four(d: Path) -> None:
    write_idx_dataset(d, n_train=40, n_test=20)
    (d / (IDX_FILES["y_test"] + ".gz")).unlink()


def _folder_for_a_file(d: Path) -> None:
    _three_of_four(d)
    (d / (IDX_FILES["y_test"] + ".gz")).mkdir()


def _another_data_set(d: Path) -> None:
    write_idx_dataset(d / "fashion-mnist", n_train=40, n_test=20)  # not where mnist is looked for


CASES = {
    "empty": (_empty, "mnist not found in "),
    "three of four": (_three_of_four, "holds only part of mnist: missing t10k-labels-idx1-ubyte[.gz]"),
    "folder for a file": (_folder_for_a_file, "t10k-labels-idx1-ubyte[.gz] (a folder there, not a file)"),
    "another data set": (_another_data_set, "mnist not found in "),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_train_uses_only_the_named_folder(case, elsewhere, tmp_path, capsys):
    make, first_line = CASES[case]
    d = tmp_path / "mine"
    make(d)
    rc, out, err = run_cli(["train", "--data-dir", d, *ARGS, "--out-dir", tmp_path / "runs"], capsys)
    assert rc == 1 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert first_line in lines[0] and str(d) in lines[0], err
    # the folders searched, one per line, all inside the named folder
    searched = [line.strip() for line in lines[1:] if line.startswith("  ")]
    assert searched and all(s.startswith(str(d)) for s in searched), err
    assert str(elsewhere) not in err and len(lines[0]) < 200
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_evaluate_uses_only_the_named_folder(elsewhere, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data-dir", str(elsewhere), *ARGS, "--run-dir", str(run)]) == 0
    capsys.readouterr()
    d = tmp_path / "partial"
    _three_of_four(d)
    rc, out, err = run_cli(["evaluate", run, "--data-dir", d], capsys)
    assert rc == 1 and out == "" and "holds only part of mnist" in err.splitlines()[0]


def test_summary_records_the_files_read(elsewhere, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data-dir", str(elsewhere), *ARGS, "--run-dir", str(run)]) == 0
    files = json.loads((run / "summary.json").read_text())["data_files"]
    expected = sorted(str((elsewhere / "mnist" / (f + ".gz")).resolve()) for f in IDX_FILES.values())
    assert sorted(f["path"] for f in files) == expected
    for f in files:
        assert f["md5"] == file_md5(f["path"]) and f["bytes"] == Path(f["path"]).stat().st_size


def test_exclusive_load_searches_nothing_else(elsewhere, tmp_path):
    with pytest.raises(data.DatasetNotFoundError):
        data.load("mnist", root=tmp_path / "nothing", exclusive=True)
    assert data.load("mnist", root=tmp_path / "nothing").y_train.size == 100  # the usual search order
