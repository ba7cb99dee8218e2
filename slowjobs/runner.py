"""Running one job: claim it, call the task, record how it ended.

Every state change is one conditional UPDATE.  The claim only succeeds on a
queued, uncancelled row whose attempt count is the one this runner expects,
and the final write only lands while this attempt still owns the row, so a
job's final state is written once, by its current attempt.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.tasks import Task, TaskContext, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from django.utils import timezone

from . import dbhygiene
from .exceptions import JobCancelled
from .jsonargs import to_json_value
from .models import Job, JobStatus
from .process import process_id
from .results import build_result

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
    worker_ids: list[str] = field(default_factory=list)
    sender: type = object

    @property
    def attempts(self) -> int:
        return len(self.worker_ids)


def _claim(spec: JobSpec, owner: str, now: datetime) -> bool:
    return bool(
        Job.objects.filter(
            pk=spec.ticket,
            status=JobStatus.QUEUED,
            cancel_requested=False,
            attempts=spec.attempts,
        ).update(
            status=JobStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            owner=owner,
            attempts=spec.attempts + 1,
            worker_ids=[*spec.worker_ids, owner],
        )
    )


def _cancel_unstarted(spec: JobSpec) -> None:
    """A job cancelled while queued never starts; record it as cancelled."""
    Job.objects.filter(
        pk=spec.ticket, status=JobStatus.QUEUED, cancel_requested=True
    ).update(status=JobStatus.CANCELLED, finished_at=timezone.now())


def _error_fields(exc: BaseException) -> dict[str, str]:
    kind = type(exc)
    return {
        "error_class": f"{kind.__module__}.{kind.__qualname__}",
        "error_message": (str(exc) or kind.__name__)[:ERROR_MESSAGE_LIMIT],
        "error_traceback": "".join(traceback.format_exception(exc)),
    }


def _call(spec: JobSpec, started: datetime, owner: str) -> tuple[str, dict[str, Any]]:
    """Call the task; return the final status and the fields that record it."""
    running = build_result(
        task=spec.task,
        ticket=str(spec.ticket),
        status=TaskResultStatus.RUNNING,
        args=spec.args,
        kwargs=spec.kwargs,
        enqueued_at=spec.enqueued_at,
        started_at=started,
        worker_ids=[*spec.worker_ids, owner],
    )
    task_started.send(sender=spec.sender, task_result=running)
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


def run_job(spec: JobSpec) -> None:
    owner = process_id()
    started = timezone.now()
    try:
        if not _claim(spec, owner, started):
            _cancel_unstarted(spec)
            return
        status, fields = _call(spec, started, owner)
        finished = timezone.now()
        written = Job.objects.filter(
            pk=spec.ticket,
            status=JobStatus.RUNNING,
            owner=owner,
            attempts=spec.attempts + 1,
        ).update(status=status, finished_at=finished, **fields)
        if not written:
            logger.warning(
                "Job %s: attempt %d finished after losing the job; outcome dropped",
                spec.ticket,
                spec.attempts + 1,
            )
            return
        errors = []
        if "error_class" in fields:
            errors.append(
                TaskError(
                    exception_class_path=fields["error_class"],
                    traceback=fields["error_traceback"],
                )
            )
        final = build_result(
            task=spec.task,
            ticket=str(spec.ticket),
            status=JobStatus(status).to_task_status(),
            args=spec.args,
            kwargs=spec.kwargs,
            enqueued_at=spec.enqueued_at,
            started_at=started,
            finished_at=finished,
            worker_ids=[*spec.worker_ids, owner],
            errors=errors,
            return_value=fields.get("result"),
        )
        task_finished.send(sender=spec.sender, task_result=final)
    finally:
        dbhygiene.after_job()
