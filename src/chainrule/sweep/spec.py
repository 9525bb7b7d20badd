"""Sweep specs (TOML) and the trials they expand to.

    name = "lr-study"                 # the sweep's name (default folder sweeps/<name>)
    description = "..."               # optional, shown in the report
    seeds = 3                         # a count (seeds 0, 1, 2) or a list [0, 7, 42]; default 1
    sweep_seed = 0                    # seeds the random draws (default 0)

    [base]                            # any `chainrule train` key, and/or recipe = "NAME"
    recipe = "seed004-mlp"
    epochs = 10

    [grid]                            # the cartesian product of these lists
    lr = [0.1, 0.01]
    hidden_sizes = [[100], [300, 100]]
    recipe = ["seed003-sigmoid", "seed003-relu"]   # a grid over recipes is allowed too

    [random]                          # n_trials draws, each crossed with every grid point
    n_trials = 8
    dropout = { uniform = [0.0, 0.5] }
    weight_decay = { log_uniform = [1e-5, 1e-2] }
    batch_size = { int_uniform = [32, 256] }
    activation = { choice = ["relu", "tanh"] }

    [scale_by]                        # multiply a swept value by another key of the same trial
    lr = "batch_size"                 # e.g. a summed-loss lr: lr (mean loss) = lr x batch size

    [halving]                         # asynchronous successive halving (ASHA): stop bad trials early
    metric = "val_acc"                # what ranks trials at a rung (val_acc, val_loss, train_acc, train_loss)
    reduction_factor = 3              # eta: the best 1/eta of the trials at a rung go on (default 3)
    min_fraction = 0.111              # the first rung, as a fraction of a trial's steps (default 1/eta^2)

    [search]                          # how trials are drawn (default sampler = "random": all of the above)
    sampler = "tpe"                   # Optuna's TPE (needs chainrule[optuna]): see chainrule.sweep.tpe
    n_trials = 30                     # how many trials TPE draws ([random] then has no n_trials)
    metric = "val_acc"                # what it optimizes (val_acc, val_loss, train_acc, train_loss)
    n_startup_trials = 10             # random draws before TPE models the results (Optuna's default)

With sampler = "tpe" the [grid] lists and the [random] distributions are one search space (a grid
list is a categorical choice, not a product), and each trial is drawn when a worker is free, from
the results so far; the spec is checked at every value it names (each choice, each range's ends)
before anything runs, and a drawn configuration that does not validate is a failed trial.

A trial is one resolved `TrainConfig` (defaults, then the recipe, then [base], then the grid point
and the random draw, then the seed). Its id is a hash of the config's keys that change training
(`trial_id`), so the same trial gets the same id in every run, resumed or extended sweep.

Each random draw uses its own generator, `default_rng([sweep_seed, draw, crc32(key)])`: raising
`n_trials` keeps the earlier draws, and adding a key leaves the other keys' draws unchanged.

Every error is one line naming the file, the table and the key, raised before anything runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import math
import tomllib
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import layout
from chainrule._io import did_you_mean
from chainrule.train.config import (
    BOOKKEEPING,
    FIELDS,
    ConfigError,
    TrainConfig,
    coerce,
    field_kind,
    layer,
    load_recipe,
)

TOP_KEYS = (
    "name",
    "description",
    "seeds",
    "sweep_seed",
    "base",
    "grid",
    "random",
    "scale_by",
    "halving",
    "search",
)
# what ranks trials at a halving rung and what TPE optimizes (never a test metric: it would select on
# the test set)
METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")
HALVING_KEYS = ("metric", "reduction_factor", "min_fraction")
SAMPLERS = ("random", "tpe")
DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")
NOT_IN_ID = BOOKKEEPING  # not in a trial's id
# keys the sweep sets itself
SWEEP_OWNED = {
    "seed": "the seeds come from the top-level `seeds` key",
    "name": "trials are named after the sweep (top-level `name`)",
    "out_dir": f"trials go to DIR/{layout.TRIALS_DIR}/<id> (chainrule sweep --out DIR)",
    "run_dir": f"trials go to DIR/{layout.TRIALS_DIR}/<id> (chainrule sweep --out DIR)",
}


class SpecError(ConfigError):
    """A sweep spec is invalid; the message is one line naming the file and the key."""


def maximizes(metric: str) -> bool:
    """Accuracies are maximized, losses minimized."""
    return metric.endswith("_acc")


@dataclass(frozen=True)
class Halving:
    """Asynchronous successive halving (Li et al., "A System for Massively Parallel Hyperparameter
    Tuning", 2020). Rung k is `min_fraction * eta^k` of a trial's training steps; the last rung is
    the whole run. A trial pauses at each rung (checkpointed, `metric` measured on the full split);
    it goes on to the next rung once it is among the best 1/eta of the trials that have reached its
    rung so far, otherwise it waits there, and is pruned when nothing else can promote it."""

    metric: str = "val_acc"
    reduction_factor: int = 3
    min_fraction: float = 1 / 9

    @property
    def maximize(self) -> bool:
        return maximizes(self.metric)

    @property
    def fractions(self) -> list[float]:
        """The rungs' fractions of a trial's steps, ending with 1.0."""
        out, f = [], self.min_fraction
        while f < 1.0 - 1e-9:
            out.append(f)
            f *= self.reduction_factor
        return out + [1.0]


@dataclass(frozen=True)
class Search:
    """How the trials are drawn: "random" (the grid crossed with [random]'s draws, every trial
    expanded before anything runs) or "tpe" (Optuna's tree-structured Parzen estimator: `n_trials`
    trials, each drawn when a worker is free from the results told so far; `chainrule.sweep.tpe`)."""

    sampler: str = "random"
    n_trials: int = 0
    metric: str = "val_acc"
    n_startup_trials: int = 10

    @property
    def maximize(self) -> bool:
        return maximizes(self.metric)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# [search]: key -> (check, what a good value is); a bad value is one line "key = value should be ..."
SEARCH_RULES: dict[str, tuple[Any, str]] = {
    "sampler": (lambda v: v in SAMPLERS, "one of " + ", ".join(f'"{s}"' for s in SAMPLERS)),
    "n_trials": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "metric": (lambda v: v in METRICS, f"one of {', '.join(METRICS)} (never a test metric)"),
    "n_startup_trials": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
}
TPE_ONLY = ("n_trials", "metric", "n_startup_trials")


@dataclass
class Trial:
    """One (configuration, seed): `params` are the swept values (as written in the spec)."""

    trial_id: str
    config: dict[str, Any]
    seed: int
    params: dict[str, Any]


@dataclass
class SweepSpec:
    name: str
    description: str
    seeds: list[int]
    sweep_seed: int
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    random: dict[str, dict[str, Any]]
    n_trials: int
    scale_by: dict[str, str]
    source: str
    text: str = ""
    trials: list[Trial] = field(default_factory=list)
    halving: Halving | None = None
    search: Search = field(default_factory=Search)
    # sampler = "tpe": trials at each value the spec names, validated before anything runs
    probes: list[Trial] = field(default_factory=list)
    _resolver: Any = field(default=None, repr=False, compare=False)

    @property
    def swept_keys(self) -> list[str]:
        return list(self.grid) + [k for k in self.random if k not in self.grid]

    def resolve(self, params: dict[str, Any], seed: int | None = None) -> tuple[Trial, str | None]:
        """The trial of one point of the search space (swept values as in the spec; default seed:
        the first), and the one-line error if its config does not validate (else None)."""
        if self._resolver is None:
            self._resolver = _Resolver(self)
        return self._resolver.trial(params, self.seeds[0] if seed is None else seed)


_DEFAULTS = TrainConfig().to_dict()


def trial_id(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the config's training keys (sorted JSON). Keys at their
    default value are left out, so a key that a later chainrule adds (with a default that keeps
    the old behaviour) does not change the ids of an existing sweep."""
    keep = {
        k: v for k, v in config.items() if k not in NOT_IN_ID and not (k in _DEFAULTS and v == _DEFAULTS[k])
    }
    text = json.dumps(keep, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_key(key: str, where: str) -> None:
    """A key of [base], [grid], [random] or [scale_by] must be a training key the sweep lets the
    spec set."""
    if key in SWEEP_OWNED:
        raise SpecError(f"{where}: {key} cannot be set here: {SWEEP_OWNED[key]}")
    if key not in FIELDS:
        raise SpecError(f"{where}: unknown key {key!r}{did_you_mean(key, list(FIELDS))}")


def _value(key: str, value: Any, where: str) -> Any:
    try:
        return coerce(key, value, where)
    except ConfigError as e:
        raise SpecError(str(e)) from None


def _table(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(f"{source}: {key} must be a table ([{key}]), got {value!r}")
    return value


def _flatten_base(base: dict[str, Any], source: str) -> dict[str, Any]:
    """[base] may group keys in sub-tables like a config file ([base.optim]); flattened here."""
    flat: dict[str, Any] = {}
    for k, v in base.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                flat[k2] = v2
        else:
            flat[k] = v
    return flat


def _parse_seeds(value: Any, source: str) -> list[int]:
    if isinstance(value, bool):
        raise SpecError(f"{source}: seeds = {value!r} should be a count or a list of integers")
    if isinstance(value, int):
        if value < 1:
            raise SpecError(f"{source}: seeds = {value} is invalid: a count must be >= 1")
        return list(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) for s in value)
    ):
        if len(set(value)) != len(value):
            raise SpecError(f"{source}: seeds = {value} repeats a seed")
        if any(s < 0 for s in value):
            raise SpecError(f"{source}: seeds = {value} is invalid: seeds must be >= 0")
        return list(value)
    raise SpecError(f"{source}: seeds = {value!r} should be a count or a non-empty list of integers")


def _parse_distribution(key: str, dist: Any, where: str) -> dict[str, Any]:
    if not isinstance(dist, dict) or len(dist) != 1:
        raise SpecError(
            f"{where}: {key} = {dist!r} should be one distribution, e.g. {key} = {{ uniform = [a, b] }} "
            f"({', '.join(DISTRIBUTIONS)})"
        )
    ((kind, args),) = dist.items()
    if kind not in DISTRIBUTIONS:
        raise SpecError(f"{where}: {key}: unknown distribution {kind!r}{did_you_mean(kind, DISTRIBUTIONS)}")
    fkind = field_kind(key)
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise SpecError(f"{where}: {key}: choice needs a non-empty list of values, got {args!r}")
        return {"choice": [_value(key, v, where) for v in args]}
    ok = (
        isinstance(args, list)
        and len(args) == 2
        and all(isinstance(a, int | float) and not isinstance(a, bool) and math.isfinite(a) for a in args)
    )
    if not ok:
        raise SpecError(f"{where}: {key}: {kind} needs two numbers [low, high], got {args!r}")
    lo, hi = args
    if kind == "int_uniform":
        if not all(isinstance(a, int) for a in args):
            raise SpecError(f"{where}: {key}: int_uniform needs two integers [low, high], got {args!r}")
        if fkind not in ("int", "float"):
            raise SpecError(f"{where}: {key} is {fkind}: int_uniform draws integers")
        if lo > hi:
            raise SpecError(f"{where}: {key}: int_uniform [low, high] needs low <= high, got {args!r}")
    else:
        if fkind != "float":
            fix = " (use int_uniform or choice)" if fkind == "int" else " (use choice)"
            raise SpecError(f"{where}: {key} is {fkind}: {kind} draws real numbers{fix}")
        if not lo < hi:
            raise SpecError(f"{where}: {key}: {kind} [low, high] needs low < high, got {args!r}")
        if kind == "log_uniform" and lo <= 0:
            raise SpecError(f"{where}: {key}: log_uniform needs 0 < low < high, got {args!r}")
    return {kind: [lo, hi]}


def draw(dist: dict[str, Any], rng: np.random.Generator) -> Any:
    ((kind, args),) = dist.items()
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    lo, hi = args
    if kind == "int_uniform":
        return int(rng.integers(lo, hi + 1))
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))  # log_uniform


