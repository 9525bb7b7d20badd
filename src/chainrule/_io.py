"""Atomic file writes and folder locks, shared by every part of chainrule that writes files, and
`one_line`, the form in which an error reaches a terminal or a table.

The data goes to a temporary file in the destination's folder, is flushed to disk, gets the
permissions a plain `open` would have given it, and is then moved into place with `os.replace`:
a reader, or a run killed half-way, sees either the old file or the complete new one, never a
half-written file. On any error the temporary file is removed.

`human_size` is the one byte count for people; `did_you_mean` the one close-match hint of every
"unknown key / name / option" message.
`FolderLock` keeps a second chainrule process out of a run or sweep folder.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from chainrule.layout import LEGACY_LOCK


def _default_mode() -> int:
    # mkstemp creates files 0600; a plain open() would give 0666 minus the umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_mode()


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], binary: bool = True, suffix: str = ".tmp"
) -> Iterator[tuple[IO[Any], Path]]:
    """Yield `(file, temporary_path)`; on a clean exit the file replaces `path`.

    The caller may inspect the temporary file (e.g. verify a checksum) inside the block and raise
    to abort: nothing then reaches `path`.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            # a write into the open file (a full disk) names no file: name the one being written
            raise type(e)(e.errno, e.strerror, str(path)) from e
        raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], None], binary: bool = True) -> Path:
    """Call `write(f)` on a temporary file beside `path`, then move it into place.

    Args:
        path: destination; its folder must exist.
        write: fills the open file object.
        binary: open the temporary file in binary (default) or text (UTF-8) mode.
    """
    with atomic_open(path, binary=binary) as (f, _):
        write(f)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), binary=False)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """`os.environ` with `values` set for the block (what a child process inherits, a library reads),
    then as it was: the keys that were unset are unset again."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def one_line(e: BaseException, with_type: bool = False) -> str:
    """The message of `e` on one line (white space folded); its type's name when it has none, and
    before the message `with_type` (a sweep's trials.csv, where no traceback is at hand)."""
    if getattr(e, "keep_lines", False):  # a first line, then one searched folder per line
        return "\n".join(line.rstrip() for line in str(e).strip().splitlines()) or type(e).__name__
    text = " ".join(str(e).split())
    if not text:
        return type(e).__name__
    return f"{type(e).__name__}: {text}" if with_type else text


def did_you_mean(word: str, options: Iterable[str], n: int = 1, quote: bool = True) -> str:
    """` (did you mean 'x'?)` for the closest of `options` to a mistyped `word`, else "". `n` > 1
    offers up to n ("'a' or 'b'"); `quote=False` leaves them bare (command-line flags: `--lr`)."""
    near = difflib.get_close_matches(word, list(options), n=n)
    if not near:
        return ""
    return f" (did you mean {' or '.join(repr(c) if quote else c for c in near)}?)"


def human_size(n: float) -> str:
    """`635 MiB`: a byte count for people (3 significant digits, binary units)."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1024
    raise AssertionError


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock."""


class FolderLock:
    """An exclusive, non-blocking flock on the folder itself (its directory file descriptor):
    nothing is written into the folder, and the kernel releases the lock when the process dies,
    also on `kill -9`. A file system without flock (some network mounts) goes unlocked.

    Args:
        folder: an existing folder.
        what: what the folder is, for the message ("training", "sweep").
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "chainrule") -> None:
        self.folder = Path(folder)
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise FolderBusy(
                f"{Path(folder)} is in use by another chainrule {what} process; wait for it to end"
            ) from None
        except OSError:  # no flock here: run unlocked rather than not at all
            pass

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holds_files(folder: str | os.PathLike[str]) -> bool:
    """Whether an existing folder holds anything (an old sweep's lock file aside)."""
    return any(p.name != LEGACY_LOCK for p in Path(folder).iterdir())
