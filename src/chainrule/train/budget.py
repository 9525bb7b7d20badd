"""`--time-budget SECONDS`: train as many steps as fit in a wall-clock budget on this machine.

A recipe written in epochs takes as long as the CPU makes it; a budget ("90% in 5 minutes") is a
number of seconds. `plan_budget` times a throwaway copy of the run (same config, data and engine)
for a few seconds, then fixes the number of steps:

    steps = floor((budget - t_eval) / (t_step + evals_per_step * t_eval))

where t_step is the measured seconds per training step (augmentation and batch gather included),
t_eval the seconds of one evaluation (the training subset, validation and test sets; the final
evaluation at the end of the run is one of them), and evals_per_step = 1/steps_per_epoch (unless
--no-eval-each-epoch) + 1/eval_every (when set). The schedule is then built for that many steps,
so a cosine or triangular schedule ends where the budget does.

The run's config.toml records the resolved `steps` (not the budget): rerunning or resuming it trains
exactly those steps, bit-identically, on any machine. The plan is in summary.json ("time_budget").
The final test-time-augmented evaluation and the data loading are outside the budget, as in the
training times the results tables give.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .config import ConfigError, TrainConfig
from .prepare import Prepared
from .trainer import Trainer, evaluations_per_step

WARMUP_STEPS = 2  # first steps pay for allocations and oneDNN primitive creation
PROBE_STEPS = 1_000_000  # the probe's nominal length (its schedule only; never reached)


@dataclass(frozen=True)
class BudgetPlan:
    seconds: float
    step_s: float
    eval_s: float
    evals_per_step: float
    steps: int
    epochs: float
    timed_steps: int

    def line(self) -> str:
        return (
            f"time budget {self.seconds:g} s: {self.step_s:.4g} s a step ({self.timed_steps} timed), "
            f"{self.eval_s:.3g} s an evaluation -> {self.steps} steps ({self.epochs:.2f} epochs)"
        )


def steps_in_budget(budget: float, step_s: float, eval_s: float, evals_per_step: float) -> int:
    """The most steps whose training and evaluations (one at the end included) fit in `budget` s."""
    return max(0, math.floor((budget - eval_s) / (step_s + evals_per_step * eval_s)))


def time_steps(cfg: TrainConfig, data: Prepared, seconds: float) -> tuple[Trainer, float, int]:
    """Train a throwaway copy of `cfg` on `data` for about `seconds` (after `WARMUP_STEPS` untimed
    steps, at least 2 timed ones) and return it with the measured seconds per step and the number
    of timed steps. The copy never evaluates and writes nothing."""
    # the probe never evaluates on its own (its steps would include evaluation time); eval_every
    # beyond its end rather than 0, which early stopping and the plateau schedule refuse
    probe_cfg = cfg.replace(
        time_budget=None, steps=PROBE_STEPS, epochs=None, eval_every=PROBE_STEPS, eval_each_epoch=False
    )
    probe = Trainer(probe_cfg, data)
    probe.fit(until_step=WARMUP_STEPS)
    chunk, t0 = 2, time.perf_counter()
    while True:
        probe.fit(until_step=probe.step + chunk)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
        chunk *= 2
    timed = probe.step - WARMUP_STEPS
    return probe, elapsed / timed, timed


def plan_budget(cfg: TrainConfig, data: Prepared, time_steps_s: float | None = None) -> BudgetPlan:
    """Time a throwaway trainer built from `cfg` on `data` and return how many steps fit in
    `cfg.time_budget` seconds. `time_steps_s`: how long to time steps (default 2% of the budget,
    between 1 and 10 s)."""
    budget = cfg.time_budget
    if budget is None:
        raise ValueError("plan_budget needs cfg.time_budget")
    target = time_steps_s if time_steps_s is not None else min(10.0, max(1.0, 0.02 * budget))
    probe, step_s, timed = time_steps(cfg, data, target)
    spe = probe.steps_per_epoch
    evals_per_step = evaluations_per_step(cfg, spe)
    t0 = time.perf_counter()
    probe._evaluation_point()  # all an evaluation costs the run (records, best weights), less its files
    eval_s = time.perf_counter() - t0
    steps = steps_in_budget(budget, step_s, eval_s, evals_per_step)
    if steps < 1:
        raise ConfigError(
            f"time_budget = {budget:g} is invalid: one step takes {step_s:.3g} s and one evaluation "
            f"{eval_s:.3g} s here, so not one step fits; give more seconds"
        )
    return BudgetPlan(budget, step_s, eval_s, evals_per_step, steps, round(steps / spe, 4), timed)
