"""Running one job: record the start, call the task, record how it ended.

The job is owned by the process that queued it (``Job.owner`` is set at
enqueue), so the task starts without a database round trip; the start and
the outcome are conditional UPDATEs handed to the state writer, which
commits them with other jobs' writes.  Each UPDATE matches only while this
attempt owns the row, so a job's final state is written once, by its current
attempt.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.utils import timezone

from . import dbhygiene, jobfiles, scheduler
from .calling import INTERRUPTED, Outcome, call_task
from .cancel import CANCELLED_BEFORE_START, CANCELLED_CLASS
from .executor.base import Slot
from .executor.registry import get_executor
from .logs import about, about_job
from .models import Job, JobStatus
from .processes.remote import call_in_process
from .progress import get_store
from .progress.base import cancel_flagged
from .results import build_result, load_task, result_from_job
from .running import (
    RunningJob,
    cancel_requested_in_database,
    register,
    timeout_for,
    unregister,
)
from .signals import job_retrying
from .statewriter import get_writer
from .submitter import Submitter
from .task import concurrency_limit, retry_delay, runs_in
from .tasksapi import (
    Task,
    TaskError,
    TaskResult,
    TaskResultStatus,
    task_finished,
    task_started,
)

logger = logging.getLogger("slowjobs.runner")

UNWAITED = timedelta(milliseconds=5)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a runner needs to start a job without reading its row again."""

    ticket: uuid.UUID
    task: Task[..., Any]
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: datetime
    owner: str
    worker_ids: list[str] = field(default_factory=list)
    sender: type = object
    using: str = "default"
    submitter_user: Any = None
    submitter_session: str = ""
    submitter_address: str = ""
    input_file: str = ""
    checkpoint: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.worker_ids)

    @property
    def lane(self) -> str:
        """Whose turn this job waits for in the pool (see ``Submitter.lane``)."""
        return Submitter(
            self.submitter_user, self.submitter_session, self.submitter_address
        ).lane

    def queued_ownership(self) -> dict[str, Any]:
        """The conditions under which the row is still this queued job's."""
        return {
            "status": JobStatus.QUEUED,
            "owner": self.owner,
            "attempts": self.attempts,
        }

    def result(self, status: TaskResultStatus, **fields: Any) -> TaskResult[..., Any]:
        return build_result(
            task=self.task,
            ticket=str(self.ticket),
            args=self.args,
            kwargs=self.kwargs,
            enqueued_at=self.enqueued_at,
            status=status,
            **fields,
        )


def _retry_at(spec: JobSpec, outcome: Outcome, now: datetime) -> datetime | None:
    """When a failed attempt runs again, per its task's policy; None: never."""
    if not outcome.retryable:
        return None
    failures = 1 + sum(1 for entry in spec.history if entry.get("outcome") == "failed")
    delay = retry_delay(spec.task, failures)
    return None if delay is None else now + timedelta(seconds=delay)


def _cancelled_before_start(spec: JobSpec, now: datetime) -> bool:
    """Whether a cancel came while the job waited (a store look, rarely the DB).

    A job starting within ``UNWAITED`` of its enqueue is not looked up: its
    ticket has barely reached the client, and a cancel sent that soon is
    handled like one that came just after the start (the task sees it at
    its next check).  That spares the common case, a job that never waited,
    a round trip to memcached.
    """
    if spec.attempts == 0 and now - spec.enqueued_at < UNWAITED:
        return False
    store = get_store()
    if cancel_flagged(store, str(spec.ticket)):
        return True
    if not store.shared or store.available:
        return False
    return cancel_requested_in_database(spec.ticket, spec.using)


def _announce_finish(
    spec: JobSpec, final: TaskResult[..., Any], job: RunningJob | None, rows: int
) -> None:
    """Send task_finished once the outcome is durable.

    When the write matched nothing, the row says why: a cancel that came
    while the row still read ``queued`` (the start is written after the task
    starts) has already recorded the job as cancelled, and that is its end;
    anything else means another attempt owns the job now.
    """
    if not rows:
        row = Job.objects.using(spec.using).filter(pk=spec.ticket).first()
        if row is None or row.status != JobStatus.CANCELLED or row.owner != spec.owner:
            logger.warning(
                "Job %s: attempt %d ended after losing the job; its outcome is dropped",
                spec.ticket,
                spec.attempts + 1,
                extra=about(spec.ticket),
            )
            return
        final = result_from_job(row, spec.task)
    # The job's end is written (by this attempt, or by that cancel).
    _remove_files(spec, final.status)
    if job is not None:
        job.finished()
    with about_job(spec.ticket):
        task_finished.send(sender=spec.sender, task_result=final)


