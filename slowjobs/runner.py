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
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils import timezone

from . import dbhygiene
from .exceptions import JobCancelled
from .jsonargs import to_json_value
from .models import Job, JobStatus
from .results import build_result
from .statewriter import get_writer

logger = logging.getLogger("slowjobs.runner")

ERROR_MESSAGE_LIMIT = 2000


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

    @property
    def attempts(self) -> int:
        return len(self.worker_ids)

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


def _error_fields(exc: BaseException) -> dict[str, str]:
    kind = type(exc)
    return {
        "error_class": f"{kind.__module__}.{kind.__qualname__}",
        "error_message": (str(exc) or kind.__name__)[:ERROR_MESSAGE_LIMIT],
        "error_traceback": "".join(traceback.format_exception(exc)),
    }


def _call(spec: JobSpec, running: TaskResult[..., Any]) -> tuple[str, dict[str, Any]]:
    """Call the task; return the final status and the fields that record it."""
    try:
        if spec.task.takes_context:
            value = spec.task.call(
                TaskContext(task_result=running), *spec.args, **spec.kwargs
            )
        else:
            value = spec.task.call(*spec.args, **spec.kwargs)
        return JobStatus.SUCCEEDED, {"result": to_json_value(value, "the return value")}
    except JobCancelled as exc:
        return JobStatus.CANCELLED, _error_fields(exc)
    except BaseException as exc:  # a task must never take its thread down
        return JobStatus.FAILED, _error_fields(exc)


def _cancel_unstarted(spec: JobSpec, rows: int) -> None:
    """The start did not match: if a cancel got there first, record it."""
    if rows == 0:
        Job.objects.using(spec.using).filter(
            pk=spec.ticket, status=JobStatus.QUEUED, cancel_requested=True
        ).update(status=JobStatus.CANCELLED, finished_at=timezone.now())


def _announce_finish(spec: JobSpec, final: TaskResult[..., Any], rows: int) -> None:
    if rows:
        task_finished.send(sender=spec.sender, task_result=final)
    else:
        logger.warning(
            "Job %s: attempt %d ended after losing the job; its outcome is dropped",
            spec.ticket,
            spec.attempts + 1,
        )


def run_job(spec: JobSpec) -> None:
    writer = get_writer(spec.using)
    attempt = spec.attempts + 1
    worker_ids = [*spec.worker_ids, spec.owner]
    started = timezone.now()
    writer.update(
        spec.ticket,
        expect={
            "status": JobStatus.QUEUED,
            "owner": spec.owner,
            "attempts": spec.attempts,
            "cancel_requested": False,
        },
        changes={
            "status": JobStatus.RUNNING,
            "started_at": started,
            "heartbeat_at": started,
            "attempts": attempt,
            "worker_ids": worker_ids,
        },
        on_written=partial(_cancel_unstarted, spec),
    )
    try:
        running = spec.result(
            TaskResultStatus.RUNNING, started_at=started, worker_ids=worker_ids
        )
        task_started.send(sender=spec.sender, task_result=running)
        status, fields = _call(spec, running)
    finally:
        dbhygiene.after_job()
    finished = timezone.now()
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
        expect={"status": JobStatus.RUNNING, "owner": spec.owner, "attempts": attempt},
        changes={"status": status, "finished_at": finished, **fields},
        on_written=partial(_announce_finish, spec, final),
    )
