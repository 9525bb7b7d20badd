"""Atomic writes (chainrule._io): every file chainrule writes goes through them."""

import os
import stat

import pytest

from chainrule._io import atomic_open, atomic_write_bytes, atomic_write_text, did_you_mean


def test_write_replaces_and_leaves_no_temp_file(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("old")
    atomic_write_text(p, "new")
    assert p.read_text() == "new"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_permissions_follow_the_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        # the mode is read at import; what matters is that it is not mkstemp's 0600
        p = atomic_write_bytes(tmp_path / "x.bin", b"123")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(p.stat().st_mode)
    assert mode & 0o044, f"file is {oct(mode)}: others cannot read it"


def test_an_error_mid_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(p) as (f, tmp):
        f.write(b"half")
        assert tmp.exists() and tmp.parent == tmp_path
        raise RuntimeError("boom")
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.bin"]


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "x.bin", b"1")


def test_did_you_mean_is_the_one_close_match_hint():
    assert did_you_mean("lrr", ["lr", "momentum"]) == " (did you mean 'lr'?)"
    assert did_you_mean("--lrr", ["--lr", "--l1"], quote=False) == " (did you mean --lr?)"
    assert did_you_mean("fastnet-x", ["fastnet-s", "fastnet-m", "vgg"], n=2) == (
        " (did you mean 'fastnet-s' or 'fastnet-m'?)"
    )
    assert did_you_mean("zzzz", ["lr", "momentum"]) == ""


def test_environ_sets_for_the_block_and_restores_set_and_unset_keys(monkeypatch):
    import os

    from chainrule._io import environ

    monkeypatch.setenv("CHAINRULE_TEST_SET", "old")
    monkeypatch.delenv("CHAINRULE_TEST_UNSET", raising=False)
    with environ({"CHAINRULE_TEST_SET": "new", "CHAINRULE_TEST_UNSET": "1"}):
        assert os.environ["CHAINRULE_TEST_SET"] == "new" and os.environ["CHAINRULE_TEST_UNSET"] == "1"
    assert os.environ["CHAINRULE_TEST_SET"] == "old" and "CHAINRULE_TEST_UNSET" not in os.environ
