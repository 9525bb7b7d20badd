"""IDX files (MNIST, Fashion-MNIST): read raw or gzipped, validate, write (for tests/fixtures).

Format: 2 zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64), the number of dimensions d, then d big-endian uint32 sizes, then the data
(big-endian, C order). The data length must equal the product of the sizes times the item size.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DataFormatError

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The payload of `path`: gunzipped when the file starts with the gzip magic (any name).

    Raises:
        DataFormatError: truncated or corrupt gzip stream (names the file).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as e:
        raise DataFormatError(f"{path}: truncated gzip file (the download may have been cut off)") from e
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataFormatError(f"{path}: corrupt gzip file ({e})") from e


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a native-endian array of the declared shape.

    Raises:
        DataFormatError: bad magic, unknown type code, truncated header, or a data length that
            disagrees with the header's sizes (the message names `source`).
    """
    if len(data) < 4:
        raise DataFormatError(f"{source}: too short for an IDX file ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataFormatError(
            f"{source}: wrong IDX magic number 0x{data[:4].hex()} (expected 0x0000TTDD with type code "
            f"TT in {sorted(hex(k) for k in IDX_TYPES)}); is this an IDX file?"
        )
    dtype = IDX_TYPES[data[2]]
    ndim = data[3]
    if ndim == 0:
        raise DataFormatError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"{source}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = dtype.itemsize * int(np.prod(shape, dtype=object))
    got = len(data) - header
    if got != expected:
        raise DataFormatError(
            f"{source}: IDX header says shape {shape} ({expected} data bytes) but the file holds "
            f"{got} data bytes ({'truncated' if got < expected else 'trailing data'})"
        )
    arr = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzipped or raw. See `parse_idx` for the errors."""
    return parse_idx(read_bytes(path), str(path))


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode `arr` as IDX bytes (used to build test fixtures and for users' own data)."""
    arr = np.asarray(arr)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(arr, IDX_TYPES[code]).tobytes()


def write_idx(path: str | os.PathLike[str], arr: np.ndarray, compress: bool | None = None) -> Path:
    """Write `arr` as an IDX file, atomically; gzipped when `compress` (default: name ends in .gz)."""
    path = Path(path)
    data = idx_bytes(arr)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    from chainrule._io import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path