def _keeps_input(spec: JobSpec) -> bool:
    return bool(getattr(spec.task, "keep_input", False))


def _files_at_end(spec: JobSpec, status: str) -> dict[str, Any]:
    """Row changes for the files a job's end removes (see slowjobs.jobfiles)."""
    changes: dict[str, Any] = {}
    if spec.input_file and not _keeps_input(spec):
        changes.update(input_file="", input_size=0)
    if status != JobStatus.SUCCEEDED:
        changes["result_file"] = ""
    return changes


def _remove_files(spec: JobSpec, status: TaskResultStatus) -> None:
    """Once the end is written: the input, and a failed job's partial results."""
    if spec.input_file and not _keeps_input(spec):
        jobfiles.remove_stored(spec.input_file)
    if status != TaskResultStatus.SUCCESSFUL:
        jobfiles.remove_results(spec.ticket)


def run_job(spec: JobSpec) -> None:
    writer = get_writer(spec.using)
    attempt = spec.attempts + 1
    worker_ids = [*spec.worker_ids, spec.owner]
    started = timezone.now()
    if _cancelled_before_start(spec, started):
        cancelled = spec.result(
            TaskResultStatus.FAILED,
            finished_at=started,
            worker_ids=spec.worker_ids,
            errors=[TaskError(exception_class_path=CANCELLED_CLASS, traceback="")],
        )
        writer.update(
            spec.ticket,
            expect=spec.queued_ownership(),
            changes={
                "status": JobStatus.CANCELLED,
                "cancel_requested": True,
                "finished_at": started,
                "error_class": CANCELLED_CLASS,
                "error_message": CANCELLED_BEFORE_START,
                **_files_at_end(spec, JobStatus.CANCELLED),
            },
            on_written=partial(_announce_finish, spec, cancelled, None),
        )
        return
    timeout = timeout_for(spec.task)
    writer.update(
        spec.ticket,
        # A cancel that comes from now on is seen by the task at its next
        # check, which records it; one that came first is handled above.
        expect=spec.queued_ownership(),
        changes={
            "status": JobStatus.RUNNING,
            "started_at": started,
            "attempts": attempt,
            "worker_ids": worker_ids,
        },
    )
    job = RunningJob(
        ticket=spec.ticket,
        task_path=spec.task.module_path,
        owner=spec.owner,
        attempt=attempt,
        enqueued_at=spec.enqueued_at,
        started_at=started,
        using=spec.using,
        submitter_user=spec.submitter_user,
        submitter_session=spec.submitter_session,
        checkpoint=spec.checkpoint,
        history=spec.history,
        task=spec.task,
        timeout=timeout,
        deadline=None if timeout is None else time.monotonic() + timeout,
    )
    register(job)
    try:
        # No live record yet: the first progress report (or the heartbeat,
        # for a task that reports none) publishes one; until then the row
        # says "running", and a job that ends sooner never costs a write.
        running = spec.result(
            TaskResultStatus.RUNNING, started_at=started, worker_ids=worker_ids
        )
        logger.debug(
            "Job %s started: %s, attempt %d",
            spec.ticket,
            spec.task.module_path,
            attempt,
            extra=about(spec.ticket),
        )
        with about_job(spec.ticket):
            task_started.send(sender=spec.sender, task_result=running)
        if runs_in(spec.task) == "process":
            outcome = call_in_process(spec, job)
        else:
            outcome = call_task(spec.task, spec.args, spec.kwargs, running, job)
    finally:
        job.end()
        unregister(job)
        dbhygiene.after_job()
    status, fields = outcome.status, outcome.fields
    if status == INTERRUPTED:
        if job.lost:
            logger.warning(
                "Job %s: attempt %d stopped: another process took the job over "
                "(this one was not heard from within the lease); nothing of it "
                "is written",
                spec.ticket,
                attempt,
                extra=about(spec.ticket),
            )
        return  # or handed back by this stopping process, which recorded it
    finished = timezone.now()
    _log_outcome(spec, status, fields, finished - started)
    if status == JobStatus.FAILED:
        retry_at = _retry_at(spec, outcome, finished)
        if retry_at is not None:
            _schedule_retry(spec, job, fields, finished, retry_at)
            return
    errors = []
    if "error_class" in fields:
        errors.append(
            TaskError(
                exception_class_path=fields["error_class"],
                traceback=fields["error_traceback"],
            )
        )
    final = spec.result(
        JobStatus(status).to_task_status(),
        started_at=started,
        finished_at=finished,
        worker_ids=worker_ids,
        errors=errors,
        return_value=fields.get("result"),
    )
    writer.update(
        spec.ticket,
        expect=job.ownership(),
        changes={
            "status": status,
            "finished_at": finished,
            # Only what differs from the row: every column is paid for.  A
            # first attempt that never reported finds the progress columns
            # empty already; a later one clears what an earlier one left.
            **(job.progress_fields() if job.reported or attempt > 1 else {}),
            **{k: v for k, v in fields.items() if v is not None},
            **(
                {"result_file": job.result_file}
                if job.result_file and status == JobStatus.SUCCEEDED
                else {}
            ),
            **_files_at_end(spec, status),
        },
        on_written=partial(_announce_finish, spec, final, job),
    )


