"""Where things are stored, atomic writes, and the decoded-array cache.

Cache entries live in `<cache dir>/arrays/<name>-<key>/` as `.npy` files (memory-mapped on load)
plus `meta.json` (class names, source). The cache dir is `$CHAINRULE_CACHE`, else the platform's
cache folder for chainrule (platformdirs: `$XDG_CACHE_HOME/chainrule` or `~/.cache/chainrule` on
Linux, `~/Library/Caches/chainrule` on macOS, `%LOCALAPPDATA%\\chainrule\\Cache` on Windows), which
also receives downloads when no other folder is given. Where the platform's folder is not
`~/.cache/chainrule` (macOS, Windows) and that older default exists, its data sets are still found
(`legacy_cache_dir`; new decodes and downloads go to the platform's folder, and `chainrule cache`
lists and clears both). `cache_contents` and
`clear_cache` are `chainrule cache` and `chainrule cache --clear`.

Cache key: sha256 over a format version, the data set name and, for every source file, its
resolved path, size and the md5 of its bytes (as stored: a `.gz` or `.tar.gz` is hashed
compressed, ~40 ms for the 19 MB CIFAR-10 archive). For a folder tree of image files, hashing
60,000 files each time would be slow, so the key uses each file's relative path, size and
mtime (nanoseconds) instead. Any change of content (or, for trees, of size/mtime) gives a new
key, hence a fresh decode; stale entries are never read.

An entry is built in a temp dir next to its final place and renamed in one `os.replace`; a
failed or interrupted build leaves only a `.tmp-*` dir that is never read (and is removed by a
later build once it is an hour old).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE_VERSION = 1
ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")


def user_cache_dir() -> Path:
    """The platform's cache folder for chainrule (the default data root); see the module docstring."""
    from platformdirs import user_cache_path

    return user_cache_path("chainrule", appauthor=False)


def legacy_cache_dir() -> Path | None:
    """chainrule's cache folder before platformdirs (`$XDG_CACHE_HOME/chainrule`, else
    `~/.cache/chainrule`) where it exists and is not the platform's folder; else None. On Linux the
    two are the same folder, so this is for macOS and Windows."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    old = (Path(xdg) if xdg else Path.home() / ".cache") / "chainrule"
    return old if old.is_dir() and old.resolve() != user_cache_dir().resolve() else None


def cache_dir() -> Path:
    """Where decoded arrays are cached: `$CHAINRULE_CACHE`, else the user cache folder."""
    env = os.environ.get("CHAINRULE_CACHE")
    return Path(env).expanduser() if env else user_cache_dir()


def file_md5(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """md5 hex digest of a file's bytes, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_records(files: Iterable[str | os.PathLike[str]]) -> list[dict]:
    """`{"path", "bytes", "md5"}` of each file (resolved path): what a run records it read."""
    out = []
    for f in files:
        p = Path(f).resolve()
        out.append({"path": str(p), "bytes": p.stat().st_size, "md5": file_md5(p)})
    return out


def key_for_records(name: str, records: Iterable[dict]) -> str:
    """Cache key from `file_records` (see the module docstring)."""
    h = hashlib.sha256(f"chainrule-cache-v{CACHE_VERSION}\0{name}\0".encode())
    for r in records:
        h.update(f"{r['path']}\0{r['bytes']}\0{r['md5']}\0".encode())
    return h.hexdigest()[:24]


def key_for_files(name: str, files: Iterable[str | os.PathLike[str]]) -> str:
    """Cache key from each file's resolved path, size and md5 (see the module docstring)."""
    return key_for_records(name, file_records(files))


def tree_record(root: str | os.PathLike[str], files: Iterable[tuple[str, int, int]]) -> dict:
    """`{"path", "files", "bytes", "sha256"}` of a folder tree; the digest is over each file's
    (relative path, size, mtime_ns), as for `key_for_tree`."""
    h = hashlib.sha256()
    n = total = 0
    for rel, size, mtime in files:
        h.update(f"{rel}\0{size}\0{mtime}\0".encode())
        n, total = n + 1, total + size
    return {"path": str(Path(root).resolve()), "files": n, "bytes": total, "sha256": h.hexdigest()}


