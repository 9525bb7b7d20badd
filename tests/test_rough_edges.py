"""Rough edges found by trying chainrule as a new user would (issue 8): each gives one clear line."""

from __future__ import annotations

import pytest

from chainrule.cli import main
from chainrule.train import ConfigError, resolve_data_root


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_with_a_missing_data_dir_says_so_and_uses_no_other_folder(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nonexistent"
    # a CHAINRULE_DATA that exists must not be used instead of the folder the user named
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    argv = ["train", "--data-dir", missing, "--out-dir", tmp_path / "runs", "--quiet"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule: error: ")
    assert f"data_dir {missing} does not exist" in lines[0]
    assert not (tmp_path / "runs").exists()  # failed before a run folder was made


def test_resolve_data_root_checks_the_named_folder(tmp_path):
    assert resolve_data_root(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_data_root(str(tmp_path / "missing"))
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        resolve_data_root(str(a_file))
    # with --download the folder may be missing: the download creates it
    assert resolve_data_root(str(tmp_path / "new"), download=True) == str(tmp_path / "new")


def test_help_epilog_has_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())  # argparse wraps the epilog
    assert ">= 98% test accuracy" in text and "%%" not in text


def test_evaluate_on_a_folder_that_is_not_a_run_says_so(tmp_path, capsys):
    (tmp_path / "something.txt").write_text("not a run")
    rc, out, err = run_cli(["evaluate", tmp_path], capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines == [f"chainrule: error: {tmp_path} is not a chainrule run folder (it has no config.toml)"]


def test_version_and_the_help_texts_say_what_is_true(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("chainrule ")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "NumPy MLPs" not in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "agreement to about 1e-15" in text and "to 1e-6" not in text
