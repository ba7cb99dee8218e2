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
- ``run_after`` in the future writes an ownerless row that the first process
  with room takes when it is due (see ``slowjobs.lifecycle.scheduler``): it survives
  restarts, and no slot is held while it waits.
- With ``SLOWJOBS_OVERFLOW``, a full executor does not refuse: the job is
  written ownerless and due, for ``run_jobs`` workers (or any server with
  room) to take.
- A task with ``unique_key`` returns the unfinished job with the same key, if
  there is one, instead of enqueueing another (a unique index decides races).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from functools import partial
from typing import Any, ParamSpec, TypeVar, cast

from django.core.checks import CheckMessage
from django.core.exceptions import ValidationError
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.translation import gettext

from slowjobs import checks, conf
from slowjobs.backend import admission
from slowjobs.backend.task import SlowJobsTask, cost_of, unique_key_for
from slowjobs.engine.executor import Slot, get_executor
from slowjobs.engine.place import in_job_process
from slowjobs.engine.runner import start_on
from slowjobs.engine.spec import JobSpec
from slowjobs.exceptions import DatabaseUnavailable, EnqueueRefused, OverLimit
from slowjobs.jobs import files as jobfiles
from slowjobs.jobs import transitions
from slowjobs.jobs.jsonargs import check_arguments
from slowjobs.jobs.results import build_result, result_from_job
from slowjobs.jobs.sql import statements_for
from slowjobs.jobs.statewriter import get_writer
from slowjobs.jobs.writelock import sqlite_write_turn
from slowjobs.lifecycle import control as lifecycle
from slowjobs.lifecycle import scheduler
from slowjobs.lifecycle.identity import process_id
from slowjobs.models import Job
from slowjobs.monitoring.logs import about_job
from slowjobs.signals import enqueue_refused
from slowjobs.tasksapi import (
    BaseTaskBackend,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
)
from slowjobs.web.submitter import Submitter, current_submitter

logger = logging.getLogger("slowjobs.backend")

# Tries at a unique key whose holder keeps finishing just before the look-up.
P = ParamSpec("P")
R = TypeVar("R")

UNIQUE_ATTEMPTS = 3


