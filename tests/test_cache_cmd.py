"""`chainrule cache` (issue 20): what chainrule keeps in its cache folders, with sizes, and
`--clear` (asks on a terminal, else needs --yes); the platform's cache folder (platformdirs) and
the older `~/.cache/chainrule`, still read where it is another folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule import data
from chainrule.cli import main
from chainrule.data import cache
from chainrule.data.synthetic import write_idx_dataset


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CHAINRULE_CACHE", raising=False)
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def fill(tmp_path: Path) -> Path:
    """A downloaded MNIST in the cache folder, loaded once (so its decoded arrays are cached too)."""
    root = cache.user_cache_dir()
    write_idx_dataset(root / "mnist")
    data.load("mnist")
    return root


def test_the_cache_is_the_platforms_cache_folder(tmp_path):
    from platformdirs import user_cache_path

    assert (
        cache.user_cache_dir()
        == user_cache_path("chainrule", appauthor=False)
        == tmp_path / "xdg" / "chainrule"
    )
    assert cache.legacy_cache_dir() is None  # on Linux the older default is the same folder


def test_cache_lists_what_is_there_with_sizes(tmp_path, capsys):
    root = fill(tmp_path)
    rc, out, err = run_cli(["cache"], capsys)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("chainrule's cache: ") and f"in 2 items ({root})" in lines[0]
    assert "mnist: downloaded files" in out and "mnist: decoded arrays" in out
    assert any(r.endswith(str(root / "mnist")) for r in [line.rstrip() for line in lines[1:3]]), out
    assert all(("KiB" in line or "MiB" in line) for line in lines[1:3])
    assert "chainrule cache --clear" in lines[-1]


def test_an_empty_cache_says_so(tmp_path, capsys):
    rc, out, _ = run_cli(["cache"], capsys)
    assert rc == 0 and out.startswith("chainrule's cache: 0 bytes in 0 items")
    rc, out, _ = run_cli(["cache", "--clear", "--yes"], capsys)
    assert rc == 0 and out.startswith("chainrule's cache is empty")


def test_clear_asks_or_needs_yes_and_never_touches_chainrule_data(tmp_path, capsys, monkeypatch):
    root = fill(tmp_path)
    mine = tmp_path / "mine"
    write_idx_dataset(mine / "mnist")
    monkeypatch.setenv("CHAINRULE_DATA", str(mine))
    before = sorted(p.name for p in root.iterdir())

    rc, out, err = run_cli(["cache", "--clear"], capsys)  # no terminal to ask: refused
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "add --yes" in err
    assert sorted(p.name for p in root.iterdir()) == before

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    rc, out, _ = run_cli(["cache", "--clear"], capsys)
    assert rc == 0 and out.strip() == "nothing removed" and sorted(p.name for p in root.iterdir()) == before

    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "y")
    rc, out, _ = run_cli(["cache", "--clear"], capsys)
    assert rc == 0 and out.startswith("removed 2 items") and "2 items" in asked[0]
    assert not (root / "mnist").exists() and not any((root / "arrays").iterdir())
    assert sorted(p.name for p in (mine / "mnist").iterdir()) and cache.cache_contents() == []

    fill(tmp_path)
    rc, out, _ = run_cli(["cache", "--clear", "--yes"], capsys)
    assert rc == 0 and out.startswith("removed 2 items") and cache.cache_contents() == []
    assert run_cli(["cache", "--yes"], capsys)[0] == 2  # --yes alone means nothing


def test_chainrule_cache_holds_only_arrays_of_chainrule(tmp_path, capsys, monkeypatch):
    """A $CHAINRULE_CACHE folder may hold the user's own files: only its arrays/ are listed and cleared."""
    own = tmp_path / "shared-cache"
    own.mkdir()
    (own / "notes.txt").write_text("mine")
    monkeypatch.setenv("CHAINRULE_CACHE", str(own))
    fill(tmp_path)
    items = cache.cache_contents()
    assert sorted(i.what for i in items) == ["mnist: decoded arrays", "mnist: downloaded files"]
    assert [i for i in items if "arrays" in i.what][0].paths[0].parent == own / "arrays"
    assert run_cli(["cache", "--clear", "--yes"], capsys)[0] == 0
    assert (own / "notes.txt").read_text() == "mine" and cache.cache_contents() == []


def test_an_older_cache_folder_elsewhere_is_still_read_and_cleared(tmp_path, capsys, monkeypatch):
    """macOS/Windows: the platform's folder is not ~/.cache/chainrule; data sets there still load."""
    platform = tmp_path / "Library" / "Caches" / "chainrule"
    monkeypatch.setattr(cache, "user_cache_dir", lambda: platform)
    monkeypatch.delenv("XDG_CACHE_HOME")
    old = Path.home() / ".cache" / "chainrule"
    want = write_idx_dataset(old / "mnist")
    assert cache.legacy_cache_dir() == old
    ds = data.load("mnist")
    assert ds.y_train.tolist() == want["y_train"].tolist() and str(old) in ds.source
    assert (platform / "arrays").is_dir()  # new decodes go to the platform's folder
    rc, out, _ = run_cli(["cache"], capsys)
    assert rc == 0 and f"{old} is chainrule's older cache folder: its data sets are still read" in out
    assert str(old / "mnist") in out
    assert run_cli(["cache", "--clear", "--yes"], capsys)[0] == 0
    assert not (old / "mnist").exists() and cache.cache_contents() == []
