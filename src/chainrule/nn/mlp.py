"""The MLP builder: a `Sequential` assembled from sizes and options, rebuilt from its `config()`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .activations import ELU, LeakyReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm1d
from .dropout import Dropout
from .layers import Linear, ReLU
from .module import DEFAULT_DTYPE, Module, Sequential

ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
}


class MLP(Sequential):
    """Multi-layer perceptron producing logits.

    Per hidden size h: Linear(prev, h) -> [BatchNorm1d(h)] -> activation -> [Dropout(dropout)];
    then Linear(prev, out_features). With no hidden sizes it is softmax regression (one Linear).
    With batch norm the hidden Linears have no bias: BatchNorm subtracts the batch mean, so a bias
    there would have zero gradient and do nothing (BatchNorm's beta plays its role).
    Pair it with `SoftmaxCrossEntropy`.

    Args:
        in_features: input size (e.g. 784 for flattened MNIST, 3072 for CIFAR-10).
        hidden_sizes: sizes of the hidden layers, e.g. [1000, 300]; may be empty.
        out_features: number of classes.
        activation: one of "relu", "leaky_relu", "elu", "sigmoid", "tanh".
        dropout: drop probability after each hidden activation, in [0, 1); 0 adds no Dropout.
        batch_norm: insert BatchNorm1d between each hidden Linear and its activation.
        init: weight initializer of every Linear (see `chainrule.nn.init`).
        init_std: std for init="normal" (default 1e-4, the UvA assignment).
        dtype: float32 (default) or float64.
        seed: one integer from which every layer's initializer and every Dropout's mask generator
            are derived (`numpy.random.SeedSequence.spawn`), so equal seeds give equal networks.

    Shape: (N, in_features) -> (N, out_features).
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (),
        out_features: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: str = "torch",
        init_std: float | None = None,
        dtype: Any = DEFAULT_DTYPE,
        seed: int | None = None,
    ) -> None:
        if isinstance(hidden_sizes, int | np.integer):
            hidden_sizes = [int(hidden_sizes)]
        hidden = [int(h) for h in hidden_sizes]
        bad = [h for h in hidden if h < 1]
        if bad:
            raise ValueError(f"MLP: hidden sizes must be positive, got {list(hidden_sizes)}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        p = float(dropout)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"MLP: dtype must be floating point, got {dtype}")
        self.in_features = int(in_features)
        self.hidden_sizes = hidden
        self.out_features = int(out_features)
        self.activation = activation
        self.dropout = p
        self.batch_norm = bool(batch_norm)
        self.init = init
        self.init_std = init_std
        self._dtype = dtype
        self.seed = seed

        # one child seed per Linear and one per Dropout, always spawned in the same order
        seeds = np.random.SeedSequence(seed).spawn(2 * len(hidden) + 1)
        layers: list[Module] = []
        prev = self.in_features
        for i, h in enumerate(hidden):
            layers.append(
                Linear(
                    prev,
                    h,
                    bias=not self.batch_norm,  # BatchNorm's beta replaces it (a bias would cancel)
                    init=init,
                    init_std=init_std,
                    dtype=dtype,
                    rng=np.random.default_rng(seeds[2 * i]),
                )
            )
            if self.batch_norm:
                layers.append(BatchNorm1d(h, dtype=dtype))
            layers.append(ACTIVATIONS[activation]())
            if p > 0:
                layers.append(Dropout(p, seed=seeds[2 * i + 1]))
            prev = h
        layers.append(
            Linear(
                prev,
                self.out_features,
                init=init,
                init_std=init_std,
                dtype=dtype,
                rng=np.random.default_rng(seeds[-1]),
            )
        )
        super().__init__(*layers)

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "hidden_sizes": list(self.hidden_sizes),
            "out_features": self.out_features,
            "activation": self.activation,
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
            "init": self.init,
            "init_std": self.init_std,
            "dtype": self._dtype.name,
            "seed": self.seed,
        }

    def reseed(self, seed: int | None) -> None:
        """Restart every Dropout's mask generator from `seed` (gradient checks, reproducible runs)."""
        dropouts = [m for m in self.modules if isinstance(m, Dropout)]
        for m, s in zip(dropouts, np.random.SeedSequence(seed).spawn(len(dropouts)), strict=True):
            m.reseed(s)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"MLP({args})\n" + super().__repr__()
