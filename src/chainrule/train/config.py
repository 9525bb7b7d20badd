"""The training configuration: one flat dataclass, TOML in and out, and the shipped recipes.

Resolution order (later wins): the defaults below (the tuned MNIST setup that plain
`chainrule train` runs), a recipe (`--recipe NAME`), a config file (`--config file.toml`),
then command-line flags. Every field is a CLI flag (`hidden_sizes` -> `--hidden-sizes`).

A config file may be flat (`lr = 0.1`) or grouped in tables (`[optim]` then `lr = 0.1`): tables are
only for readability and are flattened on load.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from chainrule import layout
from chainrule._io import did_you_mean
from chainrule.data.registry import SPECS as DATASET_SPECS
from chainrule.optim.schedules import SCHEDULES
from chainrule.torch_ref.catalog import BATCH_NORM_IMPLS as TORCH_BATCH_NORMS
from chainrule.torch_ref.catalog import NETWORKS

from .registry import ENGINES, load_engine
from .registry import OPTIMIZERS as OPTIMIZER_REGISTRY

DATASETS = tuple(DATASET_SPECS)  # the registered data sets (chainrule.data.registry), generated ones too
ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "elu")
INITS = ("torch", "normal", "zeros", "xavier_uniform", "xavier_normal", "he_normal")
OPTIMIZERS = tuple(OPTIMIZER_REGISTRY)
MONITORS = ("val_loss", "val_acc")
PREPROCESS = ("standardize", "center", "scale", "center255")
DTYPES = ("float32", "float64")
BACKENDS = ENGINES.keys()  # live: an engine registered later is a valid backend too
MODELS = ("mlp", *NETWORKS)  # chainrule.nn's MLP, and the torch reference's networks by name
DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("auto", "fp32", "bf16")
BATCH_NORM_IMPLS = tuple(TORCH_BATCH_NORMS)
LOGGERS = ("tensorboard", "mlflow")  # `--log`: chainrule.train.loggers, each an optional extra
# fields that say where a run goes, how it is described and how its data is found, not what it
# trains: a sweep leaves them out of a trial's id, the CLI out of "differs from the default"
BOOKKEEPING = (
    "name",
    "description",
    "out_dir",
    "run_dir",
    "data_dir",
    "download",
    "log",
    "mlflow_uri",
    "mlflow_experiment",
)


class ConfigError(ValueError):
    """A config value, key or file is invalid. The message is one line that names the problem."""


def _f(
    default: Any,
    help: str,
    group: str,
    choices: Collection[str] | None = None,
    within: str | None = None,
    **kw: Any,
) -> Any:
    """A config field: its default, `--help` line and group, and its constraint, declared here and
    checked by `validate`: `choices` (names) or `within` (a range: ">= 0", "> 0", "[0, 1)", "(0, 1]";
    None passes where the field is optional)."""
    meta = {"help": help, "group": group, "choices": choices, "within": within}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass
class TrainConfig:
    """Everything a training run needs; `config.toml` in a run folder is this, resolved."""

    # ---- run -----------------------------------------------------------------------------------
    name: str = _f("mnist-fast", "run name (the run folder is <out-dir>/<timestamp>-<name>)", "run")
    description: str = _f("", "free text shown in the report", "run")
    seed: int = _f(
        0, "seed for the split, initialization, shuffling, dropout and augmentation", "run", within=">= 0"
    )
    out_dir: str = _f("runs", "folder that receives the run folder", "run")
    run_dir: str | None = _f(None, "exact run folder to write (default <out-dir>/<timestamp>-<name>)", "run")
    log: list[str] = _f(
        [],
        "experiment trackers, several allowed (--log tensorboard mlflow): tensorboard writes event files to "
        "RUN/tensorboard/ (pip install 'chainrule[tensorboard]'), mlflow logs params, metrics and the run "
        "folder's files to --mlflow-uri (pip install 'chainrule[mlflow]')",
        "run",
        LOGGERS,
    )
    mlflow_uri: str = _f(
        "sqlite:///mlflow.db",
        "MLflow tracking URI of --log mlflow: a SQLite file (relative to the current folder) or a server "
        "(http://127.0.0.1:5000)",
        "run",
    )
    mlflow_experiment: str = _f("chainrule", "MLflow experiment of --log mlflow (created if missing)", "run")

    # ---- data ----------------------------------------------------------------------------------
    dataset: str = _f("mnist", "data set", "data", DATASETS)
    data_dir: str | None = _f(
        None,
        "data folder (default: $CHAINRULE_DATA, ../shared/datasets if present, then the cache folder)",
        "data",
    )
    download: bool = _f(
        False, "download the data set from its canonical source when it is not found (md5 checked)", "data"
    )
    val_fraction: float = _f(
        0.1, "fraction of the training set held out for validation (0 = none)", "data", within="[0, 1)"
    )
    preprocess: str = _f(
        "standardize",
        "input transform: standardize = (x/255 - mean)/std per channel; center = x/255 - mean; "
        "scale = x/255; center255 = x - mean on the 0..255 scale (UvA's cifar10_utils)",
        "data",
        PREPROCESS,
    )
    random_crop: bool = _f(
        False, "augment: random crop after padding by --crop-padding pixels (see --crop-fill)", "data"
    )
    random_flip: bool = _f(False, "augment: random horizontal flip (CIFAR-10; not for digits)", "data")
    alternate_flip: bool = _f(
        False,
        "augment, with --random-flip: flip each image at random in the first epoch, then the other "
        "way in each next epoch (airbench's alternating flip: every image is seen both ways)",
        "data",
    )
    crop_padding: int = _f(4, "padding of the random crop", "data", within=">= 0")
    crop_fill: str = _f(
        "mean",
        "what the random crop pads with: mean = the channel means (0 after standardization), "
        "reflect = the image mirrored at its edges (airbench's translate)",
        "data",
        ("mean", "reflect"),
    )
    drop_last: bool = _f(
        False,
        "drop each epoch's last, smaller batch (every step sees --batch-size samples; the dropped "
        "samples change from epoch to epoch with the shuffle)",
        "data",
    )

    # ---- model ---------------------------------------------------------------------------------
    hidden_sizes: list[int] = _f(
        [512], "hidden layer widths, e.g. --hidden-sizes 1000 300 (none: softmax regression)", "model"
    )
    activation: str = _f("relu", "hidden activation", "model", ACTIVATIONS)
    init: str = _f("torch", "weight initialization", "model", INITS)
    init_std: float | None = _f(None, "std for --init normal (default 1e-4)", "model", within="> 0")
    dropout: float = _f(0.0, "dropout probability after each hidden activation", "model", within="[0, 1)")
    batch_norm: bool = _f(False, "BatchNorm1d after each hidden linear layer", "model")
    dtype: str = _f("float32", "parameter and data dtype", "model", DTYPES)

    # ---- engine --------------------------------------------------------------------------------
    backend: str = _f(
        "numpy", "engine under the trainer: numpy (chainrule.nn) or torch (PyTorch)", "engine", BACKENDS
    )
    threads: int | None = _f(
        None, "CPU threads for BLAS / torch (default: the library's own choice)", "engine", within=">= 1"
    )

    # ---- torch engine only: the image models and their tricks ----------------------------------
    model: str = _f("mlp", "network (mlp: --hidden-sizes, --activation, ...)", "torch", MODELS)
    device: str = _f("cpu", "torch device (auto: cuda when available)", "torch", DEVICES)
    precision: str = _f(
        "auto",
        "torch: fp32, or bf16 autocast for matrix products; auto times a few steps of both and takes "
        f"bf16 only when it is at least 10% faster here (the run's {layout.CONFIG} records the choice)",
        "torch",
        PRECISIONS,
    )
    batch_norm_impl: str = _f(
        "torch",
        "torch: which BatchNorm the MLP uses: torch (nn.BatchNorm1d), autograd (chainrule.torch_ref."
        "BatchNormAutograd) or manual (BatchNormManual, hand-written backward)",
        "torch",
        BATCH_NORM_IMPLS,
    )
    widths: list[int] = _f(
        [],
        "conv group widths of --model fastnet (e.g. --widths 64 256 256; empty: the network's default)",
        "torch",
    )
    label_smoothing: float = _f(
        0.0, "torch: label smoothing of the cross-entropy (0 = none)", "torch", within="[0, 1)"
    )
    tta: int = _f(
        0,
        "torch image models: test-time augmentation of the final evaluation (0 none, 1 flip, 2 flip and "
        "1-pixel shifts; evaluations during training use none, to keep them cheap)",
        "torch",
    )
    bias_lr_scale: float = _f(
        1.0,
        "torch image models: lr factor of the BatchNorm shifts (their weight decay is divided by it)",
        "torch",
        within="> 0",
    )
    lookahead: bool = _f(
        False,
        "torch: lookahead with an EMA of the weights every --lookahead-every steps (fast CNN recipe)",
        "torch",
    )
    micro_batch: int = _f(
        0,
        "torch: forward and backward each batch in chunks of this many samples and step once "
        "(gradient accumulation: a large batch at the speed of a small one; BatchNorm normalizes "
        "each chunk); 0 = the whole batch",
        "torch",
        within=">= 0",
    )
    lookahead_every: int = _f(
        5,
        "torch: optimizer steps between lookahead updates (each update decays by 0.95^5 x progress^3; "
        "at batch B, 5 x 1024 / B keeps airbench's averaging horizon in images)",
        "torch",
        within=">= 1",
    )

    # ---- optimizer -----------------------------------------------------------------------------
    optimizer: str = _f(
        "sgd",
        "optimizer (muon, torch only: Muon for the weight matrices and convolutions, SGD with --lr, "
        "--momentum, --nesterov, --weight-decay for biases, BatchNorm and the output layer)",
        "optim",
        OPTIMIZERS,
    )
    lr: float = _f(0.1, "(initial) learning rate", "optim", within="> 0")
    momentum: float = _f(
        0.9, "momentum (sgd, rmsprop; PyTorch convention; 0 = plain SGD)", "optim", within="[0, 1)"
    )
    nesterov: bool = _f(False, "Nesterov momentum (sgd)", "optim")
    weight_decay: float = _f(0.0, "optimizer weight decay (decoupled for adamw)", "optim", within=">= 0")
    beta1: float = _f(0.9, "Adam beta1", "optim", within="[0, 1)")
    beta2: float = _f(0.999, "Adam beta2", "optim", within="[0, 1)")
    muon_lr: float = _f(
        0.02,
        "muon: learning rate of the orthogonalized updates (follows the schedule)",
        "optim",
        within=">= 0",
    )
    muon_momentum: float = _f(0.95, "muon: momentum of the Muon part (Nesterov)", "optim", within="[0, 1)")
    muon_ns_steps: int = _f(5, "muon: Newton-Schulz iterations per update", "optim", within=">= 1")
    muon_normalize: bool = _f(
        False,
        "muon: keep each filter bank at norm sqrt(out) (for weights followed by BatchNorm, whose "
        "output ignores their scale)",
        "optim",
    )
    l1: float = _f(0.0, "L1 penalty coefficient added to the loss (l1 * sum |w|)", "optim", within=">= 0")
    l2: float = _f(
        0.0, "L2 penalty coefficient added to the loss (see chainrule.nn.Penalty)", "optim", within=">= 0"
    )

    # ---- learning-rate schedule ----------------------------------------------------------------
    schedule: str = _f("cosine", "learning-rate schedule", "schedule", SCHEDULES)
    warmup_steps: int = _f(
        0, "linear warmup steps (cosine), steps up to the peak (triangle)", "schedule", within=">= 0"
    )
    warmup_fraction: float | None = _f(
        None,
        "warmup / peak step as a fraction of the run's steps, rounded (overrides --warmup-steps; "
        "follows --epochs and --time-budget)",
        "schedule",
        within="[0, 1)",
    )
    warmup_start: float = _f(
        0.0, "triangle: the learning rate at step 0, as a fraction of --lr", "schedule", within="[0, 1]"
    )
    decay_rate: float = _f(0.85, "factor for step_decay / exponential / plateau", "schedule", within="(0, 1]")
    decay_steps: int = _f(
        250, "steps between decays (step_decay), time constant (exponential)", "schedule", within=">= 1"
    )
    min_lr: float = _f(0.0, "final learning rate (cosine) and floor (plateau)", "schedule", within=">= 0")
    power: float = _f(0.5, "exponent of inverse_scaling: lr / (1 + step)^power", "schedule", within=">= 0")
    plateau_patience: int = _f(
        2, "evaluations without improvement before the plateau rule decays", "schedule", within=">= 1"
    )
    lr_window: int = _f(
        100,
        "window k of the loss_ratio rule (lr *= mean(last k) / mean(previous k))",
        "schedule",
        within=">= 1",
    )

    # ---- training loop -------------------------------------------------------------------------
    batch_size: int = _f(256, "mini-batch size (1 = per-sample SGD)", "train", within=">= 1")
    epochs: float | None = _f(8.0, "epochs to train (ignored when --steps is set)", "train", within="> 0")
    steps: int | None = _f(None, "optimizer steps to train (overrides --epochs)", "train", within=">= 1")
    time_budget: float | None = _f(
        None,
        "train for this many seconds: a few seconds of timing on this machine fix the number of steps "
        f"(overrides --epochs and --steps; {layout.CONFIG} records the steps)",
        "train",
        within="> 0",
    )

    # ---- evaluation, early stopping and metrics -----------------------------------------------
    eval_every: int = _f(
        0, "evaluate every N steps (0: at the end of each epoch only)", "eval", within=">= 0"
    )
    eval_each_epoch: bool = _f(
        True,
        "also evaluate (and checkpoint) at the end of every epoch "
        "(--no-eval-each-epoch: only every --eval-every steps and at the end)",
        "eval",
    )
    early_stopping: bool = _f(False, "stop when the monitored metric stops improving", "eval")
    monitor: str = _f("val_loss", "metric for early stopping, plateau and best weights", "eval", MONITORS)
    patience: int = _f(
        3, "evaluations with relative improvement below --min-delta before stopping", "eval", within=">= 1"
    )
    min_delta: float = _f(0.001, "relative improvement that counts (0.001 = 0.1%)", "eval", within=">= 0")
    restore_best: bool = _f(True, "with early stopping, restore the best weights at the end", "eval")
    loss_window: int = _f(100, "steps per window of the averaged training-loss curve", "eval", within=">= 1")
    train_eval_size: int = _f(
        10000, "training samples evaluated (eval mode) at each evaluation", "eval", within=">= 0"
    )
    eval_batch_size: int = _f(10000, "batch size for evaluation", "eval", within=">= 1")
    eval_test: bool = _f(
        False,
        "also evaluate the test set at every evaluation (default: the validation set during training, "
        "the test set once, at the end: tuning on test numbers overfits the test set); the seed recipes "
        "that reproduce a test-accuracy curve set it",
        "eval",
    )

    # ------------------------------------------------------------------------------------------
    def validate(self) -> TrainConfig:
        """Check ranges and choices; raise `ConfigError` naming the field and the value."""
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            v = getattr(self, f.name)
            for item in v if isinstance(v, list) else [v]:  # a list of names: each is a choice
                if choices and item not in choices:
                    hint = did_you_mean(str(item), choices)
                    raise ConfigError(f"{f.name} = {item!r} is not one of {', '.join(choices)}{hint}")
        for f in dataclasses.fields(self):  # inf/nan pass the range checks below (inf > 0)
            v = getattr(self, f.name)
            if field_kind(f.name) == "float" and v is not None and not math.isfinite(v):
                raise ConfigError(f"{f.name} = {v!r} is invalid: it must be a finite number")
            within = f.metadata.get("within")
            if within and v is not None and not _in_range(v, within):
                raise ConfigError(f"{f.name} = {v!r} is invalid: it must be {_range_text(within)}")
        for key, ok, what in _RULES:
            if key is None:  # the engine's own rules (`check_config`), raising their own line
                ok(self)
            elif not ok(self):
                raise ConfigError(f"{key} = {getattr(self, key)!r} is invalid: it must be {what}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


# the three ways to say how long a run is: a layer that sets one replaces the others below it
LENGTH_KEYS = ("epochs", "steps", "time_budget")


def layer(cfg: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """`cfg` with `changes` laid over it, as the command line and a sweep's layers both do: a layer
    that sets `steps` drops the `epochs` below it and the reverse, and either drops a recipe's
    `time_budget` (`--epochs 2` over a budget recipe trains 2 epochs) unless the layer sets one too."""
    changes = dict(changes)
    if changes.get("steps") is not None and "epochs" not in changes:
        changes["epochs"] = None
    if changes.get("epochs") is not None and "steps" not in changes:
        changes["steps"] = None
    if any(changes.get(k) is not None for k in ("epochs", "steps")) and "time_budget" not in changes:
        changes["time_budget"] = None
    return dataclasses.replace(cfg, **changes)


def _engine_rules(cfg: TrainConfig) -> None:
    """The engine's own part of validation: `check_config(cfg)` of the class `cfg.backend` names
    (imported now; engines are named here, never imported by name)."""
    try:
        cls = load_engine(cfg.backend)
    except ImportError:  # the engine's package is missing: `engine.preflight` names what to install
        return
    check = getattr(cls, "check_config", None)
    if check is not None:
        check(cfg)


def _uses_batch_norm(c: TrainConfig) -> bool:
    return c.batch_norm or c.model != "mlp"  # the image models have batch norm


def _needs_val(c: TrainConfig) -> bool:
    return c.early_stopping or c.schedule == "plateau"


def _has_nesterov(c: TrainConfig) -> bool:
    return "nesterov" in OPTIMIZER_REGISTRY[c.optimizer]


_NESTEROV = ", ".join(k for k, v in OPTIMIZER_REGISTRY.items() if "nesterov" in v)

# The rules over several fields (each field's own range is its `within`), checked in this order:
# (the key the message names, the rule, what the key must be); key None is the engine's part.
_RULES: list[tuple[str | None, Callable[[TrainConfig], Any], str]] = [
    ("log", lambda c: len(set(c.log)) == len(c.log), "a list without repeats"),
    ("mlflow_uri", lambda c: c.mlflow_uri.strip() != "", "non-empty"),
    ("mlflow_experiment", lambda c: c.mlflow_experiment.strip() != "", "non-empty"),
    (
        "batch_size",
        lambda c: not _uses_batch_norm(c) or c.batch_size > 1,
        "> 1 with batch norm (it cannot normalize a batch of one sample)",
    ),
    (
        "micro_batch",
        lambda c: not _uses_batch_norm(c) or c.micro_batch != 1,
        "> 1 with batch norm (it cannot normalize a chunk of one sample)",
    ),
    ("name", lambda c: c.name.strip() != "" and "/" not in c.name, "a non-empty name without '/'"),
    (None, _engine_rules, ""),
    (
        "precision",
        lambda c: c.precision != "bf16" or c.dtype == "float32",
        "fp32 or auto with --dtype float64",
    ),
    ("tta", lambda c: c.tta in (0, 1, 2), "0, 1 or 2"),
    ("widths", lambda c: all(w > 0 for w in c.widths), "positive integers"),
    ("widths", lambda c: not c.widths or c.model.startswith("fastnet"), "used only with fastnet"),
    (
        "model",
        lambda c: c.model != "mlp" or (c.tta == 0 and c.bias_lr_scale == 1.0),
        "an image model (vgg, fastnet) for --tta and --bias-lr-scale",
    ),
    ("alternate_flip", lambda c: not c.alternate_flip or c.random_flip, "used with --random-flip"),
    (
        "hidden_sizes",
        lambda c: all(isinstance(h, int) and h > 0 for h in c.hidden_sizes),
        "positive integers",
    ),
    (
        "nesterov",
        lambda c: not c.nesterov or (_has_nesterov(c) and c.momentum > 0),
        f"used only with --optimizer {_NESTEROV.replace(', ', ' or ')} and --momentum > 0",
    ),
    ("epochs", lambda c: c.steps is not None or c.epochs is not None, "set (or set --steps)"),
    (
        "eval_each_epoch",
        lambda c: c.eval_each_epoch or c.eval_every > 0 or not _needs_val(c),
        "on, or --eval-every set, when early stopping or the plateau schedule needs evaluations",
    ),
    (
        "val_fraction",
        lambda c: not _needs_val(c) or c.val_fraction > 0,
        "> 0 when early stopping or the plateau schedule monitors the validation set",
    ),
]


def _in_range(value: float, within: str) -> bool:
    """`value` within a field's declared range: ">= 0", "> 0" or an interval "[0, 1)", "(0, 1]"."""
    if within[0] in "[(":
        lo, hi = (float(t) for t in within[1:-1].split(","))
        above = value >= lo if within[0] == "[" else value > lo
        return above and (value <= hi if within[-1] == "]" else value < hi)
    op, bound = within.split()
    return value >= float(bound) if op == ">=" else value > float(bound)