class SlowJobsBackend(BaseTaskBackend):
    # Django's Task plus on_interrupt (see slowjobs.task).
    task_class = SlowJobsTask
    # Deferred jobs are rows with run_after, taken by any process when due.
    supports_defer = True
    # Coroutine tasks run to completion on the job's own thread.
    supports_async_task = True
    # Results are rows in the Job table, readable from every process.
    supports_get_result = True
    # The pool's queue is ordered by priority, first come first served within one.
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # Tasks already validated: validation inspects the function's
        # signature, which costs more than the rest of enqueue together.
        self._valid_tasks: set[Task[..., Any]] = set()

    def validate_task(self, task: Task[..., Any]) -> None:
        if task not in self._valid_tasks:
            super().validate_task(task)
            self._valid_tasks.add(task)

    def enqueue(
        self, task: Task[P, R], args: list[Any], kwargs: dict[str, Any]
    ) -> TaskResult[P, R]:
        self.validate_task(task)
        check_arguments(args, kwargs)
        args, kwargs = list(args), dict(kwargs)
        unique_key = unique_key_for(task, args, kwargs)
        using = router.db_for_write(Job)
        enqueued_at = timezone.now()
        run_after = task.run_after
        if in_job_process():
            # A job process runs no executor of its own: the job is left
            # ownerless, for its server (or any) to take when it is due.
            due = run_after if run_after is not None else enqueued_at
            return self._defer(task, args, kwargs, unique_key, using, enqueued_at, due)
        if not lifecycle.is_started():
            # In a request, request_started has started it already (with
            # adoption); here it is a command or a script: no adoption.
            lifecycle.start(adopt=False)
        self._admit(task, using)
        if run_after is not None and run_after > enqueued_at:
            return self._defer(
                task, args, kwargs, unique_key, using, enqueued_at, run_after
            )
        executor = get_executor()
        try:
            slot: Slot | None = executor.reserve()
        except EnqueueRefused as exc:
            if conf.get().overflow:
                # Durable and ownerless, due now: the first process with room
                # takes it (a run_jobs worker, or a server's scheduler).
                return self._defer(
                    task, args, kwargs, unique_key, using, enqueued_at, enqueued_at
                )
            _announce_refusal(type(self), task, exc)
            raise
        return self._enqueue_here(
            task, args, kwargs, unique_key, using, enqueued_at, slot
        )

    def enqueue_for_schedule(
        self,
        task: Task[P, R],
        args: list[Any],
        kwargs: dict[str, Any],
        *,
        schedule: str,
        slot: datetime | None,
    ) -> TaskResult[P, R] | None:
        """An ordinary job for a periodic schedule's slot (``None``: "run
        now"); ``None`` when another process enqueued that slot first.

        It never waits for room and is never refused for lack of it: with
        no room here the row is left ownerless and due, for any process
        with room.  No submitter cap applies: the clock is nobody.
        """
        self.validate_task(task)
        check_arguments(args, kwargs)
        args, kwargs = list(args), dict(kwargs)
        using = router.db_for_write(Job)
        connection = connections[using]
        in_transaction = connection.in_atomic_block
        if not lifecycle.is_started():
            lifecycle.start(adopt=False)
        room: Slot | None = None
        if not in_transaction:
            try:
                room = get_executor().reserve(timeout=0)
            except EnqueueRefused:
                room = None
        enqueued_at = timezone.now()
        ticket = uuid.uuid4()
        try:
            submitter = current_submitter()
            row = self._row(task, ticket, args, kwargs, enqueued_at, submitter)
            row.update(schedule=schedule, scheduled_for=slot)
            here = room is not None or in_transaction
            if here:
                row.update(owner=process_id(), heartbeat_at=enqueued_at)
            else:
                row["run_after"] = enqueued_at
            with (
                nullcontext() if in_transaction else sqlite_write_turn(connection),
                connection.cursor() as cursor,
            ):
                inserted = statements_for(connection).insert_unless_taken(cursor, row)
        except BaseException as exc:
            if room is not None:
                room.release()
            _refuse_if_unavailable(exc, type(self), task)
            raise
        if not inserted:
            if room is not None:
                room.release()
            return None
        then: Callable[[], object]
        if here:
            spec = _spec_of(row, task, submitter, sender=type(self), using=using)
            then = partial(
                transaction.on_commit, partial(_hand_off, spec, room), using=using
            )
        else:
            then = partial(scheduler.wake_at, enqueued_at)
        return self._announce(task, ticket, args, kwargs, enqueued_at, then=then)

    def _admit(self, task: Task[..., Any], using: str) -> None:
        """Refuse a submitter over a cap, before any room is taken or any
        row written: a refusal costs only the look (none outside a request)."""
        try:
            admission.check_room(
                current_submitter(create_session=False), cost_of(task), using
            )
        except OverLimit as exc:
            _announce_refusal(type(self), task, exc)
            raise
        except (OperationalError, InterfaceError) as exc:
            _refuse_if_unavailable(exc, type(self), task)
            raise

    def _enqueue_here(
        self,
        task: Task[P, R],
        args: list[Any],
        kwargs: dict[str, Any],
        unique_key: str | None,
        using: str,
        enqueued_at: datetime,
        slot: Slot | None,
    ) -> TaskResult[P, R]:
        """Write the row, owned by this process, and hand the job to its
        executor (when the transaction commits, inside one)."""
        connection = connections[using]
        in_transaction = connection.in_atomic_block
        if in_transaction and slot is not None:
            # The transaction may still roll back, and nothing would free a
            # slot held for it: check for room now, take it again on commit.
            slot.release()
            slot = None
        ticket = uuid.uuid4()
        try:
            # The submitter may need the database too (a session to save).
            submitter = current_submitter()
            row = self._row(task, ticket, args, kwargs, enqueued_at, submitter)
            # Queued in this process's executor: owned by it until it runs.
            row["owner"] = process_id()
            row["heartbeat_at"] = enqueued_at
            existing = _insert(connection, row, unique_key)
        except BaseException as exc:
            if slot is not None:
                slot.release()
            _refuse_if_unavailable(exc, type(self), task)
            raise
        if existing is not None:
            if slot is not None:
                slot.release()
            return cast("TaskResult[P, R]", result_from_job(existing, task))
        spec = _spec_of(row, task, submitter, sender=type(self), using=using)
        if in_transaction:
            start = partial(
                transaction.on_commit, partial(_hand_off, spec, slot), using=using
            )
        else:
            start = partial(_hand_off, spec, slot)
        # Sent before the hand-off, so no receiver sees the start first.
        return self._announce(task, ticket, args, kwargs, enqueued_at, then=start)

    def _row(
        self,
        task: Task[..., Any],
        ticket: uuid.UUID,
        args: list[Any],
        kwargs: dict[str, Any],
        enqueued_at: datetime,
        submitter: Submitter,
    ) -> dict[str, Any]:
        name = jobfiles.pending_input()
        return transitions.enqueued(
            ticket=ticket,
            task=task,
            backend=self.alias,
            args=args,
            kwargs=kwargs,
            enqueued_at=enqueued_at,
            submitter=(submitter.user_id, submitter.session_key, submitter.address),
            cost=cost_of(task),
            input_file=name,
            input_size=jobfiles.size_of(name) if name else 0,
        )

    def _defer(
        self,
        task: Task[P, R],
        args: list[Any],
        kwargs: dict[str, Any],
        unique_key: str | None,
        using: str,
        enqueued_at: datetime,
        run_after: datetime,
    ) -> TaskResult[P, R]:
        """Write an ownerless row for later: no slot is held while it waits."""
        ticket = uuid.uuid4()
        try:
            submitter = current_submitter()
            row = self._row(task, ticket, args, kwargs, enqueued_at, submitter)
            row["run_after"] = run_after
            existing = _insert(connections[using], row, unique_key)
        except (OperationalError, InterfaceError) as exc:
            _refuse_if_unavailable(exc, type(self), task)
            raise
        if existing is not None:
            return cast("TaskResult[P, R]", result_from_job(existing, task))
        wake = partial(
            transaction.on_commit, partial(scheduler.wake_at, run_after), using=using
        )
        return self._announce(task, ticket, args, kwargs, enqueued_at, then=wake)

    def _announce(
        self,
        task: Task[P, R],
        ticket: uuid.UUID,
        args: list[Any],
        kwargs: dict[str, Any],
        enqueued_at: datetime,
        *,
        then: Callable[[], object],
    ) -> TaskResult[P, R]:
        """Send task_enqueued for a written row, then start (or schedule) it.

        ``then`` runs even if a receiver raised: the row is written, and a
        job with a ticket must run.
        """
        result = build_result(
            task=task,
            ticket=str(ticket),
            status=TaskResultStatus.READY,
            args=args,
            kwargs=kwargs,
            enqueued_at=enqueued_at,
        )
        try:
            with about_job(ticket, task):
                task_enqueued.send(type(self), task_result=result)
        finally:
            then()
        return result

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        try:
            job = Job.objects.get(pk=result_id)
        except (Job.DoesNotExist, ValidationError, ValueError) as exc:
            raise TaskResultDoesNotExist(result_id) from exc
        return result_from_job(job)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        return [*super().check(**kwargs), *checks.check_backend(self.alias)]


