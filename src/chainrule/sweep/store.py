"""The sweep store: one SQLite database, `DIR/sweep.db`, written only by the coordinator.

Trials are rows with an explicit state (pending -> running -> completed | failed; with successive
halving also running -> paused -> running ... and paused -> pruned) and the times of each
transition; a sweep is resumed from its database alone (the trial configs are in it), by any
process, after any crash. WAL journal with `synchronous = FULL`: a committed transition
survives a power cut, and readers (`chainrule sweep-report` while the sweep runs) never block
the writer.

    meta      key, value                     name, description, spec text, schema version
    trials    trial_id (primary key), number (creation order), seed, params (swept values, JSON),
              config (resolved TrainConfig, JSON), status, created, started, finished (unix time),
              attempts, wall_s (worker time, all attempts), the final metrics (val_acc, test_acc,
              val_loss, test_loss, train_acc, train_loss), the best monitored value and its step
              (best_monitor, best_value, best_step, best_val_acc, best_test_acc), train_time_s,
              epochs, steps, end_status (the trainer's: completed, early_stopped, diverged),
              message, error (one line; the traceback is in DIR/trials/<id>/error.log),
              rung (the last halving rung reached), target_rung (the rung a running trial heads for)
    rungs     trial_id, rung, value (the halving metric there), step, recorded: one row per rung reached
    sessions  one row per `chainrule sweep` process: started, finished, workers, backend
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from .spec import Trial

SCHEMA_VERSION = "2"


class TrialStatus(StrEnum):
    """A trial's state in the store (the trainer's own statuses are `chainrule.train.RunStatus`;
    `trial_outcome` maps one to the other)."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    PRUNED = "pruned"
    FAILED = "failed"


STATUSES = tuple(s.value for s in TrialStatus)
ENDED = (TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value, TrialStatus.FAILED.value)  # never run again


@dataclass
class TrialResult:
    """What the store keeps of a run's summary.json: one column each (`RESULT_COLUMNS`)."""

    val_acc: float | None = None
    test_acc: float | None = None
    val_loss: float | None = None
    test_loss: float | None = None
    train_acc: float | None = None
    train_loss: float | None = None
    best_monitor: str | None = None
    best_value: float | None = None
    best_step: int | None = None
    best_val_acc: float | None = None
    best_test_acc: float | None = None
    train_time_s: float | None = None
    epochs: float | None = None
    steps: int | None = None
    end_status: str | None = None  # the trainer's status (`chainrule.train.RunStatus`)
    message: str | None = None

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> TrialResult:
        final = summary.get("final", {})
        best = summary.get("best", {}) or {}
        record = best.get("record") or {}
        return cls(
            **{k: final.get(k) for k in ("val_acc", "test_acc", "val_loss", "test_loss")},
            train_acc=final.get("train_acc"),
            train_loss=final.get("train_loss"),
            best_monitor=best.get("monitor"),
            best_value=best.get("value"),
            best_step=best.get("step"),
            best_val_acc=record.get("val_acc"),
            best_test_acc=record.get("test_acc"),
            train_time_s=summary.get("train_time_s"),
            epochs=summary.get("epochs"),
            steps=summary.get("steps"),
            end_status=summary.get("status"),
            message=summary.get("message"),
        )

    def columns(self) -> dict[str, Any]:
        return asdict(self)


RESULT_COLUMNS = tuple(f.name for f in fields(TrialResult))
# all the store keeps of a run that diverged (its metrics are of the model reset to its last good
# state, not results)
FAILED_RUN_COLUMNS = ("train_time_s", "epochs", "steps", "end_status", "message")


def trial_outcome(run_status: str | None) -> str:
    """What a run that stopped with the trainer's `run_status` (`chainrule.train.RunStatus`) means
    for its trial: "completed" (completed, early_stopped), "paused" (at a halving rung: the
    coordinator decides whether it goes on), "interrupted" (the trial stays running; `--resume`
    continues it) or "failed" (diverged: its metrics are not results)."""
    from chainrule.train.trainer import RunStatus

    if run_status in (RunStatus.COMPLETED, RunStatus.EARLY_STOPPED):
        return TrialStatus.COMPLETED.value
    if run_status in (RunStatus.PAUSED, RunStatus.INTERRUPTED):
        return str(RunStatus(run_status).value)
    return TrialStatus.FAILED.value


