"""Hyperparameter checks shared by the optimizers and the schedules: each returns the value as a
Python number or raises a ValueError that names the hyperparameter and the value."""

from __future__ import annotations

import math
from typing import Any


def number(name: str, value: Any) -> float:
    """`value` as a finite Python float (bools and non-numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "__float__"):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def at_least_zero(name: str, value: Any) -> float:
    value = number(name, value)
    if value < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def positive(name: str, value: Any) -> float:
    value = number(name, value)
    if value <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def unit_interval(name: str, value: Any) -> float:
    """A coefficient in [0, 1): momentum, betas, alpha."""
    value = number(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def integer(name: str, value: Any, low: int) -> int:
    """An integer >= low (a float with an integral value is accepted)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return value
