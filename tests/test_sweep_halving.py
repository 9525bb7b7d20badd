"""Successive halving (ASHA) in sweeps: the [halving] table, the promotion rule, a sweep end to end
(the rung sizes shrink by eta, the survivor trains exactly as an uninterrupted run), `kill -9`
then `--resume`, and a schema-1 database migrated in place."""

from __future__ import annotations

import math
import sqlite3
import sys
from pathlib import Path

import pytest
from sweep_kill import kill_9_sweep_when

from chainrule.cli import main
from chainrule.sweep import SpecError, Store, parse_spec
from chainrule.sweep.halving import Rungs
from chainrule.sweep.spec import Halving
from chainrule.train import TrainConfig, train_run
from chainrule.train.config import from_dict

SPEC = """
name = "tiny-asha"
seeds = 1
[base]
dataset = "synthetic"
hidden_sizes = [8]
batch_size = 32
epochs = 9
schedule = "cosine"
[random]
n_trials = 9
lr = { log_uniform = [1e-4, 1.0] }
[halving]
reduction_factor = 3
"""


def db(out: Path) -> tuple[dict[str, dict], list[dict]]:
    with Store(out / "sweep.db", readonly=True) as store:
        return {t["trial_id"]: t for t in store.trials()}, store.rungs()


def _promoted_fairly(tid: str, k: int, rungs: list[dict], before: float, h: Halving) -> bool:
    """ASHA's rule, checked after the fact: when `tid` went on from rung k (after its own rung-k
    result, before `before`), it was among the best 1/eta of the rung-k results recorded by then."""
    recs = sorted((r for r in rungs if r["rung"] == k), key=lambda r: r["recorded"])
    mine = next(r for r in recs if r["trial_id"] == tid)
    for j in range(len(recs)):
        prefix = recs[: j + 1]
        if mine not in prefix or prefix[-1]["recorded"] > before:
            continue
        r = Rungs(h, prefix, {})
        if tid in r.top(k):
            return True
    return False


def check_invariants(trials: dict[str, dict], rungs: list[dict], eta: int, n_rungs: int) -> None:
    """Every trial ended once (completed or pruned); a trial's rungs are 0..r without gaps; every
    promotion was to a trial then among the best 1/eta at its rung (ASHA may promote more than
    1/eta in all, as the best set changes while results come in)."""
    h = Halving("val_acc", eta, 1 / eta**2)
    assert all(t["status"] in ("completed", "pruned") for t in trials.values()), trials
    per_trial: dict[str, dict[int, dict]] = {}
    for r in rungs:
        per_trial.setdefault(r["trial_id"], {})[r["rung"]] = r
    for tid, t in trials.items():
        got = sorted(per_trial.get(tid, {}))
        assert got == list(range(len(got))), (tid, got)
        if t["status"] == "completed":  # passed every rung below the whole run
            assert got == list(range(n_rungs - 1)) and t["epochs"] == 9.0
        else:
            assert t["rung"] == got[-1] and t["end_status"] == "paused" and t["finished"]
        for k in got[:-1]:  # went on from rung k: its rung-(k+1) result came after the promotion
            assert _promoted_fairly(tid, k, rungs, per_trial[tid][k + 1]["recorded"], h), (tid, k)
        if t["status"] == "completed":
            assert _promoted_fairly(tid, got[-1], rungs, t["finished"], h), (tid, got[-1])
    sizes = [sum(r["rung"] == k for r in rungs) for k in range(n_rungs - 1)]
    assert sizes[0] == len(trials)
    assert all(sizes[k] <= sizes[k - 1] for k in range(1, n_rungs - 1)), sizes
    completed = sum(t["status"] == "completed" for t in trials.values())
    assert 1 <= completed <= sizes[-1], (completed, sizes)


def test_spec_halving_table():
    spec = parse_spec(SPEC)
    assert spec.halving == Halving("val_acc", 3, 1 / 9)
    assert spec.halving.fractions == pytest.approx([1 / 9, 1 / 3, 1.0])
    assert spec.halving.maximize
    table = 'metric = "val_loss"\nreduction_factor = 2\nmin_fraction = 0.2'
    h = parse_spec(SPEC.replace("reduction_factor = 3", table)).halving
    assert h == Halving("val_loss", 2, 0.2) and not h.maximize
    assert h.fractions == pytest.approx([0.2, 0.4, 0.8, 1.0])
    assert parse_spec(SPEC.replace("[halving]\nreduction_factor = 3", "")).halving is None


