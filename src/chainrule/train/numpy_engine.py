"""The NumPy engine: chainrule.nn modules and chainrule.optim optimizers under the trainer.

One step is

    logits = model.forward_nocopy(x)              # (B, D) -> (B, C), overwritten by the next call
    loss   = CE(logits, y);  g = dCE/dlogits      # fused softmax cross-entropy
    model.backward(g, input_grad=False)           # overwrites every Param.grad
    penalty.backward()                            # adds l1 sign(W) + l2 W (if any)
    opt.step()                                    # in-place update
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chainrule.nn import SoftmaxCrossEntropy

from .checkpoint import generator_states, set_generator_states
from .config import ConfigError, TrainConfig
from .engine import TrainingDiverged, limit_threads


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
    kw: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.optimizer == "sgd":
        kw.update(momentum=cfg.momentum, nesterov=cfg.nesterov)
    elif cfg.optimizer in ("adam", "adamw"):
        kw.update(betas=(cfg.beta1, cfg.beta2))
    elif cfg.optimizer == "rmsprop":
        kw.update(momentum=cfg.momentum)
    return kw


class NumpyEngine:
    """Args: see `chainrule.train.engine.Engine`. Takes flattened float batches (B, D)."""

    backend = "numpy"

    def __init__(
        self,
        cfg: TrainConfig,
        in_shape: tuple[int, ...],
        num_classes: int,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
    ) -> None:
        if cfg.model != "mlp":
            raise ConfigError(f"--model {cfg.model} needs --backend torch (the NumPy engine builds MLPs)")
        if len(in_shape) != 1:
            raise ConfigError(f"the NumPy engine takes flattened inputs, got sample shape {in_shape}")
        self.cfg = cfg
        self._threads = limit_threads(cfg.threads)
        self.model = build_model(cfg, int(in_shape[0]), num_classes)
        self.optimizer = build_optimizer(cfg, self.model)
        self.loss_fn = SoftmaxCrossEntropy()
        self.penalty = None
        if cfg.l1 > 0 or cfg.l2 > 0:
            from chainrule.nn import Penalty

            self.penalty = Penalty(self.model, l1=cfg.l1, l2=cfg.l2)

    def set_lr(self, lr: float) -> None:
        self.optimizer.lr = lr

    def get_lr(self) -> float:
        return float(self.optimizer.lr)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        model, loss_fn = self.model, self.loss_fn
        logits = model.forward_nocopy(x)  # (B, D) -> (B, classes)
        try:
            loss = loss_fn.forward(logits, y)
        except FloatingPointError as e:
            raise TrainingDiverged(f"the training loss is not finite ({e})") from None
        model.backward(loss_fn.backward(), input_grad=False)
        if self.penalty is not None:
            self.penalty.backward()
        self.optimizer.step()
        return loss

    def logits(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            return model.forward_nocopy(x)  # a buffer: valid until the next call
        finally:
            model.train(was_training)

    def check_finite(self) -> None:
        for name, p in self.model.named_parameters():
            if not np.isfinite(p.grad).all():
                raise TrainingDiverged(f"the gradient of {name} contains NaN/Inf")
            if not np.isfinite(p.data).all():
                raise TrainingDiverged(f"weight {name} contains NaN/Inf")

    def penalty_loss(self) -> float | None:
        return None if self.penalty is None else self.penalty.loss()

    def model_state(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()

    def load_model_state(self, state: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict(state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model.state_dict(),
            "generators": generator_states(self.model),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("backend", "numpy") != self.backend:
            raise ValueError(f"it was written by the {state.get('backend')} engine, this run uses numpy")
        self.model.load_state_dict(state["model"])
        set_generator_states(self.model, state["generators"])
        self.optimizer.load_state_dict(state["optimizer"])

    def save_model(self, path: str | Path) -> None:
        from chainrule.nn.serialization import save

        save(self.model, path)

    def portable_state(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()

    def parameter_count(self) -> int:
        return int(sum(p.data.size for p in self.model.parameters()))

    def describe(self) -> str:
        return f"numpy {np.dtype(self.cfg.dtype).name}" + (
            f", {self.cfg.threads} threads" if self.cfg.threads else ""
        )
