"""A report as a terminal table, Gradescope's results.json, a self-contained HTML page, and a
summary CSV of many submissions. Every file is written atomically."""

from __future__ import annotations

import csv
import html
import io
import json
import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path

from chainrule._io import atomic_write_text

from .api import Report


def _fmt_points(x: float) -> str:
    return f"{x:g}"


def table(report: Report, width: int | None = None, failures_only: bool = False) -> str:
    """Module, test, points and the message, grouped by the student's class or function."""
    width = width or shutil.get_terminal_size((110, 24)).columns
    name_w = max([len(t.name.split(": ", 1)[-1]) for t in report.tests] + [10])
    lines = [
        f"{report.submission} ({report.interface}): {_fmt_points(report.score)} / "
        f"{_fmt_points(report.max_score)} points"
    ]
    unit = None
    for t in report.tests:
        if failures_only and t.ok:
            continue
        if t.unit != unit:
            unit = t.unit
            got = sum(x.score for x in report.tests if x.unit == unit)
            top = sum(x.max_score for x in report.tests if x.unit == unit)
            lines.append(f"\n{unit}  {_fmt_points(got)}/{_fmt_points(top)}")
        mark = "ok  " if t.ok else "FAIL"
        title = t.name.split(": ", 1)[-1]
        lines.append(f"  {mark} {title:<{name_w}} {_fmt_points(t.score):>4}/{_fmt_points(t.max_score):<3}")
        if t.message:
            indent = " " * 7
            lines += textwrap.wrap(
                t.message, max(40, width - len(indent)), initial_indent=indent, subsequent_indent=indent
            )
    for note in report.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def gradescope_json(report: Report) -> str:
    """Gradescope's results.json: {"score", "tests": [{"name", "score", "max_score", "output",
    "visibility"}]} (plus "status" and "execution_time", which Gradescope also reads)."""
    data = {
        "score": report.score,
        "execution_time": round(report.seconds, 2),
        "output": "\n".join(report.notes),
        "tests": [
            {
                "name": t.name,
                "score": t.score,
                "max_score": t.max_score,
                "output": t.message or "passed",
                "visibility": t.visibility,
                "status": "passed" if t.ok else "failed",
            }
            for t in report.tests
        ],
    }
    return json.dumps(data, indent=2) + "\n"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; width: 100%; }
td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.pts { text-align: right; white-space: nowrap; }
tr.fail td.mark { color: #b00; font-weight: bold; } tr.ok td.mark { color: #080; }
.msg { font-family: ui-monospace, monospace; font-size: 0.85em; white-space: pre-wrap; }
.muted { color: #777; font-size: 0.85em; }
"""


def html_report(report: Report, include_hidden: bool = True) -> str:
    """A self-contained page for the student: score, then per class or function its tests."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>chainrule grade: {esc(report.submission)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(report.submission)}: {_fmt_points(report.score)} / {_fmt_points(report.max_score)}</h1>",
        f"<p class='muted'>interface {esc(report.interface)}; graded by chainrule in "
        f"{report.seconds:.1f} s</p>",
    ]
    units = list(dict.fromkeys(t.unit for t in report.tests))
    for unit in units:
        rows = [t for t in report.tests if t.unit == unit and (include_hidden or t.visibility != "hidden")]
        got = sum(t.score for t in rows)
        top = sum(t.max_score for t in rows)
        parts.append(
            f"<h2>{esc(unit)} <span class='muted'>{_fmt_points(got)} / {_fmt_points(top)}</span></h2>"
        )
        parts.append("<table><tr><th></th><th>test</th><th>points</th><th>message</th></tr>")
        for t in rows:
            parts.append(
                f"<tr class='{'ok' if t.ok else 'fail'}'><td class='mark'>{'ok' if t.ok else 'FAIL'}</td>"
                f"<td>{esc(t.name)}</td>"
                f"<td class='pts'>{_fmt_points(t.score)} / {_fmt_points(t.max_score)}</td>"
                f"<td class='msg'>{esc(t.message)}</td></tr>"
            )
        parts.append("</table>")
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def summary_csv(reports: Sequence[Report]) -> str:
    """One row per submission: its score, the maximum, then every test's score (columns in the
    order the tests first appear)."""
    names = list(dict.fromkeys(t.name for r in reports for t in r.tests))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", "score", "max_score", "failed", "notes", *names])
    for r in reports:
        by_name = {t.name: t.score for t in r.tests}
        failed = sum(not t.ok for t in r.tests)
        w.writerow(
            [
                r.submission,
                f"{r.score:g}",
                f"{r.max_score:g}",
                failed,
                "; ".join(r.notes),
                *(f"{by_name[n]:g}" if n in by_name else "" for n in names),
            ]
        )
    return buf.getvalue()


def write_results(report: Report, path: str | Path) -> Path:
    return atomic_write_text(path, gradescope_json(report))


def write_html(report: Report, path: str | Path) -> Path:
    return atomic_write_text(path, html_report(report))


def write_summary(reports: Sequence[Report], path: str | Path) -> Path:
    return atomic_write_text(path, summary_csv(reports))
