"""Param, Module and Sequential: the containers. The math lives in `functional`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

DEFAULT_DTYPE = np.float32


class Param:
    """A trainable array and its gradient.

    `backward` *overwrites* `grad` (no accumulation, so no `zero_grad` is needed between steps);
    penalties such as L2 then *add* to it; optimizers update `data` in place.
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data: np.ndarray, name: str = "") -> None:
        self.data = data
        self.grad = np.zeros_like(data)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"Param({self.name or '?'}, shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: `forward(x)` caches what `backward(grad_out)` needs and returns the output;
    `backward` writes parameter gradients into each `Param.grad` and returns the input gradient.

    Buffers: a module owned by a `Sequential` has `reuse_buffers=True` and writes its outputs into
    preallocated arrays that the next call overwrites (the `Sequential` only hands out copies).
    A module used on its own returns fresh arrays, so results a user keeps never change under them.
    """

    training: bool = True
    reuse_buffers: bool = False

    # ---- the two methods a module implements -------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Return dL/dx for the last `forward`. With `input_grad=False` a module may skip that
        product (the first layer of a network never needs it) and return None."""
        raise NotImplementedError

    # ---- architecture, for save/load and printing ---------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this module (without its weights)."""
        return {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # ---- parameters and state ------------------------------------------------------------------
    def children(self) -> list[Module]:
        return []

    def _own_params(self) -> list[tuple[str, Param]]:
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Param)]

    def _own_buffers(self) -> list[tuple[str, np.ndarray]]:
        """Non-trainable state that must be saved (e.g. BatchNorm running statistics)."""
        return []

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Param]]:
        for name, p in self._own_params():
            yield prefix + name, p
        for i, child in enumerate(self.children()):
            yield from child.named_parameters(f"{prefix}{i}.")

    def parameters(self) -> list[Param]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name, b in self._own_buffers():
            yield prefix + name, b
        for i, child in enumerate(self.children()):
            yield from child.named_buffers(f"{prefix}{i}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: b.copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        targets: dict[str, np.ndarray] = {name: p.data for name, p in self.named_parameters()}
        targets.update(dict(self.named_buffers()))
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if missing or unexpected:
            raise ValueError(f"state does not fit this model: missing {missing}, unexpected {unexpected}")
        for name, dst in targets.items():
            src = np.asarray(state[name])
            if src.shape != dst.shape:
                raise ValueError(f"state entry {name!r} has shape {src.shape}, the model expects {dst.shape}")
            dst[...] = src  # in place: optimizers and buffers keep pointing at the same arrays

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0)

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    @property
    def dtype(self) -> np.dtype:
        params = self.parameters()
        return params[0].data.dtype if params else np.dtype(DEFAULT_DTYPE)

    # ---- buffers ---------------------------------------------------------------------------------
    def _buffer(self, key: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An output array: reused across calls inside a Sequential, fresh otherwise."""
        if not self.reuse_buffers:
            return np.empty(shape, dtype)
        bufs: dict[str, np.ndarray] = self.__dict__.setdefault("_bufs", {})
        buf = bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = bufs[key] = np.empty(shape, dtype)
        return buf


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

    Its children reuse preallocated buffers; `forward` and `backward` return copies, so what the
    caller keeps is never overwritten by the next step.
    """

    def __init__(self, *modules: Module) -> None:
        if len(modules) == 1 and isinstance(modules[0], list | tuple):
            modules = tuple(modules[0])
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential item {i} is {type(m).__name__}, not a Module")
            m.reuse_buffers = True
        self.modules: list[Module] = list(modules)

    def children(self) -> list[Module]:
        return self.modules

    def __getitem__(self, i: int) -> Module:
        return self.modules[i]

    def __len__(self) -> int:
        return len(self.modules)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.forward_nocopy(x).copy()

    def forward_nocopy(self, x: np.ndarray) -> np.ndarray:
        """Forward without the final copy: the result is overwritten by the next call.
        The trainer uses this, since the loss consumes the output at once."""
        for m in self.modules:
            x = m.forward(x)
        return x

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        g: np.ndarray | None = grad_out
        last = len(self.modules) - 1
        for i in range(last, -1, -1):
            g = self.modules[i].backward(g, input_grad=input_grad or i > 0)
        return None if g is None else g.copy()

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {m!r}" for i, m in enumerate(self.modules))
        return f"Sequential(\n{inner}\n)"
