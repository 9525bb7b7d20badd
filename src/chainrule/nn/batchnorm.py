"""BatchNorm1d with a hand-derived backward (seeds 000 and 001, Section 3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from .module import DEFAULT_DTYPE, Module, Param


class BatchNorm1d(Module):
    """Batch normalization over the batch axis of (N, D) inputs, PyTorch's conventions.

    Training:  mu = mean_s x_s,  var = mean_s (x_s - mu)^2 (biased),
               xhat = (x - mu) / sqrt(var + eps),  y = gamma * xhat + beta;
               running_mean <- (1 - momentum) running_mean + momentum mu,
               running_var  <- (1 - momentum) running_var + momentum var * N / (N - 1)  (unbiased).
    Eval:      xhat = (x - running_mean) / sqrt(running_var + eps),  y = gamma * xhat + beta.

    Backward (training), as derived in the seeds (eq. 20 of seed 001):
        dL/dgamma = sum_s g_s xhat_s,   dL/dbeta = sum_s g_s,
        dL/dx = gamma / sqrt(var + eps) * (g - mean_s g_s - xhat * mean_s(g_s xhat_s)).
    In eval mode the statistics are constants: dL/dx = g * gamma / sqrt(running_var + eps).

    Args:
        num_features: D.
        eps: added to the variance before the square root (default 1e-5).
        momentum: weight of the current batch in the running statistics (PyTorch's convention,
            default 0.1; Keras' "momentum" is 1 minus this).
        affine: learn gamma (`weight`, init 1) and beta (`bias`, init 0).
        dtype: parameter and buffer dtype.

    Shape: (N, D) -> (N, D); training needs N > 1 (as in PyTorch).
    Buffers (saved with the model): running_mean (D,), running_var (D,), num_batches_tracked ().
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        dtype: Any = DEFAULT_DTYPE,
    ) -> None:
        if int(num_features) < 1:
            raise ValueError(f"BatchNorm1d: num_features must be positive, got {num_features}")
        if not float(eps) > 0:
            raise ValueError(f"BatchNorm1d: eps must be positive, got {eps}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNorm1d: momentum must be in [0, 1], got {momentum}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        dtype = np.dtype(dtype)
        d = self.num_features
        self.weight = Param(np.ones(d, dtype), "weight") if self.affine else None
        self.bias = Param(np.zeros(d, dtype), "bias") if self.affine else None
        self.running_mean = np.zeros(d, dtype)
        self.running_var = np.ones(d, dtype)
        self.num_batches_tracked = np.zeros((), np.int64)
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._train_mode_cache = True

    def config(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
        }

    def _own_params(self) -> list[tuple[str, Param]]:
        if self.weight is None or self.bias is None:
            return []
        return [("weight", self.weight), ("bias", self.bias)]

    def _own_buffers(self) -> list[tuple[str, np.ndarray]]:
        return [
            ("running_mean", self.running_mean),
            ("running_var", self.running_var),
            ("num_batches_tracked", self.num_batches_tracked),
        ]

    @property
    def dtype(self) -> np.dtype:
        return self.running_mean.dtype

    def forward(self, x: np.ndarray) -> np.ndarray:
        F.check_features(x, self.num_features, "BatchNorm1d.forward")
        dtype = self.running_mean.dtype
        if x.dtype != dtype:
            x = x.astype(dtype)
        n = x.shape[0]
        gamma = None if self.weight is None else self.weight.data
        beta = None if self.bias is None else self.bias.data
        xhat_buf = self._buffer("xhat", x.shape, dtype)
        y_buf = self._buffer("y", x.shape, dtype)
        if self.training:
            if n < 2:
                raise ValueError(
                    f"BatchNorm1d.forward: training needs more than 1 sample per batch to estimate a "
                    f"variance, got input of shape {x.shape} (use eval() or a larger batch)"
                )
            y, xhat, inv_std, mean, var = F.batchnorm_forward(
                x, gamma, beta, self.eps, xhat_out=xhat_buf, out=y_buf
            )
            m = self.momentum
            # in place: whoever holds these arrays (a saved state, a torch copy) sees the update
            self.running_mean *= 1.0 - m
            self.running_mean += m * mean
            self.running_var *= 1.0 - m
            self.running_var += (m * n / (n - 1)) * var
            self.num_batches_tracked += 1
        else:
            inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).astype(dtype, copy=False)
            xhat = np.subtract(x, self.running_mean, out=xhat_buf)
            xhat *= inv_std
            if gamma is not None:
                y = np.multiply(xhat, gamma, out=y_buf)
            else:
                np.copyto(y_buf, xhat)
                y = y_buf
            if beta is not None:
                y += beta
        self._xhat, self._inv_std, self._train_mode_cache = xhat, inv_std, self.training
        return y

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        xhat, inv_std = self._xhat, self._inv_std
        if xhat is None or inv_std is None:
            raise RuntimeError("BatchNorm1d.backward called before forward")
        if grad_out.shape != xhat.shape:
            raise ValueError(
                f"BatchNorm1d.backward: grad_out has shape {grad_out.shape}, expected {xhat.shape}"
            )
        back = F.batchnorm_backward if self._train_mode_cache else F.batchnorm_eval_backward
        gx = self._buffer("gx", xhat.shape, xhat.dtype) if input_grad else None
        return back(
            grad_out,
            xhat,
            inv_std,
            None if self.weight is None else self.weight.data,
            None if self.weight is None else self.weight.grad,
            None if self.bias is None else self.bias.grad,
            input_grad=input_grad,
            out=gx,
        )
