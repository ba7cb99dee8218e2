"""A process's life: start, heartbeat, drain, scheduling, and finding and
adopting the jobs of dead processes.
"""

from __future__ import annotations

from typing import Any

# The documented entry points, from ``control``, imported on first use (the
# package's own modules are imported by much that ``control`` imports).
_PUBLIC = ("shutdown", "start")


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from . import control

        return getattr(control, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
