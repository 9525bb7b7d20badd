"""Asynchronous successive halving (ASHA), the coordinator's promotion rule.

Li et al., "A System for Massively Parallel Hyperparameter Tuning" (MLSys 2020): every trial
starts with a small budget (rung 0: `min_fraction` of its steps); whenever a worker is free, the
best paused trial that is among the top 1/eta of all the trials that have reached its rung goes
on to the next rung (eta times the budget), searching from the highest rung down; only when
nothing can be promoted does a new trial start. Nothing waits for a rung to fill up, so no worker
idles. Trials left paused when nothing can run any more are pruned. Because a trial pauses and
continues from its checkpoint, a promoted trial trains exactly as it would have in one go (same
schedule, same batches).
"""

from __future__ import annotations

import math
from typing import Any

from .spec import Halving


def _sort_key(value: float | None, maximize: bool) -> float:
    """Best first; a missing or NaN value ranks last."""
    if value is None or not math.isfinite(value):
        return math.inf
    return -value if maximize else value


class Rungs:
    """The rung results (`records[k]`: (trial_id, value) of every trial that reached rung k) and the
    paused trials (`paused[trial_id]`: the rung each waits at)."""

    def __init__(self, halving: Halving, rows: list[dict[str, Any]], paused: dict[str, int]) -> None:
        self.halving = halving
        self.records: dict[int, list[tuple[str, float | None]]] = {}
        for r in rows:
            self.records.setdefault(int(r["rung"]), []).append((r["trial_id"], r["value"]))
        self.paused = dict(paused)

    @property
    def last(self) -> int:
        """Index of the last rung (the whole run)."""
        return len(self.halving.fractions) - 1

    def fraction(self, rung: int) -> float | None:
        """The fraction of its steps a trial heading for `rung` stops at (None: the whole run)."""
        return None if rung >= self.last else self.halving.fractions[rung]

    def record(self, trial_id: str, rung: int, value: float | None) -> None:
        recs = self.records.setdefault(rung, [])
        recs[:] = [r for r in recs if r[0] != trial_id] + [(trial_id, value)]
        self.paused[trial_id] = rung

    def top(self, rung: int) -> list[str]:
        """The trials among the best 1/eta of those that reached `rung` (floor: none below eta)."""
        recs = self.records.get(rung, [])
        n = len(recs) // self.halving.reduction_factor
        ranked = sorted(recs, key=lambda r: _sort_key(r[1], self.halving.maximize))
        return [tid for tid, _ in ranked[:n]]

    def promotion(self) -> tuple[str, int] | None:
        """(trial_id, next rung) of a paused trial that may go on, from the highest rung down."""
        for k in range(self.last - 1, -1, -1):
            for tid in self.top(k):
                if self.paused.get(tid) == k:
                    return tid, k + 1
        return None

    def promote(self, trial_id: str) -> None:
        self.paused.pop(trial_id, None)
