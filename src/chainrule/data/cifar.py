"""CIFAR-10 in its two canonical formats, from the archive or the extracted folder.

- python: `cifar-10-python.tar.gz` / `cifar-10-batches-py/` with pickled batches
  `data_batch_1..5`, `test_batch` (dicts: b"data" uint8 (10000, 3072), b"labels" list of int)
  and `batches.meta` (b"label_names"). Unpickled with a restricted Unpickler that resolves
  only the few NumPy callables an array needs; any other global is refused.
- binary: `cifar-10-binary.tar.gz` / `cifar-10-batches-bin/` with `data_batch_1..5.bin`,
  `test_batch.bin` (records of 1 label byte + 3072 pixel bytes) and `batches.meta.txt`.

Archives are read member by member (`tarfile.extractfile`), never extracted to disk.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import DataFormatError
from .registry import CIFAR10_CLASSES

PY_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
PY_TEST = ["test_batch"]
PY_META = "batches.meta"
BIN_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
BIN_TEST = ["test_batch.bin"]
BIN_META = "batches.meta.txt"
RECORD = 1 + 3 * 32 * 32

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the NumPy callables that rebuild an ndarray; refuses everything else."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _ALLOWED_GLOBALS:
            if module.startswith("numpy.core.") and hasattr(np, "_core"):
                module = "numpy._core." + module[len("numpy.core.") :]  # NumPy 2 name, no warning
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def safe_unpickle(data: bytes, source: str) -> object:
    """Unpickle `data` (Python 2 pickles included) allowing only plain data and NumPy arrays.

    Raises:
        DataFormatError: the bytes are not a valid pickle, or reference a disallowed class.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RecursionError as e:
        raise DataFormatError(f"{source}: not a valid CIFAR-10 pickle (nested too deeply)") from e
    except MemoryError as e:
        raise DataFormatError(f"{source}: not a valid CIFAR-10 pickle (absurd sizes)") from e
    except Exception as e:  # pickle can raise many types on garbage; all mean "corrupt"
        raise DataFormatError(f"{source}: not a valid CIFAR-10 pickle ({type(e).__name__}: {e})") from e


def _get(d: dict, key: str) -> object:
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise KeyError(key)


def parse_python_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images uint8 (N, 3, 32, 32), labels int64 (N,)."""
    obj = safe_unpickle(data, source)
    if not isinstance(obj, dict):
        raise DataFormatError(f"{source}: expected a pickled dict, got {type(obj).__name__}")
    try:
        x = _get(obj, "data")
        y = _get(obj, "labels")
    except KeyError as e:
        raise DataFormatError(f"{source}: batch has no {e.args[0]!r} entry (keys: {list(obj)[:6]})") from e
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        desc = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataFormatError(f"{source}: 'data' must be a uint8 array (N, 3072), got {desc}")
    try:
        labels = np.asarray(y, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise DataFormatError(f"{source}: 'labels' are not integers ({e})") from e
    if labels.shape != (x.shape[0],):
        raise DataFormatError(
            f"{source}: {x.shape[0]} images but labels have shape {labels.shape} (lengths differ)"
        )
    check_labels(labels, 10, source)
    return x.reshape(-1, 3, 32, 32), labels


def parse_python_meta(data: bytes, source: str) -> list[str]:
    obj = safe_unpickle(data, source)
    try:
        names = _get(obj, "label_names") if isinstance(obj, dict) else None
    except KeyError:
        names = None
    if not isinstance(names, list) or len(names) != 10:
        raise DataFormatError(f"{source}: expected 10 'label_names' in the meta file")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]


def parse_binary_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch (records of label byte + 3072 pixels) -> images (N,3,32,32), labels (N,)."""
    if len(data) == 0 or len(data) % RECORD:
        raise DataFormatError(
            f"{source}: {len(data)} bytes is not a whole number of {RECORD}-byte CIFAR-10 records"
        )
    rec = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    labels = rec[:, 0].astype(np.int64)
    check_labels(labels, 10, source)
    return rec[:, 1:].reshape(-1, 3, 32, 32), labels


