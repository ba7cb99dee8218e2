"""Every change of a job's state, named, in one place.

Each function returns one transition as a conditional write: ``expect``,
what the row must still be (the attempt that makes the change still owns
it), and ``changes``, what it becomes.  Callers hand a transition to the
state writer (``write``, ``write_and_wait``), or, for the few made inside a
transaction or under a row lock, apply it there; no other module decides
which job columns a state change touches.

    (new) --enqueued--> queued (owned by the enqueuing process, or ownerless)
    queued --start--> running --finish--> succeeded / failed / cancelled
    queued --cancel_queued / cancelled_before_start--> cancelled
    running --retry--> queued (ownerless, run_after)
    running --interrupt--> queued (ownerless) or failed (on_interrupt="fail")
    queued --hand_back_queued--> queued (ownerless)
    running/queued of a dead owner --claim (slowjobs.lifecycle.orphans)--> queued
    running --report / save_checkpoint--> running (progress, checkpoint)
    any --attach_result / input_removed--> the same (files)
    unfinished of a live owner --renew_leases--> the same (heartbeat_at)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from slowjobs.jobs.sql import statements_for
from slowjobs.jobs.statewriter import OnWritten, get_writer
from slowjobs.models import Job, JobStatus

CANCELLED_CLASS = "slowjobs.exceptions.JobCancelled"
CANCELLED_BEFORE_START = "Cancelled before it started."
INTERRUPTED_CLASS = "slowjobs.exceptions.JobInterrupted"


@dataclass(frozen=True, slots=True)
class Transition:
    expect: dict[str, Any]
    changes: dict[str, Any]


def write(
    using: str,
    ticket: uuid.UUID,
    transition: Transition,
    *,
    on_written: OnWritten | None = None,
) -> None:
    """Queue the transition with the state writer (group commit)."""
    get_writer(using).update(
        ticket,
        expect=transition.expect,
        changes=transition.changes,
        on_written=on_written,
    )


def apply(jobs: QuerySet[Job], ticket: uuid.UUID, transition: Transition) -> int:
    """Make the transition now, in the caller's transaction: rows matched."""
    return jobs.filter(pk=ticket, **transition.expect).update(**transition.changes)


def write_and_wait(using: str, ticket: uuid.UUID, transition: Transition) -> int:
    """As ``write``, once committed: the rows it matched (0: not ours)."""
    return get_writer(using).update_and_wait(
        ticket, expect=transition.expect, changes=transition.changes
    )


# -- what the row must be ----------------------------------------------------


def queued_by(owner: str, attempts: int) -> dict[str, Any]:
    """Queued in ``owner``'s executor, after ``attempts`` attempts."""
    return {"status": JobStatus.QUEUED, "owner": owner, "attempts": attempts}


def running_by(owner: str, attempt: int) -> dict[str, Any]:
    """Running as ``owner``'s attempt number ``attempt``."""
    return {"status": JobStatus.RUNNING, "owner": owner, "attempts": attempt}


# -- the pieces every rule shares ----------------------------------------------


def history_entry(
    attempt: int, owner: str, outcome: str, at: datetime, error: str | None = None
) -> dict[str, Any]:
    """One attempt that ended without finishing the job (``Job.history``)."""
    entry: dict[str, Any] = {
        "attempt": attempt,
        "owner": owner,
        "outcome": outcome,
        "at": at.isoformat(),
    }
    if error is not None:
        entry["error"] = error
    return entry


def interrupted_failure(attempt: int, cause: str) -> dict[str, Any]:
    """The end of a job whose task says ``on_interrupt="fail"``."""
    return {
        "status": JobStatus.FAILED,
        "error_class": INTERRUPTED_CLASS,
        "error_message": (
            f"Attempt {attempt} was interrupted ({cause}); "
            "this task does not run again after an interruption."
        ),
    }


# -- the transitions -------------------------------------------------------------


def enqueued(
    *,
    ticket: uuid.UUID,
    task: Any,
    backend: str,
    args: list[Any],
    kwargs: dict[str, Any],
    enqueued_at: datetime,
    submitter: tuple[Any, str, str],
    cost: int = 1,
    input_file: str = "",
    input_size: int = 0,
) -> dict[str, Any]:
    """The columns of a new job's INSERT; ``submitter`` is (user id,
    session key, client address).  Left to the column defaults when empty:
    the INSERT names only what it sets."""
    user_id, session_key, address = submitter
    row = {
        "id": ticket,
        "task_path": task.module_path,
        "backend": backend,
        "queue_name": task.queue_name,
        "priority": task.priority,
        "args": args,
        "kwargs": kwargs,
        "status": JobStatus.QUEUED,
        "enqueued_at": enqueued_at,
        "submitted_by_id": user_id,
        "submitter_session": session_key,
    }
    if address:
        row["submitter_address"] = address
    if cost != 1:
        row["cost"] = cost
    if getattr(task, "title", ""):
        row["title"] = task.title
    if input_file:
        row.update(input_file=input_file, input_size=input_size)
    return row