def _range_text(within: str) -> str:
    return f"in {within}" if within[0] in "[(" else within


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


_dataclass_init = TrainConfig.__init__


def _checked_init(self: TrainConfig, *args: Any, **keys: Any) -> None:
    """TrainConfig(...) checks every key and type as a config file and the command line do: an unknown
    key names the closest one, a wrong type names the key and the type it must be (`coerce`). The
    ranges and combinations are `validate()`'s: a config is built in layers that may pass through
    states a finished config could not be in (a recipe's epochs before a layer's steps)."""
    if len(args) > len(FIELDS):
        raise ConfigError(f"TrainConfig takes at most {len(FIELDS)} positional values, got {len(args)}")
    given = dict(zip(FIELDS, args, strict=False))
    for k in given.keys() & keys.keys():
        raise ConfigError(f"TrainConfig: {k} given twice")
    given.update(keys)
    _dataclass_init(self, **{k: coerce(k, v, "TrainConfig") for k, v in given.items()})


TrainConfig.__init__ = _checked_init  # type: ignore[method-assign]


def field_kind(name: str) -> str:
    """'int', 'float', 'bool', 'str', 'list' (of int), 'names' (a list of str); the annotation with
    `| None` stripped."""
    ann = str(FIELDS[name].type).replace(" | None", "")
    return {"list[int]": "list", "list[str]": "names"}.get(ann, ann)


