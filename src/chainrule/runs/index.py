"""Finding and reading run folders: what `chainrule runs` lists.

A run folder is a folder with a `config.toml` (what `chainrule train` writes); a sweep folder (one
with `sweep.db`) stands for its trials, `DIR/trials/<id>/`, each a run folder. Only files are read
(config.toml with tomllib, summary.json, the sweep database opened read-only): listing never
imports an engine, and a run from an older chainrule or a damaged file is still listed.
"""

from __future__ import annotations

import json
import math
import operator
import sqlite3
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chainrule import layout
from chainrule._io import did_you_mean
from chainrule.train.config import BOOKKEEPING, ConfigError

# the columns every row has, in table order (the differing config keys go after `model`)
HEAD = ("name", "status", "dataset", "model")
TAIL = ("val_acc", "test_acc", "train_time_s", "date")


class RunsError(ConfigError):
    """A folder, key or filter that `chainrule runs` cannot use; the message is one line."""


@dataclass
class RunRecord:
    """One run folder as read from disk.

    Args:
        run_dir: the folder.
        name: the config's name, or `<sweep>/<trial id>` for a sweep's trial.
        status: summary.json's (completed, early_stopped, diverged, interrupted, paused), the sweep
            database's for a trial that has not ended (pending, running, paused, pruned, failed),
            else `failed` (an error.log) or `unfinished`.
        config: config.toml's keys (flat).
        summary: summary.json, or {} when there is none yet.
        sweep: the sweep folder of a trial.
        started: when config.toml was written (the run's start).
    """

    run_dir: Path
    name: str
    status: str
    config: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    sweep: Path | None = None
    started: datetime | None = None

    @property
    def final(self) -> dict[str, Any]:
        return self.summary.get("final") or {}

    def row(self) -> dict[str, Any]:
        """Every config key, then the fixed columns (a config key never hides a column)."""
        return {**self.config, **self.columns()}

    def columns(self) -> dict[str, Any]:
        """What the run did, from its summary (the config only where the summary says nothing)."""
        return {
            "run_dir": str(self.run_dir),
            "name": self.name,
            "status": self.status,
            "dataset": self.summary.get("dataset", self.config.get("dataset")),
            "model": self.summary.get("model", self.config.get("model")),
            "val_acc": self.final.get("val_acc"),
            "test_acc": self.final.get("test_acc"),
            "val_loss": self.final.get("val_loss"),
            "test_loss": self.final.get("test_loss"),
            "train_time_s": self.summary.get("train_time_s"),
            "steps": self.summary.get("steps"),
            "epochs": self.summary.get("epochs"),
            "date": self.started.strftime("%Y-%m-%d %H:%M") if self.started else None,
            "sweep": str(self.sweep) if self.sweep else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.columns(), "config": self.config}


def _flat_toml(path: Path) -> dict[str, Any]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    flat: dict[str, Any] = {}
    for k, v in data.items():  # a config file may group its keys in tables
        if isinstance(v, dict):
            flat.update(v)
        else:
            flat[k] = v
    return flat


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_run(run_dir: str | Path, sweep: Path | None = None, db_status: str | None = None) -> RunRecord:
    """The record of one run folder (`RunsError` if it is none, or its config.toml is damaged)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / layout.CONFIG
    try:
        config = _flat_toml(cfg_path)
        started = datetime.fromtimestamp(cfg_path.stat().st_mtime)
    except FileNotFoundError:
        raise RunsError(f"{run_dir} is not a run folder (no {layout.CONFIG}) nor a sweep folder") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RunsError(f"{cfg_path} cannot be read: {' '.join(str(e).split())}") from None
    summary = _read_json(run_dir / layout.SUMMARY)
    if sweep is None:  # a trial folder given by itself is still named after its sweep
        sweep = layout.sweep_of_trial(run_dir)
    if db_status in (None, "completed") and summary.get("status"):
        status = summary["status"]
    elif db_status:
        status = db_status
    else:
        status = "failed" if (run_dir / layout.ERROR_LOG).exists() else "unfinished"
    name = f"{sweep.name}/{run_dir.name}" if sweep is not None else str(config.get("name", run_dir.name))
    return RunRecord(run_dir, name, status, config, summary, sweep, started)


def _sweep_statuses(sweep_dir: Path) -> dict[str, str]:
    """trial id -> status from the sweep's database, opened read-only ({} if it cannot be read)."""
    try:
        con = sqlite3.connect(f"file:{sweep_dir / layout.SWEEP_DB}?mode=ro", uri=True)
        try:
            return dict(con.execute("SELECT trial_id, status FROM trials ORDER BY number"))
        finally:
            con.close()
    except sqlite3.Error:
        return {}


def read_sweep(sweep_dir: Path) -> list[RunRecord]:
    """The trials of a sweep folder that have a run folder, in the database's order."""
    statuses = _sweep_statuses(sweep_dir)
    on_disk = {p.name: p for p in (sweep_dir / layout.TRIALS_DIR).glob("*/") if layout.is_run_folder(p)}
    order = [t for t in statuses if t in on_disk] + sorted(set(on_disk) - set(statuses))
    return [read_run(on_disk[t], sweep=sweep_dir, db_status=statuses.get(t)) for t in order]


def _started_first(group: list[RunRecord]) -> datetime:
    """When a folder's first run started (the date column's value): folders inside a plain folder
    list in that order. Their names' timestamps have whole seconds, and two runs started within
    one second would list alphabetically by them."""
    return min((r.started for r in group if r.started is not None), default=datetime.min)