def parse_binary_meta(data: bytes, source: str) -> list[str]:
    names = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if len(names) != 10:
        raise DataFormatError(f"{source}: expected 10 class names, found {len(names)}")
    return names


def check_labels(labels: np.ndarray, num_classes: int, source: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise DataFormatError(f"{source}: label {int(bad)} out of range [0, {num_classes})")


# ---- reading from a folder or an archive -------------------------------------------------------
def _reader_for(source: Path) -> tuple[Callable[[str], bytes], Callable[[], None]]:
    """A function member name -> bytes for an extracted folder or a tar archive, and a closer."""
    if source.is_dir():

        def read_dir(member: str) -> bytes:
            p = source / member
            if not p.is_file():
                raise DataFormatError(f"{source}: missing file {member}")
            return p.read_bytes()

        return read_dir, lambda: None
    try:
        tf = tarfile.open(source, "r:*")
        members = {m.name: m for m in tf.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:  # a corrupt deflate stream: zlib.error
        raise DataFormatError(f"{source}: cannot read the archive ({type(e).__name__}: {e})") from e
    by_base: dict[str, tarfile.TarInfo] = {}
    for name, m in members.items():
        by_base.setdefault(os.path.basename(name), m)

    def read_tar(member: str) -> bytes:
        m = by_base.get(member)
        if m is None:
            raise DataFormatError(f"{source}: the archive has no member {member}")
        try:
            f = tf.extractfile(m)
            assert f is not None
            return f.read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataFormatError(f"{source}: cannot read {m.name} ({type(e).__name__}: {e})") from e

    return read_tar, tf.close


def detect_format(source: Path) -> str:
    """'python' or 'binary' from the folder/archive name or, failing that, its members."""
    n = source.name.lower()
    if "bin" in n:
        return "binary"
    if "py" in n:
        return "python"
    if source.is_dir():
        return "binary" if (source / BIN_TRAIN[0]).exists() else "python"
    try:
        with tarfile.open(source, "r:*") as tf:
            names = [os.path.basename(m) for m in tf.getnames()]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataFormatError(f"{source}: cannot read the archive ({type(e).__name__}: {e})") from e
    return "binary" if BIN_TRAIN[0] in names else "python"


def read_cifar10(source: str | os.PathLike[str], fmt: str | None = None) -> dict:
    """Read CIFAR-10 from a `cifar-10-*.tar.gz` archive or an extracted `cifar-10-batches-*` dir.

    Returns:
        dict with x_train uint8 (50000, 3, 32, 32), y_train int64, x_test, y_test, classes.
    Raises:
        DataFormatError: missing members, corrupt pickles/records, labels out of range...
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    fmt = fmt or detect_format(source)
    read, close = _reader_for(source)
    try:
        if fmt == "python":
            train = [parse_python_batch(read(m), f"{source}/{m}") for m in PY_TRAIN]
            test = [parse_python_batch(read(m), f"{source}/{m}") for m in PY_TEST]
            try:
                classes = parse_python_meta(read(PY_META), f"{source}/{PY_META}")
            except DataFormatError:
                classes = list(CIFAR10_CLASSES)
        elif fmt == "binary":
            train = [parse_binary_batch(read(m), f"{source}/{m}") for m in BIN_TRAIN]
            test = [parse_binary_batch(read(m), f"{source}/{m}") for m in BIN_TEST]
            try:
                classes = parse_binary_meta(read(BIN_META), f"{source}/{BIN_META}")
            except DataFormatError:
                classes = list(CIFAR10_CLASSES)
        else:
            raise ValueError(f"unknown CIFAR-10 format {fmt!r} (python or binary)")
    finally:
        close()
    return {
        "x_train": np.concatenate([b[0] for b in train]),
        "y_train": np.concatenate([b[1] for b in train]),
        "x_test": np.concatenate([b[0] for b in test]),
        "y_test": np.concatenate([b[1] for b in test]),
        "classes": classes,
    }