def optional(name: str) -> bool:
    return "None" in str(FIELDS[name].type)


def coerce(name: str, value: Any, source: str = "config") -> Any:
    """Check one value against its field's type, converting ints to floats where a float is meant."""
    if name not in FIELDS:
        raise ConfigError(f"{source}: unknown key {name!r}{did_you_mean(name, FIELDS)}")
    kind = field_kind(name)
    if value is None or (isinstance(value, str) and value.lower() == "none" and kind != "str"):
        if optional(name):
            return None
        raise ConfigError(f"{source}: {name} cannot be empty")
    what = {"list": "a list of integers", "names": "a list of names"}.get(kind, kind)
    bad = ConfigError(f"{source}: {name} = {value!r} should be {what}")
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float
            raise ConfigError(
                f"{source}: {name} = {len(str(abs(value)))}-digit integer is too large"
            ) from None
    if kind == "str":
        if not isinstance(value, str):
            raise bad
        return value
    if kind == "list":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise bad
        return list(value)
    if kind == "names":  # `log = "tensorboard,mlflow"` is read as the list it names
        if isinstance(value, str):
            value = split_names(value)
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise bad
        return list(value)
    raise AssertionError(kind)


def split_names(text: str) -> list[str]:
    """'tensorboard,mlflow' or 'tensorboard mlflow' -> ['tensorboard', 'mlflow']."""
    return [p for p in text.replace(",", " ").split() if p]


