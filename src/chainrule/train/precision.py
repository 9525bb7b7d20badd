"""`--precision auto` (the torch engine's default): fp32 or bf16, whichever this machine runs faster.

Whether bf16 pays depends on the CPU, and no rule by CPU model holds: with AVX512-BF16 and no AMX, an
Intel Xeon ran FastNet's bf16 steps at 0.5-0.9x the speed of fp32, an AMD EPYC (Zen 4) at 1.9x
(docs/benchmarks.md). So the choice is measured: a throwaway copy of the run (its model, batch size,
micro-batches, threads and augmentation) is trained for a few steps in each precision, and bf16 is
chosen only when it is at least `MIN_SPEEDUP` times as fast (10%: below that, the measurement's noise
and bf16's rounding are not worth it). Where bf16 cannot run (a CPU without AVX512-BF16 or AMX, a GPU
without bf16, float64 parameters), fp32 is timed alone, for the record.

The run's config.toml holds the chosen precision (a rerun or resume repeats it, as `--time-budget`
records its steps); summary.json has the measurement under "precision". `--precision fp32|bf16`
skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .budget import time_steps
from .config import TrainConfig
from .prepare import Prepared
from .registry import load_engine

MIN_SPEEDUP = 1.10  # bf16 must run a step in at most 1/1.10 of fp32's time
CHOICE_SECONDS = 2.0  # timed seconds per precision when there is a choice
RECORD_SECONDS = 0.5  # timed seconds of fp32 alone (nothing to choose: just the record)


@dataclass(frozen=True)
class PrecisionChoice:
    chosen: str  # "fp32" | "bf16"
    fp32_step_s: float
    bf16_step_s: float | None  # None where bf16 cannot run
    reason: str  # why, in a phrase for the run header

    def line(self) -> str:
        return f"precision auto -> {self.chosen}: {self.reason}"


def choose_precision(fp32_step_s: float, bf16_step_s: float | None) -> tuple[str, str]:
    """The precision to train in, from measured seconds per step, and the phrase that says why."""
    fp32 = f"fp32 {fp32_step_s:.3g} s a step"
    if bf16_step_s is None:
        return "fp32", f"{fp32}; bf16 cannot run"
    speedup = fp32_step_s / bf16_step_s
    rule = f"bf16 {bf16_step_s:.3g} s, {fp32} ({speedup:.2f}x"
    if speedup >= MIN_SPEEDUP:
        return "bf16", f"{rule}: at least {MIN_SPEEDUP:.2f}x)"
    return "fp32", f"{rule}: under {MIN_SPEEDUP:.2f}x)"


def chooses_precision(cfg: TrainConfig) -> bool:
    """Whether `cfg`'s engine has a precision to choose: one that can run bf16 says so by defining
    `bf16_unavailable(cfg)`; any other trains in its `--dtype` and `auto` asks nothing of it."""
    return hasattr(load_engine(cfg.backend), "bf16_unavailable")


def bf16_unavailable(cfg: TrainConfig) -> str | None:
    """Why bf16 cannot run for `cfg` on this machine (None: it can), as its engine says."""
    return load_engine(cfg.backend).bf16_unavailable(cfg)


def measure_precision(cfg: TrainConfig, data: Prepared) -> PrecisionChoice:
    """Time `cfg` (an engine that chooses, precision auto) in fp32 and, where it can run, in bf16; choose."""
    cannot = bf16_unavailable(cfg)
    seconds = RECORD_SECONDS if cannot else CHOICE_SECONDS
    _, fp32_s, _ = time_steps(cfg.replace(precision="fp32"), data, seconds)
    bf16_s = None if cannot else time_steps(cfg.replace(precision="bf16"), data, seconds)[1]
    chosen, reason = choose_precision(fp32_s, bf16_s)
    if cannot:
        reason = f"{reason}: {cannot}"
    return PrecisionChoice(chosen, round(fp32_s, 6), None if bf16_s is None else round(bf16_s, 6), reason)
