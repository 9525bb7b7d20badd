"""The coordinator: puts a spec's trials in the store, runs them on a backend, records each result,
keeps `trials.csv` current, and writes the report at the end.

The coordinator is the only process that writes `sweep.db` (workers write only their own trial
folders). A lock on the folder (`chainrule._io.FolderLock`: released by the kernel when the process
dies, also on `kill -9`) keeps a second coordinator out of it.

Crash safety: a trial is marked running in the database before it is handed to a worker, and
completed, paused or failed only after the worker returned. After a crash, `--resume` runs every trial
that is not completed or failed: a running one continues from its checkpoint (or is taken as it
is if its run folder says it ended), a pending one starts. Trial ids are primary keys and trial
folders are named after them, so nothing runs twice and nothing is lost.

With successive halving ([halving] in the spec, `chainrule.sweep.halving`), a trial runs to a rung
(a fraction of its steps), is checkpointed and paused, and continues from there when it is promoted;
a running trial's target rung is in the database, so a resumed sweep sends it to the same rung.

With `[search] sampler = "tpe"` (`chainrule.sweep.tpe`) the trials are not all in the database from
the start: each is asked of Optuna's TPE when a worker is free, put in the database as running, and
its result told when it ends; a resumed sweep re-tells the trials that ended first.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from chainrule import layout
from chainrule._io import FolderBusy, FolderLock, atomic_write_text, holds_files, one_line

from .backends import LOST_RETRIES, POOLS, available_cores
from .halving import Rungs
from .layout import SweepError, swept_keys
from .progress import SweepProgress
from .spec import SweepSpec, halving_of, parse_spec, sampler_of
from .store import ENDED, Store

CSV_FIELDS = (
    "val_acc",
    "test_acc",
    "val_loss",
    "test_loss",
    "train_time_s",
    "epochs",
    "best_val_acc",
    "end_status",
    "attempts",
    "wall_s",
    "error",
)


@dataclass
class SweepResult:
    out_dir: Path
    counts: dict[str, int]
    ran: int
    wall_s: float
    interrupted: bool = False
    report: Path | None = None
    new_trials: list[str] = field(default_factory=list)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, list):
        return json.dumps(v)
    return v


def write_csv(store: Store, out_dir: Path) -> Path:
    """`trials.csv`: one row per trial, in creation order (written atomically)."""
    trials = store.trials()
    keys = swept_keys(trials)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    fields = CSV_FIELDS + (("rung",) if any(t.get("rung") is not None for t in trials) else ())
    w.writerow(["trial_id", "status", "seed", *keys, *fields])
    for t in trials:
        w.writerow(
            [t["trial_id"], t["status"], t["seed"]]
            + [_cell(t["params"].get(k)) for k in keys]
            + [_cell(t.get(c)) for c in fields]
        )
    return atomic_write_text(out_dir / layout.TRIALS_CSV, buf.getvalue())


def _check_data(trials: list[dict[str, Any]]) -> None:
    """Before anything runs (local backend): every data set the trials use is there (a missing
    --data-dir or data set is one error now, not one failed trial each). Loading also fills the
    chainrule.data cache, so the workers only memory-map it."""
    from chainrule.train.config import TrainConfig, from_dict
    from chainrule.train.prepare import load_raw, needs_files

    seen = set()
    for t in trials:
        c = t["config"]
        key = (c.get("dataset"), c.get("data_dir"), c.get("download"))
        if key in seen or not needs_files(c.get("dataset", TrainConfig().dataset)):
            continue
        seen.add(key)
        load_raw(from_dict(c, TrainConfig(), source=f"trial {t['trial_id']}"))


def open_sweep(out_dir: Path) -> Store:
    if not layout.is_sweep_folder(out_dir):
        raise SweepError(f"{out_dir} is not a sweep folder (no {layout.SWEEP_DB} there)")
    return Store(out_dir / layout.SWEEP_DB)


def run_sweep(
    spec: SweepSpec | None,
    out_dir: str | Path | None = None,
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    quiet: bool = False,
    stream: TextIO | None = None,
    retry_failed: bool = False,
    report: bool = True,
    check_data: bool = True,
    trial_reports: bool = False,
) -> SweepResult:
    """Run `spec` into `out_dir` (default `sweeps/<name>`), or with `spec=None` resume the sweep in
    `out_dir`. A folder that holds the same sweep is extended: only trials not in its database run.

    Args:
        workers: trials at once (default: the number of cores; with Ray, the cluster's CPUs).
        backend: a name of `backends.POOLS`: "local" (worker processes) or "ray".
        address: Ray cluster to join ("auto" or host:port); default: start a local Ray.
        retry_failed: run the failed trials again.
        report: write report.html at the end (needs matplotlib).
        check_data: load each data set once before starting (local backend).
        trial_reports: plots and report.html in every trial folder too (seconds of matplotlib each).
    """
    stream = stream if stream is not None else sys.stderr
    if backend not in POOLS:
        raise SweepError(f"backend {backend!r} is not one of {', '.join(POOLS)}")
    if workers is not None and workers < 1:
        raise SweepError(f"workers = {workers} is invalid: it must be >= 1")
    if spec is None and out_dir is None:
        raise SweepError("resuming needs the sweep folder")
    out = Path(out_dir) if out_dir is not None else Path("sweeps") / spec.name  # type: ignore[union-attr]
    if spec is None:
        store = open_sweep(out)
        store.close()
    elif out.exists() and not out.is_dir():
        raise SweepError(f"{out} is a file, not a sweep folder: use another --out")
    elif out.is_dir() and not layout.is_sweep_folder(out) and holds_files(out):
        # the user's own files are never overwritten (report.html, trials.csv, spec.toml ...)
        raise SweepError(
            f"{out} is not empty and is not a chainrule sweep folder (no {layout.SWEEP_DB}): "
            "use another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    try:
        lock = FolderLock(out, "sweep")
    except FolderBusy as e:
        raise SweepError(str(e)) from None
    try:
        return _run_locked(
            spec,
            out,
            workers,
            backend,
            address,
            quiet,
            stream,
            retry_failed,
            report,
            check_data,
            trial_reports,
        )
    except (sqlite3.OperationalError, OSError) as e:  # before or after the trials ran (the report ...)
        if not _disk_full(e):
            raise
        raise _disk_full_error(e, out, "") from None
    finally:
        lock.release()


def _disk_full(e: BaseException) -> bool:
    """A write failed for lack of space: ENOSPC, EDQUOT or EFBIG (a file-size limit), or SQLite's
    "database or disk is full" / "disk I/O error" (what a failed write of sweep.db becomes)."""
    from chainrule.train.run import DISK_FULL

    if isinstance(e, sqlite3.OperationalError):
        code = getattr(e, "sqlite_errorcode", 0)
        return (code & 0xFF) == sqlite3.SQLITE_FULL or code in _SQLITE_WRITE_ERRORS
    return isinstance(e, OSError) and e.errno in DISK_FULL


# the "disk I/O error"s of a write (a read error is not a full disk)
_SQLITE_WRITE_ERRORS = (
    sqlite3.SQLITE_IOERR_WRITE,
    sqlite3.SQLITE_IOERR_FSYNC,
    sqlite3.SQLITE_IOERR_DIR_FSYNC,
    sqlite3.SQLITE_IOERR_TRUNCATE,
    sqlite3.SQLITE_IOERR_SHMSIZE,
)


def _disk_full_error(e: BaseException, out: Path, state: str) -> OSError:
    """One line: what failed, which file, what state the sweep was left in, the resume command."""
    from chainrule.train.run import DiskFullError

    if isinstance(e, sqlite3.OperationalError):
        what = f"{e} (is the disk full?): writing {out / layout.SWEEP_DB} failed"
    else:
        assert isinstance(e, OSError)
        what = f"{e.strerror}: writing {e.filename or 'a file'} failed"
    return DiskFullError(
        f"{what}; the sweep in {out} stopped{state}: free some space, then continue with: "
        f"chainrule sweep --resume {out}"
    )


def _stop_on_full_disk(store: Store, session: int, out: Path) -> str:
    """After a failed write (the workers are stopped): free the database's write-ahead log, put the
    trials that were running back to pending, close the session and rewrite trials.csv, as far as
    the disk allows. Returns what became of the running trials, for the message."""
    try:
        store.free_wal()
    except sqlite3.Error:
        pass
    try:
        n = store.requeue_running()
        store.end_session(session)
    except sqlite3.Error:
        n = len(store.trials("running"))
        return f" ({n} trial(s) still marked running: the database could not be written)" if n else ""
    try:
        write_csv(store, out)
    except OSError:
        pass
    return f" ({n} running trial(s) back to pending; their checkpoints are kept)" if n else ""


def _run_locked(
    spec: SweepSpec | None,
    out: Path,
    workers: int | None,
    backend_name: str,
    address: str | None,
    quiet: bool,
    stream: TextIO,
    retry_failed: bool,
    report: bool,
    check_data: bool,
    trial_reports: bool,
) -> SweepResult:
    t_start = time.perf_counter()
    with Store(out / layout.SWEEP_DB) as store:
        new = _register(store, spec, out) if spec is not None else []
        if retry_failed:
            store.reset(t["trial_id"] for t in store.trials("failed"))
        halving = halving_of(store.get_meta("spec") or "")
        paused = store.trials("paused")
        todo = store.trials("running") + store.trials("pending")
        rungs, waiting = None, []  # waiting: paused at a rung, may be promoted
        if halving is not None:
            rungs = Rungs(halving, store.rungs(), {t["trial_id"]: t["rung"] for t in paused})
            waiting = paused
        else:  # a spec that dropped [halving]: its paused trials simply run to the end
            todo += paused
        todo.sort(key=lambda t: t["number"])
        search = _tpe_search(spec, store, out)
        counts = store.counts()
        stored = sum(counts.values())
        to_ask = search.remaining(stored) if search is not None else 0
        total = stored + to_ask
        write_csv(store, out)
        busy_max = len(todo) + len(waiting) + to_ask
        pool_class = POOLS[backend_name]
        if check_data and pool_class.on_this_machine and busy_max:
            probes = (
                [{"trial_id": t.trial_id, "config": t.config} for t in search.spec.probes] if search else []
            )
            _check_data(todo + waiting + probes)

        cores = available_cores()
        n = workers or (cores if pool_class.on_this_machine else 0)
        if pool_class.on_this_machine:
            n = max(1, min(n, busy_max)) if busy_max else 1
        threads = max(1, cores // n) if n else 1
        progress = SweepProgress(total, sum(counts[s] for s in ENDED), enabled=not quiet, stream=stream)
        where = pool_class.where(n, threads) if busy_max else ""
        progress.message(
            f"chainrule: sweep {store.get_meta('name')}: {total} trials ({len(new)} new), {len(todo)} to run"
            + (f", {counts['paused']} paused at a rung" if counts["paused"] else "")
            + where
            + _plan_note(halving, search, to_ask)
            + f"; folder {out}"
        )
        ran, interrupted = 0, False
        parent = _mlflow_parent(store, todo + waiting, out) if busy_max else None
        if parent is not None:
            progress.message(f"chainrule: MLflow parent run {parent.run_id} at {parent.uri}")
        if busy_max:
            pool = pool_class.open(n if pool_class.on_this_machine else workers, threads, address)
            ran, interrupted, parent = _drive(
                store, pool, backend_name, todo, rungs, search, parent, progress, out, trial_reports
            )
        write_csv(store, out)
        counts = store.counts()
    report_path = None
    if report and not interrupted and counts["completed"]:
        report_path = _report(out, progress)
    if parent is not None:
        _end_mlflow_parent(parent, out, interrupted, progress)
    return SweepResult(out, counts, ran, time.perf_counter() - t_start, interrupted, report_path, new)


def _register(store: Store, spec: SweepSpec, out: Path) -> list[str]:
    """Store `spec` (its name must be the folder's sweep's) and add its trials; returns the new ids."""
    old_name = store.get_meta("name")
    if old_name is not None and old_name != spec.name:
        raise SweepError(
            f"{out} holds sweep {old_name!r}, not {spec.name!r}: use another --out "
            f"(or name the spec {old_name!r} to extend it)"
        )
    store.set_meta("name", spec.name)
    store.set_meta("description", spec.description)
    store.set_meta("spec", spec.text)
    atomic_write_text(out / layout.SPEC, spec.text)
    return store.add_trials(spec.trials)


def _plan_note(halving: Any, search: Any, to_ask: int) -> str:
    """The header's words on successive halving and on TPE, if the sweep uses them."""
    note = ""
    if halving is not None:
        note += (
            f"; successive halving on {halving.metric}, rungs at "
            + ", ".join(f"{f:.3g}" for f in halving.fractions)
            + f" of each trial's steps, eta {halving.reduction_factor}"
        )
    if search is not None:
        note += (
            f"; TPE (Optuna) draws {search.n_trials} trials to "
            + ("maximize " if search.spec.search.maximize else "minimize ")
            + search.metric
            + f", {to_ask} still to draw, {search.retold} finished trial(s) re-told"
            + (f" ({search.outside} outside the search space left out)" if search.outside else "")
        )
    return note


def _drive(
    store: Store,
    pool: Any,
    backend_name: str,
    todo: list[dict[str, Any]],
    rungs: Rungs | None,
    search: Any,
    parent: Any,
    progress: SweepProgress,
    out: Path,
    trial_reports: bool,
) -> tuple[int, bool, Any]:
    """Keep `pool` full with the trials to run (promoted ones first, then the queue, then what TPE
    asks for), record each result as it comes, until nothing is left or Ctrl-C. Returns the trials
    run, whether it was interrupted, and the MLflow parent (created here if a TPE trial is the
    first to log to MLflow). A full disk stops the pool and raises `_disk_full_error`."""
    ran, interrupted = 0, False
    full: BaseException | None = None
    session = store.start_session(pool.capacity, backend_name)
    queue = deque(todo)
    by_id = {t["trial_id"]: t for t in store.trials()}
    again: deque[tuple[dict[str, Any], int | None, str]] = deque()  # lost with a Ray node: rerun
    lost: dict[str, int] = {}
    progress.start()
    failed = True  # until the loop ends, or stops on Ctrl-C: the MLflow parent then says FAILED
    try:
        while True:
            while pool.busy < pool.capacity:
                job = again.popleft() if again else _next_job(queue, rungs, by_id)
                if job is None and search is not None:
                    job = _ask(store, search, by_id, progress, out)
                if job is None:
                    break
                t, target, note = job
                run_dir = layout.trial_dir(out, t["trial_id"])
                resumed = (run_dir / layout.CHECKPOINT).is_file()
                store.mark_running(t["trial_id"], target)
                task = {"trial_id": t["trial_id"], "config": t["config"], "plots": trial_reports}
                if "mlflow" in t["config"].get("log", []):
                    if parent is None:  # a trial Optuna asked for is the first to log to MLflow
                        parent = _mlflow_parent(store, [t], out)
                    task["mlflow_parent"] = parent.ref
                if rungs is not None and target is not None:
                    task["until_fraction"] = rungs.fraction(target)
                pool.submit(dict(task, run_dir=str(run_dir.resolve()), rung=target))
                progress.started(t["trial_id"], t["params"], run_dir, t["seed"], resumed, note=note)
            if not pool.busy:
                break
            for finished, res in pool.wait(0.25):
                tid = finished["trial_id"]
                if res.get("status") == "lost" and lost.get(tid, 0) < LOST_RETRIES:
                    # its node or worker died, not the trial: it runs again (from its checkpoint)
                    lost[tid] = lost.get(tid, 0) + 1
                    why = f"{res['error']}; it runs again ({lost[tid]} of {LOST_RETRIES})"
                    progress.lost(tid, why)
                    again.append((by_id[tid], finished.get("rung"), "runs again"))
                    continue
                ran += _record(store, finished, res, progress, rungs)
                if search is not None:
                    row = by_id[finished["trial_id"]]
                    row.update(res.get("result") or {}, status=_told_status(res))
                    search.tell(row["trial_id"], row["status"], row)
                write_csv(store, out)
            progress.tick()
        failed = False
    except KeyboardInterrupt:
        interrupted, failed = True, False
        pool.kill()
    except (sqlite3.OperationalError, OSError) as e:  # sweep.db or trials.csv could not be written
        if not _disk_full(e):
            raise
        full = e
        pool.kill()
    finally:
        pool.close()
        progress.close()
        if full is None:
            store.end_session(session)
        if search is not None:
            search.close()
        if failed and parent is not None:
            _fail_mlflow_parent(parent, progress)
    if full is not None:
        raise _disk_full_error(full, out, _stop_on_full_disk(store, session, out)) from None
    if rungs is not None and not interrupted and rungs.paused:
        # nothing runs and nothing can be promoted: the trials still paused stop here
        store.mark_pruned(list(rungs.paused))
        progress.pruned(len(rungs.paused))
    return ran, interrupted, parent


def _tpe_search(spec: SweepSpec | None, store: Store, out: Path) -> Any:
    """The TPE search of a sweep whose spec says sampler = "tpe" (a resumed one reads its spec from
    the database), rebuilt from the store's trials; None for the other sweeps."""
    text = store.get_meta("spec") or ""
    if sampler_of(text) != "tpe":
        return None
    from .tpe import TPESearch  # imports Optuna: only for a sweep that uses it

    if spec is None:
        spec = parse_spec(text, source=f"{out / layout.SPEC} (as stored in {layout.SWEEP_DB})")
    return TPESearch(spec, store.trials())


def _told_status(res: dict[str, Any]) -> str:
    """The store's status of a trial that a worker returned (`_record`'s mapping)."""
    status = res.get("status")
    return status if status in ("completed", "paused", "interrupted") else "failed"


def _ask(
    store: Store, search: Any, by_id: dict[str, dict[str, Any]], progress: SweepProgress, out: Path
) -> tuple[dict[str, Any], int | None, str | None] | None:
    """A new trial from TPE for a free worker, in the store (None: `n_trials` are there). A drawn
    configuration that does not validate is a failed trial, recorded and told, and another is drawn."""
    while search.remaining(len(by_id)):
        asked = search.ask(by_id)
        if asked is None:
            progress.message(
                f"chainrule: TPE proposed only configurations that have run, {len(by_id)} of "
                f"{search.n_trials} trials: the search space is used up"
            )
            search.n_trials = len(by_id)
            return None
        trial, error = asked
        store.add_trials([trial])
        row = dict(trial_id=trial.trial_id, seed=trial.seed, params=trial.params, config=trial.config)
        row.update(status="pending", number=len(by_id))
        by_id[trial.trial_id] = row
        if error is None:
            return row, None, None
        store.mark_failed(trial.trial_id, error)
        row["status"] = "failed"
        search.tell(trial.trial_id, "failed", {})
        progress.started(
            trial.trial_id, trial.params, layout.trial_dir(out, trial.trial_id), trial.seed, False
        )
        progress.finished(trial.trial_id, "failed", {}, error)
    return None


def _next_job(
    queue: deque[dict[str, Any]], rungs: Rungs | None, by_id: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], int | None, str | None] | None:
    """(trial, target rung, note) for a free worker: with successive halving a promotion comes
    first ("promoted to rung N"); then the next queued trial (a resumed running one heads for the
    rung it was sent to)."""
    if rungs is not None:
        promo = rungs.promotion()
        if promo is not None:
            tid, target = promo
            rungs.promote(tid)
            return by_id[tid], target, f"promoted to rung {target}"
    if not queue:
        return None
    t = queue.popleft()
    if rungs is None:
        return t, None, None
    return t, (t.get("target_rung") if t.get("target_rung") is not None else 0), None


