"""BatchIterator (epochs, shuffling, drop_last, resume) and vectorized augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import data


def _xy(n=23, d=3):
    x = np.arange(n * d, dtype=np.float32).reshape(n, d)
    return x, np.arange(n)


def test_one_epoch_covers_every_sample_once():
    x, y = _xy()
    it = data.BatchIterator(x, y, batch_size=5)
    assert len(it) == 5
    batches = [(xb.copy(), yb.copy()) for xb, yb in it]
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen) == list(range(23)) and not np.array_equal(seen, np.arange(23))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, x[yb])  # x and y stay paired
        assert xb.dtype == np.float32 and xb.flags.c_contiguous


def test_reshuffles_each_epoch_and_is_seeded():
    x, y = _xy()
    it = data.BatchIterator(x, y, batch_size=23)
    e1 = next(iter(it))[1].copy()
    list(it)  # finishes epoch 0 (its only batch was already taken)
    e2 = next(iter(it))[1].copy()
    assert not np.array_equal(e1, e2)
    other = data.BatchIterator(x, y, batch_size=23)
    np.testing.assert_array_equal(next(iter(other))[1], e1)
    assert not np.array_equal(next(iter(data.BatchIterator(x, y, 23, seed=1)))[1], e1)


def test_no_shuffle_and_drop_last():
    x, y = _xy()
    it = data.BatchIterator(x, y, batch_size=5, shuffle=False, drop_last=True)
    assert len(it) == 4
    ys = [yb.copy() for _, yb in it]
    np.testing.assert_array_equal(np.concatenate(ys), np.arange(20))


def test_reuse_false_gives_fresh_arrays():
    x, y = _xy()
    kept = list(data.BatchIterator(x, y, batch_size=5, reuse=False))
    assert sorted(np.concatenate([yb for _, yb in kept])) == list(range(23))
    assert not np.shares_memory(kept[0][0], kept[1][0])


def test_resume_mid_epoch_is_bit_identical():
    x, y = _xy(50)
    aug = lambda xb, rng: xb + rng.standard_normal(xb.shape).astype(np.float32)  # noqa: E731
    ref = data.BatchIterator(x, y, batch_size=8, transform=aug)
    full = [(xb.copy(), yb.copy()) for _ in range(3) for xb, yb in ref]

    it = data.BatchIterator(x, y, batch_size=8, transform=aug)
    got = [(xb.copy(), yb.copy()) for xb, yb in it]  # epoch 0
    gen = iter(it)
    got += [tuple(a.copy() for a in next(gen)) for _ in range(3)]  # 3 batches of epoch 1
    state = it.state_dict()
    resumed = data.BatchIterator(x, y, batch_size=8, transform=aug, seed=123)
    resumed.load_state_dict(state)
    got += [(xb.copy(), yb.copy()) for _ in range(2) for xb, yb in resumed]
    assert len(got) == len(full) == 21
    for (a, b), (c, d) in zip(got, full, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert resumed.epoch == 3


def test_bad_arguments():
    x, y = _xy()
    with pytest.raises(ValueError, match="same length"):
        data.BatchIterator(x, y[:-1], 4)
    with pytest.raises(ValueError, match="batch_size"):
        data.BatchIterator(x, y, 0)
    with pytest.raises(ValueError, match="not a BatchIterator state"):
        data.BatchIterator(x, y, 4).load_state_dict({"epoch": 1})


# ---- augmentation ----------------------------------------------------------------------------------
def _loop_crop(x, padding, dy, dx):
    n, _, h, w = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    return np.stack([p[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def test_random_crop_matches_a_loop():
    x = np.random.default_rng(0).integers(0, 256, size=(16, 3, 6, 5), dtype=np.uint8)
    out = data.random_crop(x, padding=2, rng=7)
    g = np.random.default_rng(7)
    dy, dx = g.integers(0, 5, size=16), g.integers(0, 5, size=16)
    np.testing.assert_array_equal(out, _loop_crop(x, 2, dy, dx))
    assert out.shape == x.shape and out.dtype == x.dtype and out.flags.c_contiguous
    assert not np.array_equal(out, x)
    np.testing.assert_array_equal(data.random_crop(x, padding=0), x)


def _mirror(i, n):
    """Index of padded position i (may be < 0 or >= n) in a row of n reflected without repeating
    the edge pixel: -1 -> 1, n -> n - 2."""
    return -i if i < 0 else 2 * (n - 1) - i if i >= n else i


def test_random_crop_reflect_mirrors_the_edges():
    x = np.random.default_rng(3).integers(0, 256, size=(12, 3, 5, 4), dtype=np.uint8)
    out = data.random_crop(x, padding=2, rng=9, mode="reflect")
    g = np.random.default_rng(9)
    dy, dx = g.integers(0, 5, size=12), g.integers(0, 5, size=12)
    _, _, h, w = x.shape
    for i in range(12):
        rows = [_mirror(dy[i] - 2 + r, h) for r in range(h)]
        cols = [_mirror(dx[i] - 2 + c, w) for c in range(w)]
        np.testing.assert_array_equal(out[i], x[i][:, rows][:, :, cols])
    assert out.shape == x.shape and out.dtype == x.dtype
    with pytest.raises(ValueError, match="reflect padding needs padding < H and W, got 4 for 5x4"):
        data.random_crop(x, padding=4, mode="reflect")
    with pytest.raises(ValueError, match="mode must be 'constant' or 'reflect', got 'wrap'"):
        data.random_crop(x, padding=1, mode="wrap")


def test_random_flip_matches_a_loop():
    x = np.random.default_rng(1).normal(size=(32, 2, 3, 4)).astype(np.float32)
    out = data.random_flip(x, rng=5)
    flip = np.random.default_rng(5).random(32) < 0.5
    assert 0 < flip.sum() < 32
    for i in range(32):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if flip[i] else x[i])
    np.testing.assert_array_equal(data.random_flip(x, rng=0, p=0.0), x)


def test_flip_where_flips_exactly_the_masked_images():
    x = np.arange(5 * 2 * 3 * 4, dtype=np.uint8).reshape(5, 2, 3, 4)
    mask = np.array([True, False, False, True, False])
    out = data.flip_where(x, mask)
    for i in range(5):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if mask[i] else x[i])
    assert out.dtype == np.uint8 and not np.shares_memory(out, x)
    with pytest.raises(ValueError, match=r"flip_where: mask must be a bool array of shape \(5,\)"):
        data.flip_where(x, np.ones(4, bool))
    with pytest.raises(ValueError, match="flip_where: mask must be a bool array"):
        data.flip_where(x, np.ones(5, int))


def test_augment_rejects_flat_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.random_crop(np.zeros((4, 10)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.random_flip(np.zeros((4, 10)))
