"""Learning-rate schedules.

A schedule is called with the step number (0 for the first update) and returns the learning rate
for that step; a trainer does `opt.lr = schedule(step)` before each `opt.step()`.

- Pure schedules (`Constant`, `StepDecay`, `Exponential`, `Cosine`, `InverseScaling`) are frozen
  dataclasses: the lr is a function of the step only, with no hidden state, so a resumed run just
  calls them with the resumed step.
- Stateful rules (`ReduceOnPlateau`, `LossRatio`, with `stateful = True`) also take feedback
  through `update(value) -> new lr`; calling them with a step returns the current lr (the step is
  ignored). They have `state_dict()` / `load_state_dict()` (plain Python numbers) for resume.

`make_schedule(name, lr, **kwargs)` builds any of them by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from . import _checks

__all__ = [
    "SCHEDULES",
    "Constant",
    "Cosine",
    "Triangle",
    "Exponential",
    "InverseScaling",
    "LossRatio",
    "ReduceOnPlateau",
    "Schedule",
    "StepDecay",
    "constant",
    "cosine",
    "exponential",
    "inverse_scaling",
    "make_schedule",
    "step_decay",
]


# ---- validation ----------------------------------------------------------------------------------
def _check_step(step: Any) -> int:
    return _checks.integer("step", step, 0)


class Schedule:
    """Base class: `schedule(step) -> lr` for step = 0, 1, 2, ..."""

    stateful: ClassVar[bool] = False
    lr: float

    def __call__(self, step: int) -> float:
        raise NotImplementedError


# ---- pure schedules ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constant(Schedule):
    """lr(step) = lr."""

    lr: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _checks.at_least_zero("lr", self.lr))

    def __call__(self, step: int) -> float:
        _check_step(step)
        return self.lr


@dataclass(frozen=True)
class StepDecay(Schedule):
    """lr(step) = lr * gamma ** (step // step_size): multiply by `gamma` every `step_size` steps.

    The default is seed 003's rule, x0.85 every 250 iterations: steps 0..249 use lr, steps
    250..499 use 0.85 lr, and so on (`torch.optim.lr_scheduler.StepLR` stepped once per update).
    """

    lr: float
    gamma: float = 0.85
    step_size: int = 250

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _checks.at_least_zero("lr", self.lr))
        gamma = _checks.number("gamma", self.gamma)
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "step_size", _checks.integer("step_size", self.step_size, 1))

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (_check_step(step) // self.step_size)


@dataclass(frozen=True)
class Exponential(Schedule):
    """lr(step) = lr * gamma ** step (`torch.optim.lr_scheduler.ExponentialLR` per update)."""

    lr: float
    gamma: float = 0.999

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _checks.at_least_zero("lr", self.lr))
        gamma = _checks.number("gamma", self.gamma)
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        object.__setattr__(self, "gamma", gamma)

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** _check_step(step)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Linear warmup from 0, then cosine decay from `lr` to `min_lr` at `total_steps`.

    With W = warmup_steps and T = total_steps::

        lr(step) = lr * step / W                                        for step < W
        lr(step) = min_lr + (lr - min_lr) * (1 + cos(pi * q)) / 2       for step >= W,
                   q = min(1, (step - W) / (T - W))

    so lr(0) = 0 when W > 0, the peak `lr` is used at step W, and lr(step) = min_lr from step T on.
    With W = 0 this is `torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=min_lr)`
    stepped once per update, for steps 0..T (PyTorch's rises again after T; this one stays flat).
    """

    lr: float
    total_steps: int
    warmup_steps: int = 0
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        lr = _checks.at_least_zero("lr", self.lr)
        total = _checks.integer("total_steps", self.total_steps, 1)
        warmup = _checks.integer("warmup_steps", self.warmup_steps, 0)
        if warmup >= total:
            raise ValueError(f"warmup_steps must be < total_steps={total}, got {warmup}")
        min_lr = _checks.at_least_zero("min_lr", self.min_lr)
        if min_lr > lr:
            raise ValueError(f"min_lr must be <= lr={lr}, got {min_lr}")
        for k, v in (("lr", lr), ("total_steps", total), ("warmup_steps", warmup), ("min_lr", min_lr)):
            object.__setattr__(self, k, v)

    def __call__(self, step: int) -> float:
        step = _check_step(step)
        w = self.warmup_steps
        if step < w:
            return self.lr * step / w
        q = min(1.0, (step - w) / (self.total_steps - w))
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * q)) / 2.0