def scan(paths: Sequence[str | Path]) -> list[RunRecord]:
    """Every run under `paths`: a run folder is itself, a sweep folder its trials, any other folder
    the run and sweep folders directly inside it. A path given that holds no run is an error."""
    records: list[RunRecord] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            raise RunsError(f"{path} is not a folder")
        if layout.is_sweep_folder(path):
            found = read_sweep(path)
        elif layout.is_run_folder(path):
            found = [read_run(path)]
        else:
            groups = []
            for child in sorted(p for p in path.iterdir() if p.is_dir()):  # the name breaks ties
                if layout.is_sweep_folder(child):
                    groups.append(read_sweep(child))
                elif layout.is_run_folder(child):
                    groups.append([read_run(child)])
            found = [r for group in sorted(groups, key=_started_first) for r in group]
        records += found
    return records


def differing_keys(records: Sequence[RunRecord]) -> list[str]:
    """Config keys whose values are not all equal across `records` (a key one run lacks counts as
    different), in config order; the bookkeeping keys and the table's own columns are left out."""
    if len(records) < 2:
        return []
    keys: dict[str, None] = {}
    for r in records:
        keys.update(dict.fromkeys(r.config))
    skip = set(BOOKKEEPING) | set(HEAD)
    return [
        k
        for k in keys
        if k not in skip and len({json.dumps(r.config.get(k), sort_keys=True) for r in records}) > 1
    ]


# --------------------------------------------------------------------------------------------------
# --filter and --sort


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _text(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(_text(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _equal(v: Any, wanted: str) -> bool:
    a, b = _number(v), _number(wanted)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(v, list):  # hidden_sizes=512,256 or =[512, 256]
        wanted = wanted.strip("[]").replace(" ", "")
    return _text(v) == wanted or (v is None and wanted.lower() == "none")


_ORDER: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
# longest operator first, so `a>=1` is not read as `a` > `=1`
_OPERATORS = ("!=", ">=", "<=", "=", ">", "<")


def _check_key(key: str, rows: Sequence[dict[str, Any]], what: str) -> None:
    known = {k for r in rows for k in r}
    if rows and key not in known:
        raise RunsError(f"{what}: unknown key {key!r}{did_you_mean(key, sorted(known))}")


def parse_filter(text: str) -> tuple[str, str, str]:
    """`KEY=VALUE` (also `!=`, `>`, `>=`, `<`, `<=`) -> (key, operator, value)."""
    for op in _OPERATORS:
        key, sep, value = text.partition(op)
        if sep and key.strip():
            return key.strip(), op, value.strip()
    raise RunsError(f"--filter {text!r}: expected KEY=VALUE (or KEY!=, KEY>, KEY>=, KEY<, KEY<= VALUE)")


def matches(row: dict[str, Any], key: str, op: str, value: str) -> bool:
    v = row.get(key)
    if op == "=":
        return _equal(v, value)
    if op == "!=":
        return not _equal(v, value)
    a, b = _number(v), _number(value)
    if b is None:
        raise RunsError(f"--filter {key}{op}{value}: {value!r} is not a number")
    return a is not None and _ORDER[op](a, b)


def select(
    records: Iterable[RunRecord],
    filters: Sequence[str] = (),
    sort: str | None = None,
    reverse: bool = False,
) -> list[RunRecord]:
    """The records that pass every filter, sorted by `sort` (runs without the key go last either
    way; numbers as numbers). Unknown keys are an error naming the closest one."""
    records = list(records)
    rows = [r.row() for r in records]
    for text in filters:
        key, op, value = parse_filter(text)
        _check_key(key, rows, f"--filter {text}")
        keep = [matches(row, key, op, value) for row in rows]
        records = [r for r, k in zip(records, keep, strict=True) if k]
        rows = [row for row, k in zip(rows, keep, strict=True) if k]
    if sort:
        _check_key(sort, rows, f"--sort {sort}")

        def rank(row: dict[str, Any]) -> tuple[int, Any]:
            v = row.get(sort)
            n = _number(v)
            return (0, n) if n is not None else (1, _text(v))

        present = [(rank(row), r) for row, r in zip(rows, records, strict=True) if row.get(sort) is not None]
        absent = [r for row, r in zip(rows, records, strict=True) if row.get(sort) is None]
        # numbers before text; a stable sort keeps folder order among equals
        present.sort(key=lambda pair: pair[0], reverse=reverse)
        records = [r for _, r in present] + absent
    return records


# --------------------------------------------------------------------------------------------------
# the table


def _cell(key: str, v: Any) -> str:
    if v is None:
        return ""
    if key.endswith("_acc") and isinstance(v, int | float):
        return f"{100 * v:.2f}%"
    if key.endswith("_time_s") and isinstance(v, int | float):
        return f"{v:.1f} s"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ",".join(map(str, v)) + "]"
    return str(v)


def table_columns(records: Sequence[RunRecord]) -> list[str]:
    return [*HEAD, *differing_keys(records), *TAIL]


def format_table(records: Sequence[RunRecord]) -> str:
    """Plain text, one line per run, columns padded; numbers right-aligned."""
    cols = table_columns(records)
    rows = [r.row() for r in records]
    cells = [[_cell(c, row.get(c)) for c in cols] for row in rows]
    width = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(cols)]
    numeric = [all(_number(row.get(c)) is not None or row.get(c) is None for row in rows) for c in cols]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, width, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(cols), *(line(c) for c in cells)])
