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

from .builders import build_model, build_optimizer
from .checkpoint import generator_states, set_generator_states
from .config import FIELDS, ConfigError, TrainConfig
from .engine import TrainingDiverged, limit_threads

_EVAL_ROWS = 10000  # rows per forward pass when evaluating a saved model


class NumpyEngine:
    """Args: see `chainrule.train.engine.Engine` (`sample` is unused: MLPs have no data-dependent
    initialization). Takes flattened float batches (B, D)."""

    backend = "numpy"
    # config keys only the torch engine implements: refused here when set away from their defaults
    TORCH_ONLY = (
        "model", "device", "batch_norm_impl", "label_smoothing", "tta", "bias_lr_scale", "lookahead",
        "micro_batch",
    )  # fmt: skip

    @staticmethod
    def check_config(cfg: TrainConfig) -> None:
        """What the NumPy engine cannot do: chainrule.optim's optimizers only, the CPU in the
        config's dtype, chainrule.nn's MLP and BatchNorm1d."""
        from chainrule.optim import OPTIMIZERS

        if cfg.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer = {cfg.optimizer!r} needs --backend torch (the NumPy engine has "
                f"{', '.join(OPTIMIZERS)})"
            )
        for key in NumpyEngine.TORCH_ONLY:
            if getattr(cfg, key) != FIELDS[key].default:
                raise ConfigError(
                    f"{key} = {getattr(cfg, key)!r} needs --backend torch (the NumPy engine runs on the "
                    "CPU in the --dtype it is given, with chainrule.nn.BatchNorm1d)"
                )
        if cfg.precision == "bf16":
            raise ConfigError(
                "precision = 'bf16' needs --backend torch (the NumPy engine computes in its --dtype)"
            )

    def __init__(
        self,
        cfg: TrainConfig,
        in_shape: tuple[int, ...],
        num_classes: int,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        sample: np.ndarray | None = None,
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

    @staticmethod
    def saved_logits(model: Any, x: np.ndarray, image_shape: tuple[int, ...], tta: int = 0) -> np.ndarray:
        """Eval-mode logits of a saved `chainrule.nn` model (`chainrule evaluate` / `predict`), in
        chunks of 10,000 rows (`image_shape` and `tta` are for image models, which this engine does
        not run).

        Shape: x (N, D) standardized floats -> (N, classes)."""
        from chainrule.nn import Module

        if not isinstance(model, Module):
            raise ConfigError("this run's model is a torch CNN: use --backend torch")
        return np.concatenate([model.forward(x[s : s + _EVAL_ROWS]) for s in range(0, len(x), _EVAL_ROWS)])

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
