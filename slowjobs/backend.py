"""The ``django.tasks`` backend that runs tasks inside the web server process.

Usage::

    TASKS = {"default": {"BACKEND": "slowjobs.backend.SlowJobsBackend"}}

    @task
    def build_report(rows: int) -> dict: ...

    result = build_report.enqueue(rows=500)   # returns at once
    result.id                                 # the ticket: /jobs/<id>/

Notes:

- ``enqueue`` takes room on this process's executor *before* writing the
  Job row, so a full executor refuses (``ExecutorFull``) with nothing written.
- The job starts when the surrounding transaction commits; a rolled-back
  request starts nothing and leaves no row.
- ``get_result`` reads the row, so it works from any process.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any, ParamSpec, TypeVar

from django.core.checks import CheckMessage
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

from . import checks
from .executor import Slot, get_executor
from .jsonargs import check_arguments
from .models import Job, JobStatus
from .results import build_result, result_from_job
from .runner import JobSpec, run_job
from .submitter import current_submitter

P = ParamSpec("P")
R = TypeVar("R")


class SlowJobsBackend(BaseTaskBackend):
    # run_after needs a timer that survives restarts; refused until there is one.
    supports_defer = False
    # Coroutine tasks run to completion on the job's own thread.
    supports_async_task = True
    # Results are rows in the Job table, readable from every process.
    supports_get_result = True
    # The pool's queue is ordered by priority, first come first served within one.
    supports_priority = True

    def enqueue(
        self, task: Task[P, R], args: list[Any], kwargs: dict[str, Any]
    ) -> TaskResult[P, R]:
        self.validate_task(task)
        check_arguments(args, kwargs)
        using = router.db_for_write(Job)
        in_transaction = transaction.get_connection(using).in_atomic_block
        executor = get_executor()
        slot: Slot | None = executor.reserve()
        if in_transaction and slot is not None:
            # The transaction may still roll back, and nothing would free a
            # slot held for it: check for room now, take it again on commit.
            slot.release()
            slot = None
        submitter = current_submitter()
        job = Job(
            id=uuid.uuid4(),
            task_path=task.module_path,
            backend=self.alias,
            queue_name=task.queue_name,
            priority=task.priority,
            args=list(args),
            kwargs=dict(kwargs),
            status=JobStatus.QUEUED,
            enqueued_at=timezone.now(),
            submitted_by_id=submitter.user_id,
            submitter_session=submitter.session_key,
        )
        try:
            job.save(force_insert=True, using=using)
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        spec = JobSpec(
            ticket=job.id,
            task=task,
            args=job.args,
            kwargs=job.kwargs,
            enqueued_at=job.enqueued_at,
            sender=type(self),
        )
        result = build_result(
            task=task,
            ticket=str(job.id),
            status=TaskResultStatus.READY,
            args=job.args,
            kwargs=job.kwargs,
            enqueued_at=job.enqueued_at,
        )
        try:
            # Sent before the hand-off, so no receiver sees the start first.
            task_enqueued.send(type(self), task_result=result)
        finally:
            # The row is written: the job runs even if a receiver raised.
            transaction.on_commit(partial(_hand_off, spec, slot), using=using)
        return result

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        try:
            job = Job.objects.get(pk=result_id)
        except (Job.DoesNotExist, ValidationError, ValueError) as exc:
            raise TaskResultDoesNotExist(result_id) from exc
        return result_from_job(job)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        return [*super().check(**kwargs), *checks.check_backend(self.alias)]


def _hand_off(spec: JobSpec, slot: Slot | None) -> None:
    if slot is None:
        slot = get_executor().force_slot()
    slot.executor.start(slot, partial(run_job, spec), priority=spec.task.priority)