@dataclass(frozen=True)
class Triangle(Schedule):
    """Linear up from `start_lr` to `lr` at `peak_step`, then linear down to `min_lr` at
    `total_steps` (a one-cycle "triangle", as in the fast CIFAR-10 recipes)::

        lr(step) = start_lr + (lr - start_lr) * step / P                for step < P
        lr(step) = lr + (min_lr - lr) * min(1, (step - P) / (T - P))     for step >= P
    """

    lr: float
    total_steps: int
    peak_step: int = 0
    start_lr: float = 0.0
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        lr = _checks.at_least_zero("lr", self.lr)
        total = _checks.integer("total_steps", self.total_steps, 1)
        peak = _checks.integer("peak_step", self.peak_step, 0)
        if peak >= total:
            raise ValueError(f"peak_step must be < total_steps={total}, got {peak}")
        for k in ("start_lr", "min_lr"):
            v = _checks.at_least_zero(k, getattr(self, k))
            if v > lr:
                raise ValueError(f"{k} must be <= lr={lr}, got {v}")
        object.__setattr__(self, "lr", lr)

    def __call__(self, step: int) -> float:
        step = _check_step(step)
        p = self.peak_step
        if step < p:
            return self.start_lr + (self.lr - self.start_lr) * step / p
        q = min(1.0, (step - p) / (self.total_steps - p))
        return self.lr + (self.min_lr - self.lr) * q


@dataclass(frozen=True)
class InverseScaling(Schedule):
    """lr(step) = lr / (step + 1) ** power_t, scikit-learn's 'invscaling'.

    scikit-learn (`SGDOptimizer.iteration_ends`) computes `learning_rate_init / (t + 1) ** power_t`
    with t = the number of training *samples* seen so far, and only at the end of each epoch (the
    first epoch runs at `learning_rate_init`). To reproduce it exactly, call this with
    step = samples seen at the last epoch end; called per update (the usual use here), step counts
    mini-batch updates instead.
    """

    lr: float
    power_t: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _checks.at_least_zero("lr", self.lr))
        object.__setattr__(self, "power_t", _checks.at_least_zero("power_t", self.power_t))

    def __call__(self, step: int) -> float:
        return self.lr / (_check_step(step) + 1) ** self.power_t


def constant(lr: float) -> Constant:
    """lr(step) = lr."""
    return Constant(lr)


def step_decay(lr: float, gamma: float = 0.85, step_size: int = 250) -> StepDecay:
    """lr(step) = lr * gamma ** (step // step_size) (seed 003: x0.85 every 250 steps)."""
    return StepDecay(lr, gamma, step_size)


def exponential(lr: float, gamma: float = 0.999) -> Exponential:
    """lr(step) = lr * gamma ** step."""
    return Exponential(lr, gamma)


