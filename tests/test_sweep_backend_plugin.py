"""A sweep backend is a plug-in: a pool class that this file defines and registers in
`chainrule.sweep.backends.POOLS` runs a sweep through `chainrule sweep --backend NAME`, with no
change in the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chainrule.cli import main
from chainrule.sweep import Store, worker
from chainrule.sweep.backends import POOLS, Pool

SPEC = """
name = "inline"
seeds = 1
[base]
dataset = "synthetic"
hidden_sizes = [16]
epochs = 2
[grid]
lr = [0.05, 0.1]
"""


class InlinePool(Pool):
    """Runs each trial in this process, at submit: the smallest backend."""

    name = "inline"
    submitted: list[str] = []

    @staticmethod
    def where(workers: int, threads: int) -> str:
        return " inline (a test's backend)"

    def __init__(self, workers: int, threads: int) -> None:
        self.capacity, self.threads = 1, threads
        self.done: list[tuple[dict[str, Any], dict[str, Any]]] = []

    @property
    def busy(self) -> int:
        return len(self.done)

    def submit(self, task: dict[str, Any]) -> None:
        InlinePool.submitted.append(task["trial_id"])
        self.done.append((task, worker.run_trial(dict(task, threads=self.threads))))

    def wait(self, timeout: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        done, self.done = self.done, []
        return done

    def kill(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def inline_pool():
    POOLS["inline"] = InlinePool
    InlinePool.submitted = []
    yield
    del POOLS["inline"]


def test_a_registered_backend_runs_a_sweep(inline_pool, tmp_path: Path, capsys):
    spec = tmp_path / "inline.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    rc = main(["sweep", str(spec), "--out", str(out), "--backend", "inline", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "inline (a test's backend)" in err
    with Store(out / "sweep.db", readonly=True) as store:
        trials = store.trials()
    assert len(trials) == 2 and all(t["status"] == "completed" for t in trials)
    assert sorted(InlinePool.submitted) == sorted(t["trial_id"] for t in trials)
    assert all(t["test_acc"] > 0.5 for t in trials)


def test_address_is_refused_by_a_backend_that_takes_none(inline_pool, tmp_path: Path, capsys):
    spec = tmp_path / "inline.toml"
    spec.write_text(SPEC)
    rc = main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--backend", "inline", "--address", "auto"])
    assert rc != 0
    assert "--address is for --backend ray" in capsys.readouterr().err
