"""Training: config and recipes, data preparation, the trainer loop, checkpoints, run folders.

Where things live: `config` (fields, recipes, `layer`), `prepare` (data for the trainer), `trainer`
(the loop) with `callbacks` (its hooks), `registry` + `engine` (engines as plug-ins: name ->
"module:Class", the interface with `saved_logits` for a saved model; and the optimizers by name),
`builders` (what every engine builds from a config), `numpy_engine` / `torch_engine`, `run` (run
folders, evaluate, predict), `compare`, `budget`, `precision`. The config's choices are the
registries' keys: engines and optimizers here, data sets in `chainrule.data.registry`, networks in
`chainrule.torch_ref.catalog`, schedules in `chainrule.optim`; each field declares its own range.

from chainrule.train import TrainConfig, train_run
result = train_run(TrainConfig(epochs=3))       # writes runs/<timestamp>-mnist/
print(result.summary["final"]["test_acc"])
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig, dumps, from_dict, load_recipe, load_toml, recipe_names
from .engine import Engine, make_engine
from .history import EarlyStopping, History, read_metrics
from .prepare import Prepared, RawData, load_raw, prepare, resolve_data_root, synthetic
from .run import RunResult, evaluate_run, load_run, predict_run, train_run
from .trainer import (
    FitResult,
    RunStatus,
    Trainer,
    TrainingDiverged,
    build_model,
    build_optimizer,
    build_schedule,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "EarlyStopping",
    "Engine",
    "FitResult",
    "History",
    "Prepared",
    "RawData",
    "RunResult",
    "RunStatus",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "build_model",
    "build_optimizer",
    "build_schedule",
    "dumps",
    "evaluate_run",
    "from_dict",
    "load_checkpoint",
    "load_raw",
    "load_recipe",
    "load_run",
    "load_toml",
    "make_engine",
    "predict_run",
    "prepare",
    "read_metrics",
    "recipe_names",
    "resolve_data_root",
    "save_checkpoint",
    "synthetic",
    "train_run",
]
