"""A training run from config to run folder, and `evaluate` / `predict` on a finished run.

Run folder (default `runs/<YYYYmmdd-HHMMSS>-<name>`), every file written atomically: its files
are named in `chainrule.layout` (config.toml, preprocess.json, checkpoint.npz, metrics.jsonl/csv,
steps.csv, model.npz, the PNGs, summary.json, report.html; with `--log`, tensorboard/ and
mlflow.json: `chainrule.train.loggers`).
"""

from __future__ import annotations

import errno
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import numpy as np

from chainrule import layout
from chainrule._io import FolderBusy, FolderLock, atomic_write_text, holds_files

from .budget import BudgetPlan, plan_budget
from .config import ConfigError, TrainConfig, changed_keys, dumps, load_toml
from .engine import engine_class, preflight
from .loggers import RunLogger, make_loggers, require
from .precision import PrecisionChoice, chooses_precision, measure_precision
from .prepare import Prepared, RawData, load_raw, prepare, transform
from .progress import Progress
from .trainer import FitResult, Trainer, build_schedule


@dataclass
class RunResult:
    run_dir: Path
    status: str
    message: str
    summary: dict[str, Any]


def new_run_dir(cfg: TrainConfig) -> Path:
    """`cfg.run_dir` if set, else a fresh `<out_dir>/<timestamp>-<name>` (suffixed if taken)."""
    if cfg.run_dir:
        path = Path(cfg.run_dir)
        if (path / layout.CONFIG).exists():
            raise ConfigError(f"run folder {path} already holds a run; use --resume {path} or another folder")
        if path.exists() and not path.is_dir():
            raise ConfigError(f"run_dir {path} is a file, not a folder")
        if path.is_dir() and holds_files(path):  # the user's own files are never overwritten
            raise ConfigError(
                f"run_dir {path} is not empty and is not a chainrule run folder; name a new or empty folder"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path(cfg.out_dir)
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = base / (f"{stamp}-{cfg.name}" + (f"-{i}" if i else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"cannot create a run folder in {base}")


def _remove_unstarted(run_dir: Path) -> None:
    """Remove what `train_run` wrote into a new run folder before training could start, then the
    folder if nothing else is in it (a `--run-dir` the user filled is left alone)."""
    for name in (layout.CONFIG, layout.PREPROCESS, layout.CHECKPOINT):
        (run_dir / name).unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError:
        pass


def _preprocess_info(cfg: TrainConfig, data: Prepared) -> dict[str, Any]:
    return {
        "dataset": cfg.dataset,
        "classes": data.classes,
        "image_shape": list(data.image_shape),
        "mean": data.mean.tolist(),
        "std": data.std.tolist(),
        "dtype": cfg.dtype,
        "preprocess": cfg.preprocess,
    }


T = TypeVar("T")


def _lock_run(run_dir: Path, held: list[FolderLock]) -> None:
    """Hold `run_dir`'s lock until `train_run` returns: two processes never write one run."""
    try:
        held.append(FolderLock(run_dir, "training"))
    except FolderBusy as e:
        raise ConfigError(str(e)) from None


def train_run(cfg: TrainConfig, resume: str | Path | None = None, **options: Any) -> RunResult:
    """Train `cfg` into a new run folder, or continue the run in `resume`; the folder is locked
    while it trains (a second process is refused). The options are `_train_run`'s."""
    held: list[FolderLock] = []
    try:
        return _train_run(cfg, resume, held, **options)
    except OSError as e:
        if e.errno not in DISK_FULL or not held:
            raise
        run_dir = held[0].folder
        raise DiskFullError(
            f"{e.strerror}: writing {e.filename or 'a file'} failed; nothing half-written is left, and "
            f"{run_dir} keeps its last checkpoint: free some space, then continue with: "
            f"chainrule train --resume {run_dir}"
        ) from None
    finally:
        for lock in held:
            lock.release()


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, file size limit


class DiskFullError(OSError):
    """A run's file could not be written for lack of space: one line with the resume command."""


def _train_run(
    cfg: TrainConfig,
    resume: str | Path | None,
    held: list[FolderLock],
    quiet: bool = False,
    stream: TextIO | None = None,
    until_step: int | None = None,
    command: str | None = None,
    raw: RawData | None = None,
    plots: bool = True,
    until_fraction: float | None = None,
    data: Prepared | None = None,
    reschedule: bool = False,
    mlflow_parent: dict[str, str] | None = None,
) -> RunResult:
    """Train `cfg` into a new run folder, or continue the run in `resume` (whose config.toml must be
    what `cfg` was resolved from). Returns the folder, how it ended, and the summary.

    `raw` is the data set of `cfg` already loaded (`load_raw(cfg)`): a process that trains many
    runs on the same data (a sweep worker) loads it once. `plots=False` skips the PNGs and
    report.html (a sweep's trials: seconds of matplotlib each); everything else is written.

    `until_step` (or `until_fraction` of the run's steps, rounded up) pauses the run there: it is
    checkpointed, its summary holds the metrics at that point, and `resume` continues it.

    `data` is `prepare(raw, cfg)` already made (a sweep worker reuses it across trials with the
    same split and preprocessing); it is only read.

    A resumed run with more steps than it was started with keeps its learning-rate schedule (a
    cosine or triangle stays at its final value after the old end); `reschedule` rebuilds it for
    the new number of steps. Fewer steps than the run has done are refused.

    `cfg.log`'s loggers (`chainrule.train.loggers`) follow the run; `mlflow_parent` (a sweep's
    parent run, `MlflowRun.ref`) makes its MLflow run a child of that one."""
    stream = stream if stream is not None else sys.stderr
    cfg.validate()
    require(cfg.log)  # a missing extra is one line now, not after the data has loaded
    if resume is not None:  # refused before any data is loaded
        _lock_run(Path(resume), held)
    preflight(cfg)
    t0 = time.perf_counter()
    if data is None:
        if raw is None:
            raw = load_raw(cfg)
        data = prepare(raw, cfg)
    load_time = time.perf_counter() - t0
    cfg, precision, budget = _plan(cfg, data, resume, quiet, stream)
    if resume is not None:
        run_dir = Path(resume)
    else:
        run_dir = new_run_dir(cfg)
        _lock_run(run_dir, held)
    progress = Progress(1, enabled=not quiet, stream=stream)
    trainer, loggers, schedule_note = _start(
        cfg, data, run_dir, progress, resume, held, reschedule, mlflow_parent
    )
    # written once the run is known to start (or continue): a refused resume leaves config.toml as it was
    atomic_write_text(run_dir / layout.CONFIG, dumps(cfg))
    atomic_write_text(run_dir / layout.PREPROCESS, json.dumps(_preprocess_info(cfg, data), indent=1) + "\n")
    header = _header(cfg, data, trainer, run_dir, resume, schedule_note, [precision, budget], loggers, plots)
    for line in header:
        progress.message(line)
    for warning in _config_warnings(cfg, trainer.total_steps):
        print(f"chainrule: warning: {warning}", file=stream, flush=True)
    if until_fraction is not None and until_fraction < 1.0:
        until_step = max(1, math.ceil(until_fraction * trainer.total_steps))
    try:
        result = trainer.fit(until_step=until_step)
        summary = finalize(
            trainer,
            result,
            run_dir,
            load_time=load_time,
            command=command,
            plots=plots,
            extra={
                **{
                    key: asdict(record)
                    for key, record in (("precision", precision), ("time_budget", budget))
                    if record is not None
                },
                "data_files": raw.files if raw is not None else [],
            },
        )
    except BaseException as e:
        for lg in loggers:
            lg.abort(e)
        raise
    for lg in loggers:  # after summary.json: the run folder is complete
        lg.finish(summary)
    return RunResult(run_dir, result.status, result.message, summary)


def _plan(
    cfg: TrainConfig, data: Prepared, resume: str | Path | None, quiet: bool, stream: TextIO
) -> tuple[TrainConfig, PrecisionChoice | None, BudgetPlan | None]:
    """What timing decides before a new run starts: the precision (`--precision auto`, where the
    engine can choose) and the steps that fit `--time-budget`. The config returned holds both, so
    config.toml (and a rerun or resume) repeats them; a resumed run reads the records it started
    with from its summary."""
    precision = None
    if cfg.precision == "auto" and resume is None and chooses_precision(cfg):
        if not quiet:
            print("chainrule: timing a few steps to choose the precision ...", file=stream, flush=True)
        precision = measure_precision(cfg, data)
        cfg = cfg.replace(precision=precision.chosen)
    elif resume is not None:
        precision = _previous_record(Path(resume), "precision", PrecisionChoice)
    budget = None
    if cfg.time_budget is not None and resume is None:
        if not quiet:
            print(
                f"chainrule: timing a few steps to fit the {cfg.time_budget:g} s budget ...",
                file=stream,
                flush=True,
            )
        budget = plan_budget(cfg, data)
        cfg = cfg.replace(time_budget=None, steps=budget.steps, epochs=None)
    elif resume is not None:  # a resumed budget run keeps its plan in summary.json
        budget = _previous_record(Path(resume), "time_budget", BudgetPlan)
    return cfg, precision, budget


def _start(
    cfg: TrainConfig,
    data: Prepared,
    run_dir: Path,
    progress: Progress,
    resume: str | Path | None,
    held: list[FolderLock],
    reschedule: bool,
    mlflow_parent: dict[str, str] | None,
) -> tuple[Trainer, list[RunLogger], str]:
    """The trainer and its loggers, resumed from the run's checkpoint if `resume`. A run that cannot
    start leaves no folder behind, and a refused resume leaves the run's trackers as they were.
    Returns also a note on the resumed schedule for the log line."""
    loggers: list[RunLogger] = []
    try:
        loggers = make_loggers(cfg, run_dir, resume is not None, mlflow_parent, progress.stream)
        trainer = Trainer(cfg, data, run_dir, progress, callbacks=loggers)
    except BaseException:
        for lg in loggers:
            lg.abort(discard=True)
        if resume is None:
            held.pop().release()
            _remove_unstarted(run_dir)
        raise
    progress.total = trainer.total_steps
    schedule_note = ""
    if (
        resume is not None
        and not (run_dir / layout.CHECKPOINT).is_file()
        and not (run_dir / layout.SUMMARY).exists()
    ):
        schedule_note = "; no checkpoint had been written: it starts over"  # e.g. the disk was full
    elif resume is not None:
        try:
            trainer.resume()
            schedule_note = _resume_schedule(trainer, run_dir, reschedule)
        except BaseException:
            for lg in loggers:
                lg.abort(discard=True)
            raise
    return trainer, loggers, schedule_note


def _header(
    cfg: TrainConfig,
    data: Prepared,
    trainer: Trainer,
    run_dir: Path,
    resume: str | Path | None,
    schedule_note: str,
    records: list[Any],
    loggers: list[RunLogger],
    plots: bool,
) -> list[str]:
    """The run's opening lines: data, model, steps, engine and folder; the precision and budget
    records' lines; each logger's; and what the run will lack (plots, a test split)."""
    named = "" if cfg.name == cfg.dataset else f"{cfg.name}: "  # not "mnist: mnist 54001 train"
    lines = [
        f"chainrule: {named}{cfg.dataset} {data.x_train.shape[0]} train / "
        f"{0 if data.y_val is None else data.y_val.size} val / {data.y_test.size} test, "
        f"model {_model_line(cfg, data)}, "
        f"{trainer.total_steps} steps, {trainer.engine.describe()}; run folder {run_dir}"
        + (f" (resumed at step {trainer.step}{schedule_note})" if resume is not None else "")
    ]
    lines += [record.line() for record in records if record is not None]
    lines += [f"chainrule: {lg.line}" for lg in loggers]
    if plots:
        from chainrule.report import plotting_missing

        missing = plotting_missing()
        if missing:
            lines.append(f"{missing}: the run writes everything else, {layout.REPORT} without its plots")
    if data.y_test.size == 0:
        lines.append(
            f"chainrule: {cfg.dataset} has no test split here: training without one (no test metrics)"
        )
    return lines


def _config_warnings(cfg: TrainConfig, total_steps: int) -> list[str]:
    """Settings that are valid but almost certainly not what was meant."""
    out = []
    if cfg.random_flip and cfg.dataset in ("mnist", "fashion-mnist"):
        out.append(
            f"--random-flip on {cfg.dataset}: mirrored digits and clothes are other images (a flip is for "
            "CIFAR-10's photos)"
        )
    warmup = cfg.warmup_steps if cfg.warmup_fraction is None else round(cfg.warmup_fraction * total_steps)
    if cfg.schedule in ("cosine", "triangle") and warmup >= total_steps:
        out.append(
            f"warmup_steps = {warmup} is not below the run's {total_steps} steps: "
            "the lr never leaves the warmup"
        )
    return out


# schedules whose shape depends on the run's number of steps
_LENGTH_DEPENDENT = ("cosine", "triangle")


def _resume_schedule(trainer: Trainer, run_dir: Path, reschedule: bool) -> str:
    """Check a resumed run's new length against what it has done; keep (or with `reschedule`
    rebuild) its schedule. Returns the note for the header."""
    done, old_total, total = trainer.step, trainer.resumed_total_steps, trainer.total_steps
    if total < done:
        raise ConfigError(
            f"--resume {run_dir}: the run has done {done} steps; it cannot be cut to {total} "
            f"(give --steps >= {done}, or none to finish its {old_total})"
        )
    name = trainer.cfg.schedule
    if total == old_total or name not in _LENGTH_DEPENDENT:
        if reschedule:
            raise ConfigError(
                f"--reschedule: nothing to rebuild (the {name} schedule does not depend on the run's "
                f"length, or the length is unchanged at {total} steps)"
            )
        return ""
    if reschedule:
        return (
            f"; {name} schedule rebuilt for {total} steps (--reschedule): lr {trainer.schedule(done):.3g} now"
        )
    trainer.schedule = build_schedule(trainer.cfg, old_total)
    return (
        f"; {name} schedule of its first {old_total} steps kept: lr {trainer.schedule(old_total):.3g} "
        f"from step {old_total} on (--reschedule rebuilds it for {total} steps)"
    )


def _previous_record(run_dir: Path, key: str, cls: type[T]) -> T | None:
    """The `key` record of a run's summary.json (its time-budget plan, its precision choice), so a
    resumed run keeps it."""
    try:
        record = json.loads((run_dir / layout.SUMMARY).read_text()).get(key)
        return cls(**record) if record else None
    except (OSError, ValueError, TypeError):
        return None


def _model_line(cfg: TrainConfig, data: Prepared) -> str:
    if cfg.model != "mlp":
        return (
            f"{cfg.model}"
            + (f" widths {cfg.widths}" if cfg.widths else "")
            + f" on {data.image_shape} images"
        )
    return (
        f"{data.in_features}-{'-'.join(map(str, cfg.hidden_sizes + [data.num_classes]))} {cfg.activation}"
        + (" +BN" if cfg.batch_norm else "")
        + (f" dropout {cfg.dropout}" if cfg.dropout else "")
    )


def finalize(
    trainer: Trainer,
    result: FitResult,
    run_dir: Path,
    load_time: float = 0.0,
    command: str | None = None,
    plots: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write model, metrics, summary and (with `plots`) plots and report for the model as it is now.
    `extra` entries are added to summary.json."""
    cfg, data, hist = trainer.cfg, trainer.data, trainer.history
    trainer.engine.save_model(run_dir / layout.MODEL)
    hist.write(run_dir)
    t_final = time.perf_counter()
    logits = trainer.predict_logits(data.x_test, final=True)
    pred = logits.argmax(axis=1)
    probs = _probs(logits)
    y = data.y_test
    final: dict[str, Any] = {}
    if y.size:  # a data set without a test split (an image tree with only train/) has no test metrics
        final["test_loss"] = _cross_entropy(probs, y)
        final["test_acc"] = float(np.mean(pred == y))
    if data.x_val is not None and data.y_val is not None:
        final["val_loss"], final["val_acc"] = trainer.evaluate(data.x_val, data.y_val, final=True)
    idx = trainer.train_eval_idx
    if idx.size:
        final["train_loss"], final["train_acc"] = trainer.evaluate(data.x_train[idx], data.y_train[idx])
    final_eval_time = time.perf_counter() - t_final
    best_rec = next((e for e in hist.evals if e["step"] == trainer.stopper.best_step), None)
    summary: dict[str, Any] = {
        "name": cfg.name,
        "dataset": cfg.dataset,
        "status": result.status,
        "message": result.message,
        "model": _model_line(cfg, data),
        "parameters": trainer.engine.parameter_count(),
        "engine": trainer.engine.describe(),
        "steps": trainer.step,
        "total_steps": trainer.total_steps,
        "epochs": round(trainer.step / trainer.steps_per_epoch, 4),
        "train_time_s": round(trainer.train_time, 3),
        "load_time_s": round(load_time, 3),
        "final_eval_time_s": round(final_eval_time, 3),
        "final": final,
        "best": {
            "monitor": trainer.monitor,
            "step": trainer.stopper.best_step,
            "value": trainer.stopper.best,
            "record": best_rec,
        },
        "evaluations": len(hist.evals),
        "restored_best": bool(
            cfg.early_stopping
            and cfg.restore_best
            and trainer.best_state is not None
            and result.status in ("completed", "early_stopped")
        ),
        "command": command or f"chainrule train --config {run_dir / layout.CONFIG}",
        **(extra or {}),
    }
    atomic_write_text(run_dir / layout.SUMMARY, json.dumps(_clean(summary), indent=1) + "\n")
    if plots and result.status != "paused":  # a paused run gets its plots and report when it finishes
        _plots_and_report(trainer, run_dir, summary, pred, probs)
    return summary


def _plots_and_report(
    trainer: Trainer, run_dir: Path, summary: dict[str, Any], pred: np.ndarray, probs: np.ndarray
) -> None:
    from chainrule import report

    cfg, data, hist = trainer.cfg, trainer.data, trainer.history
    # the settings that make this run what it is: not where it was written, nor its name
    changed = _clean(changed_keys(cfg, skip=("name", "description", "out_dir", "run_dir")))
    if report.plotting_missing():  # said in the run's header: the report without its plots
        report.write_report(run_dir / layout.REPORT, _clean(summary), cfg.to_dict(), hist.evals, {}, changed)
        return
    y, final = data.y_test, summary["final"]
    loss, lr, name = hist.loss[: hist.steps], hist.lr[: hist.steps], cfg.name
    sections = [  # (file, title, PNG bytes), in the report's order
        (layout.LOSS_PNG, "Loss", report.loss_curves(loss, hist.window, hist.evals, f"{name}: loss")),
        (layout.ACCURACY_PNG, "Accuracy", report.accuracy_curves(hist.evals, f"{name}: accuracy", final)),
        (layout.LR_PNG, "Learning rate", report.lr_curve(lr, f"{name}: learning rate")),
    ]
    if y.size:  # the test set's pictures (none without a test split)
        cm = report.confusion_matrix(y, pred, data.num_classes)
        pick = report.pick_samples(y, pred, n=24, seed=cfg.seed)
        wrong_total, wrong_shown = int(np.sum(y != pred)), int(np.sum(y[pick] != pred[pick]))
        grid_title = (
            f"test images, true / predicted (confidence): {pick.size - wrong_shown} right and "
            f"{wrong_shown} of the {wrong_total} mistakes (red)"
        )
        grid = report.prediction_grid(
            data.raw_test[pick], y[pick], pred[pick], probs[pick, pred[pick]], data.classes, title=grid_title
        )
        sections += [
            (layout.CONFUSION_PNG, "Confusion matrix (test set)", report.confusion_plot(cm, data.classes)),
            (layout.PREDICTIONS_PNG, "Sample test predictions (true / predicted)", grid),
        ]
    if cfg.model != "mlp":  # image models: how fast the accuracy comes
        png = report.time_to_accuracy(hist.evals, f"{name}: time to accuracy")
        sections.append((layout.TIME_TO_ACCURACY_PNG, "Test accuracy against training time", png))
    for fname, _, png in sections:
        report.save_png(png, run_dir / fname)
    images = {title: png for _, title, png in sections}
    report.write_report(run_dir / layout.REPORT, _clean(summary), cfg.to_dict(), hist.evals, images, changed)


def _probs(logits: np.ndarray) -> np.ndarray:
    """Class probabilities in float64 (the test loss and the predictions' confidences)."""
    from chainrule.nn.functional import softmax

    return softmax(logits.astype(np.float64))


def _cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of labels `y` under `probs` (one definition for the summary's test loss
    and `chainrule evaluate`'s)."""
    return float(-np.mean(np.log(np.maximum(probs[np.arange(y.size), y], 1e-300))))


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/Inf become None, NumPy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# --------------------------------------------------------------------------------------------------
# using a finished run


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: TrainConfig
    info: dict[str, Any]
    model: Any


def load_run(run_dir: str | Path) -> LoadedRun:
    """Config, preprocessing and model of a run folder; errors name the missing/damaged file."""
    from chainrule.nn.serialization import file_format, load

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} does not exist")
    if not layout.is_run_folder(run_dir):
        raise ConfigError(f"{run_dir} is not a chainrule run folder (it has no {layout.CONFIG})")
    cfg = load_toml(run_dir / layout.CONFIG)
    info_path = run_dir / layout.PREPROCESS
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{info_path} is missing: is {run_dir} a chainrule run folder?") from None
    except ValueError as e:
        raise ConfigError(f"{info_path} is damaged: {e}") from None
    model_path = run_dir / layout.MODEL
    spec: dict[str, Any] | None = None  # a torch image model's build_cnn arguments
    if not model_path.exists():
        raise ConfigError(
            f"{model_path} is missing (the run has not finished; `chainrule train --resume {run_dir}`)"
        )
    try:
        if file_format(model_path) == "chainrule.torch-model":  # a CNN trained by the torch engine
            try:
                from chainrule.torch_ref.serialization import load_torch_model
            except ImportError:
                raise ConfigError(f"{model_path} is a torch model: pip install 'chainrule[torch]'") from None
            model, spec = load_torch_model(model_path)
        else:
            model = load(model_path)
    except (ValueError, OSError) as e:
        raise ConfigError(str(e)) from None
    _check_model_fits(model, spec, model_path, cfg, info)
    model.eval()
    return LoadedRun(run_dir, cfg, info, model)


def _check_model_fits(
    model: Any, spec: dict[str, Any] | None, model_path: Path, cfg: TrainConfig, info: dict[str, Any]
) -> None:
    """Refuse a model.npz that is not the model config.toml and preprocess.json describe (another
    run's file copied in): its numbers would be confidently wrong."""
    from chainrule.nn import MLP

    classes, shape = len(info["classes"]), [int(s) for s in info["image_shape"]]
    if isinstance(model, MLP):
        has = model.config()
        want = {
            "in_features": int(np.prod(shape)),
            "hidden_sizes": list(cfg.hidden_sizes),
            "out_features": classes,
            "activation": cfg.activation,
            "batch_norm": cfg.batch_norm,
        }
        got = {k: has[k] for k in want}
    elif spec is not None:  # a torch image model: its network's name and shapes
        want = {"name": cfg.model, "in_shape": shape, "num_classes": classes}
        got = {
            "name": spec.get("name"),
            "in_shape": list(spec.get("in_shape", [])),
            "num_classes": spec.get("num_classes"),
        }
    else:  # a plain chainrule.nn model (not an MLP): nothing in the config to check it against
        return
    diff = [f"{k} {got[k]!r} (config: {want[k]!r})" for k in want if got[k] != want[k]]
    if diff:
        raise ConfigError(
            f"{model_path} is not the model of {model_path.parent / layout.CONFIG}: it has " + ", ".join(diff)
        )


def _logits(
    model: Any, x: np.ndarray, backend: str, image_shape: tuple[int, ...], tta: int = 0
) -> np.ndarray:
    """Eval-mode logits of a saved model, computed by the `backend` engine (its `saved_logits`)."""
    engine = engine_class(backend)
    saved_logits = getattr(engine, "saved_logits", None)
    if saved_logits is None:
        raise ConfigError(
            f"the {backend} engine cannot evaluate a saved model (--backend numpy evaluates any MLP)"
        )
    return saved_logits(model, x, image_shape=tuple(image_shape), tta=tta)


def evaluate_run(run_dir: str | Path, data_dir: str | None = None, backend: str = "numpy") -> dict[str, Any]:
    """Test loss, accuracy and per-class accuracy of a run's saved model (whichever engine trained
    it), computed by the `backend` engine."""
    run = load_run(run_dir)
    cfg = run.cfg.replace(data_dir=data_dir) if data_dir else run.cfg
    raw = load_raw(cfg)
    x_test = raw.x_test[:, None] if raw.x_test.ndim == 3 else raw.x_test
    mean, std = np.asarray(run.info["mean"]), np.asarray(run.info["std"])
    x = transform(x_test, mean, std, np.dtype(run.info.get("dtype", "float32")))
    y = raw.y_test
    if y.size == 0:
        raise ConfigError(f"{cfg.dataset}: the data set has no test split here: nothing to evaluate")
    logits = _logits(run.model, x, backend, image_shape=tuple(run.info["image_shape"]), tta=run.cfg.tta)
    loss = _cross_entropy(_probs(logits), y)
    pred = logits.argmax(axis=1)
    per_class = {
        c: float(np.mean(pred[y == i] == i)) if np.any(y == i) else None
        for i, c in enumerate(run.info["classes"])
    }
    return {
        "run": str(run.run_dir),
        "dataset": cfg.dataset,
        "backend": backend,
        "n": int(y.size),
        "test_loss": loss,
        "test_acc": float(np.mean(pred == y)),
        "per_class_acc": per_class,
        "data_files": raw.files,
    }


def read_image(path: str | Path, shape: tuple[int, int, int], invert: bool = False) -> np.ndarray:
    """A PNG/JPEG file as uint8 (C, H, W) of the model's input shape (converted to grayscale or RGB
    and resized if needed). `invert` turns dark-on-light digits into MNIST's light-on-dark."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"image {path} is a folder: name the image files (e.g. {path}/*.png)")
    if not path.is_file():
        raise ConfigError(f"image {path} does not exist")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ConfigError("reading images needs Pillow: pip install pillow") from None
    c, h, w = shape
    try:
        with Image.open(path) as im:
            im = im.convert("L" if c == 1 else "RGB")
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BILINEAR)
            arr = np.asarray(im, np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ConfigError(f"image {path} cannot be read: {e}") from None
    arr = arr[None] if c == 1 else np.transpose(arr, (2, 0, 1))
    if invert:
        arr = 255 - arr
    return np.ascontiguousarray(arr)


def predict_proba(run: LoadedRun, x_uint8: np.ndarray, backend: str = "numpy") -> np.ndarray:
    """Class probabilities of a run's model for images as the data loaders give them.

    Args:
        x_uint8: uint8 images, (N, C, H, W), (N, H, W) for one channel, or flattened (N, C*H*W).

    Shape: returns (N, num_classes) float64.
    """
    shape = tuple(run.info["image_shape"])  # (C, H, W)
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8:
        raise ConfigError(f"images must be uint8 (0..255, as chainrule.data.load gives them), got {x.dtype}")
    if x.ndim >= 2 and x[0].size == int(np.prod(shape)):
        x = x.reshape((x.shape[0], *shape))
    else:
        raise ConfigError(f"images of shape {x.shape} do not fit the model's input {shape} (C, H, W)")
    mean, std = np.asarray(run.info["mean"]), np.asarray(run.info["std"])
    z = transform(x, mean, std, np.dtype(run.info.get("dtype", "float32")))
    return _probs(_logits(run.model, z, backend, image_shape=shape, tta=run.cfg.tta))


# data sets of light figures on a dark background (a photo of a digit on paper is the opposite)
DARK_BACKGROUND = ("mnist", "fashion-mnist")


def light_background(image: np.ndarray) -> bool:
    """Whether a uint8 (C, H, W) image is dark on light: its border (the outer eighth) is brighter
    than its centre (the middle half) and than mid-gray."""
    g = image.astype(np.float64).mean(axis=0)
    h, w = g.shape
    b = max(1, min(h, w) // 8)
    ring = np.ones((h, w), bool)
    ring[b : h - b, b : w - b] = False
    centre = g[h // 4 : h - h // 4, w // 4 : w - w // 4]
    border = float(g[ring].mean())
    return centre.size > 0 and border >= 128 and border > float(centre.mean())


def predict_run(
    run_dir: str | Path,
    images: list[str],
    top: int = 3,
    invert: bool | None = None,
    backend: str = "numpy",
) -> list[dict[str, Any]]:
    """Class and top-k probabilities for each image file. `invert` None (the default) inverts the
    images of an MNIST or Fashion-MNIST run that are dark on light (`light_background`); True or
    False inverts all or none. Each result says whether its image was inverted."""
    run = load_run(run_dir)
    shape = tuple(run.info["image_shape"])
    x_u8 = np.stack([read_image(p, shape, bool(invert)) for p in images])  # type: ignore[arg-type]
    if invert is None:
        auto = run.info.get("dataset") in DARK_BACKGROUND
        flipped = [auto and light_background(x) for x in x_u8]
        x_u8 = np.stack([255 - x if f else x for x, f in zip(x_u8, flipped, strict=True)])
    else:
        flipped = [invert] * len(images)
    probs = predict_proba(run, x_u8, backend)
    classes = run.info["classes"]
    out = []
    for path, p, f in zip(images, probs, flipped, strict=True):
        order = np.argsort(-p)[: max(1, top)]
        out.append(
            {
                "image": path,
                "class": classes[order[0]],
                "top": [(classes[i], float(p[i])) for i in order],
                "inverted": bool(f),
            }
        )
    return out


__all__ = [
    "RunResult",
    "evaluate_run",
    "finalize",
    "load_run",
    "new_run_dir",
    "predict_proba",
    "predict_run",
    "train_run",
]
