"""Conformance with Django's Tasks framework.

The behaviour Django's own test suite (``tests/tasks/`` in its source
distribution) checks for its backends, checked here against slowjobs: task
objects and ``using()``, enqueue and aenqueue, results and their
timestamps, errors and tracebacks, the ``django.tasks`` log lines, context,
validation, ``get_result``/``refresh``.  Where slowjobs differs by design
(the job runs on another thread, after the transaction commits; results
must be JSON), the test says so and checks slowjobs' answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from slowjobs.backend.backend import SlowJobsBackend
from slowjobs.tasksapi import (
    DEFAULT_TASK_QUEUE_NAME,
    TASKS_LOGGER,
    InvalidTask,
    InvalidTaskBackend,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    default_task_backend,
    task_backends,
)
from tests import conformance_tasks as t

pytestmark = pytest.mark.django_db(transaction=True)


def run_async(awaitable):
    """Await in an event loop; then close the connection the awaited sync
    code opened on asgiref's thread (or the test database stays in use)."""

    async def main():
        try:
            return await awaitable
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(main())


def finished(result: TaskResult, timeout: float = 15) -> TaskResult:
    deadline = time.monotonic() + timeout
    while not result.is_finished:
        assert time.monotonic() < deadline, f"{result.id} stayed {result.status}"
        time.sleep(0.02)
        result.refresh()
    return result


def logged_line(caplog, *parts: str, timeout: float = 10) -> None:
    """Wait for the framework's log line: task_finished is sent once the
    outcome is durable, on the notifier thread, a moment after the row."""
    deadline = time.monotonic() + timeout
    while not any(
        r.name == TASKS_LOGGER and all(p in r.getMessage() for p in parts)
        for r in caplog.records
    ):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)


def test_the_default_backend_is_slowjobs():
    assert default_task_backend == task_backends["default"]
    assert isinstance(task_backends["default"], SlowJobsBackend)
    assert default_task_backend.alias == "default"
    assert default_task_backend.supports_get_result
    assert default_task_backend.supports_defer
    assert default_task_backend.supports_async_task


def test_the_decorator_makes_tasks_with_and_without_parentheses():
    for task in (t.nothing, t.nothing_bare, t.nothing_async):
        assert isinstance(task, Task)


@pytest.mark.parametrize("task", [t.nothing, t.nothing_async])
def test_enqueue_then_success_with_every_timestamp(task):
    result = task.enqueue(1, two=3)
    assert result.status == TaskResultStatus.READY
    assert result.task == task
    assert (result.args, result.kwargs) == ([1], {"two": 3})
    done = finished(result)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.is_finished
    assert done.started_at >= done.enqueued_at
    assert done.last_attempted_at is not None
    assert done.finished_at >= done.started_at
    assert done.return_value is None
    assert done.attempts == 1


@pytest.mark.parametrize("task", [t.nothing, t.nothing_async])
def test_aenqueue_then_success(task):
    result = run_async(task.aenqueue())
    assert (result.args, result.kwargs) == ([], {})
    assert finished(result).status == TaskResultStatus.SUCCESSFUL


def test_the_return_value_comes_back():
    assert finished(default_task_backend.enqueue(t.answer, [], {})).return_value == 42
    result = run_async(default_task_backend.aenqueue(t.answer, [], {}))
    assert finished(result).return_value == 42


@pytest.mark.parametrize(
    ("task", "exception", "message"),
    [
        (t.raises_value_error, ValueError, "broke with a ValueError"),
        (t.raises_system_exit, SystemExit, "broke with a SystemExit"),
        # Django's immediate backend re-raises KeyboardInterrupt in the caller;
        # a job on a worker thread cannot, so the job fails with it instead.
        (
            t.raises_keyboard_interrupt,
            KeyboardInterrupt,
            "broke with a KeyboardInterrupt",
        ),
    ],
)
def test_a_failure_is_recorded_with_its_class_and_traceback(
    task, exception, message, caplog
):
    with caplog.at_level(logging.ERROR, logger=TASKS_LOGGER):
        result = finished(task.enqueue())
        logged_line(caplog, "state=FAILED", result.id)
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.errors[0].exception_class is exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")


