"""`chainrule grade`: what the command does once its flags are parsed (cli.py only parses)."""

from __future__ import annotations

import sys
from pathlib import Path

from .api import GradeError, Report, find_submissions, grade
from .output import table, write_html, write_results, write_summary
from .rubric import Rubric, load_rubric
from .sandbox import Limits


def run(
    path: str | None,
    interface: str,
    reference: bool = False,
    rubric: str | None = None,
    results: str | None = None,
    html: str | None = None,
    summary: str | None = None,
    time_limit: float | None = None,
    memory_mb: int | None = None,
    seed: int = 0,
    failures_only: bool = False,
) -> int:
    """Grade one submission or a folder of them; print the table(s); write the files asked for.

    With several submissions, `results` and `html` are folders (one `<name>.json` / `<name>.html`
    per submission) and `summary` is the CSV of all of them.
    """
    if reference == (path is not None):
        raise GradeError("give a submission FILE_OR_FOLDER, or --reference (not both)")
    rub = load_rubric(rubric, interface) if rubric else Rubric()
    base = rub.limits or Limits()
    limits = Limits(
        time_limit=base.time_limit if time_limit is None else time_limit,
        memory_mb=base.memory_mb if memory_mb is None else memory_mb,
    )
    if limits.time_limit <= 0 or limits.memory_mb <= 0:
        raise GradeError(
            f"--time-limit and --memory-mb must be positive, got {limits.time_limit}, {limits.memory_mb}"
        )
    paths: list[Path | None] = [None] if reference else list(find_submissions(path, interface))
    several = len(paths) > 1
    for out in (results, html):
        if several and out and Path(out).exists() and not Path(out).is_dir():
            raise GradeError(
                f"{out}: with several submissions this must be a folder (one file per submission)"
            )
    reports: list[Report] = []
    for p in paths:
        report = grade(p, interface, rub, limits, seed)
        reports.append(report)
        if several:
            print(f"{report.submission}: {report.score:g} / {report.max_score:g}", flush=True)
        else:
            print(table(report, failures_only=failures_only))
        name = p.stem if p is not None and p.is_file() else (p.name if p is not None else "reference")
        if results:
            target = Path(results) / f"{name}.json" if several else Path(results)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_results(report, target)
        if html:
            target = Path(html) / f"{name}.html" if several else Path(html)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_html(report, target)
    if summary:
        write_summary(reports, summary)
        print(f"summary of {len(reports)} submission(s): {summary}", file=sys.stderr)
    return 0
