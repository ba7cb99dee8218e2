"""Jobs whose process is gone, and claiming them for another.

A job is orphaned when it is unfinished and either nobody owns it (a stopping
process handed it back), its owner is proved gone (``slowjobs.lifecycle.liveness``:
its pid or its advisory lock), or its owner stopped beating (no heartbeat
within the lease, neither for the process nor for the job).  Claims are atomic:
the candidate rows are locked (``SKIP LOCKED`` on PostgreSQL, SQLite's write
lock on SQLite) and given their new owner in the same transaction, so two
claimers (two ``resume_jobs``, or a resume while servers adopt) never get
the same job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from slowjobs import conf
from slowjobs.backend.task import on_interrupt
from slowjobs.jobs import transitions
from slowjobs.jobs.results import load_task
from slowjobs.models import Job, JobQuerySet, JobStatus, WorkerProcess
from slowjobs.progress import get_store
from slowjobs.progress.base import live_key
from slowjobs.tasksapi import TaskResultDoesNotExist

# What a job that lost its process says until its next attempt reports.
RESUMING_MESSAGE = "Interrupted; resuming from the last checkpoint"
RESTARTING_MESSAGE = "Interrupted; starting again"


def lease_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=conf.get().lease)


def orphaned(
    using: str = "default",
    now: datetime | None = None,
    *,
    gone: Collection[str] = (),
) -> JobQuerySet:
    """Unfinished jobs nobody runs: ownerless ones that are due, those of
    owners proved ``gone``, and those of processes silent past the lease
    (a deferred job not yet due is nobody's, but waits)."""
    now = now or timezone.now()
    cutoff = lease_cutoff(now)
    alive = WorkerProcess.objects.using(using).alive(now)
    return (
        Job.objects.using(using)
        .unfinished()
        .filter(
            (Q(owner="") & (Q(run_after__isnull=True) | Q(run_after__lte=now)))
            | (Q(owner__in=list(gone)) if gone else Q(pk__in=[]))
            | (
                ~Q(owner="")
                & Q(heartbeat_at__lt=cutoff)
                & ~Q(owner__in=alive.values("id"))
            )
        )
    )


def deferred_due(using: str = "default", now: datetime | None = None) -> JobQuerySet:
    """Deferred jobs and retries whose time has come, not yet claimed."""
    return (
        Job.objects.using(using)
        .unfinished()
        .filter(owner="", run_after__lte=now or timezone.now())
    )


def _set(job: Job, columns: dict[str, Any]) -> None:
    for name, value in columns.items():
        setattr(job, name, value)


def _fail(job: Job, now: datetime, error_class: str, message: str) -> None:
    _set(
        job,
        {
            "status": JobStatus.FAILED,
            "error_class": error_class,
            "error_message": message,
            "finished_at": now,
        },
    )


def prepare(job: Job, now: datetime) -> bool:
    """Decide a claimed job's fate; return whether it runs again.

    A job whose attempt died with its process gets that attempt recorded and
    its task's ``on_interrupt`` policy applied.
    """
    try:
        task = load_task(job)
    except TaskResultDoesNotExist as exc:
        kind = type(exc)
        _fail(job, now, f"{kind.__module__}.{kind.__qualname__}", str(exc))
        return False
    if job.status == JobStatus.RUNNING:
        entry = transitions.history_entry(job.attempts, job.owner, "lost", now)
        job.history = [*job.history, entry]
        policy = on_interrupt(task)
        if policy == "fail":
            failure = transitions.interrupted_failure(
                job.attempts, "its process was lost"
            )
            _set(job, {**failure, "finished_at": now})
            return False
        job.progress_message = RESUMING_MESSAGE
        if policy == "restart":
            job.checkpoint = None
            job.progress_message = RESTARTING_MESSAGE
    if job.cancel_requested:
        _set(job, transitions.cancelled(now, "Cancelled while its process was gone."))
        return False
    job.status = JobStatus.QUEUED
    return True


@dataclass
class Claim:
    runnable: list[Job] = field(default_factory=list)
    ended: list[Job] = field(default_factory=list)  # failed or cancelled at claim

    def __len__(self) -> int:
        return len(self.runnable) + len(self.ended)


def claim(
    owner: str,
    *,
    limit: int | None = None,
    task_path: str | None = None,
    using: str = "default",
    candidates: Callable[[str, datetime], JobQuerySet] = orphaned,
) -> Claim:
    """Take orphaned (or other ``candidates``) jobs for ``owner``: the runnable
    ones come back queued."""
    now = timezone.now()
    result = Claim()
    with transaction.atomic(using=using):
        jobs_query = candidates(using, now).select_for_update(skip_locked=True)
        if task_path:
            jobs_query = jobs_query.filter(task_path=task_path)
        jobs = list(jobs_query.order_by("-priority", "enqueued_at")[:limit])
        for job in jobs:
            (result.runnable if prepare(job, now) else result.ended).append(job)
            _set(job, transitions.claimed(owner, now))
        transitions.write_claims(using, jobs)
    forget_live_records([job.pk for job in jobs])
    return result


def forget_live_records(tickets: list[uuid.UUID]) -> None:
    """A stale 'running' record must not outlive the attempt it described."""
    if tickets:
        get_store().delete_many([live_key(str(ticket)) for ticket in tickets])
