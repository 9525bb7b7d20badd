"""Losses: `forward(output, target) -> float` and `backward() -> dL/d output`."""

from __future__ import annotations

import math

import numpy as np

from . import functional as F


def check_labels(labels: np.ndarray, n: int, classes: int, where: str) -> np.ndarray:
    """Integer labels (N,) in [0, classes); returns them as an intp array."""
    labels = np.asarray(labels)
    kind = labels.dtype.kind
    if kind not in "iu":
        raise TypeError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{where}: labels have shape {labels.shape}, expected ({n},) to match the batch")
    # one reduction: seen as unsigned, a negative label is huge, so max < classes checks both ends
    unsigned = labels if kind == "u" else labels.view(f"u{labels.dtype.itemsize}")
    if unsigned.max() >= classes:
        lo, hi = int(labels.min()), int(labels.max())
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"{where}: label {bad} is out of range for {classes} classes (valid: 0..{classes - 1})"
        )
    return labels


def check_finite_loss(loss: float, arrays: dict[str, np.ndarray], where: str) -> None:
    """A non-finite loss gets traced back to the input that caused it."""
    if math.isfinite(loss):
        return
    for name, a in arrays.items():
        bad = ~np.isfinite(a)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise FloatingPointError(f"{where}: {name} contains {a[idx]} at index {idx}")
    raise FloatingPointError(f"{where}: loss is {loss} (inputs are finite: overflow or log of 0)")


class Loss:
    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.forward(output, target)


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy on logits, fused and numerically stable.

    L = -(1/N) sum_n log softmax(z_n)[t_n];   dL/dz = (softmax(z) - onehot(t)) / N.

    Shape:
        logits (N, C); target: integer labels (N,) or target distributions (N, C) (one-hot or soft).
    """

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._target: np.ndarray | None = None
        self._soft = False
        self._bufs: dict[str, np.ndarray] = {}

    def _buf(self, key: str, like: np.ndarray) -> np.ndarray:
        b = self._bufs.get(key)
        if b is None or b.shape != like.shape or b.dtype != like.dtype:
            b = self._bufs[key] = np.empty_like(like)
        return b

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        F.check_float(logits, "SoftmaxCrossEntropy")
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy: logits must be (N, C), got shape {logits.shape}")
        n, c = logits.shape
        target = np.asarray(target)
        if target.ndim == 2:
            if target.shape != logits.shape:
                raise ValueError(
                    f"SoftmaxCrossEntropy: targets {target.shape} do not match logits {logits.shape}"
                )
            self._soft = True
            loss, p = F.soft_target_cross_entropy_forward(logits, target.astype(logits.dtype, copy=False))
        else:
            target = check_labels(target, n, c, "SoftmaxCrossEntropy")
            self._soft = False
            loss, p = F.softmax_cross_entropy_forward(logits, target, probs_out=self._buf("p", logits))
        check_finite_loss(loss, {"logits": logits}, "SoftmaxCrossEntropy")
        self._probs, self._target = p, target
        return loss

    def backward(self) -> np.ndarray:
        if self._probs is None or self._target is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        if self._soft:
            return F.soft_target_cross_entropy_backward(self._probs, self._target)
        return F.softmax_cross_entropy_backward(self._probs, self._target, out=self._buf("g", self._probs))

    @property
    def probs(self) -> np.ndarray | None:
        """Softmax probabilities of the last forward (for accuracy without another pass)."""
        return self._probs


class CrossEntropy(Loss):
    """Cross-entropy on *probabilities* (the output of a `Softmax` module), as in the seeds:

    L = -(1/N) sum_n sum_c t_nc log x_nc;   dL/dx = -t / (N x)   (elementwise).

    Use it to follow the seeds' modular derivation (Softmax backward then applies
    diag(y) - y y^T); for training prefer the fused `SoftmaxCrossEntropy` on logits, which is
    faster and stays finite where a probability underflows to 0.

    Shape:
        probs (N, C), every entry in (0, 1] and rows summing to 1 (within 1e-3);
        target: integer labels (N,) or target distributions (N, C).
    """

    row_sum_tol = 1e-3

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._t: np.ndarray | None = None

    def forward(self, probs: np.ndarray, target: np.ndarray) -> float:
        where = "CrossEntropy"
        F.check_float(probs, where)
        if probs.ndim != 2:
            raise ValueError(f"{where}: probabilities must be (N, C), got shape {probs.shape}")
        n, c = probs.shape
        finite = np.isfinite(probs)
        if not finite.all():
            idx = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise FloatingPointError(f"{where}: probabilities contain {probs[idx]} at index {idx}")
        lo = probs.min()
        if lo <= 0:
            idx = tuple(int(i) for i in np.unravel_index(int(np.argmin(probs)), probs.shape))
            raise ValueError(
                f"{where}: probabilities must be > 0 (log of {lo} at index {idx}); "
                "use SoftmaxCrossEntropy on logits, which is stable where a probability underflows"
            )
        sums = probs.sum(axis=1, dtype=np.float64)
        worst = int(np.argmax(np.abs(sums - 1.0)))
        if probs.max() > 1.0 + self.row_sum_tol or abs(sums[worst] - 1.0) > self.row_sum_tol:
            raise ValueError(
                f"{where}: input does not look like probabilities: row {worst} sums to {sums[worst]:.6g} "
                f"(max entry {probs.max():.6g}); pass softmax outputs, or use SoftmaxCrossEntropy on logits"
            )
        target = np.asarray(target)
        if target.ndim == 2:
            if target.shape != probs.shape:
                raise ValueError(f"{where}: targets {target.shape} do not match probabilities {probs.shape}")
            if target.dtype.kind not in "fiub":
                raise TypeError(f"{where}: target distributions must be numeric, got dtype {target.dtype}")
            t = target.astype(probs.dtype, copy=False)
        else:
            labels = check_labels(target, n, c, where)
            t = np.zeros_like(probs)
            t[np.arange(n), labels] = 1
        loss = F.cross_entropy_forward(probs, t)
        check_finite_loss(loss, {"targets": t}, where)
        self._probs, self._t = probs, t
        return loss

    def backward(self) -> np.ndarray:
        if self._probs is None or self._t is None:
            raise RuntimeError("CrossEntropy.backward called before forward")
        return F.cross_entropy_backward(self._probs, self._t)
