"""Experiment trackers behind `--log`: TensorBoard event files and MLflow runs, as trainer callbacks.

    chainrule train --log tensorboard mlflow        # or --log tensorboard,mlflow; `log = [...]` in TOML
    tensorboard --logdir runs                       # every run folder's tensorboard/ is one run
    mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

Each is an optional extra (`pip install 'chainrule[tensorboard]'`, `'chainrule[mlflow]'`) that is
imported only when a run asks for it. A logger is a `Callback` (scalars at each evaluation) with two
more hooks that `train_run` calls once the run folder is complete (`finish`, with summary.json's
dict) or when the run failed before that (`abort`). A run folder that is resumed continues its
TensorBoard log and its MLflow run (`mlflow.json` in the folder names it).

A tracker that fails during training (a server that went away) prints one warning and stops
logging; the run goes on, its folder has everything. Failing to start is a `ConfigError`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from chainrule import layout
from chainrule._io import atomic_write_text, environ, one_line

from .callbacks import Callback
from .config import BOOKKEEPING, ConfigError, TrainConfig
from .history import EVAL_FIELDS

if TYPE_CHECKING:
    from .trainer import FitResult, Trainer

# the packages each `--log` name imports, and the extra that installs them
EXTRAS = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow",)}
MLFLOW_FILE = layout.MLFLOW_RUN  # a run folder's MLflow run, so a resumed run continues it
# not artifacts: the resumable state (model.npz is the model) and an old folder's lock file
SKIP_ARTIFACTS = (layout.CHECKPOINT, layout.LEGACY_LOCK)
# an evaluation record's numbers, as MLflow metric names (TensorBoard groups them as loss/..., accuracy/...)
EVAL_METRICS = tuple(k for k in EVAL_FIELDS if k not in ("step", "time"))
# summary.json's status -> the MLflow run status (a paused run is FINISHED until it is resumed)
MLFLOW_STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "paused": "FINISHED"}
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def require(names: Sequence[str]) -> None:
    """Check that the packages of the loggers `names` are installed (before any data is loaded)."""
    for name in names:
        for package in EXTRAS[name]:
            if importlib.util.find_spec(package) is None:
                raise ConfigError(
                    f"--log {name} needs the {package} package: pip install 'chainrule[{name}]'"
                )


class RunLogger(Callback):
    """A tracker: the trainer's hooks, then `finish` or `abort` from `train_run`."""

    name = "logger"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.broken = False
        self.line = ""  # where it logs, for the run's header

    def finish(self, summary: dict[str, Any]) -> None:
        """The run folder is complete (or paused): log the final numbers and close."""

    def abort(self, error: BaseException | None = None, discard: bool = False) -> None:
        """The run failed (`error`), or never started (`discard`: undo what was made)."""

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """Run a logging call; on failure warn once and log nothing more (training goes on)."""
        if self.broken:
            yield
            return
        try:
            yield
        except Exception as e:
            self.broken = True
            print(
                f"chainrule: warning: {self.name}: {one_line(e, with_type=True)[:300]}; "
                "the run goes on without it",
                file=self.stream,
                flush=True,
            )


def hyperparameters(cfg: TrainConfig) -> dict[str, bool | int | float | str]:
    """The config's training keys as scalars (lists as JSON, unset keys left out): not where the run
    goes or how it is logged."""
    out: dict[str, bool | int | float | str] = {}
    for k, v in cfg.to_dict().items():
        if k in BOOKKEEPING or v is None:
            continue
        out[k] = json.dumps(v) if isinstance(v, list) else v
    return out


def _numbers(record: dict[str, Any], keys: Sequence[str]) -> dict[str, float]:
    return {
        k: float(record[k])
        for k in keys
        if isinstance(record.get(k), int | float) and math.isfinite(record[k])
    }


# --------------------------------------------------------------------------------------------------
# TensorBoard


def _tb_tag(key: str) -> str:
    """val_loss -> loss/val, train_acc -> accuracy/train: one chart per quantity, the splits in it."""
    for suffix, group in (("_loss", "loss"), ("_acc", "accuracy")):
        if key.endswith(suffix):
            return f"{group}/{key[: -len(suffix)]}"
    return {"train_loss_running": "loss/train_running"}.get(key, key)


