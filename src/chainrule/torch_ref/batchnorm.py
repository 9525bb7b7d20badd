"""Batch normalization three ways in PyTorch (seeds 000 and 001, Section 3).

- `BatchNormAutograd`: the forward written with torch operations; autograd derives the backward.
- `BatchNormFunction`: a `torch.autograd.Function` whose backward is seed 001's eq. 20, by hand.
- `BatchNormManual`: an `nn.Module` that calls `BatchNormFunction` in training mode.

All three normalize (N, D) inputs over the batch axis like `torch.nn.BatchNorm1d` and
`chainrule.nn.BatchNorm1d`:

    mu = mean_s x_s,   var = mean_s (x_s - mu)^2  (biased),
    xhat = (x - mu) / sqrt(var + eps),   y = gamma * xhat + beta.

The two modules keep PyTorch's running statistics (buffers `running_mean`, `running_var`,
`num_batches_tracked`; momentum 0.1; the running variance is the unbiased var * N / (N - 1)) and
use them in eval mode, so they can replace `nn.BatchNorm1d` inside a trainable MLP
(`chainrule.torch_ref.to_torch(model, batch_norm_impl="autograd" | "manual")`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def check_batchnorm_input(x: torch.Tensor, n_neurons: int | None, training: bool, where: str) -> None:
    """One clear ValueError for an input batch norm cannot take: not (N, n_neurons) (any D when
    n_neurons is None), or (training mode) fewer than 2 rows, from which no variance can be estimated."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor, got {type(x).__name__}")
    d = x.shape[1] if n_neurons is None and x.dim() == 2 else n_neurons
    if x.dim() != 2 or x.shape[1] != d:
        expected = "(N, D)" if n_neurons is None else f"(N, {n_neurons})"
        raise ValueError(f"{where}: expected input of shape {expected}, got {tuple(x.shape)}")
    if training and x.shape[0] < 2:
        raise ValueError(
            f"{where}: training needs at least 2 rows per batch to estimate a variance, got input of "
            f"shape {tuple(x.shape)} (use eval() or a larger batch)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{where}: empty batch (N = 0)")


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm with the hand-written backward of seed 001, eq. 20.

    Forward:  xhat = (x - mean_s x_s) * inv_std,  inv_std = 1 / sqrt(var + eps) (biased var),
              y = gamma * xhat + beta.
    Backward, for the upstream gradient dy = dL/dy (N rows):
        dL/dx     = (1/N) * gamma * inv_std * (N * dy - sum_s dy_s - xhat * sum_s (dy_s * xhat_s)),
        dL/dgamma = sum_s dy_s * xhat_s,
        dL/dbeta  = sum_s dy_s.
    It saves xhat, inv_std and gamma (not x), computes only the gradients `ctx.needs_input_grad`
    asks for (None for the others and for eps), and is once differentiable (a double backward
    raises instead of returning a wrong answer).

    Use: `y = BatchNormFunction.apply(x, gamma, beta, eps)`.

    Args (of `apply`):
        x: the batch, (N, D) with N >= 2.
        gamma: scale, (D,).
        beta: shift, (D,).
        eps: added to the variance before the square root (default 1e-5).

    Shape: (N, D) -> (N, D).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5):
        return _eq20_forward(ctx, x, gamma, beta, eps)[0]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor):
        return _eq20_backward(ctx, dy)


def _eq20_forward(
    ctx: Any, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y, and the batch mean and biased variance; saves what `_eq20_backward` needs."""
    check_batchnorm_input(x, None, True, "BatchNormFunction")
    d = x.shape[1]
    if gamma.shape != (d,) or beta.shape != (d,):
        raise ValueError(
            f"BatchNormFunction: gamma and beta must have shape ({d},), got {tuple(gamma.shape)} "
            f"and {tuple(beta.shape)}"
        )
    mean = x.mean(dim=0)  # (D,)
    centred = x - mean  # (N, D)
    var = (centred * centred).mean(dim=0)  # (D,) biased
    inv_std = torch.rsqrt(var + eps)  # (D,)
    xhat = centred * inv_std  # (N, D)
    ctx.save_for_backward(xhat, inv_std, gamma)
    return gamma * xhat + beta, mean, var


def _eq20_backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    xhat, inv_std, gamma = ctx.saved_tensors
    need_x, need_gamma, need_beta = ctx.needs_input_grad[:3]
    sum_dy = dy.sum(dim=0) if need_x or need_beta else None  # (D,)
    sum_dy_xhat = (dy * xhat).sum(dim=0) if need_x or need_gamma else None  # (D,)
    dx = None
    if need_x:
        n = dy.shape[0]
        dx = (gamma * inv_std / n) * (n * dy - sum_dy - xhat * sum_dy_xhat)  # eq. 20
    return dx, sum_dy_xhat if need_gamma else None, sum_dy if need_beta else None, None


class _BatchNormFunctionWithStats(torch.autograd.Function):
    """`BatchNormFunction` that also returns the batch mean and biased variance (no gradient), so
    `BatchNormManual` updates its running statistics without computing them a second time."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5):
        y, mean, var = _eq20_forward(ctx, x, gamma, beta, eps)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor, _dmean: torch.Tensor | None, _dvar: torch.Tensor | None):
        return _eq20_backward(ctx, dy)


