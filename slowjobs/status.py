"""The status JSON of the public contract.

A running job's status is read from the live store first (one round trip,
no database) when the visitor can be recognised from the record itself;
otherwise, and for every queued or finished job, from its row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from .models import Job, JobStatus, percent
from .progress import get_store
from .progress.base import cancel_key, live_key


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def status_payload(job: Job, *, staff: bool = False) -> dict[str, Any]:
    succeeded = job.status == JobStatus.SUCCEEDED
    payload: dict[str, Any] = {
        "ticket": str(job.pk),
        "task": job.task_path,
        "status": job.status,
        "cancel_requested": job.cancel_requested,
        "progress": {
            "current": job.progress_current,
            "total": job.progress_total,
            "percent": job.percent,
            "message": job.progress_message,
        },
        "attempts": job.attempts,
        "enqueued_at": _iso(job.enqueued_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "result": job.result if succeeded else None,
        "error": None,
        "result_url": (
            reverse("slowjobs:result", args=[job.pk])
            if succeeded and job.result_file
            else None
        ),
    }
    if job.status == JobStatus.FAILED:
        payload["error"] = job.error_message or "Failed."
    elif job.status == JobStatus.CANCELLED:
        payload["error"] = job.error_message or "Cancelled."
    if staff and job.error_traceback:
        payload["traceback"] = job.error_traceback
    return payload


def _session_key(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    return None if session is None else session.session_key


def _may_see(request: HttpRequest, record: dict[str, Any]) -> bool:
    """Ownership from the live record; the session key needs no query."""
    session_key = _session_key(request)
    if record.get("session") and record["session"] == session_key:
        return True
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return bool(user.is_staff or (record.get("user") and record["user"] == user.pk))


def live_payload(request: HttpRequest, ticket: uuid.UUID) -> dict[str, Any] | None:
    """The status of a running job from the live store, or None to ask the DB."""
    key = str(ticket)
    found = get_store().get_many([live_key(key), cancel_key(key)])
    record = None if found is None else found.get(live_key(key))
    if record is None or record.get("status") != JobStatus.RUNNING:
        return None
    if not _may_see(request, record):
        return None
    return {
        "ticket": key,
        "task": record["task"],
        "status": JobStatus.RUNNING.value,
        "cancel_requested": bool(
            record.get("cancel_requested") or cancel_key(key) in found  # type: ignore[operator]
        ),
        "progress": {
            "current": record.get("current"),
            "total": record.get("total"),
            "percent": percent(record.get("current"), record.get("total")),
            "message": record.get("message", ""),
        },
        "attempts": record.get("attempts", 1),
        "enqueued_at": record.get("enqueued_at"),
        "started_at": record.get("started_at"),
        "finished_at": None,
        "result": None,
        "error": None,
        "result_url": None,
    }
