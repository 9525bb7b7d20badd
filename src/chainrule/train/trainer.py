"""The trainer: one training loop with evaluation, early stopping, checkpoints and resume, for
every engine (`chainrule.train.engine`: numpy or torch).

One step is

    x_b, y_b = next batch (a gather into a preallocated buffer, then augmentation if asked)
    engine.set_lr(schedule(step))
    loss = engine.train_step(x_b, y_b)            # forward, loss, backward, penalty, optimizer step

Everything else (evaluation in large batches, history files, checkpoints, progress) is a callback
(`chainrule.train.callbacks`): at evaluation points, and a clock read per step for the checkpoint
that is never more than 15 s old. Batches are `chainrule.data.BatchIterator`'s, a seeded
permutation per epoch (`default_rng([seed, 7, epoch])`), so the position in the data is a pure
function of the step: a resumed run continues bit-identically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import layout
from chainrule._interrupt import stop_requested

from .builders import build_model, build_optimizer
from .callbacks import (
    Callback,
    LastGoodState,
    MetricsFiles,
    PeriodicCheckpoint,
    ProgressDisplay,
    overrides,
)
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .engine import Engine, TrainingDiverged, make_engine
from .history import EarlyStopping, History
from .limits import check_memory
from .prepare import Prepared
from .progress import Progress

__all__ = [
    "FitResult",
    "RunStatus",
    "Trainer",
    "TrainingDiverged",
    "build_model",
    "build_optimizer",
]


class RunStatus(StrEnum):
    """How a fit ended (`FitResult.status`, summary.json's `status`); equal to its string."""

    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    DIVERGED = "diverged"
    PAUSED = "paused"
    INTERRUPTED = "interrupted"

    @classmethod
    def ended(cls) -> tuple[str, ...]:
        """The statuses of a run that will not go on."""
        return (cls.COMPLETED.value, cls.EARLY_STOPPED.value, cls.DIVERGED.value)


@dataclass
class FitResult:
    """How `Trainer.fit` ended: status is a `RunStatus` value; `message` is one human-readable line."""

    status: str
    message: str
    step: int
    train_time: float
    best_step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# builders (the model and optimizer builders, shared by every engine, are in `builders`)


def evaluations_per_step(cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The rate of `Trainer.evaluates_after` over a long run (the end of the run aside; a step that
    is both an epoch's end and an `eval_every` multiple counts twice, erring long)."""
    return (1 / steps_per_epoch if cfg.eval_each_epoch else 0.0) + (
        1 / cfg.eval_every if cfg.eval_every else 0.0
    )


def build_schedule(cfg: TrainConfig, total_steps: int) -> Any:
    """The learning-rate rule: a function of the step (pure schedules) or a stateful rule fed with
    the monitored metric (`plateau`, once per evaluation) or the step loss (`loss_ratio`)."""
    from chainrule.optim import make_schedule

    name = cfg.schedule
    kw: dict[str, Any] = {}
    warmup = cfg.warmup_steps if cfg.warmup_fraction is None else round(cfg.warmup_fraction * total_steps)
    if name == "step_decay":
        kw = {"gamma": cfg.decay_rate, "step_size": cfg.decay_steps}
    elif name == "exponential":  # lr * decay_rate ** (step / decay_steps), smoothly
        kw = {"gamma": cfg.decay_rate ** (1.0 / cfg.decay_steps)}
    elif name == "cosine":
        kw = {
            "total_steps": max(total_steps, warmup + 1),
            "warmup_steps": warmup,
            "min_lr": cfg.min_lr,
        }
    elif name == "triangle":
        kw = {
            "total_steps": max(total_steps, warmup + 1),
            "peak_step": warmup,
            "start_lr": cfg.warmup_start * cfg.lr,
            "min_lr": cfg.min_lr,
        }
    elif name == "inverse_scaling":
        kw = {"power_t": cfg.power}
    elif name == "plateau":
        if not cfg.decay_rate < 1.0:
            raise ConfigError(
                f"decay_rate = {cfg.decay_rate} is invalid for the plateau schedule: it must be < 1"
            )
        kw = {
            "factor": cfg.decay_rate,
            "patience": cfg.plateau_patience,
            "min_lr": cfg.min_lr,
            "mode": "min" if cfg.monitor.endswith("loss") else "max",
            "threshold": cfg.min_delta,
        }
    elif name == "loss_ratio":
        kw = {"window": cfg.lr_window}
    try:
        return make_schedule(name, cfg.lr, **kw)
    except ValueError as e:
        raise ConfigError(f"schedule: {e}") from None


# --------------------------------------------------------------------------------------------------
# augmentation (CIFAR-10): vectorized over the batch


def augment_batch(
    x: np.ndarray,
    shape: tuple[int, int, int],
    flip: bool | np.ndarray,
    padding: int,
    rng: np.random.Generator,
    fill: float | np.ndarray = 0,
    crop_mode: str = "constant",
) -> np.ndarray:
    """Horizontal flip (at random with p = 0.5 when `flip` is True; where a (B,) bool `flip` says)
    and/or random crop after padding by `padding` pixels with
    `fill`, for a flattened float batch (B, C*H*W) (fill 0: the mean after standardization) or a
    uint8 image batch (B, C, H, W) (fill: the channel means in 0..255), or mirrored at the edges
    (crop_mode "reflect"); `chainrule.data.augment` does the work on the (B, C, H, W) view. Returns
    a new array."""
    from chainrule.data import flip_where, random_crop, random_flip

    img = x.reshape(x.shape[0], *shape)
    if isinstance(flip, np.ndarray):
        img = flip_where(img, flip)
    elif flip:
        img = random_flip(img, rng)
    if padding > 0:
        img = random_crop(img, padding, rng, fill=fill, mode=crop_mode)
    return np.ascontiguousarray(img).reshape(x.shape)


# --------------------------------------------------------------------------------------------------


class Trainer:
    """Trains `cfg`'s model on prepared data; optionally keeps a run folder with checkpoints.

    Args:
        cfg: the (validated) configuration.
        data: prepared arrays (`chainrule.train.prepare.prepare`).
        run_dir: folder for `checkpoint.npz` and the metrics files; None keeps everything in memory.
        progress: a `Progress` (None: quiet).
        callbacks: `chainrule.train.callbacks.Callback`s, called after the built-in ones.

    After `fit()`, `engine.model` holds the final weights (the best ones with early stopping and
    `restore_best`), and `history` the per-step and per-evaluation metrics.
    """

    @property
    def model(self) -> Any:
        """The engine's model (a chainrule.nn.Module, or a torch.nn.Module with --backend torch)."""
        return self.engine.model

    def __init__(
        self,
        cfg: TrainConfig,
        data: Prepared,
        run_dir: str | Path | None = None,
        progress: Progress | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.cfg = cfg.validate()
        self.data = data
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.n_train = int(data.y_train.size)
        if self.n_train == 0:
            raise ConfigError("the training split is empty")
        bs, remainder = cfg.batch_size, self.n_train % cfg.batch_size
        if cfg.drop_last and self.n_train < bs:
            raise ConfigError(
                f"drop_last: the training split has {self.n_train} samples, fewer than one batch of "
                f"{bs}; use a smaller --batch-size"
            )
        if remainder == 1 and not cfg.drop_last and (cfg.batch_norm or cfg.model != "mlp"):
            # caught here, not at the end of the first epoch: batch norm cannot normalize one sample
            raise ConfigError(
                f"batch_size = {bs} leaves a last batch of 1 of the {self.n_train} training samples, "
                "which batch norm cannot normalize; use --drop-last or another --batch-size"
            )
        if cfg.random_crop and cfg.crop_fill == "reflect" and len(data.image_shape) == 3:
            side = min(data.image_shape[1:])
            if cfg.crop_padding >= side:
                raise ConfigError(
                    f"crop_padding = {cfg.crop_padding} with crop_fill = 'reflect' needs images larger "
                    f"than {side}x{side} (a reflection repeats at most side - 1 pixels)"
                )
        self.steps_per_epoch = self.n_train // bs if cfg.drop_last else math.ceil(self.n_train / bs)
        self.total_steps = (
            cfg.steps if cfg.steps is not None else math.ceil(cfg.epochs * self.steps_per_epoch)
        )
        check_memory(cfg, self.total_steps, int(np.prod(data.sample_shape)), data.num_classes)
        sample = None
        if cfg.model != "mlp":  # 5,000 training images for data-dependent initialization
            pick = np.random.default_rng([cfg.seed, 5]).permutation(self.n_train)[:5000]
            sample = data.x_train[np.sort(pick)]
        self.engine: Engine = make_engine(
            cfg, data.sample_shape, data.num_classes, data.mean, data.std, sample=sample
        )
        self.engine.total_steps = self.total_steps
        self.schedule = build_schedule(cfg, self.total_steps)
        self.stateful_lr = bool(getattr(self.schedule, "stateful", False))
        self.history = History(self.total_steps, cfg.loss_window)
        self.monitor = cfg.monitor if data.x_val is not None else cfg.monitor.replace("val_", "train_")
        self.stopper = EarlyStopping(
            cfg.patience, cfg.min_delta, "min" if self.monitor.endswith("loss") else "max"
        )
        self.best_state: dict[str, np.ndarray] | None = None
        self.step = 0
        self.train_time = 0.0
        self.progress = progress or Progress(self.total_steps, enabled=False)
        self.last_checkpoint_step: int | None = None
        self.last_checkpoint_time = 0.0  # time.perf_counter() of the last checkpoint
        self.resumed_total_steps = self.total_steps  # the run's length when its checkpoint was written
        k = min(cfg.train_eval_size, self.n_train)
        self.train_eval_idx = np.sort(np.random.default_rng([cfg.seed, 3]).permutation(self.n_train)[:k])
        self.last_eval_step = 0
        self._good, self._metrics = LastGoodState(), MetricsFiles()
        self.callbacks: list[Callback] = [
            self._good,
            self._metrics,
            PeriodicCheckpoint(),
            ProgressDisplay(),
            *callbacks,
        ]
        from chainrule.nn import SoftmaxCrossEntropy  # evaluation loss, engine-independent

        self._eval_loss_fn = SoftmaxCrossEntropy()

    # ---- evaluation ------------------------------------------------------------------------------
    def predict_logits(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        """Logits in eval mode, in batches of `eval_batch_size`. Shape (N, D) -> (N, classes)."""
        out = np.empty((x.shape[0], self.data.num_classes), np.dtype(self.cfg.dtype))
        bs = self.cfg.eval_batch_size
        for s in range(0, x.shape[0], bs):
            out[s : s + bs] = self.engine.logits(x[s : s + bs], final)
        return out

    def evaluate(self, x: np.ndarray, y: np.ndarray, final: bool = False) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) of the current model on (x, y), in eval mode."""
        if y.size == 0:
            return float("nan"), float("nan")
        logits = self.predict_logits(x, final)
        try:
            loss = self._eval_loss_fn.forward(logits, y)
        except FloatingPointError:
            loss = float("nan")
        acc = float(np.mean(logits.argmax(axis=1) == y))
        return float(loss), acc

    def _eval_record(self) -> dict[str, Any]:
        d = self.data
        rec: dict[str, Any] = {
            "step": self.step,
            "epoch": round(self.step / self.steps_per_epoch, 4),
            "time": round(self.train_time, 3),
            "lr": self.engine.get_lr(),
            "train_loss_running": self.history.running_mean(self.last_eval_step, self.step),
        }
        idx = self.train_eval_idx
        if idx.size:
            rec["train_loss"], rec["train_acc"] = self.evaluate(d.x_train[idx], d.y_train[idx])
        if d.x_val is not None and d.y_val is not None:
            rec["val_loss"], rec["val_acc"] = self.evaluate(d.x_val, d.y_val)
        if self.cfg.eval_test and d.y_test.size:  # off: the test set is evaluated once, by run.finalize
            rec["test_loss"], rec["test_acc"] = self.evaluate(d.x_test, d.y_test)
        penalty = self.engine.penalty_loss()
        if penalty is not None:
            rec["penalty"] = penalty
        return rec

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume at `self.step` (arrays are copies)."""
        return {
            "step": self.step,
            "train_time": self.train_time,
            "engine": self.engine.state_dict(),
            "schedule": self.schedule.state_dict() if self.stateful_lr else None,
            "lr": self.engine.get_lr(),
            "history": self.history.state_dict(),
            "stopper": self.stopper.state_dict(),
            "best_state": self.best_state,
            "last_eval_step": self.last_eval_step,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "engine" not in state:  # a checkpoint from before the engine interface (NumPy only)
            state = {**state, "engine": {k: state[k] for k in ("model", "generators", "optimizer")}}
        self.engine.load_state_dict(state["engine"])
        if self.stateful_lr and state["schedule"] is not None:
            self.schedule.load_state_dict(state["schedule"])
        self.engine.set_lr(state["lr"])
        self.history.ensure(self.total_steps)
        self.history.load_state_dict(state["history"])
        self.stopper.load_state_dict(state["stopper"])
        self.best_state = state["best_state"]
        self.last_eval_step = int(state["last_eval_step"])
        self.step = int(state["step"])
        self.train_time = float(state["train_time"])
        self.resumed_total_steps = int(state.get("total_steps", self.total_steps))

    def save_checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        path = save_checkpoint(self.run_dir / layout.CHECKPOINT, self.state_dict())
        self.last_checkpoint_step = self.step
        self.last_checkpoint_time = time.perf_counter()
        return path

    def resume(self, path: str | Path | None = None) -> None:
        """Load `checkpoint.npz` from the run folder (or `path`)."""
        if path is None:
            if self.run_dir is None:
                raise ValueError("resume needs a run folder or a checkpoint path")
            path = self.run_dir / layout.CHECKPOINT
        state = load_checkpoint(path)
        try:
            self.load_state_dict(state)
        except (KeyError, ValueError) as e:
            raise ValueError(f"checkpoint {path} does not fit this run's config: {e}") from None
        self.last_checkpoint_step = self.step

    # ---- the loop ------------------------------------------------------------------------------------
    def fit(self, until_step: int | None = None) -> FitResult:
        """Train up to `total_steps` (or until `until_step`, then checkpoint and return "paused").

        Evaluates every `eval_every` steps, at the end of every epoch (unless `eval_each_epoch` is
        off) and at the end of the run. A NaN/Inf loss, gradient or weight stops training
        ("diverged"): the model is reset to the last good evaluation point and the last good
        checkpoint is left as it was. Around the steps, the callbacks (`chainrule.train.callbacks`)
        keep the run folder and the progress display current.
        """
        cfg, engine, hist, schedule = self.cfg, self.engine, self.history, self.schedule
        stop_at = self.total_steps if until_step is None else min(self.total_steps, int(until_step))
        hist.ensure(self.total_steps)
        batches = _Batches(self)
        stateful, loss_ratio = self.stateful_lr, cfg.schedule == "loss_ratio"
        step_hooks = [cb.on_step_end for cb in self.callbacks if overrides(cb, "on_step_end")]
        for cb in self.callbacks:
            cb.on_fit_start(self)
        status, message = "completed", ""
        t_start, t_base = time.perf_counter(), self.train_time
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected explicitly
                while self.step < stop_at:
                    step = self.step
                    xb, yb = batches(step)
                    lr = schedule.lr if stateful else schedule(step)
                    engine.set_lr(lr)
                    loss = engine.train_step(xb, yb)
                    hist.loss[step], hist.lr[step] = loss, lr
                    self.step = hist.steps = step + 1
                    if loss_ratio:
                        schedule.update(loss)
                    if self.evaluates_after(self.step):
                        self.train_time = t_base + time.perf_counter() - t_start
                        if self._evaluation_point():
                            status, message = "early_stopped", self._early_stop_message()
                            break
                    for hook in step_hooks:
                        hook(self, loss)
                    if stop_requested():  # the first Ctrl-C / SIGTERM under `stop_on_signals`
                        status = "interrupted"
                        saved = "; checkpoint saved" if self.run_dir is not None else ""
                        message = f"interrupted at step {self.step}{saved}"
                        break  # the checkpoint of this step is written below
            self.train_time = t_base + time.perf_counter() - t_start
            if status == "completed" and self.step < self.total_steps:
                status, message = "paused", f"paused at step {self.step} of {self.total_steps}"
            self.save_checkpoint()  # the final state (before best weights are restored)
        except TrainingDiverged as e:
            self.train_time = t_base + time.perf_counter() - t_start
            status, message = "diverged", self._diverged_message(e, self._good.restore(self))
        except KeyboardInterrupt:
            self.train_time = t_base + time.perf_counter() - t_start
            status = "interrupted"
            kept = self.last_checkpoint_step
            message = f"interrupted at step {self.step}; the checkpoint of step {kept} is kept"
        finally:
            self.progress.close()
            self._metrics.flush(self)
        if status in ("completed", "early_stopped") and cfg.early_stopping and cfg.restore_best:
            if self.best_state is not None:
                engine.load_model_state(self.best_state)
        if status == "completed":
            message = (
                f"completed {self.step} steps ({self.step / self.steps_per_epoch:.2f} epochs) "
                f"in {self.train_time:.1f} s"
            )
        result = FitResult(status, message, self.step, self.train_time, self.stopper.best_step)
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        return result

    def _early_stop_message(self) -> str:
        return (
            f"early stop at step {self.step}: {self.monitor} improved by less than "
            f"{100 * self.cfg.min_delta:g}% for {self.cfg.patience} evaluation(s)"
        )

    def _diverged_message(self, e: TrainingDiverged, good_step: int) -> str:
        where = (
            f"the last good checkpoint (step {self.last_checkpoint_step}) is kept in "
            f"{self.run_dir / layout.CHECKPOINT}"
            if self.run_dir is not None and self.last_checkpoint_step is not None
            else f"the model was reset to step {good_step}"
        )
        return (
            f"training diverged at step {self.step + 1}: {e} (lr {self.engine.get_lr():.3g}); "
            f"stopped, {where}. Try a smaller --lr."
        )

    def evaluates_after(self, step: int) -> bool:
        """Whether `fit` evaluates after optimizer step `step` (1-based): every `eval_every` steps, at
        each epoch's end unless `eval_each_epoch` is off, and at the end of the run."""
        cfg = self.cfg
        return (
            (cfg.eval_every > 0 and step % cfg.eval_every == 0)
            or (cfg.eval_each_epoch and step % self.steps_per_epoch == 0)
            or step == self.total_steps
        )

    def _evaluation_point(self) -> bool:
        """Evaluate, record, track the best weights, feed the plateau rule, then the callbacks'
        `on_evaluation`. Returns True when early stopping says stop."""
        self.engine.check_finite()
        rec = self._eval_record()
        self.history.add_eval(rec)
        self.last_eval_step = self.step
        value = rec.get(self.monitor)  # None when nothing measures it (no val split, train_eval_size 0)
        running = rec.get("train_loss_running")
        if (value is not None and not math.isfinite(value)) or (
            running is not None and not math.isfinite(running)
        ):
            raise TrainingDiverged(f"{self.monitor} is {value}, the running training loss {running}")
        if value is not None:
            if self.stopper.update(value, self.step) and self.cfg.early_stopping and self.cfg.restore_best:
                self.best_state = self.engine.model_state()
            if self.cfg.schedule == "plateau":
                self.schedule.update(value)
        for cb in self.callbacks:
            cb.on_evaluation(self, rec)
        return self.cfg.early_stopping and self.stopper.should_stop


class _Batches:
    """Batch `step` of a trainer's run: `chainrule.data.BatchIterator`'s batch of that step (the
    epoch's seeded permutation, gathered into a reused buffer), then the augmentation (flip, crop)
    if asked, from a generator per step, so the batch is a pure function of the step and a resumed
    run sees the same data."""

    def __init__(self, trainer: Trainer) -> None:
        from chainrule.data.batching import BatchIterator

        cfg, data = trainer.cfg, trainer.data
        self.cfg, self.image_shape, self.spe = cfg, data.image_shape, trainer.steps_per_epoch
        x = data.x_train
        self.iterator = BatchIterator(x, data.y_train, cfg.batch_size, seed=cfg.seed, drop_last=cfg.drop_last)
        self.augment = cfg.random_flip or cfg.random_crop
        self.pad = cfg.crop_padding if cfg.random_crop else 0
        # uint8 images are padded with their channel means, which standardize to 0 like the float path
        self.fill = np.rint(255 * data.mean).clip(0, 255) if x.dtype == np.uint8 else 0
        self.crop_mode = "reflect" if cfg.crop_fill == "reflect" else "constant"
        # alternating flip: one random bit per image, negated in odd epochs
        self.flip_bits = (
            np.random.default_rng([cfg.seed, 13]).random(len(x)) < 0.5 if cfg.alternate_flip else None
        )

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        from chainrule.data.batching import step_generator

        idx = self.iterator.indices(step)
        xb, yb = self.iterator.gather(idx)
        if self.augment:
            cfg = self.cfg
            epoch = step // self.spe
            flip = cfg.random_flip if self.flip_bits is None else self.flip_bits[idx] ^ bool(epoch % 2)
            rng = step_generator(cfg.seed, step)
            xb = augment_batch(xb, self.image_shape, flip, self.pad, rng, self.fill, self.crop_mode)
        return xb, yb