class _BatchNormModule(nn.Module):
    """Parameters, running statistics and eval mode shared by the two modules below; subclasses
    give the training-mode forward."""

    def __init__(
        self,
        n_neurons: int,
        eps: float = 1e-5,
        *,
        momentum: float = 0.1,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if int(n_neurons) < 1:
            raise ValueError(f"{name}: n_neurons must be positive, got {n_neurons}")
        if not float(eps) > 0:
            raise ValueError(f"{name}: eps must be positive, got {eps}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum}")
        self.n_neurons = int(n_neurons)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.gamma = nn.Parameter(torch.ones(self.n_neurons, dtype=dtype))
        self.beta = nn.Parameter(torch.zeros(self.n_neurons, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(self.n_neurons, dtype=dtype))
        self.register_buffer("running_var", torch.ones(self.n_neurons, dtype=dtype))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"{self.n_neurons}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batchnorm_input(x, self.n_neurons, self.training, type(self).__name__)
        if x.dtype != self.gamma.dtype:
            # e.g. bf16 activations under autocast: the statistics are computed in the parameters'
            # dtype, as torch's BatchNorm keeps them in float32 (autograd casts the gradient back)
            x = x.to(self.gamma.dtype)
        if self.training:
            return self._train_forward(x)
        # eval: the running statistics are constants, y is affine in x and autograd's backward is
        # dL/dx = dy * gamma / sqrt(running_var + eps)
        inv_std = torch.rsqrt(self.running_var + self.eps)  # (D,)
        return self.gamma * ((x - self.running_mean) * inv_std) + self.beta

    def _train_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        """torch.nn.BatchNorm1d's rule: r <- (1 - momentum) r + momentum * batch statistic, with
        the unbiased variance var * N / (N - 1) (var is the biased one used to normalize)."""
        m = self.momentum
        self.running_mean.mul_(1.0 - m).add_(mean.detach(), alpha=m)
        self.running_var.mul_(1.0 - m).add_(var.detach(), alpha=m * n / (n - 1))
        self.num_batches_tracked.add_(1)


class BatchNormAutograd(_BatchNormModule):
    """Batch norm written with torch operations; autograd does the backward (seed 001, Q 3.1).

    Training: mu = mean_s x_s, var = mean_s (x_s - mu)^2 (biased),
              y = gamma * (x - mu) / sqrt(var + eps) + beta; the running statistics are updated
              as in torch.nn.BatchNorm1d (momentum 0.1, unbiased running variance).
    Eval:     y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.

    Args:
        n_neurons: D, the number of features.
        eps: added to the variance before the square root (default 1e-5).
        momentum: weight of the current batch in the running statistics (keyword, default 0.1).
        dtype: parameter and buffer dtype (keyword, default torch's).

    Shape: (N, D) -> (N, D); training needs N >= 2. An input of another dtype (bf16 under
        autocast) is cast to the parameters' dtype first, and so is the output.
    Parameters: gamma (D,) init 1, beta (D,) init 0.
    Buffers: running_mean (D,), running_var (D,), num_batches_tracked ().
    """

    def _train_forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=0)  # (D,)
        centred = x - mean  # (N, D)
        var = (centred * centred).mean(dim=0)  # (D,) biased
        self._update_running_stats(mean, var, x.shape[0])
        return self.gamma * (centred / torch.sqrt(var + self.eps)) + self.beta


class BatchNormManual(_BatchNormModule):
    """Batch norm whose training-mode backward is hand-written (`BatchNormFunction`, seed 001 eq. 20).

    Training: y = BatchNormFunction.apply(x, gamma, beta, eps); the running statistics are
              updated as in torch.nn.BatchNorm1d (momentum 0.1, unbiased running variance), from
              the batch mean and variance the forward computed.
    Eval:     y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta (elementwise in x,
              autograd's backward is dy * gamma / sqrt(running_var + eps)).

    Args:
        n_neurons: D, the number of features.
        eps: added to the variance before the square root (default 1e-5).
        momentum: weight of the current batch in the running statistics (keyword, default 0.1).
        dtype: parameter and buffer dtype (keyword, default torch's).

    Shape: (N, D) -> (N, D); training needs N >= 2. An input of another dtype (bf16 under
        autocast) is cast to the parameters' dtype first, and so is the output.
    Parameters: gamma (D,) init 1, beta (D,) init 0.
    Buffers: running_mean (D,), running_var (D,), num_batches_tracked ().
    """

    def _train_forward(self, x: torch.Tensor) -> torch.Tensor:
        y, mean, var = _BatchNormFunctionWithStats.apply(x, self.gamma, self.beta, self.eps)
        self._update_running_stats(mean, var, x.shape[0])
        return y
