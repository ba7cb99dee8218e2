"""Jobs whose process is gone, and claiming them for another.

A job is orphaned when it is unfinished and either nobody owns it (a stopping
process handed it back) or its owner stopped beating (no heartbeat within
the lease, neither for the process nor for the job).  Claims are atomic:
the candidate rows are locked (``SKIP LOCKED`` on PostgreSQL, SQLite's write
lock on SQLite) and given their new owner in the same transaction, so two
claimers (two ``resume_jobs``, or a resume while servers adopt) never get
the same job.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from . import conf
from .cancel import CANCELLED_CLASS
from .models import Job, JobQuerySet, JobStatus, WorkerProcess
from .progress import get_store
from .progress.base import live_key
from .results import load_task
from .task import on_interrupt

INTERRUPTED_CLASS = "slowjobs.exceptions.JobInterrupted"


def lease_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=conf.get().lease)


def orphaned(using: str = "default", now: datetime | None = None) -> JobQuerySet:
    cutoff = lease_cutoff(now)
    alive = WorkerProcess.objects.using(using).filter(
        last_seen__gte=cutoff, stopping=False
    )
    return (
        Job.objects.using(using)
        .unfinished()
        .filter(
            Q(owner="")
            | (Q(heartbeat_at__lt=cutoff) & ~Q(owner__in=alive.values("id")))
        )
    )


def _interruption(job: Job, now: datetime, outcome: str) -> dict[str, Any]:
    return {
        "attempt": job.attempts,
        "owner": job.owner,
        "outcome": outcome,
        "at": now.isoformat(),
    }


def apply_policy(job: Job, now: datetime, outcome: str) -> bool:
    """Record an interrupted attempt on ``job``; return whether it runs again."""
    job.history = [*job.history, _interruption(job, now, outcome)]
    try:
        policy = on_interrupt(load_task(job))
    except TaskResultDoesNotExist as exc:
        job.status = JobStatus.FAILED
        job.error_class = "django.tasks.exceptions.TaskResultDoesNotExist"
        job.error_message = str(exc)
        job.finished_at = now
        return False
    if policy == "fail":
        job.status = JobStatus.FAILED
        job.error_class = INTERRUPTED_CLASS
        job.error_message = (
            f"Attempt {job.attempts} was interrupted ({outcome}); "
            "this task does not run again after an interruption."
        )
        job.finished_at = now
        return False
    if policy == "restart":
        job.checkpoint = None
    return True


CLAIM_FIELDS = [
    "status",
    "owner",
    "heartbeat_at",
    "history",
    "checkpoint",
    "error_class",
    "error_message",
    "finished_at",
]


def claim(
    owner: str,
    *,
    limit: int | None = None,
    task_path: str | None = None,
    using: str = "default",
) -> list[Job]:
    """Take orphaned jobs for ``owner``; return those to run (now queued)."""
    now = timezone.now()
    runnable: list[Job] = []
    with transaction.atomic(using=using):
        candidates = orphaned(using, now).select_for_update(skip_locked=True)
        if task_path:
            candidates = candidates.filter(task_path=task_path)
        jobs = list(candidates.order_by("-priority", "enqueued_at")[:limit])
        for job in jobs:
            runs = True
            if job.status == JobStatus.RUNNING:  # its attempt died with its process
                runs = apply_policy(job, now, "lost")
            if runs and job.cancel_requested:
                job.status = JobStatus.CANCELLED
                job.error_class = CANCELLED_CLASS
                job.error_message = "Cancelled while its process was gone."
                job.finished_at = now
                runs = False
            if runs:
                job.status = JobStatus.QUEUED
                runnable.append(job)
            job.owner = owner
            job.heartbeat_at = now
        if jobs:
            Job.objects.using(using).bulk_update(jobs, CLAIM_FIELDS, batch_size=500)
    forget_live_records([job.pk for job in jobs])
    return runnable


def forget_live_records(tickets: list[uuid.UUID]) -> None:
    """A stale 'running' record must not outlive the attempt it described."""
    if tickets:
        get_store().delete_many([live_key(str(ticket)) for ticket in tickets])
