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
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.utils import timezone

from slowjobs.backend.task import concurrency_limit, retry_delay, runs_in
from slowjobs.engine import endings
from slowjobs.engine.calling import INTERRUPTED, Outcome, call_task
from slowjobs.engine.executor.base import Slot
from slowjobs.engine.executor.registry import get_executor
from slowjobs.engine.processes.remote import call_in_process
from slowjobs.engine.running import (
    RunningJob,
    cancel_requested_in_database,
    register,
    unregister,
)
from slowjobs.engine.spec import JobSpec, running_job, spec_from_job
from slowjobs.jobs import dbhygiene, transitions
from slowjobs.jobs import files as jobfiles
from slowjobs.jobs.results import result_from_job
from slowjobs.jobs.transitions import CANCELLED_CLASS
from slowjobs.lifecycle import scheduler
from slowjobs.models import Job, JobStatus
from slowjobs.monitoring.logs import about, about_job
from slowjobs.progress import get_store
from slowjobs.progress.base import cancel_flagged
from slowjobs.signals import job_retrying
from slowjobs.tasksapi import (
    TaskError,
    TaskResult,
    TaskResultStatus,
    task_finished,
    task_started,
)

logger = logging.getLogger("slowjobs.runner")

UNWAITED = timedelta(milliseconds=5)


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
                extra=about(spec.ticket, spec.task),
            )
            return
        final = result_from_job(row, spec.task)
    # The job's end is written (by this attempt, or by that cancel).
    _remove_files(spec, final.status)
    if job is not None:
        job.finished()
    # Before the signal: a waiting request need not wait for its receivers.
    endings.ended(str(spec.ticket), str(final.status))
    with about_job(spec.ticket, spec.task):
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
    """One attempt of a job: its start, the task's call, and its outcome."""
    started = timezone.now()
    if _cancelled_before_start(spec, started):
        _record_cancelled_before_start(spec, started)
        return
    job = _start(spec, started)
    outcome = _call(spec, job)
    if outcome.status == INTERRUPTED:
        if job.lost:
            logger.warning(
                "Job %s: attempt %d stopped: another process took the job over "
                "(this one was not heard from within the lease); nothing of it "
                "is written",
                spec.ticket,
                job.attempt,
                extra=about(spec.ticket, spec.task),
            )
        return  # or handed back by this stopping process, which recorded it
    _finish(spec, job, outcome)


def _worker_ids(spec: JobSpec) -> list[str]:
    """Every attempt's owner, this one's included."""
    return [*spec.worker_ids, spec.owner]


def _record_cancelled_before_start(spec: JobSpec, started: datetime) -> None:
    cancelled = spec.result(
        TaskResultStatus.FAILED,
        finished_at=started,
        worker_ids=spec.worker_ids,
        errors=[TaskError(exception_class_path=CANCELLED_CLASS, traceback="")],
    )
    files = _files_at_end(spec, JobStatus.CANCELLED)
    transitions.write(
        spec.using,
        spec.ticket,
        transitions.cancelled_before_start(spec.owner, spec.attempts, started, files),
        on_written=partial(_announce_finish, spec, cancelled, None),
    )


def _start(spec: JobSpec, started: datetime) -> RunningJob:
    """Record the start (queued -> running) and make the job known here."""
    # A cancel that comes from now on is seen by the task at its next
    # check, which records it; one that came first is handled before.
    transitions.write(
        spec.using,
        spec.ticket,
        transitions.start(spec.owner, spec.attempts, started, _worker_ids(spec)),
    )
    job = running_job(spec, started)
    register(job)
    return job


def _call(spec: JobSpec, job: RunningJob) -> Outcome:
    """Send task_started and call the task, here or in a job process."""
    try:
        # No live record yet: the first progress report (or the heartbeat,
        # for a task that reports none) publishes one; until then the row
        # says "running", and a job that ends sooner never costs a write.
        running = spec.result(
            TaskResultStatus.RUNNING,
            started_at=job.started_at,
            worker_ids=_worker_ids(spec),
        )
        logger.debug(
            "Job %s started: %s, attempt %d",
            spec.ticket,
            spec.task.module_path,
            job.attempt,
            extra=about(spec.ticket, spec.task),
        )
        with about_job(spec.ticket, spec.task):
            task_started.send(sender=spec.sender, task_result=running)
        if runs_in(spec.task) == "process":
            return call_in_process(spec, job)
        return call_task(spec.task, spec.args, spec.kwargs, running, job)
    finally:
        job.end()
        unregister(job)
        dbhygiene.after_job()


def _finish(spec: JobSpec, job: RunningJob, outcome: Outcome) -> None:
    """Record how the attempt ended: a retry to come, or the job's end."""
    status, fields = outcome.status, outcome.fields
    finished = timezone.now()
    _log_outcome(spec, status, fields, finished - job.started_at)
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
        started_at=job.started_at,
        finished_at=finished,
        worker_ids=_worker_ids(spec),
        errors=errors,
        return_value=fields.get("result"),
    )
    transitions.write(
        spec.using,
        spec.ticket,
        transitions.finish(
            job.owner,
            job.attempt,
            status,
            finished,
            _outcome_columns(spec, job, status, fields),
        ),
        on_written=partial(_announce_finish, spec, final, job),
    )


def _outcome_columns(
    spec: JobSpec, job: RunningJob, status: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """The outcome, progress and file columns of a job's end."""
    return {
        # Only what differs from the row: every column is paid for.  A
        # first attempt that never reported finds the progress columns
        # empty already; a later one clears what an earlier one left.
        **(job.progress_fields() if job.reported or job.attempt > 1 else {}),
        **job.log_fields(always=True),
        **{k: v for k, v in fields.items() if v is not None},
        **(
            {"result_file": job.result_file}
            if job.result_file and status == JobStatus.SUCCEEDED
            else {}
        ),
        **_files_at_end(spec, status),
    }


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
        extra=about(spec.ticket, spec.task),
    )


def _schedule_retry(
    spec: JobSpec,
    job: RunningJob,
    fields: dict[str, Any],
    now: datetime,
    retry_at: datetime,
) -> None:
    """Queue the job again, ownerless and deferred: any process may retry it."""
    entry = transitions.history_entry(
        job.attempt,
        job.owner,
        "failed",
        now,
        error=f"{fields['error_class']}: {fields['error_message']}",
    )
    transitions.write(
        spec.using,
        spec.ticket,
        transitions.retry(
            job.owner,
            job.attempt,
            now,
            retry_at,
            [*spec.history, entry],
            job.progress_fields(),
        ),
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
            extra=about(spec.ticket, spec.task),
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
        extra=about(spec.ticket, spec.task),
    )
    scheduler.wake_at(retry_at)


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