_V1_COLUMNS = """trial_id, number, seed, params, config, status, created, started, finished, attempts, wall_s,
    val_acc, test_acc, val_loss, test_loss, train_acc, train_loss, best_monitor, best_value, best_step,
    best_val_acc, best_test_acc, train_time_s, epochs, steps, end_status, message, error"""
_TRIALS = """
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    seed INTEGER NOT NULL,
    params TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'paused', 'completed', 'pruned', 'failed')),
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    wall_s REAL NOT NULL DEFAULT 0,
    val_acc REAL, test_acc REAL, val_loss REAL, test_loss REAL, train_acc REAL, train_loss REAL,
    best_monitor TEXT, best_value REAL, best_step INTEGER, best_val_acc REAL, best_test_acc REAL,
    train_time_s REAL, epochs REAL, steps INTEGER,
    end_status TEXT, message TEXT, error TEXT,
    rung INTEGER, target_rung INTEGER
);
CREATE INDEX IF NOT EXISTS trials_status ON trials (status);"""
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"""
    + _TRIALS
    + """
CREATE TABLE IF NOT EXISTS rungs (
    trial_id TEXT NOT NULL REFERENCES trials (trial_id),
    rung INTEGER NOT NULL,
    value REAL,
    step INTEGER,
    recorded REAL NOT NULL,
    PRIMARY KEY (trial_id, rung)
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    workers INTEGER NOT NULL,
    backend TEXT NOT NULL
);
"""
)


class StoreError(RuntimeError):
    """The database cannot be opened or is not a chainrule sweep."""


class Store:
    """Open (and create) `path`. `readonly` opens an existing database and refuses writes (the
    report, and tests, read while the coordinator writes)."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise StoreError(f"{self.path} does not exist: is {self.path.parent} a sweep folder?")
        try:
            if readonly:  # a normal connection that refuses writes: it can recover the WAL index
                self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # after a crash
                self.db.execute("PRAGMA query_only = ON")
            else:
                self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(_SCHEMA)
                version = self.get_meta("schema_version")
                if version is None:
                    self.set_meta("schema_version", SCHEMA_VERSION)
                elif version == "1":
                    self._migrate_v1()
                elif version != SCHEMA_VERSION:
                    raise StoreError(f"{self.path}: schema version {version}, expected {SCHEMA_VERSION}")
            self.db.row_factory = sqlite3.Row
            self.db.execute("SELECT count(*) FROM trials").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a readable sweep database: {e}") from None

    def _migrate_v1(self) -> None:
        """Schema 1 -> 2 (successive halving): two more states and the rung columns. SQLite cannot
        change a CHECK constraint in place, so the table is copied, in one transaction."""
        with self._tx() as db:
            db.execute("DROP INDEX IF EXISTS trials_status")
            db.execute("ALTER TABLE trials RENAME TO trials_v1")
            for stmt in _TRIALS.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(f"INSERT INTO trials ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM trials_v1")
            db.execute("DROP TABLE trials_v1")
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- meta --------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ---- trials ------------------------------------------------------------------------------------
    def add_trials(self, trials: Iterable[Trial]) -> list[str]:
        """Insert the trials not in the database yet (as pending); return their ids."""
        added = []
        now = time.time()
        with self._tx() as db:
            number = db.execute("SELECT coalesce(max(number), -1) + 1 FROM trials").fetchone()[0]
            for t in trials:
                cur = db.execute(
                    "INSERT OR IGNORE INTO trials (trial_id, number, seed, params, config, status, created) "
                    "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                    (t.trial_id, number, t.seed, json.dumps(t.params), json.dumps(t.config), now),
                )
                if cur.rowcount:
                    added.append(t.trial_id)
                    number += 1
        return added

    def mark_running(self, trial_id: str, target_rung: int | None = None) -> None:
        """Running (towards halving rung `target_rung`, if given)."""
        with self._tx() as db:
            db.execute(
                "UPDATE trials SET status = 'running', started = ?, finished = NULL, "
                "attempts = attempts + 1, target_rung = ? WHERE trial_id = ?",
                (time.time(), target_rung, trial_id),
            )

    def mark_paused(
        self, trial_id: str, rung: int, value: float | None, result: dict[str, Any], wall_s: float = 0.0
    ) -> None:
        """The trial reached halving rung `rung` with `value` of the metric; its metrics there are kept
        in its row (so trials.csv shows how far it got) until it goes on."""
        cols = [c for c in RESULT_COLUMNS if c in result]
        sets = "".join(f", {c} = ?" for c in cols)
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE trials SET status = 'paused', wall_s = wall_s + ?, rung = ?, "
                f"target_rung = NULL{sets} WHERE trial_id = ?",
                (wall_s, rung, *[result[c] for c in cols], trial_id),
            )
            db.execute(
                "INSERT OR REPLACE INTO rungs (trial_id, rung, value, step, recorded) VALUES (?, ?, ?, ?, ?)",
                (trial_id, rung, value, result.get("steps"), now),
            )

    def mark_pruned(self, trial_ids: Iterable[str]) -> None:
        """Paused trials that successive halving stops for good (their row keeps the last rung's
        metrics)."""
        now = time.time()
        with self._tx() as db:
            for tid in trial_ids:
                db.execute(
                    "UPDATE trials SET status = 'pruned', finished = ? "
                    "WHERE trial_id = ? AND status = 'paused'",
                    (now, tid),
                )

    def rungs(self) -> list[dict[str, Any]]:
        """Every rung result: trial_id, rung, value, step, recorded (empty for a schema-1 database)."""
        try:
            rows = self.db.execute("SELECT * FROM rungs ORDER BY rung, recorded").fetchall()
        except sqlite3.OperationalError:  # a schema-1 database opened read-only
            return []
        return [dict(r) for r in rows]

    def mark_completed(self, trial_id: str, result: dict[str, Any], wall_s: float = 0.0) -> None:
        cols = [c for c in RESULT_COLUMNS if c in result]
        sets = ", ".join(f"{c} = ?" for c in cols)
        with self._tx() as db:
            db.execute(
                f"UPDATE trials SET status = 'completed', finished = ?, wall_s = wall_s + ?, error = NULL"
                f"{', ' if cols else ''}{sets} WHERE trial_id = ?",
                (time.time(), wall_s, *[result[c] for c in cols], trial_id),
            )

    def mark_failed(
        self, trial_id: str, error: str, result: dict[str, Any] | None = None, wall_s: float = 0.0
    ) -> None:
        result = result or {}
        cols = [c for c in RESULT_COLUMNS if c in result]
        sets = "".join(f", {c} = ?" for c in cols)
        with self._tx() as db:
            db.execute(
                f"UPDATE trials SET status = 'failed', finished = ?, wall_s = wall_s + ?, error = ?{sets} "
                "WHERE trial_id = ?",
                (time.time(), wall_s, error, *[result[c] for c in cols], trial_id),
            )

    def reset(self, trial_ids: Iterable[str]) -> None:
        """Back to pending (a failed trial to be tried again); results and error are cleared."""
        cleared = ", ".join(f"{c} = NULL" for c in RESULT_COLUMNS)
        with self._tx() as db:
            for tid in trial_ids:
                db.execute(
                    f"UPDATE trials SET status = 'pending', started = NULL, finished = NULL, error = NULL, "
                    f"rung = NULL, target_rung = NULL, {cleared} WHERE trial_id = ?",
                    (tid,),
                )
                db.execute("DELETE FROM rungs WHERE trial_id = ?", (tid,))

    def requeue_running(self) -> int:
        """The running trials back to pending (the coordinator stopped them: nothing runs them now);
        their target rung and checkpoints are kept, so they continue where they were. Returns how many."""
        with self._tx() as db:
            return int(db.execute("UPDATE trials SET status = 'pending' WHERE status = 'running'").rowcount)

    def free_wal(self) -> None:
        """Move the write-ahead log into the database and truncate it to zero bytes: on a full disk
        this frees what the log held, so that a last small write (`requeue_running`) can succeed."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def trials(self, status: str | None = None) -> list[dict[str, Any]]:
        """Rows as dicts (params and config decoded), in creation order."""
        if status is None:
            rows = self.db.execute("SELECT * FROM trials ORDER BY number").fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM trials WHERE status = ? ORDER BY number", (status,)
            ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["params"] = json.loads(d["params"])
            d["config"] = json.loads(d["config"])
            out.append(d)
        return out

    def counts(self) -> dict[str, int]:
        got = dict(self.db.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall())
        return {s: int(got.get(s, 0)) for s in STATUSES}

    # ---- sessions ----------------------------------------------------------------------------------
    def start_session(self, workers: int, backend: str) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO sessions (started, workers, backend) VALUES (?, ?, ?)",
                (time.time(), workers, backend),
            )
            return int(cur.lastrowid or 0)

    def end_session(self, session: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET finished = ? WHERE id = ?", (time.time(), session))

    def sessions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM sessions ORDER BY id").fetchall()]
