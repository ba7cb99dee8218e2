"""The status JSON of the public contract.

A running job's status is read from the live store first (one round trip,
no database) when the visitor can be recognised from the record itself;
otherwise, and for every queued or finished job, from its row.  A row that
says running while its process is gone reads as queued, "interrupted":
the job will run again, and nothing about it is live (a dead process's
live records lapse within two heartbeats).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from . import conf
from .access import VIEW_ANY
from .liveness import owner_is_alive
from .models import Job, JobStatus, percent
from .progress import get_store
from .progress.base import cancel_key, live_key


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def status_payload(job: Job, *, with_traceback: bool = False) -> dict[str, Any]:
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
    if with_traceback and job.error_traceback:
        payload["traceback"] = job.error_traceback
    return payload


# A live record at most this much older than the progress interval is
# taken as it is; an older one is believed only while its writer lives.
FRESH_SECONDS = 1.0
# What the status of a job whose process died says until one takes it.
INTERRUPTED_MESSAGE = "Interrupted; waiting to resume"


def row_payload(job: Job, *, with_traceback: bool = False) -> dict[str, Any]:
    """``status_payload``, with a dead owner's "running" told as it is."""
    payload = status_payload(job, with_traceback=with_traceback)
    if job.status == JobStatus.RUNNING and not owner_is_alive(
        job.owner, job.heartbeat_at, job._state.db or "default"
    ):
        payload["status"] = JobStatus.QUEUED.value
        payload["progress"]["message"] = INTERRUPTED_MESSAGE
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
    if record.get("user") and record["user"] == user.pk:
        return True
    return bool(user.has_perm(VIEW_ANY))


def _writer_alive(record: dict[str, Any]) -> bool:
    """A record written lately is live; an older one only if its writer lives
    (a job that reports rarely is re-published by every heartbeat)."""
    seen = record.get("seen")
    fresh = conf.get().progress_interval + FRESH_SECONDS
    if isinstance(seen, int | float) and 0 <= time.time() - seen <= fresh:
        return True
    owner = record.get("owner")
    return isinstance(owner, str) and owner_is_alive(owner, None)


def live_payload(request: HttpRequest, ticket: uuid.UUID) -> dict[str, Any] | None:
    """The status of a running job from the live store, or None to ask the DB."""
    key = str(ticket)
    found = get_store().get_many([live_key(key), cancel_key(key)])
    record = None if found is None else found.get(live_key(key))
    if record is None or record.get("status") != JobStatus.RUNNING:
        return None
    if not _may_see(request, record) or not _writer_alive(record):
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