def random_points(random: dict[str, dict[str, Any]], n_trials: int, sweep_seed: int) -> list[dict[str, Any]]:
    """`n_trials` draws; draw i of key k comes from `default_rng([sweep_seed, i, crc32(k)])`."""
    points = []
    for i in range(n_trials):
        points.append(
            {
                k: draw(d, np.random.default_rng([sweep_seed, i, zlib.crc32(k.encode())]))
                for k, d in random.items()
            }
        )
    return points


def parse_spec(text: str, source: str = "spec", expand: bool = True) -> SweepSpec:
    """Parse and check a spec, and (with `expand`) expand it to its trials, every one validated."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{source}: invalid TOML: {e}") from None
    for k in data:
        if k not in TOP_KEYS:
            hint = did_you_mean(k, TOP_KEYS)
            if not hint and k in FIELDS:
                hint = f" (training keys go in [base], e.g. [base] {k} = ...)"
            raise SpecError(f"{source}: unknown key {k!r}{hint}")
    if "name" not in data:
        raise SpecError(f'{source}: name is missing (e.g. name = "my-sweep")')
    name = data["name"]
    if not isinstance(name, str) or not name.strip() or "/" in name or name.startswith("."):
        raise SpecError(f"{source}: name = {name!r} should be a non-empty name without '/'")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{source}: description = {description!r} should be a string")
    seeds = _parse_seeds(data.get("seeds", 1), source)
    sweep_seed = data.get("sweep_seed", 0)
    if isinstance(sweep_seed, bool) or not isinstance(sweep_seed, int) or sweep_seed < 0:
        raise SpecError(f"{source}: sweep_seed = {sweep_seed!r} should be an integer >= 0")
    search = _parse_search(data, source)

    base, recipe = _parse_base(data, source)
    grid = _parse_grid(data, source)
    random, n_trials = _parse_random(data, source, grid, search.sampler)
    scale_by = _parse_scale_by(data, source)
    halving = _parse_halving(data, source)

    spec = SweepSpec(
        name=name,
        description=description,
        seeds=seeds,
        sweep_seed=sweep_seed,
        base=dict(base, **({"recipe": recipe} if recipe is not None else {})),
        grid=grid,
        random=random,
        n_trials=n_trials,
        scale_by=scale_by,
        source=source,
        text=text,
        halving=halving,
        search=search,
    )
    if search.sampler == "tpe":
        _check_tpe(data, spec)
    if expand:
        if search.sampler == "tpe":
            spec.probes = [_valid(spec, spec.resolve(p)) for p in probe_points(spec)]
            _check_metric(spec, search.metric, "search", spec.probes)
        else:
            spec.trials = expand_trials(spec)
        if halving is not None:
            _check_metric(spec, halving.metric, "halving", spec.trials)
    return spec


def _parse_base(data: dict[str, Any], source: str) -> tuple[dict[str, Any], str | None]:
    """[base]: the training keys every trial starts from, and the recipe they lay over."""
    where = f"{source} [base]"
    base_raw = _flatten_base(_table(data, "base", source), where)
    base: dict[str, Any] = {}
    recipe = base_raw.pop("recipe", None)
    if recipe is not None and not isinstance(recipe, str):
        raise SpecError(f"{where}: recipe = {recipe!r} should be a recipe name")
    for k, v in base_raw.items():
        _check_key(k, where)
        base[k] = _value(k, v, where)
    return base, recipe


def _parse_grid(data: dict[str, Any], source: str) -> dict[str, list[Any]]:
    """[grid]: each key's list of values (a list key's values are lists); no value twice."""
    where = f"{source} [grid]"
    grid: dict[str, list[Any]] = {}
    for k, values in _table(data, "grid", source).items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: {k} = {values!r} should be a non-empty list of values")
        if k == "recipe":
            if not all(isinstance(v, str) for v in values):
                raise SpecError(f"{where}: recipe = {values!r} should be a list of recipe names")
            grid[k] = list(values)
        else:
            _check_key(k, where)
            if field_kind(k) in ("list", "names") and values and not isinstance(values[0], list):
                raise SpecError(
                    f"{where}: {k} = {values!r}: grid values of {k} are lists, e.g. {k} = [[100], [300, 100]]"
                )
            grid[k] = [_value(k, v, where) for v in values]
        if len(set(map(json.dumps, grid[k]))) != len(grid[k]):
            raise SpecError(f"{where}: {k} = {values!r} repeats a value")
    return grid


def _parse_random(
    data: dict[str, Any], source: str, grid: dict[str, list[Any]], sampler: str
) -> tuple[dict[str, dict[str, Any]], int]:
    """[random]: each key's distribution and the number of draws (which TPE takes from [search])."""
    where = f"{source} [random]"
    random_raw = dict(_table(data, "random", source))
    n_trials = random_raw.pop("n_trials", None)
    random: dict[str, dict[str, Any]] = {}
    for k, dist in random_raw.items():
        _check_key(k, where)
        if k in grid:
            raise SpecError(f"{where}: {k} is in [grid] too; sweep it in one of them")
        random[k] = _parse_distribution(k, dist, where)
    if sampler == "tpe":
        if n_trials is not None:
            raise SpecError(f'{where}: n_trials goes in [search] with sampler = "tpe"')
    elif random and n_trials is None:
        raise SpecError(f"{where}: n_trials is missing (how many draws, e.g. n_trials = 20)")
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise SpecError(f"{where}: n_trials = {n_trials!r} should be an integer >= 1")
        if not random:
            raise SpecError(f"{where}: n_trials is set but no key has a distribution")
    n_trials = n_trials or 0
    return random, n_trials


