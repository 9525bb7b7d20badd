"""Rubrics: points, Gradescope visibility and the set of tests, from a TOML file.

    visibility = "visible"        # default of every test: visible, hidden, after_due_date, after_published
    time_limit = 10               # wall (and CPU) seconds per unit in the child process
    memory_mb = 2048              # the child's address-space limit

    [tests."LinearModule.backward: finite differences"]
    points = 4
    visibility = "hidden"

    [tests."ReLUModule.backward: derivative at 0"]
    enabled = false               # drop a default test

    [tests."LinearModule.forward: float32 stays float32"]
    enabled = true                # add an optional test (points: its default unless given)

Every error is one line naming the file and the key, with a close match for a typo.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainrule._io import did_you_mean

from .sandbox import Limits
from .spec import Interface, get_interface

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
TOP_KEYS = ("interface", "visibility", "time_limit", "memory_mb", "tests")
TEST_KEYS = ("points", "visibility", "enabled")


class RubricError(ValueError):
    """A rubric that cannot be used: one line naming the file and the key."""


@dataclass
class Rubric:
    """Overrides of the interface's defaults (empty: the defaults)."""

    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    visibility: str = "visible"
    limits: Limits | None = None
    source: str = "rubric"

    def select(self, iface: Interface) -> dict[str, tuple[float, str]]:
        """The graded tests in the interface's order: name -> (points, visibility)."""
        out: dict[str, tuple[float, str]] = {}
        for c in iface.criteria():
            over = self.tests.get(c.name, {})
            if not over.get("enabled", c.enabled):
                continue
            out[c.name] = (float(over.get("points", c.points)), over.get("visibility", self.visibility))
        return out


def _visibility(value: Any, where: str) -> str:
    if value not in VISIBILITIES:
        raise RubricError(f"{where}: expected one of {', '.join(VISIBILITIES)}, got {value!r}")
    return value


def _positive(value: Any, where: str, allow_zero: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise RubricError(f"{where}: expected a number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)


def parse_rubric(data: dict[str, Any], interface: str, source: str = "rubric") -> Rubric:
    """Validate a rubric's TOML data against an interface's tests."""
    iface = get_interface(interface)
    for key in data:
        if key not in TOP_KEYS:
            raise RubricError(f"{source}: unknown key {key!r}{did_you_mean(key, list(TOP_KEYS))}")
    if "interface" in data and data["interface"] != interface:
        raise RubricError(
            f"{source}: interface: the rubric is for {data['interface']!r}, grading {interface!r}"
        )
    visibility = _visibility(data.get("visibility", "visible"), f"{source}: visibility")
    limits = None
    if "time_limit" in data or "memory_mb" in data:
        default = Limits()
        limits = Limits(
            time_limit=_positive(data.get("time_limit", default.time_limit), f"{source}: time_limit", False),
            memory_mb=int(_positive(data.get("memory_mb", default.memory_mb), f"{source}: memory_mb", False)),
        )
    tests = data.get("tests", {})
    if not isinstance(tests, dict):
        raise RubricError(f'{source}: tests: expected a table of [tests."NAME"] tables')
    names = [c.name for c in iface.criteria()]
    checked: dict[str, dict[str, Any]] = {}
    for name, entry in tests.items():
        where = f'{source}: [tests."{name}"]'
        if name not in names:
            raise RubricError(f"{where}: no such test in interface {interface}{did_you_mean(name, names)}")
        if not isinstance(entry, dict):
            raise RubricError(f"{where}: expected a table with points, visibility or enabled")
        for key, value in entry.items():
            if key not in TEST_KEYS:
                raise RubricError(f"{where}: unknown key {key!r}{did_you_mean(key, list(TEST_KEYS))}")
            if key == "points":
                _positive(value, f"{where} points")
            elif key == "visibility":
                _visibility(value, f"{where} visibility")
            elif not isinstance(value, bool):
                raise RubricError(f"{where} enabled: expected true or false, got {value!r}")
        checked[name] = dict(entry)
    return Rubric(checked, visibility, limits, source)


def load_rubric(path: str | Path, interface: str) -> Rubric:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RubricError(f"{path}: cannot read the rubric ({e.strerror or e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RubricError(f"{path}: not valid TOML ({e})") from None
    return parse_rubric(data, interface, str(path))
