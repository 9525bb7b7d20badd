"""What a worker process does: run one trial with `chainrule.train.train_run` into its run folder.

Runs in the local pool's worker processes and in Ray tasks alike. The data set is loaded once per
worker process (`_RAW` keeps the uint8 arrays, which the chainrule.data cache memory-maps) and each
process uses `threads` BLAS/torch/chainrule threads, so N workers never oversubscribe the cores.

A trial folder with `config.toml` and `checkpoint.npz` is resumed from its checkpoint; a folder
whose `summary.json` says the trial ended (the coordinator died before it recorded the result) is
taken as it is; anything else is started afresh.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from chainrule import layout
from chainrule._io import one_line

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CHAINRULE_NUM_THREADS")
_RAW: dict[tuple[str, str | None], Any] = {}
_PREPARED: dict[str, Any] = {}
_THREADS: int | None = None
_LIMITER: Any = None


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that make libraries loaded later use `threads` threads."""
    return {k: str(threads) for k in THREAD_VARS}


def set_threads(threads: int) -> None:
    """BLAS (threadpoolctl), chainrule's elementwise threads and, if loaded, torch: `threads` each."""
    global _THREADS, _LIMITER
    if _THREADS == threads:
        return
    os.environ.update(thread_env(threads))
    try:
        from threadpoolctl import threadpool_limits

        _LIMITER = threadpool_limits(limits=threads)  # kept alive: the limits hold until restored
    except ImportError:  # the environment variables above still hold for libraries loaded later
        pass
    from chainrule import parallel

    parallel.set_num_threads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    _THREADS = threads


def _die_with_parent() -> None:
    """A worker must not outlive the coordinator (after a `kill -9` it would go on writing a trial
    folder that a resumed sweep writes too): Linux's PR_SET_PDEATHSIG, and a watchdog thread."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="chainrule-parent-watch").start()


def init_worker(threads: int) -> None:
    """Initializer of the local pool's worker processes."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    set_threads(threads)


def _load_raw(cfg: Any) -> Any:
    from chainrule.train.prepare import load_raw, needs_files, resolve_data_root

    key = (cfg.dataset, resolve_data_root(cfg.data_dir, cfg.download) if needs_files(cfg.dataset) else None)
    if key not in _RAW:
        _RAW[key] = load_raw(cfg)
    return _RAW[key]


def _prepared(cfg: Any, raw: Any) -> Any:
    """`prepare(raw, cfg)`, kept for the next trial with the same split and preprocessing (a
    sweep's trials usually differ only in what they train: MNIST's split and float conversion cost
    about 0.3 s a trial, CIFAR-10's a few seconds). One set is kept; its arrays are made read-only,
    so a trial that wrote into them would fail loudly instead of changing the next trial's data."""
    from chainrule.train.prepare import prepare

    key = (id(raw), cfg.val_fraction, cfg.seed, cfg.preprocess, cfg.model == "mlp", cfg.dtype)
    if _PREPARED.get("key") != key:
        _PREPARED.clear()  # the old set goes before the new one is made: one in memory at a time
        data = prepare(raw, cfg)
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "raw_test"):
            a = getattr(data, name)
            if a is not None and a.flags.owndata:
                a.flags.writeable = False
        _PREPARED.update(key=key, data=data)
    return _PREPARED["data"]


def run_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Run (or continue) one trial. `task`: trial_id, config (dict), run_dir, threads, plots (the
    run folder's PNGs and report.html; off by default: seconds each), until_fraction (successive
    halving: pause the trial at this fraction of its steps), mlflow_parent (the sweep's MLflow run,
    `chainrule.train.loggers.MlflowRun.ref`, when the trial logs to MLflow).

    Returns {"trial_id", "status": "completed" | "paused" | "failed" | "interrupted", "result",
    "error", "wall_s", "resumed", "pid"}; never raises for a failing trial."""
    t0 = time.perf_counter()
    tid, run_dir = task["trial_id"], Path(task["run_dir"])
    out: dict[str, Any] = {"trial_id": tid, "pid": os.getpid(), "resumed": False, "result": {}, "error": None}
    try:
        if task.get("threads"):
            set_threads(int(task["threads"]))
        from chainrule.train.checkpoint import CheckpointError
        from chainrule.train.config import TrainConfig, from_dict
        from chainrule.train.run import train_run
        from chainrule.train.trainer import RunStatus

        cfg = from_dict(task["config"], TrainConfig(), source=f"trial {tid}").replace(run_dir=str(run_dir))
        summary_path = run_dir / layout.SUMMARY
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            if summary.get("status") in RunStatus.ended():  # ended before the coordinator could record it
                return _finish(out, summary, t0)
        resume = None
        if layout.is_run_folder(run_dir) and (run_dir / layout.CHECKPOINT).is_file():
            resume = run_dir
            out["resumed"] = True
        elif run_dir.exists():  # started but not as far as a first checkpoint: start afresh
            shutil.rmtree(run_dir)
        raw = _load_raw(cfg)
        options = {
            "quiet": True,
            "raw": raw,
            "data": _prepared(cfg, raw),
            "plots": bool(task.get("plots")),
            "until_fraction": task.get("until_fraction"),
            "mlflow_parent": task.get("mlflow_parent"),  # the sweep's MLflow run: this trial's is its child
        }
        try:
            res = train_run(cfg, resume=resume, **options)
        except CheckpointError as e:  # a damaged checkpoint would fail every retry: start again
            if resume is None:
                raise
            shutil.rmtree(run_dir)
            out.update(resumed=False, note=f"its checkpoint was unreadable ({e}); restarted from step 0")
            res = train_run(cfg, resume=None, **options)
        return _finish(out, res.summary, t0)
    except Exception as e:
        out.update(status="failed", error=one_line(e, with_type=True), wall_s=time.perf_counter() - t0)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / layout.ERROR_LOG).write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            pass
        return out


def _finish(out: dict[str, Any], summary: dict[str, Any], t0: float) -> dict[str, Any]:
    from .store import FAILED_RUN_COLUMNS, TrialResult, trial_outcome

    run_status = summary.get("status")
    out["status"] = trial_outcome(run_status)
    out["result"] = TrialResult.from_summary(summary).columns()
    out["wall_s"] = time.perf_counter() - t0
    if out["status"] == "failed":  # diverged: the summary's metrics are not results
        out["error"] = summary.get("message") or f"the run ended as {run_status!r}"
        out["result"] = {k: v for k, v in out["result"].items() if k in FAILED_RUN_COLUMNS}
    return out
