"""Shared by the grade tests: plant one bug into a copy of a correct student file and grade it."""

from __future__ import annotations

from pathlib import Path

from chainrule.grade import Limits, Report, grade

FIXTURES = Path(__file__).parent / "grade_fixtures"
# short limits keep the tests fast; a unit of a correct file needs well under 1 s of CPU
LIMITS = Limits(time_limit=3.0, memory_mb=1536)  # torch needs ~700 MiB of address space


def plant(
    tmp_path: Path, fixture: str | tuple[str, ...], file: str, old: str, new: str, name: str = "student"
) -> Path:
    """Copy fixture folders (e.g. "uva2018") to tmp_path/name with `old` replaced by `new` in `file`."""
    dst = tmp_path / name
    dst.mkdir()
    folders = (fixture,) if isinstance(fixture, str) else fixture
    for f in (f for folder in folders for f in (FIXTURES / folder).glob("*.py")):
        text = f.read_text()
        if f.name == file:
            assert old in text, f"the bug's anchor is not in {f.name}: {old!r}"
            text = text.replace(old, new, 1)
        (dst / f.name).write_text(text)
    return dst


def failed(report: Report) -> dict[str, str]:
    return {t.name: t.message for t in report.tests if not t.ok}


def run_bug(tmp_path: Path, interface: str, file: str, old: str, new: str, fixture=None) -> Report:
    return grade(plant(tmp_path, fixture or interface, file, old, new), interface, limits=LIMITS)
