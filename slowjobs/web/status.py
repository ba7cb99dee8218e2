"""The status JSON of the public contract.

A running job's status is read from the live store first (one round trip,
no database) when the record is sealed, well formed and fresh, and the
visitor can be recognised from it; otherwise, and for every queued or
finished job, from its row.  The in-process store is read only by a
process that is the site's only server (``slowjobs.lifecycle.sole``): with
others, every process answers from the row, so that one job's progress
never goes backwards between two answers.  A row that
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
from django.utils.translation import gettext_lazy as _

from slowjobs import conf
from slowjobs.lifecycle import sole
from slowjobs.lifecycle.liveness import owner_is_alive
from slowjobs.models import Job, JobStatus, percent
from slowjobs.progress import get_store
from slowjobs.progress.base import cancel_key, live_key
from slowjobs.progress.records import opened
from slowjobs.web.access import may_see

# Errors of the server's surroundings (files, sockets, the database):
# their text names paths and hosts, which are for staff and the logs.
SERVER_SIDE_ERRORS = frozenset(
    f"builtins.{kind.__name__}"
    for kind in (
        OSError, PermissionError, FileNotFoundError, FileExistsError,
        IsADirectoryError, NotADirectoryError, BlockingIOError, ConnectionError,
        BrokenPipeError, ConnectionResetError, ConnectionRefusedError,
        ConnectionAbortedError, TimeoutError, InterruptedError,
        ChildProcessError, ProcessLookupError, MemoryError,
    )
)  # fmt: skip
SERVER_SIDE_MESSAGE = _(
    "The job stopped because of a problem on the server; its staff can see the details."
)


def _server_side(error_class: str) -> bool:
    return error_class in SERVER_SIDE_ERRORS or error_class.startswith(
        ("django.db.", "psycopg", "sqlite3.", "pymemcache.")
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def progress_payload(job: Job) -> dict[str, Any]:
    """The ``progress`` object of a row, as every JSON answer shows it."""
    return {
        "current": job.progress_current,
        "total": job.progress_total,
        "percent": job.percent,
        "message": job.progress_message,
    }


def status_payload(
    job: Job, *, with_traceback: bool = False, key_query: str = ""
) -> dict[str, Any]:
    """The status JSON of a row; ``key_query`` (``?key=...``) goes on its links."""
    succeeded = job.status == JobStatus.SUCCEEDED
    payload: dict[str, Any] = {
        "ticket": str(job.pk),
        "task": job.task_path,
        "status": job.status,
        "cancel_requested": job.cancel_requested,
        "progress": progress_payload(job),
        "attempts": job.attempts,
        "enqueued_at": _iso(job.enqueued_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "result": job.result if succeeded else None,
        "error": None,
        "result_url": (
            reverse("slowjobs:result", args=[job.pk]) + key_query
            if succeeded and job.result_file
            else None
        ),
    }
    if job.status == JobStatus.FAILED:
        payload["error"] = (
            job.error_message
            if with_traceback or not _server_side(job.error_class)
            else str(SERVER_SIDE_MESSAGE)
        ) or "Failed."
    elif job.status == JobStatus.CANCELLED:
        payload["error"] = job.error_message or "Cancelled."
    if with_traceback and job.error_traceback:
        payload["traceback"] = job.error_traceback
    return payload


# A live record at most this much older than the progress interval is
# taken as it is; for an older one the row is read.
FRESH_SECONDS = 1.0
BIGINT = 1 << 63
# What the status of a job whose process died says until one takes it.
INTERRUPTED_MESSAGE = "Interrupted; waiting to resume"


def row_payload(
    job: Job, *, with_traceback: bool = False, key_query: str = ""
) -> dict[str, Any]:
    """``status_payload``, with a dead owner's "running" told as it is."""
    payload = status_payload(job, with_traceback=with_traceback, key_query=key_query)
    if job.status == JobStatus.RUNNING and not owner_is_alive(
        job.owner, job.heartbeat_at, job._state.db or "default"
    ):
        payload["status"] = JobStatus.QUEUED.value
        payload["progress"]["message"] = INTERRUPTED_MESSAGE
    return payload


def _fresh(record: dict[str, Any]) -> bool:
    """Written lately: an older record (a job that reports rarely, or whose
    process died) sends the reader to the row, which knows which it is."""
    age = time.time() - float(record["seen"])
    return 0 <= age <= conf.get().progress_interval + FRESH_SECONDS


def _is_int(value: object, *, optional: bool = True) -> bool:
    if value is None:
        return optional
    return type(value) is int and -BIGINT <= value < BIGINT


def well_formed(record: dict[str, Any], ticket: str) -> bool:
    """Whether a (sealed) live record has the shape this version writes."""
    return (
        record.get("ticket") == ticket
        and record.get("status") == JobStatus.RUNNING
        and isinstance(record.get("task"), str)
        and isinstance(record.get("cancel_requested"), bool)
        and _is_int(record.get("current"))
        and _is_int(record.get("total"))
        and isinstance(record.get("message"), str)
        and _is_int(record.get("attempts"), optional=False)
        and all(
            isinstance(record.get(name), str) for name in ("enqueued_at", "started_at")
        )
        and _is_int(record.get("user"))
        and isinstance(record.get("session"), str)
        and isinstance(record.get("seen"), int | float)
    )


def live_payload(request: HttpRequest, ticket: uuid.UUID) -> dict[str, Any] | None:
    """The status of a running job from the live store, or None to ask the DB."""
    key = str(ticket)
    store = get_store()
    if not store.shared and not sole.is_sole():
        # Other processes know only the row: answering from this one's
        # memory would move the job's progress back and forth between them.
        return None
    found = store.get_many([live_key(key), cancel_key(key)])
    if not found or live_key(key) not in found:
        return None
    record = opened(live_key(key), found[live_key(key)])
    if record is None or not well_formed(record, key):
        return None
    if not _fresh(record) or not (
        may_see(request, ticket, user_id=record["user"], session=str(record["session"]))
    ):
        return None
    cancelled = cancel_key(key) in found and opened(
        cancel_key(key), found[cancel_key(key)]
    )
    return {
        "ticket": key,
        "task": record["task"],
        "status": JobStatus.RUNNING.value,
        "cancel_requested": bool(record["cancel_requested"] or cancelled),
        "progress": {
            "current": record["current"],
            "total": record["total"],
            "percent": percent(record["current"], record["total"]),
            "message": record["message"],
        },
        "attempts": record["attempts"],
        "enqueued_at": record["enqueued_at"],
        "started_at": record["started_at"],
        "finished_at": None,
        "result": None,
        "error": None,
        "result_url": None,
        # For the caller, never sent: who submitted it (see joblogs).
        "_user": record["user"],
        "_session": str(record["session"]),
    }