def from_dict(data: dict[str, Any], base: TrainConfig | None = None, source: str = "config") -> TrainConfig:
    """Apply `data` (flat, or with one level of tables) on top of `base` (default: the defaults)."""
    flat: dict[str, Any] = {}
    where: dict[str, str] = {}  # key -> the table it came from, to refuse a key given twice
    for k, v in data.items():
        items = v.items() if isinstance(v, dict) else [(k, v)]
        table = (
            (f"[{k}]" if k.replace("-", "_").isidentifier() else f"table {k!r}")
            if isinstance(v, dict)
            else "the top level"
        )
        for k2, v2 in items:
            if k2 in flat:
                raise ConfigError(f"{source}: key {k2!r} is given twice (in {where[k2]} and in {table})")
            flat[k2], where[k2] = v2, table
    changes = {k: coerce(k, v, source) for k, v in flat.items()}
    cfg = dataclasses.replace(base or TrainConfig(), **changes)
    return cfg


def load_toml(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a TOML config file on top of `base`; errors name the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    return from_dict(data, base, source=str(path))


def changed_keys(cfg: TrainConfig, skip: Collection[str] = ()) -> dict[str, Any]:
    """The keys of `cfg` whose values differ from the defaults (`plain chainrule train`'s), but `skip`."""
    default = TrainConfig()
    return {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name not in skip and getattr(cfg, f.name) != getattr(default, f.name)
    }


def differs_from_default(cfg: TrainConfig) -> bool:
    """Whether `cfg` trains something other than the default recipe (another seed of it does not)."""
    return bool(changed_keys(cfg, skip=(*BOOKKEEPING, "seed")))


def resolve(
    recipe: str | None = None,
    config_file: str | Path | None = None,
    changes: dict[str, Any] | None = None,
    source: str = "command line",
    base: TrainConfig | None = None,
) -> TrainConfig:
    """The config of `chainrule train` and `chainrule.fit`: `base` (default: the defaults), then the
    recipe, then the config file, then `changes` (checked as coming from `source`), validated. A run
    is named after its recipe, else (when it is not the default recipe) its data set."""
    changes = dict(changes or {})
    cfg = base if base is not None else TrainConfig()
    if recipe:
        cfg = load_recipe(recipe, cfg)
        if "name" not in changes and cfg.name == TrainConfig.name:
            cfg = cfg.replace(name=recipe)
    if config_file:
        cfg = load_toml(config_file, cfg)
    cfg = layer(cfg, {k: coerce(k, v, source) for k, v in changes.items()})
    if "name" not in changes and cfg.name == TrainConfig.name and differs_from_default(cfg):
        cfg = cfg.replace(name=cfg.dataset)  # a run that is not the default recipe is not named after it
    return cfg.validate()


# --------------------------------------------------------------------------------------------------
# TOML output (tomllib reads only; the values here are flat scalars and integer lists)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


GROUP_TITLES = {  # the sections of `chainrule train --help-all` and of --print-config
    "run": "run: name, seed and output folder",
    "data": "data and augmentation",
    "model": "model (MLP)",
    "engine": "engine",
    "torch": "torch engine and CNNs (--backend torch)",
    "optim": "optimizer and penalties",
    "schedule": "learning-rate schedule",
    "train": "training length",
    "eval": "evaluation, early stopping and metrics",
}


def dumps(cfg: TrainConfig) -> str:
    """The config as flat TOML with one comment per key; unset (None) keys are commented out."""
    lines = ["# chainrule training config (flat keys; `chainrule train --config this.toml`)"]
    group = None
    for f in dataclasses.fields(cfg):
        if f.metadata["group"] != group:
            group = f.metadata["group"]
            lines.append(f"\n# ---- {GROUP_TITLES[group]} ----")
        v = getattr(cfg, f.name)
        help_ = f.metadata["help"]
        if f.metadata.get("choices"):
            help_ += f" ({' | '.join(f.metadata['choices'])})"
        if v is None:
            lines.append(f"# {f.name} =   # unset: {help_}")
        else:
            lines.append(f"{f.name} = {_toml_value(v)}   # {help_}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# recipes: TOML files shipped in chainrule/recipes/


def _recipe_dir() -> Any:
    return resources.files("chainrule") / "recipes"


def recipe_names() -> list[str]:
    """Names of the shipped recipes (`chainrule/recipes/<name>.toml`)."""
    root = _recipe_dir()
    if not root.is_dir():
        return []
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def recipe_text(name: str) -> str:
    names = recipe_names()
    if name not in names:
        hint = did_you_mean(name, names)
        raise ConfigError(f"unknown recipe {name!r}{hint}; `chainrule recipes` lists them")
    return (_recipe_dir() / f"{name}.toml").read_text(encoding="utf-8")


def load_recipe(name: str, base: TrainConfig | None = None) -> TrainConfig:
    """The named recipe on top of `base` (default: the defaults)."""
    try:
        data = tomllib.loads(recipe_text(name))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"recipe {name}: invalid TOML: {e}") from None
    return from_dict(data, base, source=f"recipe {name}")
