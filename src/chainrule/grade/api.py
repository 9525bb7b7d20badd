"""`grade()`: one submission against an interface, in child processes, to a `Report`."""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path

from .rubric import Rubric
from .sandbox import Limits, run_checks
from .spec import Interface, get_interface, reference_dir


class GradeError(ValueError):
    """A submission or option that cannot be graded (one line, naming the path)."""


@dataclass
class TestResult:
    name: str
    unit: str
    score: float
    max_score: float
    ok: bool
    message: str
    visibility: str = "visible"


@dataclass
class Report:
    """The graded tests of one submission, in the interface's order."""

    submission: str
    interface: str
    tests: list[TestResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)


def submission_files(path: str | Path, interface: Interface) -> dict[str, Path]:
    """The interface's files found in a submission: a file (taken as the main file, whatever its
    name, unless it is named like another of the interface's files) or a folder holding them."""
    path = Path(path)
    if path.is_file():
        name = path.name if path.name in interface.files else interface.files[0]
        return {name: path}
    if not path.is_dir():
        raise GradeError(f"{path}: no such file or folder")
    found = {f: path / f for f in interface.files if (path / f).is_file()}
    if not any(u.file in found for u in interface.units if not u.optional):
        raise GradeError(
            f"{path}: none of {', '.join(f for f in interface.files)} is in this folder "
            f"(interface {interface.name})"
        )
    return found


def grade(
    path: str | Path | None,
    interface: str,
    rubric: Rubric | None = None,
    limits: Limits | None = None,
    seed: int = 0,
) -> Report:
    """Grade one submission (a file or a folder; None: chainrule's own reference).

    Args:
        path: the student's file or folder, or None for `--reference`.
        interface: "uva2018", "uva2022", "cs231n" or "chainrule".
        rubric: points, visibility and the set of tests (default: the interface's defaults).
        limits: per-unit time and memory limits of the child processes.
        seed: seeds every test's random inputs (the same seed gives the same report).
    """
    iface = get_interface(interface)
    rubric = rubric or Rubric()
    limits = limits or rubric.limits or Limits()
    source = Path(reference_dir(interface)) if path is None else Path(path)
    files = submission_files(source, iface)
    selected = rubric.select(iface)
    notes: list[str] = []
    units = []
    for u in iface.units:
        if not any(c.name in selected for c in u.criteria):
            continue
        if u.file not in files:
            if u.optional:
                notes.append(f"{u.file} is not in the submission: the {u.name} tests are not graded")
                continue
            missing = f"{u.file} is not in the submission"
            notes.append(missing)
        missing_pkgs = [m for m in u.requires if importlib.util.find_spec(m) is None]
        if missing_pkgs:
            notes.append(f"{u.name} needs {', '.join(missing_pkgs)}, which is not installed: not graded")
            continue
        units.append(u)
    start = time.monotonic()
    runnable = [u for u in units if u.file in files]
    outcomes, log = run_checks(iface, files, runnable, set(selected), limits, seed)
    notes += log.events
    tests: list[TestResult] = []
    for u in units:
        for c in u.criteria:
            if c.name not in selected:
                continue
            points, visibility = selected[c.name]
            o = outcomes.get(c.name)
            if o is None:
                ok, message = (
                    False,
                    f"{u.file} is not in the submission" if u.file not in files else "not run",
                )
            else:
                ok, message = o.ok, o.message
            tests.append(TestResult(c.name, u.name, points if ok else 0.0, points, ok, message, visibility))
    label = f"chainrule reference ({interface})" if path is None else str(path)
    return Report(label, interface, tests, notes, time.monotonic() - start)


def find_submissions(path: str | Path, interface: str) -> list[Path]:
    """One submission (a file, or a folder holding the interface's files) or a folder of them
    (each entry a file or a folder, in name order; hidden entries skipped)."""
    iface = get_interface(interface)
    path = Path(path)
    if path.is_file() or (path.is_dir() and any((path / f).is_file() for f in iface.files)):
        return [path]
    if not path.is_dir():
        raise GradeError(f"{path}: no such file or folder")
    found = [
        p
        for p in sorted(path.iterdir())
        if not p.name.startswith((".", "_"))
        and (
            (p.is_file() and p.suffix == ".py")
            or (p.is_dir() and any((p / f).is_file() for f in iface.files))
        )
    ]
    if not found:
        raise GradeError(
            f"{path}: holds no submission for {interface} (no {iface.files[0]}, no folder with one)"
        )
    return found
