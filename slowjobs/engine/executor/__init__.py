"""The executor: runs jobs on threads inside this process.

Two modes, from the design: ``pool`` (a bounded queue drained by N threads) and
``delegate`` (a thread per job, optionally capped).  ``registry.get_executor``
returns this process's one executor.
"""

from __future__ import annotations

from slowjobs.engine.executor.base import Executor, Slot
from slowjobs.engine.executor.registry import get_executor, shutdown_executor

__all__ = ["Executor", "Slot", "get_executor", "shutdown_executor"]
