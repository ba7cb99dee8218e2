"""Calling a task's function, and describing how the call ended.

Shared by both places a task runs: a job thread of the server and a job
process (``slowjobs.engine.processes``).  The description is plain JSON, so a job
process can send it back as it is.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from slowjobs.backend.task import retries_on
from slowjobs.engine.context import JobContext, running_as
from slowjobs.engine.running import RunningJob
from slowjobs.exceptions import JobCancelled, JobInterrupted, JobTimedOut
from slowjobs.jobs.jsonargs import result_as_json, storable_text
from slowjobs.models import JobStatus
from slowjobs.tasksapi import Task, TaskResult

ERROR_MESSAGE_LIMIT = 2000
INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The final status, the columns that record it, and whether the task's
    retry policy covers the exception it raised."""

    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    retryable: bool = False

    def as_message(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "fields": self.fields,
            "retryable": self.retryable,
        }


def error_fields(exc: BaseException) -> dict[str, str]:
    kind = type(exc)
    try:
        message = str(exc) or kind.__name__
        trace = "".join(traceback.format_exception(exc))
    except Exception:  # an exception that cannot even describe itself
        message = trace = f"{kind.__name__} (its message could not be read)"
    return {
        "error_class": f"{kind.__module__}.{kind.__qualname__}",
        "error_message": storable_text(message[:ERROR_MESSAGE_LIMIT]),
        "error_traceback": storable_text(trace),
    }


def stopped(exc: JobCancelled | JobInterrupted | JobTimedOut) -> Outcome:
    """How a job ends that was stopped for ``exc``'s reason."""
    if isinstance(exc, JobCancelled):
        return Outcome(
            JobStatus.CANCELLED, {"cancel_requested": True, **error_fields(exc)}
        )
    if isinstance(exc, JobInterrupted):
        return Outcome(INTERRUPTED)
    return Outcome(JobStatus.FAILED, error_fields(exc))


def call_task(
    task: Task[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    running: TaskResult[..., Any],
    job: RunningJob,
) -> Outcome:
    try:
        with running_as(job):
            if task.takes_context:
                value = task.call(
                    JobContext(task_result=running, job=job), *args, **kwargs
                )
            else:
                value = task.call(*args, **kwargs)
        result = result_as_json(value)
    except (JobCancelled, JobInterrupted, JobTimedOut) as exc:
        return stopped(exc)
    except BaseException as exc:  # a task must never take its thread down
        return Outcome(JobStatus.FAILED, error_fields(exc), retries_on(task, exc))
    return Outcome(JobStatus.SUCCEEDED, {"result": result})