def _log_outcome(
    spec: JobSpec, status: str, fields: dict[str, Any], took: timedelta
) -> None:
    if status == JobStatus.SUCCEEDED:
        level, detail = logging.DEBUG, ""
    else:
        level = logging.INFO
        detail = f": {fields['error_class']}: {fields['error_message'][:200]}"
    logger.log(
        level,
        "Job %s %s after %.3f s (%s)%s",
        spec.ticket,
        status,
        took.total_seconds(),
        spec.task.module_path,
        detail,
        extra=about(spec.ticket),
    )


def _schedule_retry(
    spec: JobSpec,
    job: RunningJob,
    fields: dict[str, Any],
    now: datetime,
    retry_at: datetime,
) -> None:
    """Queue the job again, ownerless and deferred: any process may retry it."""
    entry = {
        "attempt": job.attempt,
        "owner": job.owner,
        "outcome": "failed",
        "at": now.isoformat(),
        "error": f"{fields['error_class']}: {fields['error_message']}",
    }
    writer = get_writer(spec.using)
    writer.update(
        spec.ticket,
        expect=job.ownership(),
        changes={
            "status": JobStatus.QUEUED,
            "owner": "",
            "heartbeat_at": now,
            "run_after": retry_at,
            "history": [*spec.history, entry],
            **job.progress_fields(),
        },
        on_written=partial(_retry_scheduled, spec, job, entry, retry_at),
    )


def _retry_scheduled(
    spec: JobSpec,
    job: RunningJob,
    entry: dict[str, Any],
    retry_at: datetime,
    rows: int,
) -> None:
    if not rows:
        logger.warning(
            "Job %s: attempt %d failed after losing the job; no retry from it",
            spec.ticket,
            job.attempt,
            extra=about(spec.ticket),
        )
        return
    job.finished()
    job_retrying.send(
        spec.sender,
        ticket=spec.ticket,
        task_path=spec.task.module_path,
        attempt=job.attempt,
        retry_at=retry_at,
        error=entry["error"],
    )
    logger.info(
        "Job %s: attempt %d failed (%s); next attempt at %s",
        spec.ticket,
        job.attempt,
        entry["error"].splitlines()[0][:200],
        retry_at.isoformat(),
        extra=about(spec.ticket),
    )
    scheduler.wake_at(retry_at)


def spec_from_job(job: Job, sender: type = object) -> JobSpec:
    """The spec of a claimed job (queued, owned by this process), from its row."""
    return JobSpec(
        ticket=job.pk,
        task=load_task(job),
        args=job.args,
        kwargs=job.kwargs,
        enqueued_at=job.enqueued_at,
        owner=job.owner,
        worker_ids=list(job.worker_ids),
        sender=sender,
        using=job._state.db or "default",
        submitter_user=job.submitted_by_id,
        submitter_session=job.submitter_session,
        submitter_address=job.submitter_address,
        input_file=job.input_file,
        checkpoint=job.checkpoint,
        history=list(job.history),
    )


def start_claimed(jobs: list[Job]) -> None:
    """Run claimed jobs (queued, owned by this process) on its executor."""
    executor = get_executor()
    for job in jobs:
        start_on(executor.force_slot(), spec_from_job(job), priority=job.priority)


def start_on(slot: Slot, spec: JobSpec, *, priority: int) -> None:
    """Queue the job on the slot's executor, in its submitter's lane."""
    slot.executor.start(
        slot,
        JobWork(spec),
        priority=priority,
        lane=spec.lane,
        limit=concurrency_limit(spec.task, spec.args, spec.kwargs),
    )


class JobWork:
    """A job as the executor holds it: callable, and still readable as a spec
    (a stopping process hands back the ones that never started)."""

    __slots__ = ("spec",)

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec

    def __call__(self) -> None:
        run_job(self.spec)
