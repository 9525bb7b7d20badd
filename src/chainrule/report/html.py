"""A self-contained `report.html`: the final accuracies first and large, the command that reproduces
the run, the settings that differ from the defaults (the full config folded), the summary, every
plot embedded as a base64 PNG and the evaluation history (one file that can be mailed or opened
offline)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chainrule import layout
from chainrule._io import atomic_write_text

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.status-diverged, .status-interrupted { color: #b00; font-weight: bold; }
.muted { color: #777; font-size: 0.85em; }
.headline { display: flex; gap: 2.5em; margin: 0.6em 0 0.2em; }
.headline .num { font-size: 2.6em; font-weight: bold; font-variant-numeric: tabular-nums; }
.headline .label { color: #555; font-size: 0.95em; }
pre.cmd { background: #f6f6f6; padding: 0.5em 0.8em; white-space: pre-wrap; word-break: break-all; }
details summary { cursor: pointer; color: #555; margin: 0.6em 0; }
"""


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v) or "[]"
    return str(v)


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * v:.2f}%"


def _eval_table(evals: Sequence[dict[str, Any]], max_rows: int = 60) -> str:
    # the columns are the records' keys, in their order: the report shows what it is given
    keys = dict.fromkeys(k for e in evals for k in e)
    cols = tuple(c for c in keys if any(e.get(c) is not None for e in evals))
    shown = list(evals)
    note = ""
    if len(shown) > max_rows:  # keep the first, the last, and evenly spaced rows in between
        idx = sorted({round(i * (len(shown) - 1) / (max_rows - 1)) for i in range(max_rows)})
        shown = [shown[i] for i in idx]
        note = (
            f'<p class="muted">{len(shown)} of {len(evals)} evaluations shown; '
            f"{layout.METRICS_CSV} has all.</p>"
        )
    head = "".join(f"<th>{c}</th>" for c in cols)
    rows = []
    for e in shown:
        cells = []
        for c in cols:
            v = e.get(c)
            cells.append(f'<td class="num">{_pct(v) if c.endswith("_acc") else html.escape(_fmt(v))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"{note}<table><tr>{head}</tr>{''.join(rows)}</table>"


def _headline(final: dict[str, Any]) -> str:
    """The final test and validation accuracy, large (validation alone without a test split)."""
    cells = [
        f"<div><div class='num'>{_pct(final[key])}</div><div class='label'>{label}</div></div>"
        for key, label in (("test_acc", "final test accuracy"), ("val_acc", "final validation accuracy"))
        if final.get(key) is not None
    ]
    return f"<div class='headline'>{''.join(cells)}</div>" if cells else ""


def render_report(
    summary: dict[str, Any],
    config: dict[str, Any],
    evals: Sequence[dict[str, Any]],
    images: dict[str, bytes],
    changed: dict[str, Any] | None = None,
) -> str:
    """The HTML text. `images` maps a caption to PNG bytes, shown in order; `changed` holds the
    config keys that differ from the defaults (shown first, the full `config` folded under them;
    None: the full config only)."""
    name = summary.get("name", "run")
    status = summary.get("status", "")
    final = summary.get("final", {})
    best = summary.get("best", {})
    overview = [
        ("status", status),
        ("message", summary.get("message")),
        ("data set", summary.get("dataset")),
        ("model", summary.get("model")),
        ("engine", summary.get("engine")),
        ("parameters", summary.get("parameters")),
        ("steps", summary.get("steps")),
        ("epochs", summary.get("epochs")),
        ("evaluations", summary.get("evaluations")),
        ("training time (s)", summary.get("train_time_s")),
        ("final test accuracy", _pct(final.get("test_acc"))),
        ("final test loss", final.get("test_loss")),
        ("final validation accuracy", _pct(final.get("val_acc"))),
        ("final validation loss", final.get("val_loss")),
        (f"best {best.get('monitor', '')} (step {best.get('step')})", best.get("value")),
    ]
    # rows a run does not have (no engine recorded, no validation split, nothing monitored) are left out
    overview = [(k, v) for k, v in overview if v not in (None, "") and "(step None)" not in k]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>chainrule run {html.escape(str(name))}</title><style>{CSS}</style></head><body>",
        f"<h1>chainrule run: {html.escape(str(name))}</h1>",
        _headline(final),
        f"<p class='status-{html.escape(str(status))}'>{html.escape(str(summary.get('message', '')))}</p>",
    ]
    if config.get("description"):
        parts.append(f"<p>{html.escape(str(config['description']))}</p>")
    cmd = summary.get("command")
    if cmd:
        parts.append(f"<p class='muted'>reproduce:</p><pre class='cmd'>{html.escape(cmd)}</pre>")
    full = _table(sorted(config.items()))
    if changed is not None:
        parts += [
            "<h2>Settings that differ from the defaults</h2>",
            _table(sorted(changed.items())) if changed else "<p>none: the default run</p>",
            f"<details><summary>full configuration ({len(config)} keys)</summary>{full}</details>",
        ]
    parts += ["<h2>Summary</h2>", _table(overview)]
    for caption, png in images.items():
        b64 = base64.b64encode(png).decode("ascii")
        cap = html.escape(caption)
        parts.append(f"<h2>{cap}</h2><img alt='{cap}' src='data:image/png;base64,{b64}'>")
    parts += ["<h2>Evaluations</h2>", _eval_table(evals)]
    if changed is None:
        parts += ["<h2>Configuration</h2>", full]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    path: str | Path,
    summary: dict[str, Any],
    config: dict[str, Any],
    evals: Sequence[dict[str, Any]],
    images: dict[str, bytes],
    changed: dict[str, Any] | None = None,
) -> Path:
    return atomic_write_text(path, render_report(summary, config, evals, images, changed))
