"""A job as the engine holds it: what a runner needs to start it without
reading its row again, made from the enqueue (``slowjobs.backend``) or from
a claimed row (``spec_from_job``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slowjobs.engine.running import RunningJob, timeout_for
from slowjobs.jobs.results import build_result, load_task
from slowjobs.models import Job
from slowjobs.tasksapi import Task, TaskResult, TaskResultStatus
from slowjobs.web.submitter import Submitter


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


def running_job(spec: JobSpec, started: datetime) -> RunningJob:
    """This process's record of the job's next attempt, started ``started``."""
    timeout = timeout_for(spec.task)
    return RunningJob(
        ticket=spec.ticket,
        task_path=spec.task.module_path,
        owner=spec.owner,
        attempt=spec.attempts + 1,
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


def run_message(spec: JobSpec, job: RunningJob) -> dict[str, Any]:
    """The job as a job process gets it (process mode's ``run`` message)."""
    task = spec.task
    return {
        "op": "run",
        "ticket": str(spec.ticket),
        "task_path": task.module_path,
        "priority": task.priority,
        "queue_name": task.queue_name,
        "backend": task.backend,
        "args": spec.args,
        "kwargs": spec.kwargs,
        "owner": job.owner,
        "attempt": job.attempt,
        "worker_ids": [*spec.worker_ids, spec.owner],
        "enqueued_at": spec.enqueued_at.isoformat(),
        "started_at": job.started_at.isoformat(),
        "using": job.using,
        "user": job.submitter_user,
        "session": job.submitter_session,
        "checkpoint": job.checkpoint,
        "history": job.history,
        "timeout": job.timeout,
        "seconds_left": None
        if job.deadline is None
        else max(0.0, job.deadline - time.monotonic()),
    }