def _parse_scale_by(data: dict[str, Any], source: str) -> dict[str, str]:
    """[scale_by]: real-valued keys multiplied by a numeric key of each trial (lr by batch_size)."""
    where = f"{source} [scale_by]"
    scale_by: dict[str, str] = {}
    for k, by in _table(data, "scale_by", source).items():
        _check_key(k, where)
        if field_kind(k) != "float":
            raise SpecError(f"{where}: {k} is {field_kind(k)}: only real-valued keys can be scaled")
        if not isinstance(by, str):
            raise SpecError(
                f'{where}: {k} = {by!r} should name the key to multiply by, e.g. {k} = "batch_size"'
            )
        _check_key(by, f"{where} {k}")
        if field_kind(by) not in ("int", "float"):
            raise SpecError(f"{where}: {k} = {by!r}: {by} is not a number")
        scale_by[k] = by
    return scale_by


def _parse_halving(data: dict[str, Any], source: str) -> Halving | None:
    if "halving" not in data:
        return None
    where = f"{source} [halving]"
    table = _table(data, "halving", source)
    for k in table:
        if k not in HALVING_KEYS:
            hint = did_you_mean(k, HALVING_KEYS)
            raise SpecError(f"{where}: unknown key {k!r}{hint} ({', '.join(HALVING_KEYS)})")
    metric = table.get("metric", "val_acc")
    if metric not in METRICS:
        raise SpecError(
            f"{where}: metric = {metric!r} should be one of {', '.join(METRICS)}"
            f"{did_you_mean(str(metric), METRICS)} (never a test metric: it would select on the test set)"
        )
    eta = table.get("reduction_factor", 3)
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise SpecError(f"{where}: reduction_factor = {eta!r} should be an integer >= 2")
    fmin = table.get("min_fraction", 1.0 / eta**2)
    if isinstance(fmin, bool) or not isinstance(fmin, int | float) or not 0.0 < fmin < 1.0:
        raise SpecError(f"{where}: min_fraction = {fmin!r} should be a number in (0, 1)")
    return Halving(metric, eta, float(fmin))


