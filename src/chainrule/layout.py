"""What chainrule's folders hold, by name: the one place that knows their file names.

A run folder (`chainrule train`, `chainrule.fit`, a sweep's trial), every file written atomically:

    config.toml       CONFIG       the resolved config (`chainrule train --config` reproduces the run)
    preprocess.json   PREPROCESS   data set, classes, image shape, the standardization mean/std
    checkpoint.npz    CHECKPOINT   resumable state (model, optimizer, schedule, positions, rng, history)
    metrics.jsonl     METRICS      one record per evaluation (train/val/test loss and accuracy, lr, time)
    metrics.csv       METRICS_CSV  the same records as a table
    steps.csv         STEPS_CSV    per-step training loss and lr, and the windowed mean
    model.npz         MODEL        the final model (`chainrule.nn.load`)
    summary.json      SUMMARY      final and best metrics, status, steps, time
    report.html       REPORT       the plots and tables in one self-contained page
    *.png             PLOTS        the report's plots (LOSS_PNG, ACCURACY_PNG, ...)
    error.log         ERROR_LOG    a sweep trial's traceback when it failed
    tensorboard/      TENSORBOARD_DIR  with --log tensorboard: the event files
    mlflow.json       MLFLOW_RUN   with --log mlflow: the MLflow run the folder logs to
    (while it trains the folder itself is flock-ed: chainrule._io.FolderLock)

A sweep folder (`chainrule sweep`):

    sweep.db          SWEEP_DB     the coordinator's SQLite store (`chainrule.sweep.store.Store`)
    spec.toml         SPEC         the spec the sweep was started from
    trials.csv        TRIALS_CSV   one row per trial
    trials/<id>/      trial_dir()  each trial's run folder
    report.html       REPORT       the sweep's report and its PNGs (HALVING_PNG, by_value_png() ...)
    .lock             LEGACY_LOCK  the lock file of older sweep folders (now the folder itself is locked)

A comparison folder (`chainrule compare`): COMPARE_CSV, COMPARE_PNG and SUMMARY.

Only names and paths live here (no I/O, nothing imported but pathlib), so every layer can use it;
`tests/test_layout.py` fails when one of these names is written as a literal anywhere else in src/.
"""

from __future__ import annotations

from pathlib import Path

# ---- a run folder ---------------------------------------------------------------------------------
CONFIG = "config.toml"
PREPROCESS = "preprocess.json"
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
STEPS_CSV = "steps.csv"
MODEL = "model.npz"
SUMMARY = "summary.json"
REPORT = "report.html"
ERROR_LOG = "error.log"
TENSORBOARD_DIR = "tensorboard"  # `--log tensorboard` (chainrule.train.loggers)
MLFLOW_RUN = "mlflow.json"  # `--log mlflow`: its run id, so a resumed run continues it

LOSS_PNG = "loss.png"
ACCURACY_PNG = "accuracy.png"
LR_PNG = "lr.png"
CONFUSION_PNG = "confusion.png"
PREDICTIONS_PNG = "predictions.png"
TIME_TO_ACCURACY_PNG = "time_to_accuracy.png"
PLOTS = (LOSS_PNG, ACCURACY_PNG, LR_PNG, CONFUSION_PNG, PREDICTIONS_PNG, TIME_TO_ACCURACY_PNG)

# ---- a sweep folder -------------------------------------------------------------------------------
SWEEP_DB = "sweep.db"
SPEC = "spec.toml"
TRIALS_CSV = "trials.csv"
TRIALS_DIR = "trials"
HALVING_PNG = "halving.png"
LEGACY_LOCK = ".lock"

# ---- a comparison folder --------------------------------------------------------------------------
COMPARE_CSV = "compare.csv"
COMPARE_PNG = "compare.png"

# every fixed name above (what the stray-literal test looks for)
NAMES = (
    CONFIG, PREPROCESS, CHECKPOINT, METRICS, METRICS_CSV, STEPS_CSV, MODEL, SUMMARY, REPORT, ERROR_LOG,
    MLFLOW_RUN,
    *PLOTS, SWEEP_DB, SPEC, TRIALS_CSV, TRIALS_DIR, HALVING_PNG, LEGACY_LOCK, COMPARE_CSV, COMPARE_PNG,
)  # fmt: skip


def is_run_folder(path: str | Path) -> bool:
    """Whether `path` is a run folder (it has a config.toml)."""
    return (Path(path) / CONFIG).is_file()


def is_sweep_folder(path: str | Path) -> bool:
    """Whether `path` is a sweep folder (it has a sweep.db)."""
    return (Path(path) / SWEEP_DB).is_file()


def trial_dir(sweep_dir: str | Path, trial_id: str) -> Path:
    """The run folder of trial `trial_id` of the sweep in `sweep_dir`."""
    return Path(sweep_dir) / TRIALS_DIR / trial_id


def sweep_of_trial(run_dir: str | Path) -> Path | None:
    """The sweep folder `run_dir` is a trial of (`<sweep>/trials/<id>`), or None."""
    parent = Path(run_dir).parent
    return parent.parent if parent.name == TRIALS_DIR and is_sweep_folder(parent.parent) else None


def by_value_png(metric: str, key: str) -> str:
    """A sweep report's plot of `metric` against the values of the swept `key`."""
    return f"{metric}_by_{key}.png"


def curves_png(metric: str) -> str:
    """A sweep report's plot of `metric`'s curves, a band over seeds per configuration."""
    return f"curves_{metric}.png"


def heatmap_png(row_key: str, col_key: str) -> str:
    """A sweep report's heatmap of the metric over two swept keys."""
    return f"heatmap_{row_key}_{col_key}.png"
