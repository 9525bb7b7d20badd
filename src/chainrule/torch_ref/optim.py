"""Muon for the torch engine, and a chain that steps several optimizers as one.

Muon (momentum, orthogonalized by Newton-Schulz) updates each weight matrix with an approximately
orthogonal matrix: the momentum's direction with every singular value set near 1. A convolution's
filters (out, in, kh, kw) are treated as the matrix (out, in * kh * kw). `torch.optim.Muon` takes 2-D
parameters only and orthogonalizes in bf16; this one takes convolutions too, iterates in the
parameter's dtype (fp32 on a CPU, where bf16 without AMX is slower), and can keep each matrix at a
fixed norm (for weights followed by BatchNorm, whose output does not depend on their scale: the
fast CIFAR-10 recipes after airbench's Muon variant). With `normalize_weights=False` it computes
what `torch.optim.Muon(..., adjust_lr_fn=None)` does, weight decay included, up to bf16 rounding
(tests/test_muon.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

__all__ = ["NS_COEFFICIENTS", "Muon", "OptimizerChain", "newton_schulz"]

# the quintic's coefficients (a, b, c): chosen for a steep slope at 0, so that small singular values
# grow fast; the iteration then leaves every singular value in about [0.7, 1.2] instead of exactly 1
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


@torch.no_grad()
def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximately orthogonalize a matrix: about U V^T for g = U S V^T.

    x = g / ||g||_F (so every singular value is <= 1), then `steps` times
    x <- a x + (b A + c A^2) x with A = x x^T, on the wide orientation (rows <= columns).

    Shape: (m, n) -> (m, n).
    """
    if g.ndim != 2:
        raise ValueError(f"newton_schulz: expected a matrix, got shape {tuple(g.shape)}")
    a, b, c = NS_COEFFICIENTS
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / x.norm().clamp_min(eps)
    for _ in range(steps):
        gram = x @ x.T  # (m, n) @ (n, m) -> (m, m), m <= n
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon: momentum SGD whose update direction is orthogonalized.

    For each parameter W (out, ...) with gradient g, viewed as the matrix (out, rest)::

        buf = momentum * buf + (1 - momentum) * g
        u   = (1 - momentum) * g + momentum * buf      (nesterov; else u = buf)
        W  *= sqrt(out) / ||W||_F                      (normalize_weights only)
        W  *= 1 - lr * weight_decay
        W  -= lr * sqrt(max(1, out / rest)) * newton_schulz(u, ns_steps)

    Args:
        params: parameters with at least 2 dimensions (or groups of them).
        lr: learning rate (the step is an orthogonal-ish matrix times lr, whatever the gradient's scale).
        momentum: in [0, 1).
        nesterov: look ahead along the momentum.
        ns_steps: Newton-Schulz iterations (5 as in torch.optim.Muon; airbench's variant uses 3).
        weight_decay: decoupled, as in AdamW.
        normalize_weights: rescale W to Frobenius norm sqrt(out) before each step (only for weights
            followed by a normalization).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        weight_decay: float = 0.0,
        normalize_weights: bool = False,
    ) -> None:
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError(f"Muon: lr must be >= 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Muon: momentum must be in [0, 1), got {momentum}")
        if ns_steps < 1:
            raise ValueError(f"Muon: ns_steps must be >= 1, got {ns_steps}")
        if weight_decay < 0:
            raise ValueError(f"Muon: weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            weight_decay=weight_decay,
            normalize_weights=normalize_weights,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim < 2:
                    raise ValueError(
                        f"Muon: parameters need at least 2 dimensions, got shape {tuple(p.shape)}"
                    )

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, m = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.lerp_(g, 1 - m)
                u = g.lerp(buf, m) if group["nesterov"] else buf
                rows, cols = p.shape[0], p[0].numel()
                if group["normalize_weights"]:
                    p.mul_(math.sqrt(rows) / p.norm().clamp_min(1e-12))
                if group["weight_decay"]:
                    p.mul_(1 - lr * group["weight_decay"])
                update = newton_schulz(u.reshape(rows, cols), group["ns_steps"])
                p.add_(update.view_as(p), alpha=-lr * math.sqrt(max(1.0, rows / cols)))
        return loss


class OptimizerChain:
    """Several optimizers stepped as one (e.g. Muon for the filters, SGD for biases and the head).

    `param_groups` lists every optimizer's groups (the same dicts, so a schedule that sets
    `group["lr"]` reaches them); `state_dict` / `load_state_dict` hold one entry per optimizer.
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        if not optimizers:
            raise ValueError("OptimizerChain: needs at least one optimizer")
        self.optimizers = list(optimizers)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        states = state.get("optimizers")
        if not isinstance(states, list | tuple) or len(states) != len(self.optimizers):
            n = len(states) if isinstance(states, list | tuple) else 0
            raise ValueError(
                f"OptimizerChain: the state holds {n} optimizers, this chain has {len(self.optimizers)}"
            )
        for opt, s in zip(self.optimizers, states, strict=True):
            opt.load_state_dict(s)
