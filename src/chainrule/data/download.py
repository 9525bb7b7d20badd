"""Download with checksum, progress bar and atomic rename (standard library only).

A file is streamed to a temp file in the destination folder; its size is checked against
Content-Length and its md5 (of the decompressed payload for `.gz` files that are not tarballs,
of the file itself otherwise) against the registry; only then is it renamed onto its final
name. A cut-off transfer or a checksum mismatch removes the temp file and raises
`DownloadError`, so nothing a later load would trust is left behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from chainrule._io import atomic_open

from .errors import DownloadError


class _Progress:
    """A one-line text progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, label: str, total: int | None, stream: TextIO | None) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.last = 0.0

    def update(self, done: int, final: bool = False) -> None:
        if self.stream is None or (not final and time.monotonic() - self.last < 0.1):
            return
        self.last = time.monotonic()
        mb = done / 1e6
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(30 * frac)
            line = f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% {mb:.1f}/{self.total / 1e6:.1f} MB"
        else:
            line = f"\r{self.label} {mb:.1f} MB"
        self.stream.write(line + ("\n" if final else ""))
        self.stream.flush()


def _is_payload_gz(name: str) -> bool:
    return name.endswith(".gz") and not name.endswith(".tar.gz")


def payload_md5(path: str | os.PathLike[str], gz: bool | None = None) -> str:
    """md5 of the file, or of its decompressed content for a `.gz` that is not a `.tar.gz`
    (`gz` overrides the decision by name)."""
    path = Path(path)
    h = hashlib.md5()
    if gz is None:
        gz = _is_payload_gz(path.name)
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except (EOFError, OSError, zlib.error) as e:
        raise DownloadError(f"{path}: cannot read the downloaded file ({type(e).__name__}: {e})") from e
    return h.hexdigest()


def download_url(
    url: str,
    dest: str | os.PathLike[str],
    md5: str | None = None,
    progress: bool | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download `url` to `dest` atomically, checking its length and (payload) md5.

    Args:
        url: http(s) or file URL.
        dest: final path; written only when the whole file arrived and the checksum matches.
        md5: expected payload md5 (see `payload_md5`); None skips the check.
        progress: draw a progress bar on stderr (default: when stderr is a terminal).
        timeout: socket timeout in seconds.
    Raises:
        DownloadError: network error, short transfer, or checksum mismatch; no file is left.
    """
    import urllib.request  # lazily: it pulls in ssl and http (~30 ms at import)

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    with atomic_open(dest, suffix=".part") as (out, tmp):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                bar = _Progress(f"Downloading {dest.name}", total, sys.stderr if progress else None)
                done = 0
                while block := resp.read(1 << 16):
                    out.write(block)
                    done += len(block)
                    bar.update(done)
                bar.update(done, final=True)
        except Exception as e:  # URLError, OSError, http.client.IncompleteRead, bad URL...
            raise DownloadError(f"downloading {url} failed: {type(e).__name__}: {e}") from e
        if total is not None and done != total:
            raise DownloadError(f"downloading {url}: got {done} of {total} bytes (transfer cut off)")
        if md5 is not None:
            out.flush()
            got = payload_md5(tmp, gz=_is_payload_gz(dest.name))
            if got != md5:
                raise DownloadError(f"downloading {url}: md5 {got} does not match the expected {md5}")
    return dest


def _md5_or_none(path: Path) -> str | None:
    try:
        return payload_md5(path)
    except DownloadError:  # e.g. a corrupt .gz left by something else: download it again
        return None


def download_files(
    files: dict[str, str],
    mirrors: Sequence[str],
    folder: str | os.PathLike[str],
    progress: bool | None = None,
) -> list[Path]:
    """Download each file name -> md5 from the first mirror that serves it correctly.

    Raises:
        DownloadError: listing every mirror's failure for the first file none could deliver.
    """
    folder = Path(folder)
    paths = []
    for fname, md5 in files.items():
        dest = folder / fname
        if dest.is_file() and _md5_or_none(dest) == md5:  # already here and intact
            paths.append(dest)
            continue
        errors = []
        for base in mirrors:
            url = base if base.endswith(fname) else base.rstrip("/") + "/" + fname
            try:
                paths.append(download_url(url, dest, md5=md5, progress=progress))
                break
            except DownloadError as e:
                errors.append(str(e))
        else:
            raise DownloadError(f"could not download {fname}:\n  " + "\n  ".join(errors))
    return paths
