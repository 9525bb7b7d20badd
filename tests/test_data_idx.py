"""IDX files and the MNIST/Fashion-MNIST loader on small synthetic files."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from chainrule import data
from chainrule.data.idx import idx_bytes, parse_idx, read_bytes, read_idx, write_idx
from chainrule.data.registry import IDX_FILES
from chainrule.data.synthetic import write_idx_dataset


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)


def test_header_layout_by_hand():
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    arr = parse_idx(raw)
    assert arr.shape == (2, 3) and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, [[0, 1, 2], [3, 4, 5]])
    assert idx_bytes(arr) == raw


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_roundtrip_dtypes(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((4, 3, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize(
    ("code", "payload", "values"),
    [
        (0x0C, b"\x01\x02\x03\x04\xff\xff\xff\xfe", [0x01020304, -2]),
        (0x0D, b"\x3f\xc0\x00\x00\xc1\x20\x00\x00", [1.5, -10.0]),  # IEEE 754 single, big-endian
        (0x0E, b"\x3f\xf8" + bytes(6) + b"\xc0\x24" + bytes(6), [1.5, -10.0]),  # double
    ],
)
def test_wide_types_by_hand_are_big_endian(code, payload, values):
    """Bytes written out by hand, not by this module's writer: a reader and writer that agree on
    the wrong byte order would pass the round trip above."""
    raw = bytes([0, 0, code, 1, 0, 0, 0, 2]) + payload
    arr = parse_idx(raw)
    np.testing.assert_array_equal(arr, values)
    assert arr.dtype.kind == ("i" if code == 0x0C else "f") and arr.dtype.itemsize == len(payload) // 2
    assert idx_bytes(arr) == raw


def test_big_endian_data():
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + b"\x01\x02\xff\xfe"
    np.testing.assert_array_equal(parse_idx(raw), [0x0102, -2])


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"\x00\x00", "too short"),
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 7]), "magic"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]), "magic"),
        (bytes([0, 0, 8, 0]), "0 dimensions"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "truncated IDX header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "trailing"),
    ],
)
def test_bad_headers_name_the_file(raw, needle):
    with pytest.raises(data.DataFormatError, match=needle) as e:
        parse_idx(raw, "some/file-idx")
    assert "some/file-idx" in str(e.value)


def test_truncated_and_corrupt_gzip(tmp_path):
    payload = idx_bytes(np.arange(3000, dtype=np.uint8).reshape(30, 100))
    blob = gzip.compress(payload)
    (tmp_path / "cut.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(data.DataFormatError, match="truncated gzip") as e:
        read_bytes(tmp_path / "cut.gz")
    assert "cut.gz" in str(e.value)
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0xFF
    bad[-6] ^= 0xFF  # and the CRC
    (tmp_path / "bad.gz").write_bytes(bytes(bad))
    with pytest.raises(data.DataFormatError, match="corrupt gzip|truncated gzip"):
        read_idx(tmp_path / "bad.gz")


@pytest.mark.parametrize("layout", ["sub", "flat", "torchvision"])
@pytest.mark.parametrize("gz", [True, False])
def test_load_synthetic_mnist(tmp_path, layout, gz):
    folder = {"sub": tmp_path / "mnist", "flat": tmp_path, "torchvision": tmp_path / "MNIST" / "raw"}[layout]
    want = write_idx_dataset(folder, n_train=50, n_test=20, gz=gz)
    ds = data.load("MNIST", root=tmp_path)
    assert ds.name == "mnist" and ds.num_classes == 10 and ds.image_shape == (1, 28, 28)
    for k in ("x_train", "y_train", "x_test", "y_test"):
        arr = getattr(ds, k)
        assert arr.dtype == (np.uint8 if k[0] == "x" else np.int64)
        np.testing.assert_array_equal(arr, want[k])
    assert ds.x_train.shape == (50, 1, 28, 28)


def test_aliases_and_unknown(tmp_path):
    write_idx_dataset(tmp_path / "fashion-mnist")
    assert data.load("fashion_mnist", root=tmp_path).classes[0] == "T-shirt/top"
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        data.load("svhn", root=tmp_path)


def test_chainrule_data_env_root(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path / "elsewhere" / "mnist", n_train=30, n_test=10)
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "elsewhere"))
    assert len(data.load("mnist").y_train) == 30


def test_user_cache_folder_is_searched(tmp_path):
    write_idx_dataset(tmp_path / "xdg" / "chainrule" / "mnist", n_train=20, n_test=10)
    assert len(data.load("mnist", root=tmp_path / "nothing-here").y_train) == 20


def test_not_found_says_where_and_what(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.load("mnist", root=tmp_path / "empty")
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert str(tmp_path / "empty" / "mnist") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "download=True" in msg


def test_missing_one_file_names_it(tmp_path):
    write_idx_dataset(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        data.DatasetNotFoundError, match=r"only part of mnist: missing t10k-labels-idx1-ubyte"
    ):
        data.load("mnist", root=tmp_path)


def _replace(folder, role, arr):
    write_idx(folder / (IDX_FILES[role] + ".gz"), arr)


def test_length_mismatch(tmp_path):
    d = write_idx_dataset(tmp_path / "mnist")
    _replace(tmp_path / "mnist", "y_train", d["y_train"][:-1].astype(np.uint8))
    with pytest.raises(data.DataFormatError, match="lengths differ") as e:
        data.load("mnist", root=tmp_path)
    assert "train-labels-idx1-ubyte" in str(e.value) and "train-images-idx3-ubyte" in str(e.value)


def test_label_out_of_range(tmp_path):
    d = write_idx_dataset(tmp_path / "mnist")
    y = d["y_test"].astype(np.uint8)
    y[3] = 10
    _replace(tmp_path / "mnist", "y_test", y)
    with pytest.raises(data.DataFormatError, match=r"t10k-labels.*label 10 out of range"):
        data.load("mnist", root=tmp_path)


def test_wrong_kind_of_file(tmp_path):
    d = write_idx_dataset(tmp_path / "mnist")
    _replace(tmp_path / "mnist", "x_train", d["x_train"].astype(np.int32))  # int32 images
    with pytest.raises(data.DataFormatError, match="expected uint8 images"):
        data.load("mnist", root=tmp_path)
    folder = tmp_path / "mnist"
    shutil.copy(folder / "t10k-labels-idx1-ubyte.gz", folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(data.DataFormatError, match="expected uint8 images"):
        data.load("mnist", root=tmp_path)


def test_wrong_magic_via_load(tmp_path):
    write_idx_dataset(tmp_path / "mnist", gz=False)
    p = tmp_path / "mnist" / "train-images-idx3-ubyte"
    raw = bytearray(p.read_bytes())
    raw[2] = 0x99
    p.write_bytes(bytes(raw))
    with pytest.raises(data.DataFormatError, match=r"train-images-idx3-ubyte: wrong IDX magic"):
        data.load("mnist", root=tmp_path)
