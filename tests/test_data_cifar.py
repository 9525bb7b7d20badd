"""CIFAR-10 python (pickled) and binary formats, archive and extracted, on small synthetic batches."""

from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np
import pytest

from chainrule import data
from chainrule.data.cifar import parse_binary_batch, parse_python_batch, read_cifar10, safe_unpickle
from chainrule.data.registry import CIFAR10_CLASSES
from chainrule.data.synthetic import write_cifar_binary, write_cifar_python


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)


def _check(got: dict | data.Dataset, want: dict) -> None:
    for k in ("x_train", "y_train", "x_test", "y_test"):
        arr = got[k] if isinstance(got, dict) else getattr(got, k)
        np.testing.assert_array_equal(arr, want[k])
        assert arr.dtype == (np.uint8 if k[0] == "x" else np.int64)


@pytest.mark.parametrize("fmt", ["python", "binary"])
@pytest.mark.parametrize("archive", [True, False])
def test_read_formats(tmp_path, fmt, archive):
    writer = write_cifar_python if fmt == "python" else write_cifar_binary
    want = writer(tmp_path, per_batch=7)
    name = {
        ("python", True): "cifar-10-python.tar.gz",
        ("python", False): "cifar-10-batches-py",
        ("binary", True): "cifar-10-binary.tar.gz",
        ("binary", False): "cifar-10-batches-bin",
    }[fmt, archive]
    if archive:  # the loader must use the archive, not the folder next to it
        folder = "cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin"
        os.rename(tmp_path / folder, tmp_path / "moved")
    got = read_cifar10(tmp_path / name)
    _check(got, want)
    assert got["x_train"].shape == (35, 3, 32, 32)
    assert got["classes"] == CIFAR10_CLASSES


def test_pixel_layout_is_rgb_planes(tmp_path):
    """A CIFAR row is 1024 red, 1024 green, 1024 blue values, each plane row-major."""
    want = write_cifar_binary(tmp_path, per_batch=2, archive=False)
    raw = (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").read_bytes()
    x = read_cifar10(tmp_path / "cifar-10-batches-bin")["x_train"]
    assert raw[0] == want["y_train"][0]
    assert x[0, 1, 0, 5] == raw[1 + 1024 + 5]  # green plane, row 0, column 5
    assert x[0, 2, 3, 4] == raw[1 + 2048 + 3 * 32 + 4]


@pytest.mark.parametrize("writer", [write_cifar_python, write_cifar_binary])
def test_load_finds_each_format(tmp_path, writer):
    want = writer(tmp_path / "cifar10", per_batch=5, archive=True)
    ds = data.load("CIFAR-10", root=tmp_path)
    assert ds.name == "cifar10" and ds.image_shape == (3, 32, 32) and ds.classes == CIFAR10_CLASSES
    _check(ds, want)


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    with pytest.raises(data.DataFormatError, match="refusing to load global"):
        safe_unpickle(pickle.dumps({b"data": Evil()}), "evil_batch")
    import collections

    with pytest.raises(data.DataFormatError, match="collections"):
        safe_unpickle(pickle.dumps(collections.OrderedDict(a=1)), "od")


def test_unpickles_numpy_arrays_of_all_protocols():
    x = np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072)
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        xb, yb = parse_python_batch(pickle.dumps({"data": x, "labels": [1, 9]}, protocol=proto), "b")
        np.testing.assert_array_equal(xb.reshape(2, -1), x)
        np.testing.assert_array_equal(yb, [1, 9])


def test_python_batch_errors():
    x = np.zeros((3, 3072), np.uint8)
    with pytest.raises(data.DataFormatError, match=r"b1: 3 images but labels .*lengths differ"):
        parse_python_batch(pickle.dumps({b"data": x, b"labels": [0, 1]}), "b1")
    with pytest.raises(data.DataFormatError, match="label 10 out of range"):
        parse_python_batch(pickle.dumps({b"data": x, b"labels": [0, 1, 10]}), "b2")
    with pytest.raises(data.DataFormatError, match="no 'labels' entry"):
        parse_python_batch(pickle.dumps({b"data": x}), "b3")
    with pytest.raises(data.DataFormatError, match=r"uint8 array \(N, 3072\)"):
        parse_python_batch(pickle.dumps({b"data": x[:, :100], b"labels": [0, 0, 0]}), "b4")
    with pytest.raises(data.DataFormatError, match="expected a pickled dict"):
        parse_python_batch(pickle.dumps([1, 2]), "b5")


def test_binary_batch_errors():
    rec = np.zeros((2, 3073), np.uint8)
    with pytest.raises(data.DataFormatError, match=r"bb: 6147 bytes is not a whole number"):
        parse_binary_batch(rec.tobytes() + b"x", "bb")
    rec[1, 0] = 10
    with pytest.raises(data.DataFormatError, match="bb: label 10 out of range"):
        parse_binary_batch(rec.tobytes(), "bb")


def test_missing_batch_in_folder(tmp_path):
    write_cifar_python(tmp_path, per_batch=3, archive=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(data.DataFormatError, match="missing file data_batch_4"):
        read_cifar10(tmp_path / "cifar-10-batches-py")


def test_missing_member_in_archive(tmp_path):
    write_cifar_binary(tmp_path, per_batch=3, archive=False)
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    with pytest.raises(
        data.DataFormatError, match="cifar-10-binary.tar.gz: the archive has no member test_batch.bin"
    ):
        read_cifar10(tmp_path / "cifar-10-binary.tar.gz")


def test_truncated_archive(tmp_path):
    write_cifar_python(tmp_path, per_batch=3)
    p = tmp_path / "cifar-10-python.tar.gz"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(data.DataFormatError, match="cifar-10-python.tar.gz"):
        read_cifar10(p)


def test_garbage_in_a_batch_file(tmp_path):
    write_cifar_python(tmp_path, per_batch=3, archive=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"not a pickle at all")
    with pytest.raises(data.DataFormatError, match="data_batch_2: not a valid CIFAR-10 pickle"):
        read_cifar10(tmp_path / "cifar-10-batches-py")


def test_old_numpy_module_names_in_pickles(recwarn):
    """The canonical CIFAR-10 pickles (Python 2, NumPy 1) name numpy.core.multiarray."""
    x = np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072)
    blob = pickle.dumps({b"data": x, b"labels": [0, 7]}, protocol=2)
    assert b"numpy._core.multiarray\n" in blob or b"numpy.core.multiarray\n" in blob
    old = blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    xb, yb = parse_python_batch(old, "old")
    np.testing.assert_array_equal(xb.reshape(2, -1), x)
    assert list(yb) == [0, 7]
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