def _record(
    store: Store,
    task: dict[str, Any],
    res: dict[str, Any],
    progress: SweepProgress,
    rungs: Rungs | None = None,
) -> int:
    tid = task["trial_id"]
    status = res.get("status")
    if res.get("note"):
        progress.message(f"chainrule: trial {tid}: {res['note']}")
    result = {k: v for k, v in (res.get("result") or {}).items() if v is not None}
    wall = float(res.get("wall_s") or 0.0)
    if status == "paused" and rungs is not None and task.get("rung") is not None:
        rung = int(task["rung"])
        value = result.get(rungs.halving.metric)
        store.mark_paused(tid, rung, value, result, wall)
        rungs.record(tid, rung, value)
        progress.paused(tid, rung, rungs.halving.metric, value)
        return 0
    if status == "completed":
        store.mark_completed(tid, result, wall)
    elif status == "interrupted":  # stays running: --resume continues it from its checkpoint
        progress.finished(tid, "interrupted", result, "interrupted")
        return 0
    else:
        store.mark_failed(tid, res.get("error") or "failed", result, wall)
        status = "failed"
    progress.finished(tid, status, result, res.get("error"))
    return 1


def _report(out: Path, progress: SweepProgress) -> Path | None:
    from chainrule.report import plotting_missing

    missing = plotting_missing()
    if missing:
        progress.message(missing.replace("no plots", "no report") + f"; {layout.TRIALS_CSV} has the results")
        return None
    from .report import write_sweep_report

    return write_sweep_report(out)


