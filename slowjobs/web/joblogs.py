"""Who sees a job's log in its status, and where the lines come from.

Staff with ``slowjobs.view_job`` always; the job's own submitter only when
its task says ``@task(log_to_owner=True)``: what code logs is often meant
for the people who run the site, not for the visitor who asked.  A running
job's lines come from the live store (sealed, of its current attempt),
else from the row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import import_string

from slowjobs.models import Job
from slowjobs.progress import get_store
from slowjobs.progress.base import log_key
from slowjobs.progress.records import opened
from slowjobs.tasksapi import Task
from slowjobs.web.access import may_view_any


@lru_cache(maxsize=512)
def shown_to_owner(task_path: str) -> bool:
    try:
        task = import_string(task_path)
    except ImportError:
        return False
    return isinstance(task, Task) and getattr(task, "log_to_owner", False) is True


def may_read_log(
    request: HttpRequest, task_path: str, *, anonymous_owner: bool = False
) -> bool:
    """For a visitor who may see the job at all (checked before).

    ``anonymous_owner``: the visitor is the session that submitted the job
    while signed out, and so is signed out still (a sign-in changes the
    session key): no permission to look up, and no query to make.
    """
    if shown_to_owner(task_path):
        return True
    return not anonymous_owner and may_view_any(request)


def live_log(ticket: str, attempts: int) -> dict[str, Any] | None:
    """The running attempt's lines from the live store, or None."""
    key = log_key(ticket)
    found = get_store().get(key)
    record = opened(key, found) if found is not None else None
    if record is None or record.get("attempts") != attempts:
        return None
    lines, dropped = record.get("lines"), record.get("dropped")
    if not isinstance(lines, list) or not isinstance(dropped, int):
        return None
    return {"lines": lines, "dropped": dropped}


def row_log(job: Job) -> dict[str, Any]:
    return {"lines": job.log, "dropped": job.log_dropped}


def log_for(
    request: HttpRequest,
    payload: dict[str, Any],
    job: Job | None,
    *,
    anonymous_owner: bool = False,
) -> dict[str, Any] | None:
    """The ``log`` of a status payload, for a visitor who may read it."""
    if not may_read_log(request, str(payload["task"]), anonymous_owner=anonymous_owner):
        return None
    if payload["status"] == "running":
        live = live_log(str(payload["ticket"]), int(payload["attempts"]))
        if live is not None:
            return live
    if job is None:
        job = (
            Job.objects.filter(pk=payload["ticket"]).only("log", "log_dropped").first()
        )
        if job is None:
            return None
    return row_log(job)
