"""Translation between Job rows and ``django.tasks`` TaskResult objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from django.utils.module_loading import import_string

from slowjobs.models import Job, JobStatus
from slowjobs.tasksapi import (
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
)

P = ParamSpec("P")
R = TypeVar("R")


def load_task(job: Job) -> Task[..., Any]:
    """The Task a job runs, with the options it was enqueued with."""
    try:
        task = import_string(job.task_path)
    except ImportError as exc:
        raise TaskResultDoesNotExist(
            f"Job {job.pk} runs {job.task_path!r}, which cannot be imported: {exc}"
        ) from exc
    if not isinstance(task, Task):
        raise TaskResultDoesNotExist(
            f"Job {job.pk} runs {job.task_path!r}, which is not a Task."
        )
    return task.using(
        priority=job.priority,
        queue_name=job.queue_name,
        backend=job.backend,
        run_after=job.run_after,
    )


def build_result(
    *,
    task: Task[P, R],
    ticket: str,
    status: TaskResultStatus,
    args: list[Any],
    kwargs: dict[str, Any],
    enqueued_at: datetime | None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    worker_ids: list[str] | None = None,
    errors: list[TaskError] | None = None,
    return_value: Any = None,
) -> TaskResult[P, R]:
    result: TaskResult[P, R] = TaskResult(
        task=task,
        id=ticket,
        status=status,
        enqueued_at=enqueued_at,
        started_at=started_at,
        finished_at=finished_at,
        last_attempted_at=started_at,
        args=args,
        kwargs=kwargs,
        backend=task.backend,
        errors=errors or [],
        worker_ids=list(worker_ids or []),
    )
    object.__setattr__(result, "_return_value", return_value)
    return result


def result_from_job(
    job: Job, task: Task[..., Any] | None = None
) -> TaskResult[..., Any]:
    errors = []
    if job.error_class:
        errors.append(
            TaskError(
                exception_class_path=job.error_class,
                traceback=job.error_traceback or job.error_message,
            )
        )
    return build_result(
        task=task or load_task(job),
        ticket=str(job.pk),
        status=JobStatus(job.status).to_task_status(),
        args=job.args,
        kwargs=job.kwargs,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        worker_ids=job.worker_ids,
        errors=errors,
        return_value=job.result if job.status == JobStatus.SUCCEEDED else None,
    )
