"""Image-folder trees (folder or .tar.gz) for users' own images: layout, channels, errors."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from chainrule import data  # noqa: E402
from chainrule.data.imagefolder import decode_images  # noqa: E402
from chainrule.data.synthetic import write_image_tree  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)


def _check(ds: data.Dataset, want: dict) -> None:
    assert ds.classes == want["classes"]
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, k), want[k])
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_tree(tmp_path, channels):
    want = write_image_tree(tmp_path / "pets", channels=channels, size=(7, 5))
    ds = data.load_folder(tmp_path / "pets")
    assert ds.name == "pets" and ds.image_shape == (channels, 7, 5)
    _check(ds, want)


def test_targz_tree_with_top_folder(tmp_path):
    want = write_image_tree(tmp_path / "pets", archive=str(tmp_path / "pets.tar.gz"))
    ds = data.load_folder(tmp_path / "pets.tar.gz")
    assert ds.name == "pets"
    _check(ds, want)


def test_flat_tree_is_all_training_data(tmp_path):
    want = write_image_tree(tmp_path / "t", n_test=0)
    flat = tmp_path / "flat"
    (tmp_path / "t" / "train").rename(flat)
    ds = data.load_folder(flat)
    np.testing.assert_array_equal(ds.x_train, want["x_train"])
    assert ds.x_test.shape == (0, 3, 8, 6) and ds.y_test.shape == (0,)


def test_mixed_gray_and_colour_gives_rgb(tmp_path):
    write_image_tree(tmp_path / "m", channels=1, n_train=2, n_test=0)
    rgb = np.full((8, 6, 3), 7, np.uint8)
    Image.fromarray(rgb).save(tmp_path / "m" / "train" / "dog" / "9999.png")
    ds = data.load_folder(tmp_path / "m")
    assert ds.image_shape == (3, 8, 6)
    gray = np.asarray(Image.open(tmp_path / "m" / "train" / "cat" / "0000.png"))
    np.testing.assert_array_equal(ds.x_train[0], np.stack([gray] * 3))
    np.testing.assert_array_equal(ds.x_train[np.flatnonzero(ds.y_train == 1)[-1]], 7)  # dog/9999.png


def test_parallel_decode_matches_sequential(tmp_path):
    want = write_image_tree(tmp_path / "p", n_train=10, n_test=3)
    items = sorted(str(p) for p in (tmp_path / "p" / "train").rglob("*.png"))
    seq = decode_images(items, items, workers=1)
    par = decode_images(items, items, workers=2)
    np.testing.assert_array_equal(seq, par)
    np.testing.assert_array_equal(seq, want["x_train"])


def test_jpeg_tree(tmp_path):
    write_image_tree(tmp_path / "j", fmt="jpg", size=(16, 16))
    ds = data.load_folder(tmp_path / "j")
    assert ds.x_train.shape == (12, 3, 16, 16) and ds.x_test.shape == (6, 3, 16, 16)


def test_empty_class_folder(tmp_path):
    write_image_tree(tmp_path / "e")
    (tmp_path / "e" / "train" / "zebra").mkdir()
    (tmp_path / "e" / "train" / "zebra" / "notes.txt").write_text("no images here")
    with pytest.raises(data.DataFormatError, match="class folder train/zebra has no images"):
        data.load_folder(tmp_path / "e")


def test_empty_class_folder_in_archive(tmp_path):
    write_image_tree(tmp_path / "e")
    (tmp_path / "e" / "test" / "zebra").mkdir()
    with tarfile.open(tmp_path / "e.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "e", arcname="e")
    with pytest.raises(data.DataFormatError, match=r"e.tar.gz: class folder test/zebra has no images"):
        data.load_folder(tmp_path / "e.tar.gz")


def test_unreadable_image(tmp_path):
    write_image_tree(tmp_path / "u")
    bad = tmp_path / "u" / "train" / "dog" / "0002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(data.DataFormatError, match=r"0002.png: unreadable image"):
        data.load_folder(tmp_path / "u")


def test_inconsistent_sizes(tmp_path):
    write_image_tree(tmp_path / "s", size=(8, 6))
    Image.fromarray(np.zeros((9, 6, 3), np.uint8)).save(tmp_path / "s" / "test" / "frog" / "0001.png")
    with pytest.raises(data.DataFormatError, match=r"test/frog/0001.png: image is 6x9.*same size"):
        data.load_folder(tmp_path / "s")


def test_test_class_unknown_to_train(tmp_path):
    write_image_tree(tmp_path / "c")
    (tmp_path / "c" / "test" / "owl").mkdir()
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "c" / "test" / "owl" / "0.png")
    with pytest.raises(data.DataFormatError, match=r"test classes \['owl'\] have no folder under train"):
        data.load_folder(tmp_path / "c")


def test_missing_path_and_not_an_archive(tmp_path):
    with pytest.raises(data.DatasetNotFoundError):
        data.load_folder(tmp_path / "nope")
    (tmp_path / "x.tar.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 50)
    with pytest.raises(data.DataFormatError, match="x.tar.gz"):
        data.load_folder(tmp_path / "x.tar.gz")
    (tmp_path / "y.tar").write_bytes(b"definitely not a tar file" * 40)
    with pytest.raises(data.DataFormatError, match="y.tar"):
        data.load_folder(tmp_path / "y.tar")


def test_cifar10_as_an_image_tree(tmp_path):
    """load('cifar10') also accepts the JPEG tree layout of ../shared/datasets."""
    classes = ("airplane", "automobile")
    write_image_tree(tmp_path / "tree", classes=classes, size=(32, 32), archive=str(tmp_path / "c.tar.gz"))
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "c.tar.gz").rename(tmp_path / "cifar10" / "cifar10-jpeg.tar.gz")
    ds = data.load("cifar10", root=tmp_path)
    assert ds.name == "cifar10" and ds.classes == list(classes) and ds.x_train.shape == (8, 3, 32, 32)


# ---- the fast JPEG path must give exactly what Image.open gives, and fall back otherwise --------
@pytest.mark.parametrize("channels", [1, 3])
def test_fast_jpeg_path_equals_pillow(tmp_path, channels, monkeypatch):
    import chainrule.data.imagefolder as imf

    write_image_tree(tmp_path / "j", fmt="jpg", size=(12, 10), channels=channels, n_train=6)
    items = sorted(str(p) for p in (tmp_path / "j").rglob("*.jpg"))
    calls = {"fast": 0}
    real_fast = imf._fast_jpeg

    def counting(*a):
        out = real_fast(*a)
        calls["fast"] += out is not None
        return out

    monkeypatch.setattr(imf, "_fast_jpeg", counting)
    fast = decode_images(items, items, workers=1)
    assert calls["fast"] >= len(items)  # the fast path was really taken
    monkeypatch.setattr(imf, "_fast_path_agrees", lambda *a: False)
    slow = decode_images(items, items, workers=1)
    np.testing.assert_array_equal(fast, slow)
    ref = np.stack([np.asarray(Image.open(p)) for p in items])
    np.testing.assert_array_equal(fast, ref[:, None] if channels == 1 else ref.transpose(0, 3, 1, 2))


def test_fast_jpeg_path_falls_back_on_odd_files(tmp_path):
    write_image_tree(tmp_path / "j", fmt="jpg", size=(16, 16), n_train=3)
    cdir = tmp_path / "j" / "train" / "dog"
    Image.fromarray(np.zeros((16, 12, 3), np.uint8)).save(cdir / "0009.jpg")  # narrower
    with pytest.raises(data.DataFormatError, match=r"0009.jpg: image is 12x16"):
        data.load_folder(tmp_path / "j")
    (cdir / "0009.jpg").unlink()
    good = (cdir / "0000.jpg").read_bytes()
    (cdir / "0001.jpg").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(data.DataFormatError, match=r"0001.jpg: unreadable image"):
        data.load_folder(tmp_path / "j")
    (cdir / "0001.jpg").write_bytes(good)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(cdir / "0002.jpg")  # grayscale among colour
    ds = data.load_folder(tmp_path / "j")
    assert ds.image_shape == (3, 16, 16) and np.all(ds.x_train[5] == 0)


def test_jpeg_layout_parser():
    from chainrule.data.imagefolder import _jpeg_layout

    buf = io.BytesIO()
    Image.fromarray(np.zeros((7, 9, 3), np.uint8)).save(buf, "JPEG")
    assert _jpeg_layout(buf.getvalue()) == (9, 7, 3)
    assert _jpeg_layout(b"\x89PNG....") is None
    assert _jpeg_layout(buf.getvalue()[:20]) is None
