"""Fuzzing: random or mutated bytes never crash the IDX and CIFAR-10 parsers with anything but
`DataFormatError` (a clear message naming the source)."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from chainrule.data import DataFormatError  # noqa: E402
from chainrule.data.cifar import parse_binary_batch, parse_python_batch, parse_python_meta  # noqa: E402
from chainrule.data.idx import idx_bytes, parse_idx, read_bytes  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_VALID_IDX = idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
_VALID_PICKLE = pickle.dumps(
    {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251, b"labels": [3, 9]}, protocol=2
)


def _mutate(base: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(base)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[:cut] if cut is not None else b)


def _ok_or_format_error(fn, blob: bytes) -> None:
    try:
        fn(blob, "fuzz-source")
    except DataFormatError as e:
        assert "fuzz-source" in str(e)


edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6)


@FUZZ
@given(st.binary(max_size=300))
def test_idx_random_bytes(blob):
    _ok_or_format_error(parse_idx, blob)


@FUZZ
@given(edits, st.none() | st.integers(0, len(_VALID_IDX)))
def test_idx_mutated(e, cut):
    blob = _mutate(_VALID_IDX, e, cut)
    try:
        arr = parse_idx(blob, "fuzz-source")
    except DataFormatError as err:
        assert "fuzz-source" in str(err)
    else:
        assert arr.size * arr.itemsize == len(blob) - 4 - 4 * arr.ndim


@FUZZ
@given(edits, st.none() | st.integers(0, 200))
def test_gzip_mutated(tmp_path_factory, e, cut):
    path = tmp_path_factory.mktemp("gz") / "f.gz"
    path.write_bytes(_mutate(gzip.compress(_VALID_IDX), e, cut))
    try:
        parse_idx(read_bytes(path), str(path))
    except DataFormatError as err:
        assert "f.gz" in str(err)


@FUZZ
@given(st.binary(max_size=400))
def test_cifar_pickle_random_bytes(blob):
    _ok_or_format_error(parse_python_batch, blob)
    _ok_or_format_error(parse_python_meta, blob)


@FUZZ
@given(edits, st.none() | st.integers(0, len(_VALID_PICKLE)))
def test_cifar_pickle_mutated(e, cut):
    # mutate only the pickle's structure (its first and last bytes), where the opcodes are
    blob = bytearray(_VALID_PICKLE)
    for pos, val in e:
        p = pos % 200
        blob[p if pos % 2 else -1 - p] = val
    _ok_or_format_error(parse_python_batch, bytes(blob[:cut] if cut is not None else blob))


@FUZZ
@given(st.binary(max_size=7000))
def test_cifar_binary_random_bytes(blob):
    _ok_or_format_error(parse_binary_batch, blob)


_TAR = None


def _valid_cifar_tar(tmp_path_factory) -> bytes:
    global _TAR
    if _TAR is None:
        from chainrule.data.synthetic import write_cifar_python

        d = tmp_path_factory.mktemp("tar")
        write_cifar_python(d, per_batch=2)
        _TAR = (d / "cifar-10-python.tar.gz").read_bytes()
    return _TAR


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.tuples(edits, st.none() | st.integers(0, 4000)))
def test_archives_random_and_mutated(tmp_path_factory, blob):
    """Whole archives, as the CIFAR-10 and image-folder readers see them."""
    from chainrule.data.cifar import read_cifar10
    from chainrule.data.imagefolder import scan_tar

    if isinstance(blob, tuple):
        blob = _mutate(_valid_cifar_tar(tmp_path_factory), *blob)
    path = tmp_path_factory.mktemp("fz") / "cifar-10-python.tar.gz"
    path.write_bytes(blob)
    for reader in (read_cifar10, scan_tar):
        try:
            reader(path)
        except DataFormatError as err:
            assert "cifar-10-python.tar.gz" in str(err)


def test_fuzz_found_errors_are_reachable():
    """The strategies do reach both outcomes (a fuzz test that never fails parsing is useless)."""
    with pytest.raises(DataFormatError):
        parse_idx(_VALID_IDX[:-1], "x")
    assert parse_idx(_VALID_IDX, "x").shape == (2, 3, 4)
    xb, yb = parse_python_batch(_VALID_PICKLE, "x")
    assert xb.shape == (2, 3, 32, 32) and list(yb) == [3, 9]
