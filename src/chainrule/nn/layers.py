"""Layers: each holds its parameters and calls the functional core."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from . import init as init_
from .module import DEFAULT_DTYPE, Module, Param


class Linear(Module):
    """Affine map y = x W^T + b.

    Args:
        in_features: size of each input row.
        out_features: size of each output row.
        bias: learn an additive bias.
        init: weight initializer name (see `chainrule.nn.init`), default PyTorch's Kaiming-uniform.
        init_std: std for `init="normal"`.
        dtype: parameter dtype (float32 by default; float64 for gradient checks).
        rng: a `numpy.random.Generator` or seed for the initializer.

    Shape:
        input (N, in_features) -> output (N, out_features); W is (out_features, in_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "torch",
        init_std: float | None = None,
        dtype: Any = DEFAULT_DTYPE,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(f"Linear needs positive sizes, got in={in_features}, out={out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init
        self.init_std = init_std
        dtype = np.dtype(dtype)
        self.weight = Param(np.empty((self.out_features, self.in_features), dtype), "weight")
        self.bias = Param(np.empty(self.out_features, dtype), "bias") if bias else None
        init_.initialize_linear(self, init, std=init_std, rng=rng)
        self._x: np.ndarray | None = None

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "init": self.init,
            "init_std": self.init_std,
        }

    def _own_params(self) -> list[tuple[str, Param]]:
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

    def forward(self, x: np.ndarray) -> np.ndarray:
        F.check_features(x, self.in_features, "Linear.forward")
        W = self.weight.data
        if x.dtype != W.dtype:
            x = x.astype(W.dtype)
        self._x = x
        out = self._buffer("y", (x.shape[0], self.out_features), W.dtype)
        return F.linear_forward(x, W, None if self.bias is None else self.bias.data, out=out)

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        x = self._x
        if x is None:
            raise RuntimeError("Linear.backward called before forward")
        if grad_out.shape != (x.shape[0], self.out_features):
            raise ValueError(
                f"Linear.backward: grad_out has shape {grad_out.shape}, "
                f"expected {(x.shape[0], self.out_features)}"
            )
        grad_x = self._buffer("gx", x.shape, x.dtype) if input_grad else None
        return F.linear_backward(
            grad_out,
            x,
            self.weight.data,
            self.weight.grad,
            None if self.bias is None else self.bias.grad,
            grad_x=grad_x,
            input_grad=input_grad,
        )


class ReLU(Module):
    """y = max(x, 0).  Shape: any -> same."""

    def __init__(self) -> None:
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        F.check_float(x, "ReLU.forward")
        self._y = F.relu_forward(x, out=self._buffer("y", x.shape, x.dtype))
        return self._y

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray:
        y = self._y
        if y is None:
            raise RuntimeError("ReLU.backward called before forward")
        if grad_out.shape != y.shape:
            raise ValueError(f"ReLU.backward: grad_out has shape {grad_out.shape}, expected {y.shape}")
        out = self._buffer("gx", y.shape, y.dtype)
        return F.relu_backward(grad_out, y, out=out, mask=self._buffer("mask", y.shape, np.dtype(bool)))