def test_a_nested_exception_keeps_its_repr_in_the_traceback():
    result = finished(t.raises_nested.enqueue())
    assert result.errors[0].exception_class is ValueError
    assert "ValueError(ValueError('inner'))" in result.errors[0].traceback or (
        'ValueError(ValueError("inner"))' in result.errors[0].traceback
    )


def test_a_return_value_that_is_not_json_fails_the_job_with_a_type_error():
    result = finished(t.returns_a_function.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert issubclass(result.errors[0].exception_class, TypeError)
    assert "not JSON" in result.errors[0].traceback


def test_arguments_that_are_not_json_are_refused_at_enqueue():
    with pytest.raises(TypeError, match="not JSON"):
        t.nothing.enqueue(datetime.now())
    with pytest.raises(TypeError, match="not JSON"):
        run_async(t.nothing.aenqueue(datetime.now()))


def test_django_logs_enqueued_running_and_finished_with_the_id(caplog):
    with caplog.at_level(logging.DEBUG, logger=TASKS_LOGGER):
        result = finished(t.nothing.enqueue())
        logged_line(caplog, "state=SUCCESSFUL", result.id)
    lines = [r.getMessage() for r in caplog.records if r.name == TASKS_LOGGER]
    assert len(lines) == 3, lines
    assert "enqueued" in lines[0]
    assert "state=RUNNING" in lines[1]
    assert "state=SUCCESSFUL" in lines[2]
    assert all(result.id in line for line in lines)
    assert not any("None" in line for line in lines)


def test_the_context_gives_the_result_and_the_attempt():
    result = finished(t.own_ticket.enqueue())
    assert result.return_value == result.id
    assert finished(t.sees_attempt.enqueue(1)).status == TaskResultStatus.SUCCESSFUL


@override_settings(
    TASKS={
        "default": {
            "BACKEND": "slowjobs.backend.SlowJobsBackend",
            "QUEUES": [DEFAULT_TASK_QUEUE_NAME, "q1"],
        }
    }
)
def test_using_makes_new_tasks_and_chains():
    now = timezone.now()
    assert t.nothing.priority == 0
    assert t.nothing.using(priority=1).priority == 1
    assert t.nothing.queue_name == DEFAULT_TASK_QUEUE_NAME
    assert t.nothing.using(queue_name="q1").queue_name == "q1"
    later = t.nothing.using(run_after=now)
    assert later.using(priority=10).run_after == now
    assert later.priority == 0
    copy = t.nothing.using()
    assert copy == t.nothing
    assert copy is not t.nothing
    with pytest.raises(InvalidTaskBackend):
        t.nothing.using(backend="unknown")


def test_validation_refuses_bad_tasks():
    with pytest.raises(InvalidTask, match="run_after"):
        t.nothing.using(run_after=datetime.now()).enqueue()  # naive
    with pytest.raises(InvalidTask, match="priority"):
        t.nothing.using(priority=1000).enqueue()
    with (
        override_settings(
            TASKS={
                "default": {
                    "BACKEND": "slowjobs.backend.SlowJobsBackend",
                    "QUEUES": ["queue-1"],
                }
            }
        ),
        pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid"),
    ):
        t.nothing.using(queue_name="unknown_queue").enqueue()


def test_results_are_read_back_refreshed_and_missing_ones_raise():
    result = finished(t.answer.enqueue())
    fetched = default_task_backend.get_result(result.id)
    assert fetched.id == result.id
    assert fetched.return_value == 42
    assert run_async(default_task_backend.aget_result(result.id)).return_value == 42
    stale = dataclasses.replace(result, status=TaskResultStatus.READY)
    run_async(stale.arefresh())
    assert stale.status == TaskResultStatus.SUCCESSFUL
    for missing in ("123", "not-a-uuid", "6f1c1a1e-0000-4000-8000-000000000000"):
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(missing)


def test_the_job_waits_for_the_transaction_to_commit():
    # Django's immediate backend runs at once; slowjobs runs on commit, so a
    # rolled-back request starts nothing (the documented difference).
    with transaction.atomic():
        result = t.answer.enqueue()
        time.sleep(0.2)
        assert default_task_backend.get_result(result.id).status == (
            TaskResultStatus.READY
        )
    assert finished(result).return_value == 42
