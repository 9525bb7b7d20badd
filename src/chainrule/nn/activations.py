"""Activation modules: LeakyReLU, ELU, Sigmoid, Tanh and Softmax (ReLU lives in `layers`).

Each caches its *output* and takes the derivative from it (sigmoid' = y(1-y), tanh' = 1-y^2, ...),
so no copy of the input is kept. None has parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from .module import Module


class _Elementwise(Module):
    """Shared plumbing: check the input, write the output to a buffer, keep it for backward."""

    def __init__(self) -> None:
        self._y: np.ndarray | None = None

    def _fwd(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _bwd(self, grad_out: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        F.check_float(x, f"{type(self).__name__}.forward")
        self._y = self._fwd(x, self._buffer("y", x.shape, x.dtype))
        return self._y

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        y = self._y
        name = type(self).__name__
        if y is None:
            raise RuntimeError(f"{name}.backward called before forward")
        if grad_out.shape != y.shape:
            raise ValueError(f"{name}.backward: grad_out has shape {grad_out.shape}, expected {y.shape}")
        if not input_grad:
            return None
        return self._bwd(grad_out, y, self._buffer("gx", y.shape, y.dtype))


class LeakyReLU(_Elementwise):
    """y = x for x > 0, negative_slope * x otherwise; dy/dx = 1 or negative_slope.

    Args:
        negative_slope: slope for x <= 0 (PyTorch's default 0.01); must be in [0, 1].

    Shape: any -> same.
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        slope = float(negative_slope)
        if not 0.0 <= slope <= 1.0:
            raise ValueError(f"LeakyReLU: negative_slope must be in [0, 1], got {negative_slope}")
        self.negative_slope = slope

    def config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}

    def _fwd(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.leaky_relu_forward(x, self.negative_slope, out=out)

    def _bwd(self, grad_out: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.leaky_relu_backward(grad_out, y, self.negative_slope, out=out)


class ELU(_Elementwise):
    """y = x for x > 0, alpha (exp(x) - 1) otherwise; dy/dx = 1 or y + alpha.

    Args:
        alpha: saturation value -alpha for x -> -inf (default 1.0); must be positive.

    Shape: any -> same.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        a = float(alpha)
        if not a > 0:
            raise ValueError(f"ELU: alpha must be positive, got {alpha}")
        self.alpha = a

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _fwd(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.elu_forward(x, self.alpha, out=out)

    def _bwd(self, grad_out: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.elu_backward(grad_out, y, self.alpha, out=out)


class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x)) (accurate for any x); dy/dx = y (1 - y).  Shape: any -> same."""

    def _fwd(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.sigmoid_forward(x, out=out)

    def _bwd(self, grad_out: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.sigmoid_backward(grad_out, y, out=out)


class Tanh(_Elementwise):
    """y = tanh(x); dy/dx = 1 - y^2.  Shape: any -> same."""

    def _fwd(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.tanh_forward(x, out=out)

    def _bwd(self, grad_out: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.tanh_backward(grad_out, y, out=out)


class Softmax(_Elementwise):
    """y_i = exp(z_i) / sum_j exp(z_j) along the last axis (shifted by the row max: stable).

    Backward: the Jacobian-vector product g (diag(y) - y y^T) = y * (g - <g, y>), batched over rows,
    never forming the (N, C, C) Jacobian. Pair it with `CrossEntropy` to follow the seeds' modular
    derivation; `SoftmaxCrossEntropy` on logits is the fused, faster and more stable equivalent.

    Shape: (N, C) -> (N, C).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        F.check_float(x, "Softmax.forward")
        if x.ndim != 2:
            raise ValueError(f"Softmax.forward: expected input of shape (N, C), got {x.shape}")
        return super().forward(x)

    def _fwd(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.softmax(x, out=out)

    def _bwd(self, grad_out: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return F.softmax_backward(grad_out, y, out=out)
