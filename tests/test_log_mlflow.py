"""`--log mlflow` against the real MLflow client and a SQLite store in a temporary folder: a run's
params are its config, its metrics per evaluation carry their step, its folder's files are the
artifacts; a paused and resumed run continues one MLflow run; a sweep logs a parent run with a
child run per trial (trials in worker processes); a wrong or unreachable URI is one line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from mlflow import MlflowClient  # noqa: E402

from chainrule.cli import main  # noqa: E402
from chainrule.sweep import Store  # noqa: E402
from chainrule.train import read_metrics  # noqa: E402
from chainrule.train.config import ConfigError, TrainConfig, load_toml  # noqa: E402
from chainrule.train.run import train_run  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _no_telemetry():
    """MLflow's usage telemetry off (no network in tests); the sweep's workers inherit it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("DO_NOT_TRACK", "true")
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", root


def small(run_dir, uri, **kw) -> TrainConfig:
    keys = dict(
        dataset="synthetic",
        hidden_sizes=[8],
        batch_size=32,
        steps=40,
        eval_every=10,
        train_eval_size=100,
        eval_test=True,  # test metrics at every evaluation too (off by default)
        optimizer="adam",
        lr=0.01,
        momentum=0.0,
        log=["mlflow"],
        mlflow_uri=uri,
        run_dir=str(run_dir),
    )
    keys.update(kw)
    return TrainConfig(**keys).validate()