def _check_metric(spec: SweepSpec, metric: str, table: str, trials: list[Trial]) -> None:
    """Every trial must measure the metric that ranks it ([halving]) or that TPE is told ([search])."""
    for t in trials:
        c = t.config
        if metric.startswith("val_") and not c.get("val_fraction"):
            raise SpecError(
                f"{spec.source} [{table}]: metric = {metric!r} needs a validation split, but trial "
                f"{t.trial_id} has val_fraction = {c.get('val_fraction')} (set val_fraction in [base])"
            )
        if metric.startswith("train_") and not c.get("train_eval_size"):
            raise SpecError(
                f"{spec.source} [{table}]: metric = {metric!r} needs train_eval_size > 0, but trial "
                f"{t.trial_id} has train_eval_size = {c.get('train_eval_size')}"
            )


def _parse_search(data: dict[str, Any], source: str) -> Search:
    where = f"{source} [search]"
    table = _table(data, "search", source)
    for k, v in table.items():
        if k not in SEARCH_RULES:
            raise SpecError(
                f"{where}: unknown key {k!r}{did_you_mean(k, SEARCH_RULES)} ({', '.join(SEARCH_RULES)})"
            )
        ok, want = SEARCH_RULES[k]
        if not ok(v):
            hint = did_you_mean(v, SAMPLERS if k == "sampler" else METRICS) if isinstance(v, str) else ""
            raise SpecError(f"{where}: {k} = {v!r} should be {want}{hint}")
    search = Search(**table)
    if search.sampler == "random":
        for k in TPE_ONLY:
            if k in table:
                extra = " (random search draws [random] n_trials)" if k == "n_trials" else ""
                raise SpecError(f'{where}: {k} is for sampler = "tpe"{extra}')
        return search
    if "n_trials" not in table:
        raise SpecError(
            f'{where}: sampler = "tpe" needs n_trials (how many trials it draws, e.g. n_trials = 30)'
        )
    if importlib.util.find_spec("optuna") is None:  # found, not imported: the core never loads it
        raise SpecError(f"{where}: sampler = \"tpe\" needs Optuna: pip install 'chainrule[optuna]'")
    return search