def key_for_tree(name: str, root: str | os.PathLike[str], files: Iterable[tuple[str, int, int]]) -> str:
    """Cache key for a folder tree from (relative path, size, mtime_ns) of each file."""
    h = hashlib.sha256(f"chainrule-cache-v{CACHE_VERSION}\0{name}\0{Path(root).resolve()}\0".encode())
    for rel, size, mtime in files:
        h.update(f"{rel}\0{size}\0{mtime}\0".encode())
    return h.hexdigest()[:24]


def _entry_dir(name: str, key: str, root: Path | None = None) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
    return (root or cache_dir()) / "arrays" / f"{safe}-{key}"


def load_entry(name: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """The cached arrays (read-only memory maps) and meta for (name, key), or None on a miss.

    A damaged entry (unreadable meta or array) is removed and reported as a miss.
    """
    entry = _entry_dir(name, key)
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arrays = {k: np.load(entry / f"{k}.npy", mmap_mode="r") for k in ARRAY_NAMES}
        for k, shape in meta["shapes"].items():
            if list(arrays[k].shape) != list(shape):
                raise ValueError(f"{k} has shape {arrays[k].shape}, meta says {shape}")
    except (OSError, ValueError, KeyError, TypeError):
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return arrays, meta


def save_entry(name: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write an entry atomically: all files into a temp dir, then one rename."""
    final = _entry_dir(name, key)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=parent))
    try:
        for k in ARRAY_NAMES:
            np.save(tmp / f"{k}.npy", np.ascontiguousarray(arrays[k]))
        meta = dict(meta, shapes={k: list(arrays[k].shape) for k in ARRAY_NAMES}, key=key)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():  # not a concurrent writer's finished entry
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _remove_stale_tmp(parent: Path, age_s: float = 3600.0) -> None:
    now = time.time()
    for p in parent.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > age_s:
                shutil.rmtree(p, ignore_errors=True)


# ---- `chainrule cache`: what is stored, and removing it ---------------------------------------------
@dataclass(frozen=True)
class CacheItem:
    """One thing in chainrule's cache folders: a downloaded data set (a folder or archive), or the
    decoded arrays of one data set (one or more entries)."""

    what: str  # "mnist: downloaded files", "mnist: decoded arrays (2 versions)"
    paths: tuple[Path, ...]
    bytes: int


def _tree_bytes(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / f).lstat().st_size
    return total


def cache_folders() -> list[Path]:
    """chainrule's own folders, which `clear_cache` may empty: the platform's cache folder, the older
    `~/.cache/chainrule`, and `$CHAINRULE_CACHE` (of which only `arrays/` is chainrule's)."""
    out = [user_cache_dir()]
    legacy = legacy_cache_dir()
    if legacy is not None:
        out.append(legacy)
    if cache_dir() not in out:
        out.append(cache_dir())
    return out


def _arrays_name(entry: Path) -> str:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return str(json.loads((entry / "meta.json").read_text())["name"])
    return entry.name.rsplit("-", 1)[0].removeprefix(".tmp-")  # unfinished or damaged: its folder name


def cache_contents() -> list[CacheItem]:
    """Everything in `cache_folders()`, largest first: each downloaded data set, and the decoded
    arrays of each data set (all versions of it together). In `$CHAINRULE_CACHE` only `arrays/`."""
    items: list[CacheItem] = []
    arrays: dict[str, list[Path]] = {}
    for folder in cache_folders():
        own = folder in (user_cache_dir(), legacy_cache_dir())  # else $CHAINRULE_CACHE: only arrays/
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            if child.name == "arrays" and child.is_dir():
                for entry in sorted(child.iterdir()):
                    arrays.setdefault(_arrays_name(entry), []).append(entry)
            elif own:
                items.append(CacheItem(f"{child.name}: downloaded files", (child,), _tree_bytes(child)))
    for name, entries in arrays.items():
        n = len(entries)
        what = f"{name}: decoded arrays" + (f" ({n} versions)" if n > 1 else "")
        items.append(CacheItem(what, tuple(entries), sum(_tree_bytes(e) for e in entries)))
    return sorted(items, key=lambda i: -i.bytes)


def clear_cache(items: Iterable[CacheItem] | None = None) -> int:
    """Remove `items` (default: all of `cache_contents()`); returns the bytes freed. Data folders the
    user names (`$CHAINRULE_DATA`, `--data-dir`) are never in the cache and never touched."""
    freed = 0
    for item in cache_contents() if items is None else items:
        for path in item.paths:
            size = _tree_bytes(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            freed += size
    return freed
