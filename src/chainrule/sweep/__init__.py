"""Sweeps: grid and random search with repeated seeds, on top of `chainrule.train.train_run`.

    from chainrule.sweep import load_spec, run_sweep, write_sweep_report
    spec = load_spec("lr.toml")                 # checked and expanded to trials, nothing runs yet
    result = run_sweep(spec, "sweeps/lr", workers=2)
    run_sweep(None, "sweeps/lr")                # resume after a crash (the database is enough)

A sweep folder holds `sweep.db` (SQLite, the coordinator's store), `spec.toml`, `trials.csv`,
`trials/<id>/` (ordinary run folders), `report.html` and its PNGs (the names: `chainrule.layout`). See
README's "Sweeps". Where things live: `spec` (parse and expand), `store` (SQLite), `runner` (the
coordinator), `worker` and `backends` (where trials run), `halving`, `report`, `progress`.
"""

from .layout import SweepError
from .report import build_report, summary_line, write_sweep_report
from .runner import SweepResult, run_sweep, write_csv
from .spec import SpecError, SweepSpec, Trial, load_spec, parse_spec, spec_names, spec_text, trial_id
from .store import Store, StoreError

__all__ = [
    "SpecError",
    "Store",
    "StoreError",
    "SweepError",
    "SweepResult",
    "SweepSpec",
    "Trial",
    "build_report",
    "load_spec",
    "parse_spec",
    "run_sweep",
    "spec_names",
    "spec_text",
    "summary_line",
    "trial_id",
    "write_csv",
    "write_sweep_report",
]