def _spec_of(
    row: dict[str, Any],
    task: Task[..., Any],
    submitter: Submitter,
    *,
    sender: type,
    using: str,
) -> JobSpec:
    """The engine's spec of a job just written from ``row``."""
    return JobSpec(
        ticket=row["id"],
        task=task,
        args=row["args"],
        kwargs=row["kwargs"],
        enqueued_at=row["enqueued_at"],
        owner=row["owner"],
        sender=sender,
        using=using,
        submitter_user=submitter.user_id,
        submitter_session=submitter.session_key,
        submitter_address=submitter.address,
        input_file=row.get("input_file", ""),
    )


def _announce_refusal(sender: type, task: Task[..., Any], exc: EnqueueRefused) -> None:
    enqueue_refused.send(sender, task=task, reason=type(exc).__name__, exception=exc)


def _refuse_if_unavailable(
    exc: BaseException, sender: type, task: Task[..., Any]
) -> None:
    """A database that does not answer is a refusal to retry, not a crash."""
    if isinstance(exc, OperationalError | InterfaceError):
        # The driver's text (hosts, ports, paths) is for the logs, not for
        # the client that reads the refusal.
        logger.warning("slowjobs: could not record a job: %s", exc)
        refusal = DatabaseUnavailable(
            gettext("The job could not be recorded: the database did not answer."),
            retry_after=conf.get().retry_after,
        )
        _announce_refusal(sender, task, refusal)
        raise refusal from exc


def _insert(
    connection: BaseDatabaseWrapper, row: dict[str, Any], unique_key: str | None
) -> Job | None:
    """Write the row; with a key already taken, return that unfinished job."""
    statements = statements_for(connection)
    if unique_key is None:
        if connection.in_atomic_block:
            # The caller's transaction makes it durable (or rolls it back).
            with connection.cursor() as cursor:
                statements.insert(cursor, [row])
        else:
            # Committed with every row and state queued at the same moment
            # (group commit); durable when this returns.
            get_writer(connection.alias).insert(row)
        return None
    row["unique_key"] = unique_key
    jobs = Job.objects.using(connection.alias)
    for _ in range(UNIQUE_ATTEMPTS):
        try:
            # A savepoint, so a duplicate key leaves the caller's
            # transaction usable.
            with (
                nullcontext()
                if connection.in_atomic_block
                else sqlite_write_turn(connection),
                transaction.atomic(using=connection.alias),
                connection.cursor() as cursor,
            ):
                statements.insert(cursor, [row])
            return None
        except IntegrityError:
            existing = jobs.unfinished().filter(unique_key=unique_key).first()
            if existing is not None:
                return existing
            # It finished in between: the key is free again.
    raise IntegrityError(f"Could not enqueue a job with unique key {unique_key!r}.")


def _hand_off(spec: JobSpec, slot: Slot | None) -> None:
    if slot is None:
        slot = get_executor().force_slot()
    start_on(slot, spec, priority=spec.task.priority)
