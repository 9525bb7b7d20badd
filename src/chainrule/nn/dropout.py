"""Inverted dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from .module import Module


class Dropout(Module):
    """Inverted dropout: in training, y = x * m / (1 - p) with m ~ Bernoulli(1 - p) drawn fresh
    each forward; dL/dx = g * m / (1 - p). In eval mode it is the identity, so no rescaling is
    needed at test time.

    Args:
        p: probability of zeroing an element, in [0, 1] (p = 1 zeroes everything).
        seed: seed of the module's own `numpy.random.Generator` (reproducible masks);
            `reseed(seed)` restarts it.

    Shape: any -> same.
    """

    def __init__(self, p: float = 0.5, seed: int | np.random.SeedSequence | None = None) -> None:
        pf = float(p)
        if not 0.0 <= pf <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = pf
        self.rng = np.random.default_rng(seed)
        self._mask: np.ndarray | None = None
        self._identity = True

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def reseed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Restart the mask generator (same seed -> same sequence of masks)."""
        self.rng = np.random.default_rng(seed)

    def forward(self, x: np.ndarray) -> np.ndarray:
        F.check_float(x, "Dropout.forward")
        if not self.training or self.p == 0.0:
            self._identity = True
            self._mask = None
            return x if self.reuse_buffers else x.copy()
        self._identity = False
        self._mask = F.dropout_mask(
            self.rng, x.shape, self.p, x.dtype, out=self._buffer("mask", x.shape, x.dtype)
        )
        return np.multiply(x, self._mask, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        if not input_grad:
            return None
        if self._identity:
            # the upstream gradient is not ours: hand it on unchanged (a copy when used on its own)
            return grad_out if self.reuse_buffers else grad_out.copy()
        mask = self._mask
        assert mask is not None
        if grad_out.shape != mask.shape:
            raise ValueError(f"Dropout.backward: grad_out has shape {grad_out.shape}, expected {mask.shape}")
        return np.multiply(grad_out, mask, out=self._buffer("gx", mask.shape, mask.dtype))


def _dropouts(model: Module) -> list[Dropout]:
    found: list[Dropout] = [model] if isinstance(model, Dropout) else []
    for child in model.children():
        found.extend(_dropouts(child))
    return found


def rng_states(model: Module) -> list[dict[str, Any]]:
    """The mask generators' states of every Dropout in `model` (depth-first order), as JSON-able
    dicts: save them in a checkpoint so a resumed run draws the same masks."""
    return [m.rng.bit_generator.state for m in _dropouts(model)]


def set_rng_states(model: Module, states: list[dict[str, Any]]) -> None:
    """Restore states from `rng_states` (the model must have the same Dropout layers)."""
    drops = _dropouts(model)
    if len(states) != len(drops):
        raise ValueError(f"set_rng_states: {len(states)} states for a model with {len(drops)} Dropout layers")
    for m, s in zip(drops, states, strict=True):
        m.rng.bit_generator.state = s