def _check_tpe(data: dict[str, Any], spec: SweepSpec) -> None:
    """What sampler = "tpe" cannot take (checked once the rest of the spec is)."""
    source, where = spec.source, f"{spec.source} [search]"
    if not spec.swept_keys:
        raise SpecError(f'{where}: sampler = "tpe" needs a search space: keys in [grid] or [random]')
    if len(spec.seeds) > 1:
        raise SpecError(
            f'{source}: seeds = {data.get("seeds")!r} with sampler = "tpe": TPE is told one result per '
            "configuration, so it takes one seed (seeds = 1 or seeds = [SEED])"
        )
    if spec.halving is not None:
        raise SpecError(f'{source}: [halving] and sampler = "tpe" do not combine (yet): use one of them')


def sampler_of(spec_text: str) -> str:
    """The [search] sampler of a stored spec ("random" if it has none)."""
    try:
        search = tomllib.loads(spec_text).get("search", {})
    except tomllib.TOMLDecodeError:
        return "random"
    return search.get("sampler", "random") if isinstance(search, dict) else "random"


def halving_of(spec_text: str) -> Halving | None:
    """The [halving] table of a stored spec (a resumed sweep reads it from its database)."""
    try:
        data = tomllib.loads(spec_text)
    except tomllib.TOMLDecodeError:
        return None
    try:
        return _parse_halving(data, "the stored spec")
    except SpecError:
        return None


