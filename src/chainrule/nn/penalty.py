"""L1 / L2 penalty terms that add to the loss and to the gradients (seed 001 style)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .module import Module, Param


class Penalty:
    """R(W) = l1 * sum |W| + (l2 / 2) * sum W^2, summed over the selected parameters.

    Gradient: dR/dW = l1 * sign(W) + l2 * W, which `backward()` ADDS to each `p.grad` (call it
    after the model's backward, which overwrites the grads). Report `loss() + data loss` as the
    training objective.

    Conventions:
        - The 1/2 in the L2 term makes its gradient exactly `l2 * W`: for plain SGD (and for
          `torch.optim.SGD`/`Adam` `weight_decay`, which add `wd * W` to the gradient) a penalty
          with `l2 = wd` gives the same update. It differs from *decoupled* decay (AdamW), which
          shrinks the weights outside the adaptive scaling.
        - Seed 001 adds `alpha * ||W||^2` (alpha = 1e-4) to the loss; that is `l2 = 2 * alpha`
          here (gradient 2 alpha W). Its L1 variant `alpha * sum |W|` is `l1 = alpha`.
        - By default only weight matrices (ndim >= 2) are penalized, not biases or BatchNorm's
          gamma/beta; pass `weights_only=False` to include every parameter.

    Args:
        params_or_model: a Module, or an iterable of `Param`.
        l1: coefficient of sum |W| (>= 0).
        l2: coefficient of (1/2) sum W^2 (>= 0).
        weights_only: penalize only parameters with ndim >= 2.
    """

    def __init__(
        self,
        params_or_model: Module | Iterable[Param],
        l1: float = 0.0,
        l2: float = 0.0,
        weights_only: bool = True,
    ) -> None:
        for name, v in (("l1", l1), ("l2", l2)):
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"Penalty: {name} must be a finite number >= 0, got {v}")
        params = (
            params_or_model.parameters() if isinstance(params_or_model, Module) else list(params_or_model)
        )
        for i, p in enumerate(params):
            if not isinstance(p, Param):
                raise TypeError(f"Penalty: item {i} is {type(p).__name__}, not a Param")
        self.params = [p for p in params if p.data.ndim >= 2 or not weights_only]
        self.l1 = float(l1)
        self.l2 = float(l2)
        self._scratch: dict[int, np.ndarray] = {}

    def config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}

    @property
    def active(self) -> bool:
        return (self.l1 > 0 or self.l2 > 0) and bool(self.params)

    def loss(self) -> float:
        """l1 * sum |W| + (l2 / 2) * sum W^2 (sum |W| accumulated in float64, sum W^2 as a BLAS dot)."""
        total = 0.0
        for p in self.params:
            w = p.data
            if self.l1:
                total += self.l1 * float(np.abs(w).sum(dtype=np.float64))
            if self.l2:
                flat = w.reshape(-1)
                total += 0.5 * self.l2 * float(np.dot(flat, flat))
        return total

    def backward(self) -> None:
        """p.grad += l1 * sign(p) + l2 * p  (in place, for every selected parameter)."""
        if not self.active:
            return
        for p in self.params:
            tmp = self._scratch.get(id(p))
            if tmp is None or tmp.shape != p.data.shape or tmp.dtype != p.data.dtype:
                tmp = self._scratch[id(p)] = np.empty_like(p.data)
            if self.l2:
                np.multiply(p.data, self.l2, out=tmp)
                p.grad += tmp
            if self.l1:
                np.sign(p.data, out=tmp)
                tmp *= self.l1
                p.grad += tmp

    def __repr__(self) -> str:
        return f"Penalty(l1={self.l1}, l2={self.l2}, params={len(self.params)})"
