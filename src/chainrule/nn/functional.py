"""Forward/backward pairs, as pure functions over arrays.

Conventions (PyTorch's): a batch is `(N, features)`; `Linear` weights are `(out, in)`.
Each `*_forward` returns the output and whatever its `*_backward` needs; `out=` arguments let a
module pass preallocated arrays. No function here modifies an input it was not given as `out`.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------------------------------
# input checks: cheap (shape and dtype only); finiteness is checked once, on the loss value.


def check_features(x: np.ndarray, features: int, where: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where}: expected a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{where}: expected a floating-point input, got dtype {x.dtype} "
            "(scale integer images first, e.g. chainrule.data.to_float)"
        )
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"{where}: expected input of shape (N, {features}), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: empty batch (N = 0)")


def check_float(x: np.ndarray, where: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where}: expected a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{where}: expected a floating-point input, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"{where}: empty input of shape {x.shape}")


# --------------------------------------------------------------------------------------------------
# Linear: y = x W^T + b


def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
    """y = x W^T + b.  Shapes: x (N, in), W (out, in), b (out,) -> y (N, out)."""
    y = np.matmul(x, W.T, out=out)  # (N, in) @ (in, out) -> (N, out)
    if b is not None:
        y += b
    return y


def linear_backward(
    grad_y: np.ndarray,
    x: np.ndarray,
    W: np.ndarray,
    grad_W: np.ndarray,
    grad_b: np.ndarray | None,
    grad_x: np.ndarray | None = None,
    input_grad: bool = True,
) -> np.ndarray | None:
    """dL/dW = g^T x, dL/db = sum_n g, dL/dx = g W.  Writes grad_W and grad_b in place.

    Shapes: g (N, out), x (N, in), W (out, in) -> grad_x (N, in), or None if not `input_grad`.
    """
    np.matmul(grad_y.T, x, out=grad_W)  # (out, N) @ (N, in) -> (out, in)
    if grad_b is not None:
        np.sum(grad_y, axis=0, out=grad_b)
    if not input_grad:
        return None
    return np.matmul(grad_y, W, out=grad_x)  # (N, out) @ (out, in) -> (N, in)


# --------------------------------------------------------------------------------------------------
# ReLU: y = max(x, 0); derivative taken from the output (y > 0 <=> x > 0).


def relu_forward(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, 0, out=out)


def relu_backward(grad_y: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.multiply(grad_y, y > 0, out=out)


# --------------------------------------------------------------------------------------------------
# softmax + cross-entropy on logits, fused: dL/dz = (softmax(z) - t) / N


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Stable log-softmax along the last axis (shifts by the row max, so |z| ~ 1e4 is fine)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Stable softmax along the last axis."""
    out = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def softmax_cross_entropy_forward(
    z: np.ndarray, labels: np.ndarray, probs_out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer `labels` (N,) under softmax(z), z (N, C).

    Returns (loss, probs); probs is what the backward needs.
    """
    n = z.shape[0]
    p = softmax(z, out=probs_out)
    picked = p[np.arange(n), labels]
    # log of the picked probability straight from the logits, stable even where p underflows to 0
    zmax = z.max(axis=1)
    lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1)) if _needs_lse(picked) else None
    if lse is None:
        loss = -np.log(picked).mean(dtype=np.float64)
    else:
        loss = (lse - z[np.arange(n), labels]).mean(dtype=np.float64)
    return float(loss), p


def _needs_lse(picked: np.ndarray) -> bool:
    # log(p) is exact enough unless some picked probability is tiny; then recompute via log-sum-exp.
    return bool(picked.min() < 1e-30)


def softmax_cross_entropy_backward(
    probs: np.ndarray, labels: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """dL/dz = (p - onehot(labels)) / N."""
    n = probs.shape[0]
    if out is None:
        g = probs.copy()
    else:
        g = out
        np.copyto(g, probs)
    g[np.arange(n), labels] -= 1
    g *= 1.0 / n
    return g


def soft_target_cross_entropy_forward(
    z: np.ndarray, targets: np.ndarray, probs_out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy against target distributions (N, C) (one-hot or soft)."""
    lsm = log_softmax(z)
    loss = -(targets * lsm).sum(axis=1).mean(dtype=np.float64)
    p = np.exp(lsm, out=probs_out)
    return float(loss), p


def soft_target_cross_entropy_backward(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """dL/dz = (p * sum_c t_c - t) / N; with rows of t summing to 1 this is (p - t) / N."""
    n = probs.shape[0]
    return (probs * targets.sum(axis=1, keepdims=True) - targets) / n
