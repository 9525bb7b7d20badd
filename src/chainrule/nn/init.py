"""Weight initializers. Each fills arrays in place from a seeded `numpy.random.Generator`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

INITIALIZERS = ("torch", "normal", "zeros", "xavier_uniform", "xavier_normal", "he_normal")


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def initialize_linear(layer: Any, name: str, std: float | None = None, rng: Any = None) -> None:
    """Fill `layer.weight` (out, in) and `layer.bias` according to `name`.

    - "torch": PyTorch's default, W and b ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform, a=sqrt(5)).
    - "normal": W ~ N(0, std^2) (std default 1e-4, the UvA assignment), b = 0.
    - "zeros": W = 0, b = 0 (seed 004's zero-init experiment; hidden units then stay identical).
    - "xavier_uniform" / "xavier_normal": Glorot, gain 1, b = 0.
    - "he_normal": W ~ N(0, 2/in), b = 0.
    """
    gen = as_rng(rng)
    W = layer.weight.data
    fan_out, fan_in = W.shape
    b = layer.bias.data if layer.bias is not None else None
    if name == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        W[...] = gen.uniform(-bound, bound, W.shape)
        if b is not None:
            b[...] = gen.uniform(-bound, bound, b.shape)
        return
    if name == "normal":
        s = 1e-4 if std is None else float(std)
        if not s > 0:
            raise ValueError(f"init_std must be positive, got {std}")
        W[...] = gen.normal(0.0, s, W.shape)
    elif name == "zeros":
        W[...] = 0
    elif name == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        W[...] = gen.uniform(-bound, bound, W.shape)
    elif name == "xavier_normal":
        W[...] = gen.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), W.shape)
    elif name == "he_normal":
        W[...] = gen.normal(0.0, math.sqrt(2.0 / fan_in), W.shape)
    else:
        raise ValueError(f"unknown init {name!r}; choose one of {', '.join(INITIALIZERS)}")
    if b is not None:
        b[...] = 0