MLFLOW_META = "mlflow_parent"  # sweep.db's meta key: the parent run's `MlflowRun.ref` as JSON


def _mlflow_parent(store: Store, trials: list[dict[str, Any]], out: Path) -> Any:
    """The sweep's MLflow parent run when the trials to run log to MLflow: made once (its id kept
    in sweep.db), continued by a resumed or extended sweep; each trial's run is its child. None
    when no trial logs to MLflow."""
    stores = {
        (t["config"].get("mlflow_uri"), t["config"].get("mlflow_experiment"))
        for t in trials
        if "mlflow" in t["config"].get("log", [])
    }
    if not stores:
        return None
    if len(stores) > 1:
        raise SweepError(
            "the trials log to several MLflow stores or experiments; a sweep logs to one "
            "(set mlflow_uri and mlflow_experiment in [base])"
        )
    ((uri, experiment),) = stores
    from chainrule.train.loggers import MlflowRun, absolute_uri

    try:
        ref = json.loads(store.get_meta(MLFLOW_META) or "{}")
    except ValueError:
        ref = {}
    previous = ref.get("run_id") if ref.get("uri") == absolute_uri(uri) else None
    name = store.get_meta("name") or out.name
    run = MlflowRun(uri, experiment, name, run_id=previous, tags={"chainrule.sweep_dir": str(out.resolve())})
    if run.created:
        every = store.trials()
        run.log_params(
            {
                "sweep": name,
                "trials": len(every),
                "seeds": json.dumps(sorted({t["seed"] for t in every})),
                "swept_keys": json.dumps(swept_keys(every)),
            }
        )
        store.set_meta(MLFLOW_META, json.dumps(run.ref))
    else:
        run.set_running()
    return run


