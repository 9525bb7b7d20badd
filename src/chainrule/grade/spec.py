"""What an interface is: the student's units (classes or functions), each with its criteria.

A criterion is one test of the report: a check function run in the child process (it returns
None when the test passes, or a message), the default points, and a name that starts with the
student's class or function name (`LinearModule.backward: finite differences`), so a report reads
by module. The parent lists tests from these declarations alone, without importing the student's
code; the child looks the same declarations up by name and runs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np


@dataclass
class Ctx:
    """What a check gets: the student's class or function, the imported files, a seeded generator.

    Args:
        target: the student's object named by the unit (a class or a function).
        modules: file name -> the imported student module (e.g. {"layers.py": <module>}).
        rng: a generator seeded from the job's seed and the test's name (reproducible reports).
    """

    target: Any
    modules: dict[str, ModuleType]
    rng: np.random.Generator


Check = Callable[[Ctx], "str | None"]


class Fail(Exception):
    """Raised by a check's helpers to fail the test with a message (shorter than returning it)."""


@dataclass(frozen=True)
class Criterion:
    """One test. `method` is empty for a function unit (the name is then `unit: title`)."""

    unit: str
    method: str
    title: str
    points: float
    check: Check
    enabled: bool = True  # False: an optional test, run only when a rubric adds it

    @property
    def name(self) -> str:
        head = f"{self.unit}.{self.method}" if self.method else self.unit
        return f"{head}: {self.title}"


@dataclass(frozen=True)
class Unit:
    """A class or function of the student's submission and its tests.

    Args:
        name: the student's class or function name, looked up in `file`.
        file: the submission file that defines it.
        criteria: its tests, in the order they run (forward before backward: a hang in backward
            leaves the forward results standing).
        optional: graded only when `file` is in the submission.
        requires: Python packages the checks import (a unit is skipped, with a note, without them).
    """

    name: str
    file: str
    criteria: tuple[Criterion, ...]
    optional: bool = False
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Interface:
    """A course's assignment layout: its files and units, and where chainrule's reference
    implementation of it lives (a folder of files in the student's layout, for `--reference`)."""

    name: str
    description: str
    files: tuple[str, ...]
    units: tuple[Unit, ...]

    def unit(self, name: str) -> Unit:
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(f"interface {self.name} has no unit {name!r}")

    def criteria(self) -> list[Criterion]:
        return [c for u in self.units for c in u.criteria]


def tests(unit: str, method: str, *items: tuple[str, float, Check] | tuple[str, float, Check, bool]):
    """Criteria of one method: `tests("LinearModule", "forward", ("matches the reference", 2, f), ...)`."""
    return tuple(Criterion(unit, method, *item) for item in items)


# name -> module that defines INTERFACE; imported on first use (the torch checks stay lazy)
_MODULES = {
    "uva2018": "chainrule.grade.interfaces.uva2018",
    "uva2022": "chainrule.grade.interfaces.uva2022",
    "cs231n": "chainrule.grade.interfaces.cs231n",
    "chainrule": "chainrule.grade.interfaces.chainrule_nn",
}


def interface_names() -> list[str]:
    return sorted(_MODULES)


def get_interface(name: str) -> Interface:
    if name not in _MODULES:
        raise ValueError(f"unknown interface {name!r} (known: {', '.join(interface_names())})")
    module = importlib.import_module(_MODULES[name])
    return module.INTERFACE


def reference_dir(name: str) -> str:
    """The folder of chainrule's reference submission for an interface."""
    from importlib import resources

    get_interface(name)  # validates the name
    return str(resources.files("chainrule.grade") / "references" / name)
