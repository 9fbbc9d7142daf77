"""Checks of plain operator arguments (flags, durations), shared by every operator.

Python lets ``True`` pass for a number and ``"no"`` for a true flag; Airflow users pass
both by mistake, and both would otherwise change a job silently. Each check names the
argument and what it allows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from airflow_neuro.exceptions import JobArgumentError


def check_flag(argument: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise JobArgumentError(argument, f"must be True or False, got {value!r}")
    return value


def check_flags(arguments: Iterable[tuple[str, Any]]) -> None:
    for argument, value in arguments:
        check_flag(argument, value)


def check_number(
    argument: str,
    value: Any,
    *,
    minimum: float = 0.0,
    maximum: float = math.inf,
    inclusive: bool = False,
    below_maximum: bool = False,
    unit: str = "seconds",
) -> float:
    """A finite number within bounds; ``inclusive`` allows ``minimum`` itself, and
    ``below_maximum`` refuses ``maximum`` itself."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JobArgumentError(argument, f"must be a finite number of {unit}, got {value!r}")
    too_low = value < minimum or (value == minimum and not inclusive)
    if too_low or value > maximum or (value == maximum and below_maximum):
        low = f"at least {_shown(minimum)}" if inclusive else f"more than {_shown(minimum)}"
        high = "less than" if below_maximum else "at most"
        high = "" if maximum == math.inf else f" and {high} {_shown(maximum)}"
        raise JobArgumentError(argument, f"must be {low}{high} {unit}, got {value!r}")
    return float(value)


def _shown(bound: float) -> str:
    return str(int(bound)) if bound.is_integer() else f"{bound:g}"
