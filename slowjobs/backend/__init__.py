"""Django's Tasks API: the backend class, the Task with slowjobs' policies,
and what enqueue decides (admission).

``TASKS = {"default": {"BACKEND": "slowjobs.backend.SlowJobsBackend"}}``
names the class through this package; it is imported on first use, so
that importing ``slowjobs.backend.task`` does not pull in the backend.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "SlowJobsBackend":
        from .backend import SlowJobsBackend

        return SlowJobsBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
