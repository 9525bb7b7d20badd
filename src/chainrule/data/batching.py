"""A seeded, shuffled mini-batch iterator with no per-sample Python work: the trainer's batches.

`chainrule train` and this iterator draw from the same random streams, so a notebook that builds
`BatchIterator(x_train, y_train, batch_size, seed=cfg.seed)` on the trainer's split sees the batches
of the run with that seed: epoch e is `default_rng([seed, 7, e]).permutation(N)` cut into batches,
and the transform of batch k of epoch e gets `default_rng([seed, 11, e * len(it) + k])` (the run's
step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the `n` samples in epoch `epoch` of a run with `seed` (every published figure
    comes from this stream)."""
    return np.random.default_rng([seed, 7, epoch]).permutation(n)


def step_generator(seed: int, step: int) -> np.random.Generator:
    """The generator of the augmentation of training step `step` (0-based)."""
    return np.random.default_rng([seed, 11, step])


class BatchIterator:
    """One pass over (x, y) per `iter()`, in a new seeded random order each epoch.

    Each batch is gathered with `np.take(x, idx, axis=0, out=buffer)` into a preallocated,
    C-contiguous buffer, so an epoch allocates nothing per batch.

    Args:
        x: samples (N, ...), any dtype (pass float32 arrays to get float32 batches).
        y: labels or targets (N, ...).
        batch_size: samples per batch.
        shuffle: a new order every epoch (`epoch_permutation(seed, epoch, N)`); without it batches
            come in order.
        seed: the run's seed.
        drop_last: skip the final short batch.
        transform: optional `f(xb, rng) -> xb` applied to each x batch (augmentation); its
            generator is `step_generator(seed, step)`, so resuming reproduces it.
        reuse: batches are views of buffers that the next batch overwrites (fast, the usual
            training loop); pass False to get fresh arrays you may keep.

    Shape:
        xb: (B, ...) with B = batch_size (the last one smaller unless drop_last); yb: (B, ...).

    `len(it)` is the number of batches per epoch. `indices(step)` and `gather(idx)` give any step's
    batch directly (the trainer's loop, where the step is the position). `state_dict()` /
    `load_state_dict()` hold the epoch and the position inside an unfinished epoch, so a run
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
        self.epoch = 0
        self._pos = 0  # batches already yielded in the current epoch
        self._perm_epoch, self._perm = -1, np.empty(0, np.intp)
        self._xbuf = np.empty((self.batch_size, *x.shape[1:]), x.dtype)
        self._ybuf = np.empty((self.batch_size, *y.shape[1:]), y.dtype)

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def indices(self, step: int) -> np.ndarray:
        """The sample indices of training step `step` (0-based, counted over epochs)."""
        epoch, k = divmod(step, len(self))
        if epoch != self._perm_epoch:
            n = len(self.x)
            self._perm = epoch_permutation(self.seed, epoch, n) if self.shuffle else np.arange(n)
            self._perm_epoch = epoch
        return self._perm[k * self.batch_size : (k + 1) * self.batch_size]

    def gather(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x[idx], y[idx]), into the reused buffers unless `reuse` is off."""
        if not self.reuse:
            return np.take(self.x, idx, axis=0), np.take(self.y, idx, axis=0)
        m = len(idx)
        xb, yb = self._xbuf[:m], self._ybuf[:m]
        # mode="clip": with the default "raise", NumPy gathers into a fresh temporary and copies it
        # into `out` (11% of seed 004's grid, docs/benchmarks.md); a permutation is never clipped
        np.take(self.x, idx, axis=0, out=xb, mode="clip")
        np.take(self.y, idx, axis=0, out=yb, mode="clip")
        return xb, yb

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        per_epoch = len(self)
        for k in range(self._pos, per_epoch):
            step = self.epoch * per_epoch + k
            xb, yb = self.gather(self.indices(step))
            if self.transform is not None:
                xb = self.transform(xb, step_generator(self.seed, step))
            self._pos = k + 1
            yield xb, yb
        self.epoch += 1
        self._pos = 0

    def state_dict(self) -> dict[str, Any]:
        """Epoch counter, position in the epoch and seed (plain Python values)."""
        return {"epoch": self.epoch, "batch": self._pos, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from `state_dict()`: the next `iter()` continues where that one stopped."""
        try:
            self.epoch, self._pos, self.seed = int(state["epoch"]), int(state["batch"]), int(state["seed"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"BatchIterator.load_state_dict: not a BatchIterator state ({e})") from e
        self._perm_epoch = -1
