"""A sweep's self-contained `report.html`: overview, the best configuration, the trials table,
failed trials, and the plots embedded as base64 PNGs. Takes only plain values (strings, numbers,
PNG bytes); `chainrule.sweep.report` collects them."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from .html import CSS, _fmt

SWEEP_CSS = (
    CSS
    + """
body { max-width: 1200px; }
table.trials td, table.trials th { white-space: nowrap; }
table.trials tr.best td { background: #eef7ee; font-weight: bold; }
td.err { white-space: normal; max-width: 700px; color: #900; }
.figs { display: flex; flex-wrap: wrap; gap: 0.8em; }
.figs figure { margin: 0; flex: 1 1 520px; max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
"""
)

Cell = Any  # a value, or {"text": str, "href": str}


def _cell(v: Cell, num: bool) -> str:
    if isinstance(v, dict) and "href" in v:
        return f"<td><a href='{html.escape(v['href'])}'>{html.escape(str(v['text']))}</a></td>"
    cls = " class='num'" if num else ""
    return f"<td{cls}>{html.escape(_fmt(v))}</td>"


def _rows_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    numeric: Sequence[bool],
    css: str,
    marked: int | None,
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        tr = "<tr class='best'>" if i == marked else "<tr>"
        body.append(tr + "".join(_cell(v, n) for v, n in zip(row, numeric, strict=True)) + "</tr>")
    return f"<table class='{css}'><tr>{head}</tr>{''.join(body)}</table>"


def _pairs(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_sweep_report(
    name: str,
    description: str,
    overview: Sequence[tuple[str, Any]],
    best: Sequence[tuple[str, Any]],
    table: tuple[Sequence[str], Sequence[Sequence[Cell]], Sequence[bool]],
    failed: tuple[Sequence[str], Sequence[Sequence[Cell]]],
    images: dict[str, tuple[bytes, str]],
    best_config: dict[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """The HTML text.

    Args:
        overview, best: (label, value) rows.
        table: (headers, rows, which columns are numbers) of the configurations, best first (the
            first row is highlighted).
        failed: (headers, rows) of the failed trials.
        images: caption -> (PNG bytes, a one-line explanation), shown in order.
        best_config: the resolved training config of the best configuration.
        notes: short paragraphs under the title.
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>chainrule sweep {esc(name)}</title><style>{SWEEP_CSS}</style></head><body>",
        f"<h1>chainrule sweep: {esc(name)}</h1>",
    ]
    if description:
        parts.append(f"<p>{esc(description)}</p>")
    parts += [f"<p class='muted'>{esc(n)}</p>" for n in notes]
    parts += ["<h2>Overview</h2>", _pairs(overview)]
    if best:
        parts += ["<h2>Best configuration</h2>", _pairs(best)]
    headers, rows, numeric = table
    parts += [
        "<h2>Configurations, by mean validation accuracy</h2>",
        "<p class='muted'>mean ± std over the seeds of each configuration (sample std; n = seeds with a "
        "result); a trial id links to the trial's own report where it has one "
        "(<code>chainrule sweep --trial-reports</code>).</p>",
        _rows_table(headers, rows, numeric, "trials", 0 if rows else None),
    ]
    f_headers, f_rows = failed
    if f_rows:
        parts += [f"<h2>Failed trials ({len(f_rows)})</h2>"]
        head = "".join(f"<th>{esc(h)}</th>" for h in f_headers)
        body = "".join(
            "<tr>" + "".join(_cell(v, False) for v in r[:-1]) + f"<td class='err'>{esc(str(r[-1]))}</td></tr>"
            for r in f_rows
        )
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    if images:
        parts.append("<h2>Plots</h2><div class='figs'>")
        for caption, (png, explain) in images.items():
            b64 = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure><img alt='{esc(caption)}' src='data:image/png;base64,{b64}'>"
                f"<figcaption><b>{esc(caption)}</b>{': ' + esc(explain) if explain else ''}"
                "</figcaption></figure>"
            )
        parts.append("</div>")
    if best_config:
        parts += ["<h2>Resolved config of the best configuration</h2>", _pairs(sorted(best_config.items()))]
    parts.append("</body></html>\n")
    return "\n".join(parts)