class TensorBoardLogger(RunLogger):
    """Event files in RUN/tensorboard/, written by the tensorboard package's `EventFileWriter`:
    losses and accuracies (loss/train, loss/val, accuracy/test, ...), lr and epoch at each
    evaluation, the final metrics (final/...), and the hyperparameters for the HParams dashboard."""

    name = "TensorBoard"

    def __init__(self, cfg: TrainConfig, run_dir: Path, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.cfg, self.dir = cfg, run_dir / layout.TENSORBOARD_DIR
        self.writer: Any = None  # opened when training starts: a run that never starts leaves no file
        parent = run_dir.parent
        self.line = f"TensorBoard events in {self.dir} (open with: tensorboard --logdir {parent})"

    def _event(self, step: int, values: dict[str, float]) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=v) for tag, v in values.items()]
        )
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def on_fit_start(self, trainer: Trainer) -> None:
        with self.guarded():
            from tensorboard.compat.proto import event_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            if self.writer is None:
                self.writer = EventFileWriter(str(self.dir), flush_secs=5)
            if trainer.step == 0 and not trainer.history.evals:
                self._hparams_start()
            else:  # resumed: TensorBoard drops what was logged after the checkpoint (it is trained again)
                self.writer.add_event(
                    event_pb2.Event(
                        wall_time=time.time(),
                        step=trainer.step + 1,
                        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
                    )
                )

    def _hparams_start(self) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.plugins.hparams import summary_v2

        pb = summary_v2.hparams_pb(hyperparameters(self.cfg), trial_id=self.dir.parent.name)
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=pb))

    def _hparams_end(self, status: str) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        code = {"completed": api_pb2.STATUS_SUCCESS, "early_stopped": api_pb2.STATUS_SUCCESS}
        info = plugin_data_pb2.SessionEndInfo(
            status=code.get(status, api_pb2.STATUS_FAILURE), end_time_secs=time.time()
        )
        summary = summary_pb2.Summary()
        summary.value.add(
            tag=metadata.SESSION_END_INFO_TAG,
            metadata=metadata.create_summary_metadata(
                plugin_data_pb2.HParamsPluginData(session_end_info=info)
            ),
            tensor=metadata.NULL_TENSOR,
        )
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), summary=summary))

    def on_evaluation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.writer is None or self.broken:
            return
        with self.guarded():
            values = _numbers(record, EVAL_METRICS)
            self._event(record["step"], {_tb_tag(k): v for k, v in values.items()})

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        if self.writer is not None and not self.broken:
            with self.guarded():
                self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        if self.writer is None:
            return
        with self.guarded():
            final = _numbers(summary.get("final") or {}, EVAL_METRICS)
            values = {f"final/{_tb_tag(k).replace('/', '_')}": v for k, v in final.items()}
            self._event(summary.get("steps", 0), values)
            if summary.get("status") != "paused":
                self._hparams_end(str(summary.get("status")))
        self._close()

    def abort(self, error: BaseException | None = None, discard: bool = False) -> None:
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except Exception:  # closing is best effort: the events written so far are on disk
                pass


# --------------------------------------------------------------------------------------------------
# MLflow