@pytest.mark.parametrize(
    "table, message",
    [
        ("reduction_factr = 3", "unknown key 'reduction_factr' (did you mean 'reduction_factor'?)"),
        ('metric = "test_acc"', "never a test metric"),
        ('metric = "val_accuracy"', "did you mean 'val_acc'?"),
        ("reduction_factor = 1", "reduction_factor = 1 should be an integer >= 2"),
        ("reduction_factor = 2.5", "reduction_factor = 2.5 should be an integer >= 2"),
        ("min_fraction = 1.0", "min_fraction = 1.0 should be a number in (0, 1)"),
        ("min_fraction = 0", "min_fraction = 0 should be a number in (0, 1)"),
    ],
)
def test_bad_halving_table_is_one_line_naming_the_key(table, message):
    text = SPEC.replace("reduction_factor = 3", table)
    with pytest.raises(SpecError) as e:
        parse_spec(text, source="h.toml")
    msg = str(e.value)
    assert msg.startswith("h.toml [halving]: ") and message in msg and "\n" not in msg


def test_halving_metric_must_be_measured():
    with pytest.raises(SpecError, match=r"needs a validation split, but trial \w+ has val_fraction = 0"):
        parse_spec(SPEC.replace("epochs = 9", "epochs = 9\nval_fraction = 0"), source="h.toml")
    with pytest.raises(SpecError, match="needs train_eval_size > 0"):
        parse_spec(
            SPEC.replace("epochs = 9", "epochs = 9\ntrain_eval_size = 0").replace(
                "reduction_factor = 3", 'metric = "train_loss"'
            )
        )


def test_promotion_rule():
    h = Halving("val_acc", 3, 1 / 9)
    values = [0.5, 0.9, 0.7, 0.8, float("nan"), 0.6]
    rows = [{"trial_id": f"t{i}", "rung": 0, "value": v} for i, v in enumerate(values)]
    r = Rungs(h, rows, {f"t{i}": 0 for i in range(6)})
    assert r.top(0) == ["t1", "t3"]  # 6 // 3 = 2 best; NaN ranks last
    assert r.promotion() == ("t1", 1)
    r.promote("t1")
    assert r.promotion() == ("t3", 1)
    r.promote("t3")
    assert r.promotion() is None  # the rest are not in the top third
    r.record("t1", 1, 0.95)
    r.record("t3", 1, 0.85)
    assert r.promotion() is None  # 2 at rung 1: 2 // 3 = 0 may go on
    r.record("t6", 0, 0.99)  # a 7th trial at rung 0: still 2 promotions there, t6 is the best
    assert r.top(0) == ["t6", "t1"] and r.promotion() == ("t6", 1)
    assert r.fraction(0) == pytest.approx(1 / 9) and r.fraction(1) == pytest.approx(1 / 3)
    assert r.fraction(2) is None and r.last == 2
    # a loss is minimized; the highest rung is served first
    lo = Rungs(Halving("val_loss", 2, 0.25), [], {})
    for tid, v in [("a", 0.3), ("b", 0.1), ("c", 0.2), ("d", 0.4)]:
        lo.record(tid, 0, v)
    lo.record("x", 1, 0.05)
    lo.record("y", 1, 0.5)
    assert lo.promotion() == ("x", 2)
    lo.promote("x")
    assert lo.promotion() == ("b", 1)


