"""Vectorized CIFAR-style augmentation on (N, C, H, W) batches (no per-sample Python loop)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def random_crop(
    x: np.ndarray,
    padding: int = 4,
    rng: np.random.Generator | int | None = None,
    fill: float | np.ndarray = 0,
    mode: str = "constant",
) -> np.ndarray:
    """Pad each image by `padding` on every side, then cut a random H x W window per image.

    mode "constant" pads with `fill` (a scalar, or one value per channel: e.g. the channel means of
    uint8 images, which standardize to 0); mode "reflect" mirrors the image at its edges without
    repeating the edge pixel (NumPy's and PyTorch's "reflect"; needs padding < H and W), so a
    shifted image shows no flat border.

    Implementation: pad once, view all (2p+1)^2 windows with `sliding_window_view`, and gather
    one window per sample with a single fancy index.

    Shape: (N, C, H, W) -> (N, C, H, W), new array.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"random_crop: expected (N, C, H, W), got shape {x.shape}")
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    if mode not in ("constant", "reflect"):
        raise ValueError(f"random_crop: mode must be 'constant' or 'reflect', got {mode!r}")
    if padding == 0:
        return x.copy()
    n, _, h, w = x.shape
    g = _rng(rng)
    c = x.shape[1]
    if mode == "reflect":
        if padding >= min(h, w):
            raise ValueError(
                f"random_crop: reflect padding needs padding < H and W, got {padding} for {h}x{w}"
            )
        padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="reflect")
    else:
        fill_arr = np.asarray(fill)
        if fill_arr.ndim > 1 or fill_arr.size not in (1, c):
            raise ValueError(
                f"random_crop: fill must be a scalar or {c} values (one per channel), got {fill_arr.shape}"
            )
        padded = np.empty((n, c, h + 2 * padding, w + 2 * padding), x.dtype)  # faster than np.pad
        padded[...] = fill_arr.astype(x.dtype).reshape(1, -1, 1, 1)
        padded[:, :, padding : padding + h, padding : padding + w] = x
    windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 2p+1, 2p+1, H, W)
    dy = g.integers(0, 2 * padding + 1, size=n)
    dx = g.integers(0, 2 * padding + 1, size=n)
    return windows[np.arange(n), :, dy, dx]  # advanced indices first: (N, C, H, W)


def random_flip(x: np.ndarray, rng: np.random.Generator | int | None = None, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability `p`.

    Shape: (N, C, H, W) -> (N, C, H, W), new array.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"random_flip: expected (N, C, H, W), got shape {x.shape}")
    return flip_where(x, _rng(rng).random(len(x)) < p)


def flip_where(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mirror left-right the images where `mask` is True (e.g. airbench's alternating flip: a random
    mask in the first epoch, its negation in every odd epoch, so each image is seen both ways).

    Shape: x (N, C, H, W), mask (N,) bool -> (N, C, H, W), new array.
    """
    x = np.asarray(x)
    mask = np.asarray(mask)
    if x.ndim != 4:
        raise ValueError(f"flip_where: expected (N, C, H, W), got shape {x.shape}")
    if mask.dtype != np.bool_ or mask.shape != (len(x),):
        raise ValueError(
            f"flip_where: mask must be a bool array of shape ({len(x)},), got {mask.dtype} {mask.shape}"
        )
    out = x.copy()
    out[mask] = x[mask, :, :, ::-1]
    return out
