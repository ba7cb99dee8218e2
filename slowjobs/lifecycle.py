"""Stopping this process's job machinery in the right order."""

from __future__ import annotations

from .executor.registry import shutdown_executor
from .statewriter import stop_writers


def shutdown(*, timeout: float | None = None) -> bool:
    """Let started jobs end, then commit every state they left to write.

    Returns whether both finished within ``timeout`` (each part gets it).
    """
    drained = shutdown_executor(wait=True, timeout=timeout)
    written = stop_writers(timeout)
    return drained and written
