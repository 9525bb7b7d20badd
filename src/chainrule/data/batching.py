"""A seeded, shuffled mini-batch iterator with no per-sample Python work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class BatchIterator:
    """One pass over (x, y) per `iter()`, in a new seeded random order each epoch.

    Each batch is gathered with `np.take(x, idx, axis=0, out=buffer)` into a preallocated,
    C-contiguous buffer, so an epoch allocates nothing per batch.

    Args:
        x: samples (N, ...), any dtype (pass float32 arrays to get float32 batches).
        y: labels or targets (N, ...).
        batch_size: samples per batch.
        shuffle: reshuffle every epoch (from a `numpy.random.Generator` seeded with `seed`);
            without it batches come in order.
        seed: seed of the shuffling generator.
        drop_last: skip the final short batch.
        transform: optional `f(xb, rng) -> xb` applied to each x batch (augmentation); its
            generator is derived from (seed, epoch, batch index), so resuming reproduces it.
        reuse: batches are views of buffers that the next batch overwrites (fast, the usual
            training loop); pass False to get fresh arrays you may keep.

    Shape:
        xb: (B, ...) with B = batch_size (the last one smaller unless drop_last); yb: (B, ...).

    `len(it)` is the number of batches per epoch. `state_dict()`/`load_state_dict()` hold the
    epoch counter, the generator state and the position inside an unfinished epoch, so a run
    resumed from them sees exactly the same batches.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        transform: Transform | None = None,
        reuse: bool = True,
    ) -> None:
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(f"BatchIterator: x {x.shape} and y {y.shape} must have the same length N")
        if len(x) == 0:
            raise ValueError("BatchIterator: no samples")
        if int(batch_size) < 1:
            raise ValueError(f"BatchIterator: batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.transform, self.reuse = shuffle, drop_last, transform, reuse
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.epoch = 0
        self._pos = 0  # batches already yielded in the current epoch
        self._start_state: dict[str, Any] | None = None  # rng state before this epoch's permutation
        self._xbuf = np.empty((self.batch_size, *x.shape[1:]), x.dtype)
        self._ybuf = np.empty((self.batch_size, *y.shape[1:]), y.dtype)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n, b = len(self.x), self.batch_size
        if self._start_state is None:  # a fresh epoch (else: resuming mid-epoch)
            self._start_state = self.rng.bit_generator.state
        else:
            self.rng.bit_generator.state = self._start_state
        perm = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for k in range(self._pos, len(self)):
            idx = perm[k * b : (k + 1) * b]
            m = len(idx)
            if self.reuse:
                xb, yb = self._xbuf[:m], self._ybuf[:m]
                np.take(self.x, idx, axis=0, out=xb, mode="clip")  # clip: no buffering
                np.take(self.y, idx, axis=0, out=yb, mode="clip")
            else:
                xb, yb = np.take(self.x, idx, axis=0), np.take(self.y, idx, axis=0)
            if self.transform is not None:
                rng = np.random.default_rng([self.seed, self.epoch, k])
                xb = self.transform(xb, rng)
            self._pos = k + 1
            yield xb, yb
        self.epoch += 1
        self._pos = 0
        self._start_state = None

    def state_dict(self) -> dict[str, Any]:
        """Epoch counter, position in the epoch and generator state (plain Python values)."""
        state = self._start_state if self._start_state is not None else self.rng.bit_generator.state
        return {"epoch": self.epoch, "batch": self._pos, "rng_state": state, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from `state_dict()`: the next `iter()` continues where that one stopped."""
        try:
            self.rng.bit_generator.state = state["rng_state"]
            self.epoch, self._pos, self.seed = int(state["epoch"]), int(state["batch"]), int(state["seed"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"BatchIterator.load_state_dict: not a BatchIterator state ({e})") from e
        self._start_state = self.rng.bit_generator.state if self._pos else None