def absolute_uri(uri: str) -> str:
    """A relative SQLite URI (`sqlite:///mlflow.db`, the current folder's) made absolute, so sweep
    workers and resumed runs elsewhere reach the same file; other URIs as they are."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        path = uri[len(prefix) :]
        if path and not path.startswith("/") and path != ":memory:":
            return prefix + str(Path(path).resolve())
    return uri


@contextmanager
def _quick_failure() -> Iterator[None]:
    """While connecting: no retries with backoff (MLflow's default is minutes against a server that
    is not there), so a wrong URI is one line at once."""
    with environ({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}):
        yield


class MlflowRun:
    """One MLflow run through `MlflowClient` (no fluent API: nothing global, so the runs of several
    trials in one process never mix). `parent_run_id` makes it a child (a nested run in the UI).

    Args:
        uri: the tracking URI (`sqlite:///mlflow.db`, `http://127.0.0.1:5000`, ...).
        experiment: the experiment's name (created if missing; on a SQLite store its artifacts go to
            `mlartifacts/` beside the database file).
        run_name: shown in the UI.
        run_id: continue this run (a resumed run) instead of creating one, if it still exists
            (`set_running` marks it running again).
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.uri = absolute_uri(uri)
        self.created = False
        try:
            with _quick_failure():
                self._open(experiment, run_name, run_id, parent_run_id, tags or {})
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(
                f"--log mlflow: cannot log to mlflow_uri = {uri!r}: {one_line(e, with_type=True)[:300]}"
            ) from None

    def _open(
        self,
        experiment: str,
        run_name: str,
        run_id: str | None,
        parent_run_id: str | None,
        tags: dict[str, str],
    ) -> None:
        scheme = self.uri.split(":", 1)[0].split("+", 1)[0]
        if scheme in _DB_SCHEMES:
            for package in ("sqlalchemy", "alembic"):
                if importlib.util.find_spec(package) is None:
                    raise ConfigError(
                        f"--log mlflow with a database URI ({self.uri}) needs {package}: "
                        "pip install 'chainrule[mlflow]'"
                    )
        if scheme == "sqlite":  # a SQLite file in a folder that does not exist yet: make the folder
            Path(self.uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        from mlflow import MlflowClient

        self.client = client = MlflowClient(tracking_uri=self.uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            location = None
            if scheme == "sqlite":
                location = (Path(self.uri[len("sqlite:///") :]).parent / "mlartifacts" / experiment).as_uri()
            self.experiment_id = client.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = exp.experiment_id
        if run_id is not None and self._reopen(run_id):
            self.run_id = run_id
            return
        all_tags = {"mlflow.source.name": "chainrule", **tags}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self.run_id = client.create_run(self.experiment_id, run_name=run_name, tags=all_tags).info.run_id
        self.created = True

    def _reopen(self, run_id: str) -> bool:
        try:
            run = self.client.get_run(run_id)
        except Exception:  # deleted from the store, or another store: a new run is made
            return False
        return run.info.lifecycle_stage == "active"

    @property
    def ref(self) -> dict[str, str]:
        """What a child run or a resumed run needs to find this one."""
        return {"uri": self.uri, "experiment_id": self.experiment_id, "run_id": self.run_id}

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, int(step)) for k, v in metrics.items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def log_files(self, folder: Path, skip: Sequence[str] = SKIP_ARTIFACTS) -> None:
        """The files under `folder` (sub-folders kept), except those named in `skip`."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in skip):
            rel = path.relative_to(folder).parent
            self.log_file(path, None if rel == Path(".") else rel.as_posix())

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)

    def set_running(self) -> None:
        """A continued run (a resumed one, a sweep's parent after --resume) is running again."""
        self.client.update_run(self.run_id, status="RUNNING")

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def delete(self) -> None:
        self.client.delete_run(self.run_id)


def _previous_run(run_dir: Path, uri: str) -> str | None:
    """The MLflow run id a run folder logged to before (the same store), if any."""
    try:
        ref = json.loads((run_dir / MLFLOW_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ref.get("run_id") if isinstance(ref, dict) and ref.get("uri") == absolute_uri(uri) else None


class MlflowLogger(RunLogger):
    """An MLflow run per training run: the config as params, the evaluation metrics with their step,
    the final metrics and the run folder's files (not the checkpoint) as artifacts at the end.

    Args:
        parent: a sweep's parent run (`MlflowRun.ref`): this run is its child, in its store.
    """

    name = "MLflow"

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        resumed: bool = False,
        parent: dict[str, str] | None = None,
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(stream)
        self.run_dir = run_dir
        uri = parent["uri"] if parent else cfg.mlflow_uri
        previous = _previous_run(run_dir, uri) if resumed else None
        self.run = MlflowRun(
            uri,
            cfg.mlflow_experiment,
            run_dir.name,
            run_id=previous,
            parent_run_id=parent["run_id"] if parent else None,
            tags={"chainrule.run_dir": str(run_dir.resolve()), "chainrule.dataset": cfg.dataset},
        )
        if self.run.created:
            try:
                self.run.log_params(cfg.to_dict())
            except Exception as e:
                self.run.delete()
                raise ConfigError(f"--log mlflow: cannot log the params: {one_line(e)[:300]}") from None
        child = f", child of {parent['run_id']}" if parent else ""
        self.line = (
            f"MLflow run {self.run.run_id}{child} in experiment {cfg.mlflow_experiment!r} at {self.run.uri}"
        )

    def on_fit_start(self, trainer: Trainer) -> None:
        with self.guarded():
            if not self.run.created:  # a resumed run: its MLflow run was ended when it paused or stopped
                self.run.set_running()
            atomic_write_text(self.run_dir / MLFLOW_FILE, json.dumps(self.run.ref, indent=1) + "\n")

    def on_evaluation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.broken:
            return
        with self.guarded():
            self.run.log_metrics(_numbers(record, EVAL_METRICS), record["step"])

    def finish(self, summary: dict[str, Any]) -> None:
        if self.broken:
            return
        with self.guarded():
            final = {f"final_{k}": v for k, v in _numbers(summary.get("final") or {}, EVAL_METRICS).items()}
            final.update(_numbers(summary, ("train_time_s",)))
            self.run.log_metrics(final, summary.get("steps", 0))
            status = str(summary.get("status"))
            self.run.set_tags({"chainrule.status": status})
            self.run.log_files(self.run_dir)
            self.run.end(MLFLOW_STATUS.get(status, "KILLED" if status == "interrupted" else "FAILED"))

    def abort(self, error: BaseException | None = None, discard: bool = False) -> None:
        if self.broken:
            return
        with self.guarded():
            if discard:  # the run never started: no empty run is left in MLflow, a resumed one is as it was
                if self.run.created:
                    self.run.delete()
            else:
                self.run.end("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")


def make_loggers(
    cfg: TrainConfig,
    run_dir: Path,
    resumed: bool = False,
    mlflow_parent: dict[str, str] | None = None,
    stream: TextIO | None = None,
) -> list[RunLogger]:
    """The loggers `cfg.log` names, for the run in `run_dir`; `ConfigError` if one cannot start
    (what the others had made is undone)."""
    require(cfg.log)
    made: list[RunLogger] = []
    try:
        for name in cfg.log:
            if name == "tensorboard":
                made.append(TensorBoardLogger(cfg, run_dir, stream))
            elif name == "mlflow":
                made.append(MlflowLogger(cfg, run_dir, resumed, mlflow_parent, stream))
            else:  # validate() refuses other names
                raise AssertionError(name)
    except BaseException:
        for lg in made:
            lg.abort(discard=True)
        raise
    return made


__all__ = [
    "EXTRAS",
    "MlflowLogger",
    "MlflowRun",
    "RunLogger",
    "TensorBoardLogger",
    "absolute_uri",
    "hyperparameters",
    "make_loggers",
    "require",
]
