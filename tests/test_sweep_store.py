"""The sweep store: trials as rows with explicit states and times, idempotent inserts, WAL mode,
read-only access while the coordinator writes."""

from __future__ import annotations

import sqlite3

import pytest

from chainrule.sweep import Store, StoreError, Trial
from chainrule.sweep.store import STATUSES


def trials(n: int, offset: int = 0) -> list[Trial]:
    return [
        Trial(f"id{i:03d}", {"lr": 0.1 * (i + 1), "seed": i % 2}, i % 2, {"lr": 0.1 * (i + 1)})
        for i in range(offset, offset + n)
    ]


def test_add_is_idempotent_and_numbers_follow_creation_order(tmp_path):
    with Store(tmp_path / "sweep.db") as store:
        assert store.add_trials(trials(3)) == ["id000", "id001", "id002"]
        assert store.add_trials(trials(5)) == ["id003", "id004"]  # the first three are there already
        rows = store.trials()
        assert [r["trial_id"] for r in rows] == [f"id{i:03d}" for i in range(5)]
        assert [r["number"] for r in rows] == list(range(5))
        assert all(r["status"] == "pending" and r["attempts"] == 0 for r in rows)
        assert rows[1]["params"] == {"lr": 0.2} and rows[1]["config"]["seed"] == 1 and rows[1]["seed"] == 1
        assert store.counts() == dict.fromkeys(STATUSES, 0) | {"pending": 5}
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_transitions_times_results_and_errors(tmp_path):
    path = tmp_path / "sweep.db"
    with Store(path) as store:
        store.add_trials(trials(3))
        store.mark_running("id000")
        store.mark_running("id001")
        r = {r["trial_id"]: r for r in store.trials()}
        assert r["id000"]["status"] == "running" and r["id000"]["started"] >= r["id000"]["created"]
        store.mark_completed(
            "id000",
            {"val_acc": 0.9, "test_acc": 0.8, "epochs": 3.0, "end_status": "completed", "not_a_column": 1},
            wall_s=2.5,
        )
        store.mark_failed("id001", "TrainingDiverged: boom", {"epochs": 0.5}, wall_s=1.0)
        with Store(path, readonly=True) as reader:  # a second process reading while the first writes
            r = {r["trial_id"]: r for r in reader.trials()}
            assert reader.counts() == dict.fromkeys(STATUSES, 0) | {"pending": 1, "completed": 1, "failed": 1}
            with pytest.raises(sqlite3.OperationalError):
                reader.set_meta("x", "y")
        assert r["id000"]["val_acc"] == 0.9 and r["id000"]["wall_s"] == 2.5 and r["id000"]["attempts"] == 1
        assert r["id000"]["finished"] >= r["id000"]["started"] and r["id000"]["error"] is None
        assert r["id001"]["status"] == "failed" and r["id001"]["error"] == "TrainingDiverged: boom"
        assert r["id001"]["epochs"] == 0.5
        store.reset(["id001"])  # --retry-failed
        again = store.trials("pending")
        assert [t["trial_id"] for t in again] == ["id001", "id002"]
        assert again[0]["error"] is None and again[0]["epochs"] is None and again[0]["attempts"] == 1
        store.mark_running("id001")
        assert store.trials("running")[0]["attempts"] == 2


def test_meta_sessions_and_bad_files(tmp_path):
    with Store(tmp_path / "sweep.db") as store:
        store.set_meta("name", "a")
        store.set_meta("name", "b")
        assert store.get_meta("name") == "b" and store.get_meta("missing") is None
        s = store.start_session(2, "local")
        store.end_session(s)
        (row,) = store.sessions()
        assert row["workers"] == 2 and row["backend"] == "local" and row["finished"] >= row["started"]
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope.db", readonly=True)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable sweep database"):
        Store(junk)
