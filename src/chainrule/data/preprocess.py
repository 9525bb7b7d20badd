"""Preprocessing: scale, standardize (training statistics only), flatten, one-hot, split, read one image."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataFormatError


def to_float(x: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """uint8 pixels -> floats in [0, 1] (x / 255); float input is only cast to `dtype`.

    Shape: any -> same.
    """
    x = np.asarray(x)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"to_float: dtype must be a float type, got {dtype}")
    if x.dtype == np.uint8:
        out = np.empty(x.shape, dtype)
        np.multiply(x, dtype.type(1.0 / 255.0), out=out, casting="unsafe")
        return out
    if x.dtype.kind == "f":
        return x.astype(dtype, copy=False)
    raise ValueError(f"to_float: expected uint8 or float images, got {x.dtype}")


def _stats(x: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std in float64, in [0, 1] units for uint8; per channel (axis 1) for (N, C, H, W).

    uint8 input is reduced exactly in integers (sums and sums of squares, chunk by chunk);
    float input in float64 with two passes. Neither makes a full-size temporary copy.
    """
    chans = per_channel and x.ndim == 4
    axes = (0, 2, 3) if chans else tuple(range(x.ndim))
    k = x.shape[1] if chans else 1
    per_sample = max(1, int(np.prod(x.shape[1:])))
    chunk = max(1, (1 << 21) // per_sample)
    n = x.size // k
    if x.dtype == np.uint8:
        s = np.zeros(k, np.uint64)
        sq = np.zeros(k, np.uint64)
        for i in range(0, len(x), chunk):
            c = x[i : i + chunk]
            s += np.reshape(c.sum(axis=axes, dtype=np.uint64), k)
            sq += np.reshape(np.square(c, dtype=np.uint32).sum(axis=axes, dtype=np.uint64), k)
        # exact: var * n^2 = n * sum(x^2) - sum(x)^2, in Python integers
        mean = np.array([int(v) / n for v in s]) / 255.0
        var = np.array([(n * int(q) - int(v) ** 2) / n**2 for v, q in zip(s, sq, strict=True)]) / 255.0**2
        return mean, np.sqrt(var)
    s64 = np.zeros(k)
    for i in range(0, len(x), chunk):
        s64 += np.reshape(x[i : i + chunk].sum(axis=axes, dtype=np.float64), k)
    mean = s64 / n
    shape = (1, k, 1, 1) if chans else (1,) * x.ndim
    m = mean.reshape(shape)
    ss = np.zeros(k)
    for i in range(0, len(x), chunk):
        ss += np.reshape(np.square(x[i : i + chunk].astype(np.float64) - m).sum(axis=axes), k)
    return mean, np.sqrt(ss / n)


def channel_stats(x: np.ndarray, per_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float64, in `to_float` units: uint8 is scaled by 1/255) without making
    the standardized copy; per channel for (N, C, H, W) input, else one value. Shape: (C,) or (1,)."""
    return _stats(np.asarray(x), per_channel)


def normalizer(
    mean: np.ndarray, std: np.ndarray, dtype: Any = np.float32, from_uint8: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The one normalization of chainrule, as (scale, shift) such that x' = x * scale - shift equals
    (x/255 - mean) / std for uint8 `x` ((x - mean) / std with `from_uint8` False). The trainer
    (`chainrule.train.prepare.transform`), the torch engine (on its device, per batch) and
    `standardize` all compute x * scale - shift with these two arrays, so they agree bit for bit.

    Shape: mean, std (C,) -> scale, shift (C,) of `dtype`.
    """
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    unit = 255.0 if from_uint8 else 1.0
    return (1.0 / (unit * std)).astype(dtype), (mean / std).astype(dtype)


def normalize_into(out: np.ndarray, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """out = x * scale - shift, `scale`/`shift` broadcast per channel (axis 1) of `out`, no temporary.

    Shape: x and out (N, C, ...) (or any shape for one scalar channel); scale, shift (C,) or (1,)."""
    bshape = (1, len(scale)) + (1,) * (out.ndim - 2) if len(scale) > 1 else (1,) * out.ndim
    out[...] = x
    out *= scale.reshape(bshape)
    out -= shift.reshape(bshape)
    return out


def standardize(
    x_train: np.ndarray,
    *others: np.ndarray,
    per_channel: bool = True,
    dtype: Any = np.float32,
    eps: float = 1e-8,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]:
    """Standardize with statistics of the training split only: x' = (x/255 - mean) / std.

    Args:
        x_train: training images, uint8 (scaled to [0, 1] first) or float.
        *others: validation/test arrays, transformed with the *training* mean and std.
        per_channel: one mean/std per channel for (N, C, H, W) input (else one scalar; 2-D input
            always uses one scalar).
        dtype: output float type.
        eps: a std below this is treated as 1 (a constant channel is only centred).
    Returns:
        ((x_train', *others'), (mean, std)): mean and std are float64 arrays of shape (C,)
        (per channel) or (1,), in the units of `to_float(x)`.
    Shape:
        each array keeps its shape.
    """
    x_train = np.asarray(x_train)
    mean, std = _stats(x_train, per_channel)
    std = np.where(std < eps, 1.0, std)
    dtype = np.dtype(dtype)
    outs = []
    for x in (x_train, *others):
        x = np.asarray(x)
        if x.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"standardize: array of shape {x.shape} does not match training {x_train.shape}")
        scale, shift = normalizer(mean, std, dtype, from_uint8=x.dtype == np.uint8)
        outs.append(normalize_into(np.empty(x.shape, dtype), x, scale, shift))
    return tuple(outs), (mean, std)


def flatten(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C*H*W); a view when `x` is contiguous."""
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError("flatten: needs at least one (batch) dimension")
    return x.reshape(len(x), -1)


def one_hot(y: np.ndarray, num_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, num_classes)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot: labels must be integers of shape (N,), got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    out = np.zeros((len(y), num_classes), dtype)
    out[np.arange(len(y)), y] = 1
    return out


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val), each sorted: round(fraction * n_c) of the n_c samples of each class c
    go to validation, drawn by one `default_rng(seed)` class by class in label order. This is the
    split of `chainrule train` (`val_fraction`, `seed`): every published figure comes from it."""
    rng = np.random.default_rng(seed)
    val_parts = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(fraction * idx.size))
        val_parts.append(rng.permutation(idx)[:k])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.empty(0, np.intp)
    keep = np.ones(y.size, bool)
    keep[val] = False
    return np.flatnonzero(keep), val


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (stratified) split into training and validation parts.

    With `stratify`, the split of `chainrule train` with that `val_fraction` and `seed`
    (`stratified_split`: each class rounded on its own); without, round(val_fraction * N) samples
    drawn over all classes. Both parts keep the original order of the samples.

    Returns:
        x_train, y_train, x_val, y_val.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"train_val_split: {len(x)} images but {len(y)} labels")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in [0, 1), got {val_fraction}")
    if stratify:
        train, val = stratified_split(y, val_fraction, seed)
    else:
        val = np.sort(np.random.default_rng(seed).permutation(len(y))[: int(round(val_fraction * len(y)))])
        mask = np.ones(len(y), bool)
        mask[val] = False
        train = np.flatnonzero(mask)
    return x[train], y[train], x[val], y[val]


def read_image(path: str | os.PathLike[str], shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read a PNG/JPEG as uint8 (C, H, W), converted to `shape`'s channel count and size.

    Args:
        path: image file.
        shape: (C, H, W) of the model's input, C in {1, 3}; None keeps the image's own size and
            uses 1 channel for grayscale, 3 otherwise. Resizing is bilinear; no inversion or
            centring is done (MNIST digits are white on black).
    Raises:
        FileNotFoundError: no such file. DataFormatError: not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            if shape is None:
                mode = "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
                size = im.size
            else:
                if len(shape) != 3 or shape[0] not in (1, 3):
                    raise ValueError(f"read_image: shape must be (C, H, W) with C in (1, 3), got {shape}")
                mode, size = ("L" if shape[0] == 1 else "RGB"), (int(shape[2]), int(shape[1]))
            im2 = im.convert(mode)
            if im2.size != size:
                im2 = im2.resize(size, Image.Resampling.BILINEAR)
            arr = np.asarray(im2, np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataFormatError(f"{path}: unreadable image ({type(e).__name__}: {e})") from e
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()