def _fail_mlflow_parent(parent: Any, progress: SweepProgress) -> None:
    """A sweep stopped by an error (a full disk, a failed store) leaves its MLflow parent FAILED,
    not RUNNING; a resume marks it running again. MLflow only mirrors the folder: its own error
    (the same full disk) is a warning, never the sweep's error."""
    try:
        parent.end("FAILED")
    except Exception as e:
        progress.message(f"chainrule: warning: MLflow parent run: {one_line(e, with_type=True)[:300]}")


def _end_mlflow_parent(parent: Any, out: Path, interrupted: bool, progress: SweepProgress) -> None:
    """The parent run's results: trial counts, the best validation and test accuracy, and the
    sweep folder's own files (spec, trials.csv, report; each trial's run has its files)."""
    try:
        with Store(out / layout.SWEEP_DB, readonly=True) as store:
            counts, done = store.counts(), store.trials("completed")
        metrics = {f"trials_{k}": float(v) for k, v in counts.items()}
        for key in ("val_acc", "test_acc"):
            values = [t[key] for t in done if t.get(key) is not None]
            if values:
                metrics[f"best_{key}"] = float(max(values))
        parent.log_metrics(metrics, step=0)
        for path in sorted(out.iterdir()):
            if path.is_file() and not path.name.startswith(layout.SWEEP_DB):
                parent.log_file(path)
        parent.end("KILLED" if interrupted else "FINISHED")
    except Exception as e:  # the sweep's results are in its folder; MLflow only mirrors them
        progress.message(f"chainrule: warning: MLflow parent run: {one_line(e, with_type=True)[:300]}")
