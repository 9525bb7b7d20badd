"""The engine interface: what the one training loop (`Trainer`) needs from a backend.

An engine owns a model, its optimizer and its loss, and does the math of one step; the trainer
owns everything else (batches, schedule, evaluation points, history, early stopping, checkpoints,
progress). The engines are plug-ins, named in `registry.ENGINES` ("module:Class", imported only
when a run asks for one, so `chainrule --help` and the NumPy path never import torch):

    numpy  `chainrule.train.numpy_engine.NumpyEngine`: chainrule.nn modules and chainrule.optim
    torch  `chainrule.train.torch_engine.TorchEngine`: the same model built as torch.nn modules

A new engine is one module with its class plus one line in `registry.ENGINES` (or
`registry.register_engine` from outside the package). An engine class may define two static
checks: `check_config(cfg)`, its own part of the config's validation (what it cannot do, the names
it builds; `TrainConfig.validate` calls it), and `preflight(cfg)`, what the config asks of this
machine, before any data is loaded. An engine that can train in bf16 defines a third,
`bf16_unavailable(cfg)` (why bf16 cannot run for `cfg` here, or None): `--precision auto` then times
a few steps of each (`precision.py`); an engine without it trains in its `--dtype`. No engine
module imports another, and this module imports none of them.

Batches reach `train_step` as NumPy arrays: float (B, D) for MLPs, or uint8 (B, C, H, W) for image
models (the engine converts and normalizes on its side, so no float copy of a whole data set is
made). Every state an engine returns is made of NumPy arrays and plain Python values, so the
trainer's checkpoint format is the same for both.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .config import ConfigError, TrainConfig
from .registry import ENGINES, load_engine


class TrainingDiverged(RuntimeError):
    """The loss, a gradient or a weight became NaN or Inf."""


class Engine(Protocol):
    """Args of the implementations: `(cfg, in_shape, num_classes, mean, std)`, where `in_shape` is
    the input shape of one sample as the trainer delivers it ((D,) or (C, H, W)) and mean/std the
    per-channel input statistics (used by engines that take uint8 images)."""

    backend: str
    model: Any  # the engine's own model object (chainrule.nn.Module, torch.nn.Module)
    total_steps: int  # set by the trainer: the run's length (for rules that follow the progress)

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next `train_step`."""

    def get_lr(self) -> float: ...

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """Forward, loss, backward (plus penalty gradients), optimizer step; returns the batch's mean
        data loss (without penalty). Raises `TrainingDiverged` when the loss is not finite.

        Shape: x (B, ...) as delivered by the trainer, y (B,) int64 labels."""

    def logits(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        """Eval-mode logits of a chunk, valid until the next call (copy what you keep). `final`: the
        run's last evaluation (where test-time augmentation applies).

        Shape: (N, ...) -> (N, classes)."""

    @staticmethod
    def saved_logits(model: Any, x: np.ndarray, image_shape: tuple[int, ...], tta: int = 0) -> np.ndarray:
        """Eval-mode logits of a model loaded from a run folder (`chainrule evaluate`, `predict`,
        `Run.predict`): the same inference as `logits`, without an engine built around it. Optional:
        an engine without it cannot evaluate saved models.

        Shape: x (N, C*H*W) standardized floats, `image_shape` (C, H, W) -> (N, classes)."""

    def check_finite(self) -> None:
        """Raise `TrainingDiverged` naming the first parameter or gradient that holds NaN/Inf."""

    def penalty_loss(self) -> float | None:
        """The L1/L2 penalty term at the current weights (None when there is none)."""

    def model_state(self) -> dict[str, np.ndarray]:
        """A copy of the weights and buffers (for best weights and the last good state)."""

    def load_model_state(self, state: dict[str, np.ndarray]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer and random-generator states: everything to resume bit-identically."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def save_model(self, path: Any) -> None:
        """Write the model as chainrule's portable `model.npz` (`chainrule.nn.load` reads it)."""

    def parameter_count(self) -> int: ...

    def portable_state(self) -> dict[str, np.ndarray]:
        """The weights and buffers by chainrule.nn's names (what model.npz holds), on either engine:
        the two engines' models compare key by key."""

    def describe(self) -> str:
        """One line for the log: backend, device, precision, threads."""


# what to install when an engine's module needs a package that is missing (pip extra)
_EXTRAS = {"torch": ("PyTorch", "pip install 'chainrule[torch]' (torch==2.13.0)")}


def engine_class(backend: str) -> Any:
    """The class that `backend` names (its module imported now). Raises `ConfigError` with one line
    for an unknown backend or a missing package."""
    if backend not in ENGINES:
        raise ConfigError(f"backend = {backend!r} is not one of {', '.join(ENGINES)}")
    try:
        return load_engine(backend)
    except ImportError as e:
        missing = (e.name or "").split(".")[0]
        if missing in _EXTRAS:
            what, how = _EXTRAS[missing]
            raise ConfigError(f"--backend {backend} needs {what}: {how}") from None
        raise


def make_engine(
    cfg: TrainConfig,
    in_shape: tuple[int, ...],
    num_classes: int,
    mean: np.ndarray,
    std: np.ndarray,
    sample: np.ndarray | None = None,
) -> Engine:
    """The engine `cfg.backend` names, built from `cfg` (same config and seed: same initial weights
    on every engine). `sample`: training images for data-dependent initialization (the whitened
    stem of fastnet)."""
    preflight(cfg)
    return engine_class(cfg.backend)(cfg, in_shape, num_classes, mean, std, sample=sample)


def preflight(cfg: TrainConfig) -> None:
    """Check, before any data is loaded, what the config asks of this machine (the engine's package
    installed; for torch the device present, bf16 supported). Raises `ConfigError` with one line."""
    check = getattr(engine_class(cfg.backend), "preflight", None)
    if check is not None:
        check(cfg)


def limit_threads(n: int | None) -> Any:
    """Limit the BLAS/OpenMP thread pools of this process to `n` (None: leave them alone). Returns
    the threadpoolctl controller (keep it alive; `restore_original_limits()` undoes it)."""
    if n is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ConfigError("--threads needs threadpoolctl: pip install threadpoolctl") from None
    return threadpool_limits(limits=int(n))
