"""`chainrule sweep-report DIR`: the sweep's results, aggregated over seeds, as PNGs and a
self-contained `DIR/report.html`.

Configurations are the trials grouped by their swept values (all seeds of one configuration
together), ranked by mean validation accuracy (test accuracy where no validation split exists).
Plots: the metric against each swept key; learning curves of the best configuration at each value
of one key, mean ± std over seeds; a heatmap over the two keys with the most values (best over
the other keys when there are more than two). Reads only the database and the trial folders.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import layout
from chainrule._io import atomic_write_text

from .layout import SweepError, swept_keys
from .spec import halving_of, sampler_of
from .store import STATUSES, Store, StoreError


@dataclass
class Config:
    """One configuration (swept values) and its trials (one per seed)."""

    params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["status"] == "completed"]

    def stat(self, key: str) -> tuple[float, float, int]:
        """(mean, sample std, n) of `key` over the completed trials; NaN where there is none."""
        vals = [t[key] for t in self.done if t.get(key) is not None and math.isfinite(t[key])]
        if not vals:
            return math.nan, math.nan, 0
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        return float(np.mean(vals)), std, len(vals)


def group(trials: list[dict[str, Any]]) -> list[Config]:
    configs: dict[str, Config] = {}
    for t in trials:
        key = json.dumps(t["params"], sort_keys=True)
        configs.setdefault(key, Config(t["params"])).trials.append(t)
    return list(configs.values())


def rank_metric(trials: list[dict[str, Any]]) -> str:
    """val_acc, or test_acc when no trial has a validation split."""
    return "val_acc" if any(t.get("val_acc") is not None for t in trials) else "test_acc"


def _last_rung(c: Config, metric: str) -> tuple[int, float]:
    """(highest halving rung, the metric there) over a configuration's pruned trials."""
    best = (-1, -math.inf)
    for t in c.trials:
        if t["status"] == "pruned" and t.get("rung") is not None:
            v = t.get(metric)
            v = -math.inf if v is None or not math.isfinite(v) else (v if metric.endswith("_acc") else -v)
            best = max(best, (int(t["rung"]), v))
    return best


def ranked(configs: list[Config], metric: str) -> list[Config]:
    """By the metric of the completed trials, ties (a saturated accuracy) broken by the mean
    validation loss; then configurations pruned by successive halving, by how far they got and
    their metric there; then the rest."""

    def key(c: Config) -> tuple[int, float, float, float]:
        m = c.stat(metric)[0]
        if math.isfinite(m):
            loss = c.stat("val_loss")[0]
            return (0, 0.0, -m if metric.endswith("_acc") else m, loss if math.isfinite(loss) else math.inf)
        rung, v = _last_rung(c, metric)
        return (1, -rung, -v, 0.0) if rung >= 0 else (2, 0.0, 0.0, 0.0)

    return sorted(configs, key=key)


def _pm(stat: tuple[float, float, int], scale: float = 100.0, digits: int = 2) -> str:
    mean, std, n = stat
    if n == 0:
        return ""
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}" if n > 1 else f"{scale * mean:.{digits}f}"


