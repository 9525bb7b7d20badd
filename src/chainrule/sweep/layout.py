"""A sweep folder's own pieces beside its file names (which `chainrule.layout` holds: sweep.db,
spec.toml, trials.csv, trials/<id>/, report.html): the error a sweep folder raises and the swept
keys of its trials. The runner and the report both read it; neither imports the other for it.
"""

from __future__ import annotations

from typing import Any


class SweepError(RuntimeError):
    """The sweep cannot run (folder taken, not a sweep folder, ...): one line."""


def swept_keys(trials: list[dict[str, Any]]) -> list[str]:
    """The swept keys of the store's trial rows, in order of first appearance."""
    keys: list[str] = []
    for t in trials:
        for k in t["params"]:
            if k not in keys:
                keys.append(k)
    return keys
