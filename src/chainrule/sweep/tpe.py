"""`[search] sampler = "tpe"`: Optuna's tree-structured Parzen estimator draws the trials, through
its ask-and-tell interface, while the coordinator, the store, the backends and the report stay as
they are (Bergstra et al., "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011).

`sweep.db` is the only record. Optuna's study lives in memory: it is rebuilt from the database each
time a sweep starts or resumes, by re-telling the trials that ended (completed ones with their
metric, the others as failed) and asking again, with their own values, the trials that were running
(Optuna's `enqueue_trial`), so they are told when they end. Then, whenever a worker is free, one
more trial is asked, until the store holds `n_trials`; the trials still running are pending in the
study, and `constant_liar` keeps TPE from asking the same region for every free worker at once.

The search space, from the spec: a [grid] list and a `choice` are categorical (their values are
JSON labels, so lists such as hidden_sizes are choices too), `uniform` and `log_uniform` are
floats (log=True for the latter), `int_uniform` integers. The study maximizes an accuracy and
minimizes a loss ([search] metric). A trial that failed, or ended without the metric, is told as
failed (TPE leaves it out). Optuna is imported here only, and only when a sweep uses TPE.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

from .spec import SpecError, SweepSpec, Trial

# a proposal whose config is already in the store is told that trial's outcome and asked again;
# this many in a row means TPE keeps proposing what has run: a small discrete space is used up
MAX_REPEATS = 100


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SpecError("sampler = \"tpe\" needs Optuna: pip install 'chainrule[optuna]'") from None
    return optuna


def _label(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def distributions(spec: SweepSpec) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The Optuna distributions of the spec's swept keys, and each categorical key's label -> value."""
    d = _optuna().distributions
    dists: dict[str, Any] = {}
    labels: dict[str, dict[str, Any]] = {}

    def categorical(key: str, values: list[Any]) -> None:
        labels[key] = {_label(v): v for v in values}
        dists[key] = d.CategoricalDistribution(list(labels[key]))

    for k, values in spec.grid.items():
        categorical(k, values)
    for k, dist in spec.random.items():
        ((kind, args),) = dist.items()
        if kind == "choice":
            categorical(k, args)
        elif kind == "int_uniform":
            dists[k] = d.IntDistribution(int(args[0]), int(args[1]))
        else:
            dists[k] = d.FloatDistribution(float(args[0]), float(args[1]), log=kind == "log_uniform")
    return dists, labels


def objective_value(status: str, result: dict[str, Any], metric: str) -> float | None:
    """What the study is told of a trial that ended: its metric, or None (told as failed)."""
    value = result.get(metric)
    if status != "completed" or value is None or not math.isfinite(value):
        return None
    return float(value)


class TPESearch:
    """The study of one sweep session. `rows`: the store's trials (`Store.trials()`)."""

    def __init__(self, spec: SweepSpec, rows: list[dict[str, Any]]) -> None:
        optuna = self.optuna = _optuna()
        self.spec, self.metric = spec, spec.search.metric
        self.n_trials = spec.search.n_trials
        self.dists, self.labels = distributions(spec)
        self._verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per told trial in the progress
        with warnings.catch_warnings():  # older Optunas call constant_liar experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=spec.sweep_seed, n_startup_trials=spec.search.n_startup_trials, constant_liar=True
            )
        self.study = optuna.create_study(
            direction="maximize" if spec.search.maximize else "minimize", sampler=sampler
        )
        self.live: dict[str, Any] = {}  # trial_id -> the asked Optuna trial, told when it ends
        self.retold = self.outside = 0
        for row in rows:
            self._add(row)

    def _encode(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """A stored trial's params as Optuna's (None: not a point of this search space)."""
        if set(params) != set(self.dists):
            return None
        out = {}
        for k, v in params.items():
            if k in self.labels:
                if _label(v) not in self.labels[k]:
                    return None
                v = _label(v)
            out[k] = v
        try:  # Optuna's own check that each value lies in its distribution
            self.optuna.trial.create_trial(params=out, distributions=self.dists, value=0.0)
        except ValueError:
            return None
        return out

    def _decode(self, params: dict[str, Any]) -> dict[str, Any]:
        """Optuna's params as the spec's values, in the spec's key order."""
        return {k: self.labels[k][params[k]] if k in self.labels else params[k] for k in self.dists}

    def _add(self, row: dict[str, Any]) -> None:
        """Re-tell a trial that ended; ask again, with its values, one that is to run."""
        params = self._encode(row["params"])
        if params is None:  # from an earlier spec (other keys or ranges): it counts, untold
            self.outside += 1
            return
        state = self.optuna.trial.TrialState
        if row["status"] in ("completed", "failed", "pruned"):
            value = objective_value(row["status"], row, self.metric)
            self.study.add_trial(
                self.optuna.trial.create_trial(
                    params=params,
                    distributions=self.dists,
                    value=value,
                    state=state.COMPLETE if value is not None else state.FAIL,
                )
            )
            self.retold += 1
        else:
            self.study.enqueue_trial(params)
            self.live[row["trial_id"]] = self.study.ask(self.dists)

    def remaining(self, stored: int) -> int:
        """How many more trials to ask, with `stored` trials in the store."""
        return max(0, self.n_trials - stored)

    def ask(self, stored: dict[str, dict[str, Any]]) -> tuple[Trial, str | None] | None:
        """A new trial (not in `stored`, the store's rows by id) and its config's validation error
        (None if it is valid), or None when TPE keeps proposing trials that are in the store."""
        for _ in range(MAX_REPEATS):
            asked = self.study.ask(self.dists)
            trial, error = self.spec.resolve(self._decode(asked.params))
            row = stored.get(trial.trial_id)
            if row is None:
                self.live[trial.trial_id] = asked
                return trial, error
            # the same config again (a discrete space): told what that trial gave, or failed while it runs
            value = objective_value(row["status"], row, self.metric)
            if value is None:
                self.study.tell(asked, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(asked, value)
        return None

    def tell(self, trial_id: str, status: str, result: dict[str, Any]) -> None:
        """A trial ended with `status` (completed, failed, ...) and `result` (its metrics)."""
        asked = self.live.pop(trial_id, None)
        if asked is None:
            return
        value = objective_value(status, result, self.metric)
        if value is None:
            self.study.tell(asked, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(asked, value)

    def close(self) -> None:
        self.optuna.logging.set_verbosity(self._verbosity)