# The columns a claim writes: ``prepare``'s verdict and the new owner.
CLAIM_FIELDS = [
    "status",
    "owner",
    "heartbeat_at",
    "history",
    "checkpoint",
    "error_class",
    "error_message",
    "finished_at",
    "progress_message",
]


def claimed(owner: str, now: datetime) -> dict[str, Any]:
    """What a claim writes besides ``prepare``'s verdict (rows locked)."""
    return {"owner": owner, "heartbeat_at": now}


def write_claims(using: str, jobs: list[Job]) -> None:
    """Write claimed jobs, in the claim's transaction, their rows locked.

    One prepared UPDATE per job (pipelined on PostgreSQL): the rows are
    locked, so no condition is needed; bulk_update's CASE expressions cost
    several times more.
    """
    if not jobs:
        return
    connection = connections[using]
    with connection.cursor() as cursor:
        statements_for(connection).update_many(
            cursor,
            [
                (job.pk, {}, {name: getattr(job, name) for name in CLAIM_FIELDS})
                for job in jobs
            ],
        )


def renew_leases(
    jobs: QuerySet[Job], owner: str, now: datetime, older_than: datetime
) -> int:
    """The heartbeat: this owner's unfinished jobs whose lease is getting old."""
    return jobs.filter(
        status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
        finished_at__isnull=True,
        owner=owner,
        heartbeat_at__lt=older_than,
    ).update(heartbeat_at=now)


def attach_result(name: str) -> Transition:
    return Transition({}, {"result_file": name})


def input_removed() -> Transition:
    return Transition({}, {"input_file": "", "input_size": 0})


def start(
    owner: str, attempts: int, started: datetime, worker_ids: list[str]
) -> Transition:
    return Transition(
        expect=queued_by(owner, attempts),
        changes={
            "status": JobStatus.RUNNING,
            "started_at": started,
            "attempts": attempts + 1,
            "worker_ids": worker_ids,
        },
    )


def cancelled(at: datetime, message: str = CANCELLED_BEFORE_START) -> dict[str, Any]:
    """The columns of a job cancelled before (or without) running again."""
    return {
        "status": JobStatus.CANCELLED,
        "cancel_requested": True,
        "finished_at": at,
        "error_class": CANCELLED_CLASS,
        "error_message": message,
    }


def cancelled_before_start(
    owner: str, attempts: int, at: datetime, files: dict[str, Any]
) -> Transition:
    """The runner found a cancel that came while the job waited."""
    return Transition(queued_by(owner, attempts), {**cancelled(at), **files})


def cancel_queued(at: datetime) -> Transition:
    """A cancel of a job no process has started: it never will."""
    return Transition({"status": JobStatus.QUEUED}, cancelled(at))


def request_cancel() -> Transition:
    """A cancel of an unfinished job: a running one stops at its next look.

    Applied with ``apply`` (its expectation is a lookup, not a value).
    """
    return Transition(
        {"status__in": [JobStatus.QUEUED, JobStatus.RUNNING]},
        {"cancel_requested": True},
    )


def report(owner: str, attempt: int, progress: dict[str, Any]) -> Transition:
    """A throttled copy of the live progress into the row."""
    return Transition(running_by(owner, attempt), progress)


def save_checkpoint(
    owner: str, attempt: int, value: Any, progress: dict[str, Any]
) -> Transition:
    return Transition(running_by(owner, attempt), {"checkpoint": value, **progress})


def finish(
    owner: str, attempt: int, status: str, finished: datetime, fields: dict[str, Any]
) -> Transition:
    """The job's end: ``fields`` are its outcome, progress and file columns."""
    return Transition(
        running_by(owner, attempt),
        {"status": status, "finished_at": finished, **fields},
    )


def retry(
    owner: str,
    attempt: int,
    now: datetime,
    retry_at: datetime,
    history: list[dict[str, Any]],
    progress: dict[str, Any],
) -> Transition:
    """A failed attempt with retries left: ownerless, due at ``retry_at``."""
    return Transition(
        running_by(owner, attempt),
        {
            "status": JobStatus.QUEUED,
            "owner": "",
            "heartbeat_at": now,
            "run_after": retry_at,
            "history": history,
            **progress,
        },
    )


def hand_back_queued(owner: str, attempts: int, now: datetime) -> Transition:
    """A stopping process gives back a job it never started."""
    return Transition(queued_by(owner, attempts), {"owner": "", "heartbeat_at": now})


def interrupt(
    owner: str,
    attempt: int,
    now: datetime,
    history: list[dict[str, Any]],
    progress: dict[str, Any],
    policy: str,
) -> Transition:
    """A stopping process gives back a running job, per ``on_interrupt``."""
    changes: dict[str, Any] = {
        "status": JobStatus.QUEUED,
        "owner": "",
        "heartbeat_at": now,
        "history": history,
        **progress,
    }
    if policy == "fail":
        changes.update(finished_at=now, **interrupted_failure(attempt, "shutdown"))
    elif policy == "restart":
        changes["checkpoint"] = None
    return Transition(running_by(owner, attempt), changes)
