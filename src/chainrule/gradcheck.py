"""Finite-difference gradient checks for modules and losses.

`numerical_grad` perturbs each coordinate (or a random sample of them for large arrays) by +-eps
and takes central differences of a scalar function; `rel_error` compares gradients as
max|a - b| / (max|a| + max|b|) over the checked coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .nn.module import Module


def rel_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    """Largest deviation relative to the gradient's scale: max|a - b| / max(max|a| + max|b|, floor).

    Scaling by the whole array (not by each entry) keeps near-zero entries, whose finite-difference
    value is pure rounding noise, from failing a correct backward; a wrong entry of any size still
    shows up at its own magnitude relative to the largest gradient.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))) + float(np.max(np.abs(b))), floor)
    return float(np.max(np.abs(a - b))) / scale


def numerical_grad(
    f: Callable[[], float],
    x: np.ndarray,
    eps: float = 1e-6,
    max_coords: int | None = None,
    rng: np.random.Generator | int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of scalar `f()` w.r.t. the array `x`, perturbed in place and restored.

    Returns (flat indices checked, gradient at those indices). With `max_coords`, a random
    sample of that many coordinates is checked (large weight matrices).
    """
    flat = x.reshape(-1)  # a view: writing it perturbs x
    if max_coords is not None and flat.size > max_coords:
        idx = np.sort(np.random.default_rng(rng).choice(flat.size, max_coords, replace=False))
    else:
        idx = np.arange(flat.size)
    grad = np.empty(idx.size, np.float64)
    for k, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        grad[k] = (fp - fm) / (2 * eps)
    return idx, grad


@dataclass
class GradCheckResult:
    errors: dict[str, float]  # name -> max relative error ("input" and each parameter)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    def __str__(self) -> str:
        return ", ".join(f"{k}: {v:.2e}" for k, v in self.errors.items())


def check_module(
    module: Module,
    x: np.ndarray,
    eps: float = 1e-6,
    max_coords: int | None = 200,
    seed: int = 0,
) -> GradCheckResult:
    """Gradient check of `module` at input `x` (use float64) through L = sum(forward(x) * R) for a
    fixed random R, so every output coordinate matters. Checks dL/dx and every parameter.
    Runs in the module's current train/eval mode; modules with randomness (Dropout) must be
    reseeded identically per call, which this does by reseeding `module.rng` when present.
    """
    rng = np.random.default_rng(seed)
    probe_out = _forward(module, x, seed)
    R = rng.standard_normal(probe_out.shape)

    def loss() -> float:
        return float(np.sum(_forward(module, x, seed) * R))

    out = _forward(module, x, seed)
    grad_x = module.backward(R.astype(out.dtype))
    analytic = {"input": grad_x.copy() if grad_x is not None else None}
    analytic.update({name: p.grad.copy() for name, p in module.named_parameters()})

    errors: dict[str, float] = {}
    if analytic["input"] is not None:
        idx, num = numerical_grad(loss, x, eps, max_coords, rng)
        errors["input"] = rel_error(analytic["input"].reshape(-1)[idx], num)
    for name, p in module.named_parameters():
        idx, num = numerical_grad(loss, p.data, eps, max_coords, rng)
        errors[name] = rel_error(analytic[name].reshape(-1)[idx], num)
    return GradCheckResult(errors)


def check_loss(
    loss_fn,
    output: np.ndarray,
    target: np.ndarray,
    eps: float = 1e-6,
    max_coords: int | None = 200,
    seed: int = 0,
) -> float:
    """Gradient check of a loss w.r.t. its first argument; returns the max relative error."""
    loss_fn.forward(output, target)
    analytic = np.array(loss_fn.backward(), np.float64, copy=True)
    idx, num = numerical_grad(lambda: loss_fn.forward(output, target), output, eps, max_coords, seed)
    return rel_error(analytic.reshape(-1)[idx], num)


def _forward(module: Module, x: np.ndarray, seed: int) -> np.ndarray:
    if hasattr(module, "reseed"):
        module.reseed(seed)  # same dropout mask on every evaluation
    return np.array(module.forward(x), copy=True)
