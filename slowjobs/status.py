"""The status JSON of the public contract, built from a Job row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from .models import Job, JobStatus


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
        "error": job.error_message or None if job.status == JobStatus.FAILED else None,
        "result_url": (
            reverse("slowjobs:result", args=[job.pk])
            if succeeded and job.result_file
            else None
        ),
    }
    if job.status == JobStatus.CANCELLED:
        payload["error"] = job.error_message or "Cancelled."
    if staff and job.error_traceback:
        payload["traceback"] = job.error_traceback
    return payload