def _fmt_s(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def wall_time(sessions: list[dict[str, Any]], trials: list[dict[str, Any]]) -> float:
    """Seconds the sweep's sessions ran. A session killed without an end counts until the last
    trial that finished after it started (and before the next session)."""
    total = 0.0
    for i, s in enumerate(sessions):
        end = s.get("finished")
        if end is None:
            nxt = sessions[i + 1]["started"] if i + 1 < len(sessions) else math.inf
            ends = [
                t["finished"] for t in trials if t.get("finished") and s["started"] <= t["finished"] < nxt
            ]
            end = max(ends) if ends else s["started"]
        total += max(0.0, end - s["started"])
    return total


def curves(out_dir: Path, trials: list[dict[str, Any]], metric: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(epoch, metric) of each trial's metrics.jsonl (missing files are skipped)."""
    from chainrule.train.history import read_metrics

    runs = []
    for t in trials:
        path = layout.trial_dir(out_dir, t["trial_id"]) / layout.METRICS
        try:
            evals = read_metrics(path)
        except (OSError, ValueError):
            continue
        pts = [(e["epoch"], e[metric]) for e in evals if e.get(metric) is not None]
        if pts:
            x, y = zip(*pts, strict=True)
            runs.append((np.asarray(x, float), np.asarray(y, float)))
    return runs


def _scale(metric: str) -> float:
    return 100.0 if metric.endswith("_acc") else 1.0


def _cap(metric: str) -> float | None:
    """Where the metric's axis ends: an accuracy at 100%."""
    return 100.0 if metric.endswith("_acc") else None


def _metric_label(metric: str) -> str:
    names = {
        "val_acc": "validation accuracy (%)",
        "test_acc": "test accuracy (%)",
        "val_loss": "validation loss",
        "train_acc": "training accuracy (%)",
        "train_loss": "training loss",
        "train_loss_running": "training loss (mean between evaluations)",
    }
    return names.get(metric, metric)


@dataclass
class _Sweep:
    """What the report is made from: the store's rows and what is derived from them once."""

    out_dir: Path
    name: str
    description: str
    spec_text: str
    trials: list[dict[str, Any]]
    rung_rows: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    keys: list[str]
    metric: str
    configs: list[Config]  # ranked, best first
    halving: Any  # the spec's successive-halving settings, or None

    @property
    def scale(self) -> float:
        return _scale(self.metric)

    @property
    def have(self) -> list[Config]:
        """The configurations with at least one completed trial, ranked."""
        return [c for c in self.configs if c.done]


def _read_sweep(out_dir: Path) -> _Sweep:
    try:
        store = Store(out_dir / layout.SWEEP_DB, readonly=True)
    except StoreError:
        raise SweepError(f"{out_dir} is not a sweep folder (no readable {layout.SWEEP_DB} there)") from None
    with store:
        trials = store.trials()
        rung_rows, sessions = store.rungs(), store.sessions()
        name = store.get_meta("name") or out_dir.name
        description = store.get_meta("description") or ""
        spec_text = store.get_meta("spec") or ""
    metric = rank_metric(trials)
    return _Sweep(
        out_dir, name, description, spec_text, trials, rung_rows, sessions, swept_keys(trials), metric,
        ranked(group(trials), metric), halving_of(spec_text),
    )  # fmt: skip


def build_report(out_dir: str | Path, curves_key: str | None = None) -> tuple[str, dict[str, bytes]]:
    """The report's HTML and its PNGs (file name -> bytes)."""
    from chainrule import report

    sw = _read_sweep(Path(out_dir))
    counts = {s: sum(t["status"] == s for t in sw.trials) for s in STATUSES}
    images: dict[str, tuple[bytes, str]] = {}
    files: dict[str, bytes] = {}
    _by_value_plots(sw, images, files)
    _curve_plots(sw, curves_key, images, files)
    _halving_plot(sw, images, files)
    _heatmap_plot(sw, images, files)
    headers, rows, numeric = _table(sw)
    failed_rows = [
        [
            t["trial_id"],
            " ".join(f"{k}={report.value_label(v)}" for k, v in t["params"].items()),
            t["seed"],
            t["error"] or "",
        ]
        for t in sw.trials
        if t["status"] == "failed"
    ]
    best_rows, best_config = _best(sw)
    text = report.render_sweep_report(
        sw.name,
        sw.description,
        _overview(sw, counts),
        best_rows,
        (headers, [[*row[:-1], trials_cell(sw.out_dir, row[-1])] for row in rows], numeric),
        (["trial", "config", "seed", "error"], failed_rows),
        images,
        best_config,
        _notes(sw, counts),
    )
    return text, files


def _notes(sw: _Sweep, counts: dict[str, int]) -> list[str]:
    """What a reader needs to know to read the tables: the ranking metric, ASHA, TPE, scaled keys."""
    notes = []
    if sw.metric == "test_acc":
        notes.append("No trial holds out a validation split (val_fraction = 0): ranked by test accuracy.")
    halving = sw.halving
    if halving is not None:
        notes.append(
            f"Successive halving (ASHA) on {halving.metric}: rungs at "
            + ", ".join(f"{f:.3g}" for f in halving.fractions)
            + f" of each trial's steps, the best 1/{halving.reduction_factor} at a rung going on. "
            f"{counts['pruned']} trial(s) were pruned; the statistics use completed trials only "
            f"(a pruned trial's figures at its last rung are in {layout.TRIALS_CSV})."
        )
    if sampler_of(sw.spec_text) == "tpe":
        notes.append(
            'Trials drawn by Optuna\'s TPE ([search] sampler = "tpe"), each from the results told before it: '
            "they crowd where the metric was good, so the plots against each key show where TPE looked."
        )
    for k, by in _scale_by(sw.spec_text).items():
        notes.append(
            f"{k} is scaled by {by} ([scale_by] in the spec): the tables and plots show the spec's values of "
            f"{k}; each trial trained with {k} x its {by} (see the resolved config)."
        )
    return notes


def _overview(sw: _Sweep, counts: dict[str, int]) -> list[tuple[str, Any]]:
    wall = wall_time(sw.sessions, sw.trials)
    busy = sum(t.get("wall_s") or 0.0 for t in sw.trials)
    workers = max((s["workers"] for s in sw.sessions), default=1)
    overview: list[tuple[str, Any]] = [
        ("trials", f"{len(sw.trials)}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)),
        ("configurations", len(sw.configs)),
        ("seeds", ", ".join(map(str, sorted({t["seed"] for t in sw.trials})))),
        ("swept keys", ", ".join(sw.keys) or "(none: the base config only)"),
        ("wall time", f"{_fmt_s(wall)} in {len(sw.sessions)} session(s), up to {workers} worker(s)"),
        ("sum of the trial times", _fmt_s(busy)),
    ]
    if wall > 0 and busy > 0:
        overview.append(
            (
                "parallel efficiency",
                f"{100 * busy / (wall * workers):.0f}% (trial time / (wall time x workers))",
            )
        )
    return overview


def _best(sw: _Sweep) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The best configuration's rows and its resolved config (empty while none has completed)."""
    from chainrule import report

    if not (sw.configs and sw.configs[0].done):
        return [], {}
    b, metric = sw.configs[0], sw.metric
    rows: list[tuple[str, Any]] = [(k, report.value_label(v)) for k, v in b.params.items()]
    rows += [
        (
            _metric_label(metric).replace(" (%)", ""),
            _pm(b.stat(metric), sw.scale) + ("%" if sw.scale == 100 else ""),
        ),
        ("test accuracy", _pm(b.stat("test_acc")) + "%"),
        ("seeds with a result", b.stat(metric)[2]),
        ("trials", ", ".join(t["trial_id"] for t in b.trials)),
    ]
    return rows, {k: v for k, v in b.done[0]["config"].items() if k not in ("seed", "run_dir")}


def _table(sw: _Sweep) -> tuple[list[str], list[list[Any]], list[bool]]:
    """The ranked table of configurations: headers, rows (the last cell the trial ids), numeric columns."""
    from chainrule import report

    keys, metric, halving = sw.keys, sw.metric, sw.halving
    headers = ["#", *keys, "val acc (%)" if metric == "val_acc" else "test acc (%)", "n"]
    headers += ["test acc (%)"] if metric == "val_acc" else []
    headers += ["val loss", "epochs", "train time (s)"]
    headers += [f"pruned at: rung, {metric.replace('_', ' ')}"] if halving is not None else []
    headers += ["trials"]
    numeric = [True] + [False] * len(keys) + [True, True] + ([True] if metric == "val_acc" else [])
    numeric += [True, True, True] + ([False] if halving is not None else []) + [False]
    rows = []
    for i, c in enumerate(sw.configs):
        row: list[Any] = [
            i + 1,
            *[report.value_label(c.params.get(k)) if k in c.params else "" for k in keys],
        ]
        row += [_pm(c.stat(metric), sw.scale), c.stat(metric)[2]]
        if metric == "val_acc":
            row.append(_pm(c.stat("test_acc")))
        row += [
            _pm(c.stat("val_loss"), 1.0, 4),
            _pm(c.stat("epochs"), 1.0, 1),
            _pm(c.stat("train_time_s"), 1.0, 1),
        ]
        if halving is not None:
            pruned = [t for t in c.trials if t["status"] == "pruned"]
            row.append(
                "; ".join(
                    f"{t.get('rung')}, {'' if t.get(metric) is None else f'{sw.scale * t[metric]:.2f}'}"
                    for t in pruned
                )
            )
        done = {t["trial_id"] for t in c.done}
        row.append(
            " ".join(t["trial_id"] + ("" if t["trial_id"] in done else f" ({t['status']})") for t in c.trials)
        )
        rows.append(row)
    return headers, rows, numeric


def _by_value_plots(sw: _Sweep, images: dict[str, tuple[bytes, str]], files: dict[str, bytes]) -> None:
    """The metric against each swept key that takes two values or more."""
    from chainrule import report

    metric, log_keys = sw.metric, _log_uniform_keys(sw.spec_text)
    for k in sw.keys:
        sel = [c for c in sw.have if k in c.params]
        if len({json.dumps(c.params[k]) for c in sel}) < 2:
            continue
        stats = [c.stat(metric) for c in sel]
        png = report.metric_by_value(
            k,
            [c.params[k] for c in sel],
            [sw.scale * s[0] for s in stats],
            [sw.scale * s[1] for s in stats],
            ylabel=_metric_label(metric),
            title=f"{sw.name}: final {_metric_label(metric)} against {k}",
            log=True if k in log_keys else None,
            cap=_cap(metric),
        )
        files[layout.by_value_png(metric, k)] = png
        images[f"{_metric_label(metric)} against {k}"] = (
            png,
            "each point a configuration, mean ± std over its seeds"
            + (
                "; the line joins the best configuration at each value"
                if len(sel) > len({json.dumps(c.params[k]) for c in sel})
                else ""
            ),
        )


def _curve_plots(
    sw: _Sweep, curves_key: str | None, images: dict[str, tuple[bytes, str]], files: dict[str, bytes]
) -> None:
    """Learning curves (the metric and the running training loss) of the best configuration at each
    value of one key (`curves_key`, else the first key with two values or more), mean ± std."""
    from chainrule import report

    keys, have = sw.keys, sw.have
    if not have:
        return
    ckey = (
        curves_key
        if curves_key in keys
        else next((k for k in keys if len({json.dumps(c.params.get(k)) for c in have}) > 1), None)
    )
    # the best configuration at each value of the key (all configurations if there is no key)
    chosen: dict[str, Config] = {}
    for c in have:  # `have` is ranked: the first seen is the best
        label = f"{ckey}={report.value_label(c.params.get(ckey))}" if ckey else "all trials"
        if ckey is None:
            chosen.setdefault(label, Config(c.params)).trials.extend(c.done)
        else:
            chosen.setdefault(label, c)
    for m in (sw.metric, "train_loss_running"):
        groups = {label: curves(sw.out_dir, c.done, m) for label, c in chosen.items()}
        groups = {k: v for k, v in groups.items() if v}
        if not groups:
            continue
        sc = _scale(m)
        png = report.curve_bands(
            {k: [(x, sc * y) for x, y in v] for k, v in groups.items()},
            ylabel=_metric_label(m),
            title=f"{sw.name}: {_metric_label(m)}" + (f", best configuration at each {ckey}" if ckey else ""),
            log_y=m.endswith("loss"),
            cap=_cap(m),
        )
        files[layout.curves_png(m)] = png
        images[f"Learning curves: {_metric_label(m)}" + (f" by {ckey}" if ckey else "")] = (
            png,
            "mean ± std over seeds at each evaluation"
            + (f"; for each value of {ckey}, its best configuration" if ckey and len(keys) > 1 else ""),
        )


def _halving_plot(sw: _Sweep, images: dict[str, tuple[bytes, str]], files: dict[str, bytes]) -> None:
    """Successive halving: each trial's metric at each rung it reached (and at the end)."""
    from chainrule import report

    halving = sw.halving
    if halving is None or not sw.rung_rows:
        return
    fr = halving.fractions
    hscale = _scale(halving.metric)
    paths: dict[str, list[tuple[float, float]]] = {}
    for r in sw.rung_rows:
        if r["value"] is not None and math.isfinite(r["value"]) and r["rung"] < len(fr):
            paths.setdefault(r["trial_id"], []).append((fr[r["rung"]], hscale * r["value"]))
    status = {t["trial_id"]: t for t in sw.trials}
    traj = []
    for tid, pts in paths.items():
        t = status.get(tid)
        finished = t is not None and t["status"] == "completed"
        pts.sort()
        if finished and t.get(halving.metric) is not None:  # type: ignore[union-attr]
            pts.append((1.0, hscale * t[halving.metric]))  # type: ignore[index]
        traj.append(([p[0] for p in pts], [p[1] for p in pts], finished))
    if traj:
        png = report.rung_trajectories(
            traj,
            ylabel=_metric_label(halving.metric),
            title=f"{sw.name}: successive halving",
            cap=_cap(halving.metric),
        )
        files[layout.HALVING_PNG] = png
        images["Successive halving: the metric at each rung"] = (
            png,
            "each line a trial; in colour the trials promoted to the end, in grey the pruned ones",
        )


def _heatmap_plot(sw: _Sweep, images: dict[str, tuple[bytes, str]], files: dict[str, bytes]) -> None:
    """The metric over the two keys with the most values (each cell the best over the other keys)."""
    from chainrule import report

    keys, have, metric = sw.keys, sw.have, sw.metric
    pair = _heatmap_keys(keys, have)
    if not pair:
        return
    rk, ck = pair
    rvals, cvals = _values(have, rk), _values(have, ck)
    cells = np.full((len(rvals), len(cvals)), np.nan)
    for c in have:
        if rk in c.params and ck in c.params:
            i = [json.dumps(v) for v in rvals].index(json.dumps(c.params[rk]))
            j = [json.dumps(v) for v in cvals].index(json.dumps(c.params[ck]))
            m = sw.scale * c.stat(metric)[0]
            if math.isfinite(m) and not (cells[i, j] >= m):
                cells[i, j] = m
    others = [k for k in keys if k not in pair and len(_values(have, k)) > 1]
    png = report.heatmap(
        rk,
        rvals,
        ck,
        cvals,
        cells,
        label=_metric_label(metric),
        title=f"{sw.name}: {_metric_label(metric)}"
        + (" (best over " + ", ".join(others) + ")" if others else ""),
    )
    files[layout.heatmap_png(rk, ck)] = png
    images[f"Heatmap: {rk} x {ck}"] = (
        png,
        "mean over seeds" + (f"; each cell the best over {', '.join(others)}" if others else ""),
    )


def trials_cell(out_dir: Path, text: str) -> Any:
    """The trials column of a configuration: a link to its first trial's report.html where that
    exists (trials train without one unless `--trial-reports`), else plain text (a link to a folder
    opens nothing useful in a browser)."""
    first = text.split(" ")[0]
    if first and (layout.trial_dir(out_dir, first) / layout.REPORT).is_file():
        return {"text": text, "href": f"{layout.TRIALS_DIR}/{first}/{layout.REPORT}"}
    return text


def _values(configs: list[Config], key: str) -> list[Any]:
    vals: list[Any] = []
    for c in configs:
        if key in c.params and json.dumps(c.params[key]) not in [json.dumps(v) for v in vals]:
            vals.append(c.params[key])
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        vals.sort()
    return vals


def _heatmap_keys(keys: list[str], configs: list[Config]) -> tuple[str, str] | None:
    """The two swept keys with the most values (ties: spec order), if two have 2+ values."""
    sizes = [(len(_values(configs, k)), -i, k) for i, k in enumerate(keys)]
    multi = sorted((s for s in sizes if s[0] >= 2), reverse=True)
    if len(multi) < 2:
        return None
    a, b = multi[0][2], multi[1][2]
    return (a, b) if keys.index(a) < keys.index(b) else (b, a)


def write_sweep_report(out_dir: str | Path, curves_key: str | None = None) -> Path:
    """Write DIR/report.html and the PNGs beside it; return the report's path."""
    out_dir = Path(out_dir)
    text, files = build_report(out_dir, curves_key)
    for fname, png in files.items():
        from chainrule.report import save_png

        save_png(png, out_dir / fname)
    return atomic_write_text(out_dir / layout.REPORT, text)


def summary_line(out_dir: str | Path) -> str:
    """`sweep NAME: 12 trials: 11 completed, 1 failed; best lr=0.1: val 97.12 ± 0.10% (n=3), test ...`"""
    from chainrule.report import value_label

    with Store(Path(out_dir) / layout.SWEEP_DB, readonly=True) as store:
        trials = store.trials()
        name = store.get_meta("name") or Path(out_dir).name
    counts = {s: sum(t["status"] == s for t in trials) for s in STATUSES}
    line = f"sweep {name}: {len(trials)} trials: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    metric = rank_metric(trials)
    configs = [c for c in ranked(group(trials), metric) if c.done]
    if configs:
        b = configs[0]
        params = " ".join(f"{k}={value_label(v)}" for k, v in b.params.items()) or "the base config"
        split = "val" if metric == "val_acc" else "test"
        line += f"; best {params}: {split} {_pm(b.stat(metric))}% (n={b.stat(metric)[2]})"
        if metric == "val_acc":
            line += f", test {_pm(b.stat('test_acc'))}%"
    return line


def _log_uniform_keys(spec_text: str) -> set[str]:
    """The keys the spec draws log-uniformly ([random]): plotted on a log axis."""
    import tomllib

    try:
        table = tomllib.loads(spec_text).get("random", {})
    except tomllib.TOMLDecodeError:
        return set()
    if not isinstance(table, dict):
        return set()
    return {str(k) for k, v in table.items() if isinstance(v, dict) and "log_uniform" in v}


def _scale_by(spec_text: str) -> dict[str, str]:
    import tomllib

    try:
        table = tomllib.loads(spec_text).get("scale_by", {})
    except tomllib.TOMLDecodeError:
        return {}
    return {str(k): str(v) for k, v in table.items()} if isinstance(table, dict) else {}
