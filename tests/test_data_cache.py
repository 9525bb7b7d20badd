"""The decoded-array cache: hits, keys, atomicity, damaged entries, locations."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from chainrule import data
from chainrule.data import cache
from chainrule.data.idx import write_idx
from chainrule.data.synthetic import write_cifar_binary, write_idx_dataset


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)


def _entries(tmp_path: Path) -> list[str]:
    d = tmp_path / "cache" / "arrays"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_second_load_is_a_memory_mapped_hit(tmp_path, monkeypatch):
    want = write_idx_dataset(tmp_path / "mnist")
    first = data.load("mnist", root=tmp_path)
    assert len(_entries(tmp_path)) == 1
    import chainrule.data.datasets as ds_mod

    def no_decode(*a, **k):
        raise AssertionError("decoded again despite a cache entry")

    monkeypatch.setattr(ds_mod, "_decode_idx", no_decode)
    second = data.load("mnist", root=tmp_path)
    assert isinstance(second.x_train, np.memmap) and not second.x_train.flags.writeable
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(second, k), want[k])
        np.testing.assert_array_equal(getattr(first, k), want[k])
    assert second.classes == first.classes


def test_changed_source_gives_a_new_entry(tmp_path):
    d = write_idx_dataset(tmp_path / "mnist")
    data.load("mnist", root=tmp_path)
    y = d["y_train"].astype(np.uint8)
    y[0] = (y[0] + 1) % 10
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", y)
    again = data.load("mnist", root=tmp_path)
    assert again.y_train[0] == y[0]
    assert len(_entries(tmp_path)) == 2


def test_failed_load_leaves_no_entry(tmp_path):
    d = write_idx_dataset(tmp_path / "mnist")
    y = d["y_test"].astype(np.uint8)
    y[0] = 12
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", y)
    with pytest.raises(data.DataFormatError):
        data.load("mnist", root=tmp_path)
    assert _entries(tmp_path) == []


def test_interrupted_save_leaves_no_entry(tmp_path, monkeypatch):
    write_cifar_binary(tmp_path / "cifar10", per_batch=3)
    calls = {"n": 0}
    real_save = np.save

    def save_then_die(path, arr, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing the entry
        real_save(path, arr, *a, **k)

    monkeypatch.setattr(np, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        data.load("cifar10", root=tmp_path)
    assert _entries(tmp_path) == []  # neither an entry nor a temp dir
    monkeypatch.setattr(np, "save", real_save)
    assert data.load("cifar10", root=tmp_path).x_train.shape == (15, 3, 32, 32)
    assert len(_entries(tmp_path)) == 1


def test_damaged_entry_is_rebuilt(tmp_path):
    want = write_idx_dataset(tmp_path / "mnist")
    data.load("mnist", root=tmp_path)
    (entry,) = _entries(tmp_path)
    npy = tmp_path / "cache" / "arrays" / entry / "x_train.npy"
    npy.write_bytes(npy.read_bytes()[:100])
    again = data.load("mnist", root=tmp_path)
    np.testing.assert_array_equal(again.x_train, want["x_train"])


def test_cache_false_writes_nothing(tmp_path):
    write_idx_dataset(tmp_path / "mnist")
    ds = data.load("mnist", root=tmp_path, cache=False)
    assert ds.x_train.flags.writeable and not isinstance(ds.x_train, np.memmap)
    assert not (tmp_path / "cache").exists()


def test_locations(tmp_path, monkeypatch):
    assert cache.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("CHAINRULE_CACHE")
    assert cache.cache_dir() == tmp_path / "xdg" / "chainrule"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.user_cache_dir() == Path.home() / ".cache" / "chainrule"


def test_key_depends_on_content_not_mtime(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    k1 = cache.key_for_files("n", [p])
    os.utime(p, (1, 1))
    assert cache.key_for_files("n", [p]) == k1
    p.write_bytes(b"abd")
    assert cache.key_for_files("n", [p]) != k1
    assert cache.key_for_files("other", [p]) != cache.key_for_files("n", [p])


def test_stale_temp_dirs_are_cleaned(tmp_path):
    stale = tmp_path / "cache" / "arrays" / ".tmp-old"
    stale.mkdir(parents=True)
    os.utime(stale, (0, 0))
    write_idx_dataset(tmp_path / "mnist")
    data.load("mnist", root=tmp_path)
    assert not stale.exists()


def test_unwritable_cache_only_warns(tmp_path, monkeypatch):
    want = write_idx_dataset(tmp_path / "mnist")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("CHAINRULE_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="could not write the data cache"):
        ds = data.load("mnist", root=tmp_path)
    np.testing.assert_array_equal(ds.x_train, want["x_train"])