def cosine(lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> Cosine:
    """Linear warmup from 0 over `warmup_steps`, then cosine decay to `min_lr` at `total_steps`."""
    return Cosine(lr, total_steps, warmup_steps, min_lr)


def inverse_scaling(lr: float, power_t: float = 0.5) -> InverseScaling:
    """lr(step) = lr / (step + 1) ** power_t (scikit-learn's 'invscaling')."""
    return InverseScaling(lr, power_t)


# ---- stateful rules ------------------------------------------------------------------------------
class _Stateful(Schedule):
    stateful: ClassVar[bool] = True
    _fields: ClassVar[tuple[str, ...]] = ()  # everything state_dict saves

    def __call__(self, step: int) -> float:
        """The current lr (the step is ignored: the lr moves only through `update`)."""
        return self.lr

    def update(self, value: float) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Configuration and counters as plain Python numbers (JSON-friendly)."""
        return {"schedule": type(self).__name__, **{k: getattr(self, k) for k in self._fields}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("schedule") != type(self).__name__:
            got = state.get("schedule") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state dict is for schedule {got!r}, this is {type(self).__name__!r}")
        missing = [k for k in self._fields if k not in state]
        if missing:
            raise ValueError(f"{type(self).__name__} state is missing {missing}")
        self._load(state)

    def _load(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._fields)})"


class ReduceOnPlateau(_Stateful):
    """Cut the lr by `factor` when a monitored metric stops improving, with exactly the semantics of
    `torch.optim.lr_scheduler.ReduceLROnPlateau` (call `update(metric)` once per evaluation).

    For each `update(value)`:

    - better = value < best * (1 - threshold) in mode "min" with threshold_mode "rel"
      (value < best - threshold for "abs"; mode "max" mirrors: value > best * (1 + threshold),
      value > best + threshold). If better, best <- value and bad <- 0, else bad <- bad + 1.
    - during a cooldown (`cooldown` updates after a cut) bad is reset to 0.
    - if bad > patience: lr <- max(lr * factor, min_lr) (skipped if that changes lr by <= eps),
      the cooldown starts and bad <- 0.

    So with patience p the lr is cut at the (p+1)-th consecutive update without improvement.

    scikit-learn's `learning_rate='adaptive'` is close to factor=0.2 (it divides by 5),
    patience=n_iter_no_change (10), threshold=tol (1e-4), threshold_mode="abs", mode="min" on the
    training loss per epoch; it differs in that it updates `best` on any decrease (not only one
    larger than tol) and stops training once lr <= 1e-6.

    Args:
        lr: initial learning rate.
        factor: multiplier in (0, 1) applied at each cut (PyTorch's default 0.1).
        patience: number of updates without improvement tolerated before a cut.
        threshold: minimal improvement, relative or absolute (see threshold_mode).
        threshold_mode: "rel" or "abs".
        cooldown: updates to wait after a cut before counting bad updates again.
        min_lr: lower bound on the lr.
        mode: "min" (a loss) or "max" (an accuracy).
        eps: smallest lr change applied.
    """

    _fields = (
        "lr", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "mode", "eps",
        "best", "num_bad", "cooldown_counter", "num_updates",
    )  # fmt: skip

    def __init__(
        self,
        lr: float,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "min",
        eps: float = 1e-8,
    ) -> None:
        self.lr = _checks.at_least_zero("lr", lr)
        self.factor = _checks.number("factor", factor)
        if not 0.0 < self.factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {self.factor}")
        self.patience = _checks.integer("patience", patience, 0)
        self.threshold = _checks.at_least_zero("threshold", threshold)
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        self.cooldown = _checks.integer("cooldown", cooldown, 0)
        self.min_lr = _checks.at_least_zero("min_lr", min_lr)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.eps = _checks.at_least_zero("eps", eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad = 0
        self.cooldown_counter = 0
        self.num_updates = 0

    def _is_better(self, value: float) -> bool:
        best, th = self.best, self.threshold
        if self.mode == "min":
            return value < (best * (1.0 - th) if self.threshold_mode == "rel" else best - th)
        return value > (best * (1.0 + th) if self.threshold_mode == "rel" else best + th)

    def update(self, value: float) -> float:
        """Feed the monitored metric of one evaluation; return the lr to use from now on."""
        value = _checks.number("metric", value)
        self.num_updates += 1
        if self._is_better(value):
            self.best = value
            self.num_bad = 0
        else:
            self.num_bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad = 0
        if self.num_bad > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad = 0
        return self.lr

    def _load(self, state: dict[str, Any]) -> None:
        config = self._fields[:9]
        fresh = ReduceOnPlateau(**{k: state[k] for k in config})  # validates
        best = float(state["best"])
        if math.isnan(best):
            raise ValueError(f"ReduceOnPlateau state has best={best}")
        names = ("num_bad", "cooldown_counter", "num_updates")
        counters = {k: _checks.integer(k, state[k], 0) for k in names}
        self.__dict__.update(fresh.__dict__)
        self.best = best
        self.__dict__.update(counters)


class LossRatio(_Stateful):
    """Seed 002's rule: every `window` steps, lr <- lr * mean(last window losses) / mean(window before).

    Call `update(loss)` once per training step with that step's loss. The losses are cut into
    consecutive, non-overlapping windows of `window` steps. When a window completes (at the
    `window`-th, `2 window`-th, ... call) its mean is recorded; from the second completed window on,
    the lr is multiplied by (this window's mean / previous window's mean) and clipped to
    [min_lr, max_lr]. So the lr first changes at the `2 window`-th call and then every `window`
    calls; the value returned is the lr for the next step. The lr falls while the loss falls and
    rises when it rises. If the previous mean is 0 the lr is left unchanged.

    Args:
        lr: initial learning rate (seed 002: 0.1).
        window: steps per window (seed 002: 100, its `update_step`).
        min_lr: lower bound on the lr (default 0: no bound).
        max_lr: upper bound on the lr (default inf: no bound).
    """

    _fields = ("lr", "window", "min_lr", "max_lr", "count", "window_sum", "prev_mean")

    def __init__(self, lr: float, window: int = 100, min_lr: float = 0.0, max_lr: float = math.inf) -> None:
        self.lr = _checks.at_least_zero("lr", lr)
        self.window = _checks.integer("window", window, 1)
        self.min_lr = _checks.at_least_zero("min_lr", min_lr)
        if not (isinstance(max_lr, int | float) and max_lr == math.inf):
            max_lr = _checks.at_least_zero("max_lr", max_lr)
        if max_lr < self.min_lr:
            raise ValueError(f"max_lr must be >= min_lr={self.min_lr}, got {max_lr}")
        self.max_lr = max_lr
        self.count = 0
        self.window_sum = 0.0
        self.prev_mean: float | None = None

    def update(self, value: float) -> float:
        """Feed one step's training loss; return the lr to use for the next step."""
        loss = _checks.number("loss", value)
        self.count += 1
        self.window_sum += loss
        if self.count % self.window == 0:
            mean = self.window_sum / self.window
            self.window_sum = 0.0
            if self.prev_mean is not None and self.prev_mean != 0.0:
                self.lr = min(self.max_lr, max(self.min_lr, self.lr * mean / self.prev_mean))
            self.prev_mean = mean
        return self.lr

    def _load(self, state: dict[str, Any]) -> None:
        fresh = LossRatio(state["lr"], state["window"], state["min_lr"], state["max_lr"])  # validates
        count = _checks.integer("count", state["count"], 0)
        window_sum = _checks.number("window_sum", state["window_sum"])
        prev = state["prev_mean"]
        prev = None if prev is None else _checks.number("prev_mean", prev)
        self.__dict__.update(fresh.__dict__)
        self.count, self.window_sum, self.prev_mean = count, window_sum, prev


# ---- factory ---------------------------------------------------------------------------------------
_BY_NAME: dict[str, type[Schedule]] = {
    "constant": Constant,
    "step": StepDecay,
    "stepdecay": StepDecay,
    "exponential": Exponential,
    "cosine": Cosine,
    "triangle": Triangle,
    "inversescaling": InverseScaling,
    "invscaling": InverseScaling,
    "plateau": ReduceOnPlateau,
    "reduceonplateau": ReduceOnPlateau,
    "lossratio": LossRatio,
}
SCHEDULES = (
    "constant",
    "step_decay",
    "exponential",
    "cosine",
    "triangle",
    "inverse_scaling",
    "plateau",
    "loss_ratio",
)


def make_schedule(name: str, lr: float, **kwargs: Any) -> Schedule:
    """Build a schedule by name: "constant", "step_decay" (or "step"), "exponential", "cosine",
    "inverse_scaling" (or "invscaling"), and the stateful "plateau" (`ReduceOnPlateau`) and
    "loss_ratio" (`LossRatio`). Keyword arguments go to the constructor.

    Raises:
        ValueError: unknown name, an argument the schedule does not take, or a bad value.
    """
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    cls = _BY_NAME.get(key)
    if cls is None:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    import inspect

    accepted = [a for a in inspect.signature(cls).parameters if a != "lr"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"schedule {name!r} does not take {unknown}; it takes {accepted}")
    if cls in (Cosine, Triangle) and "total_steps" not in kwargs:
        raise ValueError(f"schedule {name!r} needs total_steps=...")
    return cls(lr, **kwargs)
