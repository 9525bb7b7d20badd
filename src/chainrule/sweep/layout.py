"""What a sweep folder holds, by name: the one place that knows its file names.

    DIR/sweep.db        the coordinator's SQLite store (`store.Store`)
    DIR/spec.toml       the spec the sweep was started from
    DIR/trials.csv      one row per trial (`runner.write_csv`)
    DIR/trials/<id>/    each trial's run folder (`chainrule.train.run`)
    DIR/report.html     the report and its PNGs (`report.write_sweep_report`)
    (the folder itself is flock-ed by the coordinator: chainrule._io.FolderLock)

The runner and the report both read it; neither imports the other for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DB_NAME = "sweep.db"
SPEC_NAME = "spec.toml"
CSV_NAME = "trials.csv"
REPORT_NAME = "report.html"


class SweepError(RuntimeError):
    """The sweep cannot run (folder taken, not a sweep folder, ...): one line."""


def trial_dir(out_dir: Path, trial_id: str) -> Path:
    return out_dir / "trials" / trial_id


def swept_keys(trials: list[dict[str, Any]]) -> list[str]:
    """The swept keys of the store's trial rows, in order of first appearance."""
    keys: list[str] = []
    for t in trials:
        for k in t["params"]:
            if k not in keys:
                keys.append(k)
    return keys
