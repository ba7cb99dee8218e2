"""Cancelling a job, from any process.

The request is recorded in the database (the truth, read by every process)
and in the live store (where running jobs look for it every check interval);
a job running in this very process is told at once.  A queued job is marked
cancelled straight away, so it never starts; a running one stops at its next
look; a finished one is left as it is.
"""

from __future__ import annotations

import enum
import uuid

from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.module_loading import import_string

from slowjobs.engine.running import get_running
from slowjobs.jobs import files as jobfiles
from slowjobs.jobs import transitions
from slowjobs.jobs.transitions import CANCELLED_BEFORE_START, CANCELLED_CLASS

__all__ = ["CANCELLED_BEFORE_START", "CANCELLED_CLASS", "CancelOutcome", "cancel"]
from slowjobs.models import Job
from slowjobs.progress import get_store
from slowjobs.progress.base import cancel_key
from slowjobs.progress.records import sealed

# Sent after a cancel request is recorded: sender=Job, ticket=, outcome=.
cancel_requested = Signal()


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"  # it was queued: it will never start
    REQUESTED = "requested"  # it is running: it stops at its next check
    FINISHED = "finished"  # nothing to cancel


def cancel(ticket: uuid.UUID, using: str = "default") -> CancelOutcome:
    jobs = Job.objects.using(using)
    now = timezone.now()
    key = cancel_key(str(ticket))
    get_store().set(key, sealed(key, {"requested_at": now.isoformat()}))
    # Started here (its row may still read queued): it records the cancel.
    running_here = get_running(ticket)
    if running_here is None and transitions.apply(
        jobs, ticket, transitions.cancel_queued(now)
    ):
        outcome = CancelOutcome.CANCELLED
        _remove_input(jobs, ticket)
    elif transitions.apply(jobs, ticket, transitions.request_cancel()):
        outcome = CancelOutcome.REQUESTED
    else:
        outcome = CancelOutcome.FINISHED
    if running_here is not None:
        running_here.cancel_requested = True
    cancel_requested.send(sender=Job, ticket=ticket, outcome=outcome)
    return outcome


def _remove_input(jobs: QuerySet[Job], ticket: uuid.UUID) -> None:
    """A job cancelled before it started has no more use for its upload."""
    job = jobs.only("task_path", "input_file").filter(pk=ticket).first()
    if job is None or not job.input_file:
        return
    try:
        keep = bool(getattr(import_string(job.task_path), "keep_input", False))
    except ImportError:
        keep = False
    if not keep:
        jobfiles.remove_stored(job.input_file)
        transitions.apply(jobs, ticket, transitions.input_removed())
