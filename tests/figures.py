"""Figures that tests measure (load, faults, fuzzing), shown after the run.

pytest hides what a passing test prints; these are listed in the terminal
summary instead, so that every run (CI's too) shows them.
"""

from __future__ import annotations

from typing import Any

recorded: list[tuple[str, dict[str, Any]]] = []


def record(name: str, **values: Any) -> None:
    recorded.append((name, values))
