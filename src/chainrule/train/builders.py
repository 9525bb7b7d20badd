"""The model and optimizer builders that every engine shares: one config and seed give one model.

The NumPy engine trains what `build_model` builds; the torch engine starts from a copy of it (so
both start from identical weights) and passes `optimizer_kwargs` to torch.optim.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import ConfigError, TrainConfig
from .registry import OPTIMIZERS


def build_model(cfg: TrainConfig, in_features: int, num_classes: int) -> Any:
    """The MLP of `cfg` (a `chainrule.nn.MLP`); the torch engine starts from a copy of it."""
    from chainrule.nn import MLP

    try:
        return MLP(
            in_features,
            cfg.hidden_sizes,
            num_classes,
            activation=cfg.activation,
            dropout=cfg.dropout,
            batch_norm=cfg.batch_norm,
            init=cfg.init,
            init_std=cfg.init_std,
            dtype=np.dtype(cfg.dtype),
            seed=cfg.seed,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from None


def build_optimizer(cfg: TrainConfig, model: Any) -> Any:
    """`make_optimizer` with the hyperparameters each optimizer takes."""
    from chainrule.optim import make_optimizer

    try:
        return make_optimizer(cfg.optimizer, model.parameters(), **optimizer_kwargs(cfg))
    except ValueError as e:
        raise ConfigError(f"optimizer: {e}") from None


def optimizer_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The hyperparameters of `cfg.optimizer`, by the names chainrule.optim and torch.optim share."""
    values = {"momentum": cfg.momentum, "nesterov": cfg.nesterov, "betas": (cfg.beta1, cfg.beta2)}
    kw: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    kw.update((name, values[name]) for name in OPTIMIZERS[cfg.optimizer])
    return kw
