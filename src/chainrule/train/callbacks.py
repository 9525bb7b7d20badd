"""Hooks of `Trainer.fit`: what happens around the steps, as small callbacks (the Lightning split).

A callback overrides any of four methods (the others do nothing):

    on_fit_start(trainer)            before the first step of a `fit()` call
    on_step_end(trainer, loss)       after every optimizer step (`trainer.step` counts it), and
                                     after that step's evaluation when it had one
    on_evaluation(trainer, record)   after an evaluation point (`record` is in `trainer.history`)
    on_fit_end(trainer, result)      when `fit()` returns (`result.status`: completed, paused, ...)

`Trainer(..., callbacks=[...])` adds yours after the built-in ones below, which keep the run folder
current: the last good state for divergence recovery, metrics files, a periodic checkpoint, the
progress display. `on_step_end` runs every step: keep it cheap (only callbacks that override it are
called in the loop). An exception a callback raises ends the fit (`TrainingDiverged` as a
divergence); `on_fit_end` is not called then.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trainer import FitResult, Trainer

CHECKPOINT_EVERY_S = 15.0  # the newest checkpoint of a running fit is at most this old
METRICS_EVERY_S = 2.0  # metrics.jsonl/csv are rewritten whole, at most this often


class Callback:
    """The four hooks, each a no-op."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        pass

    def on_evaluation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        pass


def overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


class LastGoodState(Callback):
    """Keeps the model of the last evaluation point that was finite, where a diverged run is reset."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.model: dict[str, Any] | None = None

    def remember(self, trainer: Trainer) -> None:
        self.step, self.model = trainer.step, trainer.engine.model_state()

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.model is None or (trainer.step == 0 and not trainer.history.evals):
            self.remember(trainer)

    def on_evaluation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.remember(trainer)

    def restore(self, trainer: Trainer) -> int:
        """Load the remembered model into the engine; returns its step."""
        assert self.model is not None and self.step is not None
        trainer.engine.load_model_state(self.model)
        return self.step


class MetricsFiles(Callback):
    """metrics.jsonl/csv in the run folder: rewritten whole (atomically, with an fsync) at most every
    `every_s` seconds of wall time at evaluation points, or a run with hundreds of short epochs
    spends most of its time here; what is left is written when the fit ends."""

    def __init__(self, every_s: float | None = None) -> None:
        self.every_s = METRICS_EVERY_S if every_s is None else every_s
        self.last_time = -float("inf")
        self.step: int | None = None  # the last evaluation step in the files

    def write(self, trainer: Trainer) -> None:
        assert trainer.run_dir is not None
        trainer.history.write_evals(trainer.run_dir)
        self.last_time = time.perf_counter()
        self.step = trainer.last_eval_step

    def on_evaluation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if trainer.run_dir is not None and time.perf_counter() - self.last_time > self.every_s:
            self.write(trainer)

    def flush(self, trainer: Trainer) -> None:
        """Write the evaluations not yet in the files (also when the fit ends by an exception)."""
        if trainer.run_dir is not None and self.step != trainer.last_eval_step:
            self.write(trainer)


class PeriodicCheckpoint(Callback):
    """A checkpoint at least every `every_s` seconds of wall time, whatever the evaluation cadence
    (a run killed with -9 loses at most that much), and one at step 0. The weights are checked
    first: a checkpoint is always a good state to resume from. Costs one clock read per step."""

    def __init__(self, every_s: float | None = None) -> None:
        self.every_s = CHECKPOINT_EVERY_S if every_s is None else every_s

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.step == 0 and not trainer.history.evals:
            trainer.save_checkpoint()

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        if trainer.run_dir is not None and time.perf_counter() - trainer.last_checkpoint_time > self.every_s:
            trainer.engine.check_finite()
            trainer.save_checkpoint()


class ProgressDisplay(Callback):
    """The trainer's `Progress` (a bar on a terminal, a line per evaluation elsewhere)."""

    def on_fit_start(self, trainer: Trainer) -> None:
        trainer.progress.start(trainer.step)

    def on_step_end(self, trainer: Trainer, loss: float) -> None:
        trainer.progress.update(trainer.step)

    def on_evaluation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.progress.evaluated(trainer.step, short_metrics(record))


def short_metrics(rec: dict[str, Any]) -> str:
    parts = [f"ep {rec['epoch']:.2f}"]
    if rec.get("train_loss_running") is not None:
        parts.append(f"loss {rec['train_loss_running']:.4f}")
    for split in ("val", "test"):
        if rec.get(f"{split}_acc") is not None:
            parts.append(f"{split} {100 * rec[f'{split}_acc']:.2f}%")
    parts.append(f"lr {rec['lr']:.3g}")
    return " ".join(parts)