def test_halving_sweep_end_to_end(tmp_path, capsys):
    spec = tmp_path / "h.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2"]) == 0
    _, err = capsys.readouterr()
    assert "successive halving on val_acc, rungs at 0.111, 0.333, 1" in err
    assert "paused at rung 0" in err and "promoted to rung 1" in err and "pruned by successive halving" in err
    trials, rungs = db(out)
    assert len(trials) == 9
    check_invariants(trials, rungs, 3, 3)
    # the survivor was paused twice and continued from its checkpoint: it must have trained exactly
    # as one uninterrupted run of the same config
    best = next(t for t in trials.values() if t["status"] == "completed")
    assert best["attempts"] == 3
    cfg = from_dict(best["config"], TrainConfig(), source="test").replace(run_dir=str(tmp_path / "straight"))
    straight = train_run(cfg, quiet=True, plots=False).summary["final"]
    for k in ("val_acc", "val_loss", "test_acc", "test_loss"):
        assert straight[k] == best[k], k
    # a pruned trial keeps the figures of its last rung, and stopped early
    pruned = [t for t in trials.values() if t["status"] == "pruned"]
    assert pruned and all(t["epochs"] < 9 and t["val_acc"] is not None for t in pruned)
    csv_text = (out / "trials.csv").read_text()
    assert csv_text.splitlines()[0].endswith(",rung") and ",pruned," in csv_text
    html = (out / "report.html").read_text()
    assert "Successive halving (ASHA) on val_acc" in html and "(pruned)" in html
    assert "pruned at: rung, val acc" in html
    assert (out / "halving.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # resuming a finished halving sweep runs nothing
    assert main(["sweep", "--resume", str(out), "--no-report"]) == 0
    assert db(out)[0] == trials


SLOW = SPEC.replace("hidden_sizes = [8]\nbatch_size = 32", "hidden_sizes = [48]\nbatch_size = 8")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 and /proc: Linux")
def test_kill_9_mid_halving_then_resume(tmp_path, capsys):
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW)
    out = tmp_path / "out"

    def some_paused_some_running(trials: dict[str, dict]) -> bool:
        states = [t["status"] for t in trials.values()]
        return states.count("paused") >= 2 and "running" in states

    kill_9_sweep_when(spec, out, some_paused_some_running)
    killed, killed_rungs = db(out)
    assert [t for t in killed.values() if t["status"] == "running"]
    assert main(["sweep", "--resume", str(out), "--workers", "2", "--no-report"]) == 0
    trials, rungs = db(out)
    check_invariants(trials, rungs, 3, 3)
    kept = {(x["trial_id"], x["rung"], x["value"]) for x in rungs}
    for r in killed_rungs:  # what was recorded before the kill is kept as it was
        assert (r["trial_id"], r["rung"], r["value"]) in kept
    capsys.readouterr()


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    trial_id TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE, seed INTEGER NOT NULL,
    params TEXT NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    created REAL NOT NULL, started REAL, finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0, wall_s REAL NOT NULL DEFAULT 0,
    val_acc REAL, test_acc REAL, val_loss REAL, test_loss REAL, train_acc REAL, train_loss REAL,
    best_monitor TEXT, best_value REAL, best_step INTEGER, best_val_acc REAL, best_test_acc REAL,
    train_time_s REAL, epochs REAL, steps INTEGER, end_status TEXT, message TEXT, error TEXT
);
CREATE INDEX trials_status ON trials (status);
CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, finished REAL,
    workers INTEGER NOT NULL, backend TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1'), ('name', 'old');
INSERT INTO trials (trial_id, number, seed, params, config, status, created, val_acc, attempts)
    VALUES ('abc', 0, 0, '{"lr": 0.1}', '{}', 'completed', 1.0, 0.97, 1),
           ('def', 1, 0, '{"lr": 0.2}', '{}', 'pending', 1.0, NULL, 0);
"""


def test_schema_1_database_is_migrated(tmp_path):
    path = tmp_path / "sweep.db"
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    con.close()
    with Store(path, readonly=True) as store:  # read-only: as it is, no rungs
        assert store.rungs() == [] and store.get_meta("schema_version") == "1"
        assert store.counts()["completed"] == 1
    with Store(path) as store:
        assert store.get_meta("schema_version") == "2"
        t = {x["trial_id"]: x for x in store.trials()}
        assert t["abc"]["status"] == "completed" and t["abc"]["val_acc"] == 0.97 and t["abc"]["rung"] is None
        assert t["def"]["status"] == "pending"
        store.mark_running("def", 0)
        store.mark_paused("def", 0, 0.5, {"val_acc": 0.5, "steps": 10})
        assert store.counts()["paused"] == 1 and store.rungs()[0]["value"] == 0.5
        store.mark_pruned(["def"])
        assert store.counts()["pruned"] == 1
        assert not math.isnan(store.trials("pruned")[0]["finished"])
    with Store(path) as store:  # opening it again is a no-op
        assert store.get_meta("schema_version") == "2" and len(store.trials()) == 2