class _Resolver:
    """Resolves points of a spec's search space (swept values, as in the spec) to trials: defaults,
    then the recipe, then [base], then the point (scaled by [scale_by]), then the seed."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.base = {k: v for k, v in spec.base.items() if k != "recipe"}
        self.recipes: dict[str | None, TrainConfig] = {}
        try:
            self.based = layer(self._start(spec.base.get("recipe")), self.base)
        except ConfigError as e:
            raise SpecError(f"{spec.source} [base]: {e}") from None

    def _start(self, recipe: str | None) -> TrainConfig:
        if recipe not in self.recipes:
            try:
                self.recipes[recipe] = load_recipe(recipe) if recipe else TrainConfig()
            except ConfigError as e:
                raise SpecError(f"{self.spec.source}: {e}") from None
        return self.recipes[recipe]

    def trial(self, params: dict[str, Any], seed: int) -> tuple[Trial, str | None]:
        spec, base = self.spec, self.base
        changes = {k: v for k, v in params.items() if k != "recipe"}
        cfg = self.based
        if "recipe" in params:
            cfg = layer(self._start(params["recipe"]), base)
        for k, by in spec.scale_by.items():  # a value the spec gives, in its own units
            if k in changes or k in base:
                factor = getattr(layer(cfg, changes), by)
                changes[k] = float(changes.get(k, base.get(k)) * factor)
        cfg = layer(cfg, changes).replace(seed=seed, name=spec.name, run_dir=None)
        error = None
        try:
            cfg.validate()
        except ConfigError as e:
            desc = ", ".join(f"{k} = {_short(v)}" for k, v in params.items()) or "the base config"
            error = f"{spec.source}: trial with {desc}: {e}"
        config = cfg.to_dict()
        return Trial(trial_id(config), config, seed, dict(params)), error


def _valid(spec: SweepSpec, resolved: tuple[Trial, str | None]) -> Trial:
    trial, error = resolved
    if error is not None:
        raise SpecError(error)
    return trial


def expand_trials(spec: SweepSpec) -> list[Trial]:
    """The trials, seed-major (every configuration once with the first seed, then the next seed),
    each config resolved and validated; duplicates (same id) are kept once."""
    keys = list(spec.grid)
    grid_points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]
    draws = random_points(spec.random, spec.n_trials, spec.sweep_seed) if spec.random else [{}]
    trials: list[Trial] = []
    seen: set[str] = set()
    for seed in spec.seeds:
        for point in grid_points:
            for rnd in draws:
                t = _valid(spec, spec.resolve({**point, **rnd}, seed))
                if t.trial_id in seen:
                    continue
                seen.add(t.trial_id)
                trials.append(t)
    return trials


def probe_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The points a TPE spec is checked at: every key at its first value (a grid's first, a choice's
    first, a range's low end), and each other value the spec names (each grid value and choice, each
    range's high end) in turn with the rest at their first."""
    named: dict[str, list[Any]] = dict(spec.grid)
    for k, dist in spec.random.items():
        ((_, args),) = dist.items()
        named[k] = list(args)  # a choice's values, or a range's [low, high]
    first = {k: values[0] for k, values in named.items()}
    points, seen = [first], {json.dumps(first, sort_keys=True)}
    for k, values in named.items():
        for v in values[1:]:
            p = dict(first, **{k: v})
            if json.dumps(p, sort_keys=True) not in seen:
                seen.add(json.dumps(p, sort_keys=True))
                points.append(p)
    return points


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check the spec file `path` (errors name the file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"sweep spec {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read sweep spec {path}: {e}") from None
    return parse_spec(text, source=str(path))


# --------------------------------------------------------------------------------------------------
# shipped specs: chainrule/sweeps/<name>.toml


def _spec_dir() -> Any:
    return resources.files("chainrule") / "sweeps"


def spec_names() -> list[str]:
    """Names of the shipped sweep specs."""
    root = _spec_dir()
    if not root.is_dir():
        return []
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def spec_text(name: str) -> str:
    names = spec_names()
    if name not in names:
        hint = did_you_mean(name, names)
        raise SpecError(f"unknown sweep spec {name!r}{hint}; `chainrule sweeps` lists them")
    return (_spec_dir() / f"{name}.toml").read_text(encoding="utf-8")