def test_run_params_metrics_artifacts_and_resume(store, tmp_path):
    uri, root = store
    run = tmp_path / "run"
    paused = train_run(small(run, uri, mlflow_experiment="single"), quiet=True, plots=False, until_step=20)
    assert paused.status == "paused"
    run_id = json.loads((run / "mlflow.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=uri)
    first = client.get_run(run_id)
    assert first.info.status == "FINISHED" and first.data.tags["chainrule.status"] == "paused"

    res = train_run(load_toml(run / "config.toml"), resume=run, quiet=True, plots=False)
    assert res.status == "completed"
    assert json.loads((run / "mlflow.json").read_text())["run_id"] == run_id  # the same MLflow run goes on
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.data.tags["chainrule.status"] == "completed"
    assert got.info.run_name == "run" and got.data.tags["chainrule.run_dir"] == str(run.resolve())
    cfg = load_toml(run / "config.toml")
    assert got.data.params == {k: str(v) for k, v in cfg.to_dict().items()}  # the config, every key
    evals = read_metrics(run / "metrics.jsonl")
    for key in ("val_acc", "val_loss", "test_acc", "train_loss", "lr"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        assert [s for s, _ in history] == [e["step"] for e in evals] == [10, 17, 20, 30, 34, 40], key
        assert [v for _, v in history] == pytest.approx([e[key] for e in evals]), key
    final = res.summary["final"]
    assert got.data.metrics["final_test_acc"] == pytest.approx(final["test_acc"])
    assert got.data.metrics["final_val_loss"] == pytest.approx(final["val_loss"])
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.toml", "summary.json", "metrics.jsonl", "model.npz", "steps.csv", "mlflow.json"} <= names
    assert "checkpoint.npz" not in names  # the resumable state stays in the run folder
    exp = client.get_experiment_by_name("single")
    assert exp.artifact_location.startswith((root / "mlartifacts").as_uri())  # beside the database


def logged_sweep(folder, uri: str, name: str, experiment: str):
    """A two-trial sweep spec whose trials log to MLflow at `uri` (one parent run, a child per trial)."""
    spec = folder / f"{name}.toml"
    spec.write_text(
        f"""
name = "{name}"
seeds = 1
[base]
dataset = "synthetic"
hidden_sizes = [8]
batch_size = 32
steps = 20
eval_every = 10
log = ["mlflow"]
mlflow_uri = "{uri}"
mlflow_experiment = "{experiment}"
[grid]
lr = [0.01, 0.05]
"""
    )
    return spec


def test_sweep_logs_a_parent_run_and_a_child_per_trial(store, tmp_path, capsys):
    uri, _ = store
    spec = logged_sweep(tmp_path, uri, "logged", "sweeps")
    out = tmp_path / "out"
    rc = main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet", "--no-report"])
    assert rc == 0, capsys.readouterr().err
    with Store(out / "sweep.db", readonly=True) as st:
        trials = {t["trial_id"]: t for t in st.trials()}
        parent_id = json.loads(st.get_meta("mlflow_parent"))["run_id"]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("sweeps").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [p.info.run_id for p in parents] == [parent_id]
    parent = parents[0]
    assert parent.info.run_name == "logged" and parent.info.status == "FINISHED"
    assert parent.data.params["trials"] == "2" and parent.data.params["swept_keys"] == '["lr"]'
    assert parent.data.metrics["trials_completed"] == 2
    best = max(t["val_acc"] for t in trials.values())
    assert parent.data.metrics["best_val_acc"] == pytest.approx(best)
    assert {"spec.toml", "trials.csv"} <= {a.path for a in client.list_artifacts(parent_id)}
    assert sorted(c.info.run_name for c in children) == sorted(trials)  # a child per trial, named by its id
    for c in children:
        assert c.data.tags["mlflow.parentRunId"] == parent_id and c.info.status == "FINISHED"
        assert c.data.params["lr"] == str(trials[c.info.run_name]["config"]["lr"])
        assert c.data.metrics["final_test_acc"] == pytest.approx(trials[c.info.run_name]["test_acc"])
        assert [m.step for m in client.get_metric_history(c.info.run_id, "val_acc")] == [10, 17, 20]


@pytest.mark.parametrize("uri", ["nosuch://x", "http://127.0.0.1:9"])  # no such store; nothing listens
def test_a_wrong_uri_is_one_line_and_leaves_no_run_folder(uri, tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(ConfigError) as e:
        train_run(small(run, uri), quiet=True, plots=False)
    message = str(e.value)
    assert "\n" not in message and f"cannot log to mlflow_uri = {uri!r}" in message
    assert not run.exists()
    rc = main(["train", "--dataset", "synthetic", "--steps", "2", "--log", "mlflow", "--mlflow-uri", uri,
               "--run-dir", str(run), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith(f"chainrule: error: --log mlflow: cannot log to mlflow_uri = {uri!r}")


def test_a_sweep_stopped_by_a_full_disk_leaves_its_parent_failed_not_running(store, tmp_path, capsys):
    """The error stops the sweep in one line; MLflow's parent run is ended FAILED (a resume makes it
    RUNNING again), not left RUNNING for ever."""
    import errno

    from chainrule.sweep.backends import POOLS, Pool

    class FullDiskPool(Pool):
        name = "full-disk"

        def __init__(self, workers: int, threads: int) -> None:
            self.capacity, self.tasks = 1, []

        @property
        def busy(self) -> int:
            return len(self.tasks)

        def submit(self, task):
            self.tasks.append(task)

        def wait(self, timeout):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "trials.csv"))

        def kill(self) -> None:
            pass

        def close(self) -> None:
            pass

    uri, _ = store
    spec = logged_sweep(tmp_path, uri, "full", "full-disk")
    out = tmp_path / "out"
    POOLS["full-disk"] = FullDiskPool
    try:
        rc = main(["sweep", str(spec), "--out", str(out), "--backend", "full-disk", "--quiet", "--no-report"])
    finally:
        del POOLS["full-disk"]
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1].startswith("chainrule: error: ") and "Traceback" not in "\n".join(err), err
    with Store(out / "sweep.db", readonly=True) as st:
        parent_id = json.loads(st.get_meta("mlflow_parent"))["run_id"]
    assert MlflowClient(tracking_uri=uri).get_run(parent_id).info.status == "FAILED"
