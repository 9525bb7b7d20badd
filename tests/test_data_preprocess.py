"""Scaling, standardization (training statistics only), flatten, one-hot, split, read_image."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import data


def _images(n=50, c=3, h=5, w=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def test_to_float():
    x = np.array([0, 51, 255], np.uint8)
    y = data.to_float(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0, 0.2, 1], rtol=1e-6)
    assert data.to_float(x, np.float64).dtype == np.float64
    f = np.array([0.5], np.float64)
    assert data.to_float(f)[0] == np.float32(0.5)  # floats are not rescaled
    with pytest.raises(ValueError, match="uint8 or float"):
        data.to_float(np.array([1], np.int32))


@pytest.mark.parametrize("per_channel", [True, False])
def test_standardize_matches_numpy_reference(per_channel):
    xtr, xte = _images(seed=1), _images(n=20, seed=2)
    (a, b), (mean, std) = data.standardize(xtr, xte, per_channel=per_channel)
    ref = xtr.astype(np.float64) / 255
    axes = (0, 2, 3) if per_channel else None
    m = ref.mean(axis=axes, keepdims=True)
    s = ref.std(axis=axes, keepdims=True)
    np.testing.assert_allclose(mean, np.ravel(m), rtol=1e-12)
    np.testing.assert_allclose(std, np.ravel(s), rtol=1e-12)
    np.testing.assert_array_equal(data.channel_stats(xtr, per_channel)[1], std)
    np.testing.assert_allclose(a, (ref - m) / s, atol=1e-5)
    np.testing.assert_allclose(b, (xte / 255 - m) / s, atol=1e-5)  # test uses the *training* stats
    assert a.dtype == b.dtype == np.float32
    assert not np.allclose(b.mean(axis=axes), 0, atol=1e-3)  # so b was not standardized on its own


def test_standardize_float_input_and_flat_input():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(200, 2, 3, 3))
    (y,), (mean, std) = data.standardize(x, dtype=np.float64)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-10)
    (z,), (m2, _) = data.standardize(data.flatten(x))
    assert m2.shape == (1,) and z.shape == (200, 18)


def test_standardize_constant_channel_and_shape_mismatch():
    x = np.zeros((4, 1, 2, 2), np.uint8)
    (y,), (_, std) = data.standardize(x)
    assert std[0] == 1.0 and np.all(y == 0)
    with pytest.raises(ValueError, match="does not match"):
        data.standardize(x, np.zeros((4, 1, 3, 2), np.uint8))


def test_flatten_is_a_view():
    x = _images()
    f = data.flatten(x)
    assert f.shape == (50, 60) and np.shares_memory(f, x)


def test_one_hot():
    y = np.array([2, 0, 1])
    np.testing.assert_array_equal(data.one_hot(y, 3), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert data.one_hot(y, 4, np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        data.one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match="integers"):
        data.one_hot(np.array([0.5]), 3)


def test_train_val_split_stratified_and_seeded():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    x = np.arange(len(y))
    xtr, ytr, xva, yva = data.train_val_split(x, y, val_fraction=0.1, seed=3)
    assert len(xva) == 20 and len(xtr) == 180
    np.testing.assert_array_equal(np.bincount(yva), [10, 5, 3, 2])
    assert set(xtr).isdisjoint(xva) and set(xtr) | set(xva) == set(x)
    np.testing.assert_array_equal(y[xva], yva)  # labels travel with their samples
    again = data.train_val_split(x, y, val_fraction=0.1, seed=3)
    np.testing.assert_array_equal(again[2], xva)
    other = data.train_val_split(x, y, val_fraction=0.1, seed=4)
    assert not np.array_equal(other[2], xva)


def test_train_val_split_rounding_and_unstratified():
    y = np.repeat(np.arange(3), [7, 7, 7])
    _, _, _, yva = data.train_val_split(np.zeros((21, 2)), y, val_fraction=0.25, seed=0)
    np.testing.assert_array_equal(np.bincount(yva, minlength=3), [2, 2, 2])  # each class rounds 1.75 itself
    _, _, xva, _ = data.train_val_split(np.arange(21), y, val_fraction=0.25, stratify=False)
    assert len(xva) == 5
    with pytest.raises(ValueError, match="val_fraction"):
        data.train_val_split(np.arange(3), np.arange(3), val_fraction=1.0)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        data.train_val_split(np.arange(3), np.arange(2))


def test_read_image(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :10, 0] = 255  # left half red
    Image.fromarray(rgb).save(tmp_path / "a.png")
    x = data.read_image(tmp_path / "a.png")
    assert x.shape == (3, 10, 20) and x.dtype == np.uint8
    np.testing.assert_array_equal(x.transpose(1, 2, 0), rgb)
    g = data.read_image(tmp_path / "a.png", shape=(1, 5, 10))
    assert g.shape == (1, 5, 10)
    assert g[0, 2, 1] == round(0.299 * 255) and g[0, 2, 8] == 0  # ITU-R 601 luma of pure red
    gray = Image.fromarray(np.full((4, 4), 9, np.uint8))
    gray.save(tmp_path / "g.jpg")
    assert data.read_image(tmp_path / "g.jpg").shape == (1, 4, 4)
    assert data.read_image(tmp_path / "g.jpg", shape=(3, 4, 4)).shape == (3, 4, 4)
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(data.DataFormatError, match=r"bad.png: unreadable image"):
        data.read_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        data.read_image(tmp_path / "missing.png")


def test_train_val_split_is_the_validation_set_of_chainrule_train():
    from chainrule.train import TrainConfig
    from chainrule.train.prepare import prepare, synthetic, transform

    raw = synthetic()
    for fraction, seed in ((0.1, 0), (0.25, 5)):
        cfg = TrainConfig(dataset="synthetic", val_fraction=fraction, seed=seed)
        prepared = prepare(raw, cfg)
        _, _, x_val, y_val = data.train_val_split(raw.x_train, raw.y_train, fraction, seed)
        np.testing.assert_array_equal(y_val, prepared.y_val)
        np.testing.assert_array_equal(
            transform(x_val, prepared.mean, prepared.std, np.float32), prepared.x_val
        )
