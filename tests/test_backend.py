from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from slowjobs.exceptions import ExecutorFull, InvalidTaskArguments
from slowjobs.models import Job, JobStatus
from slowjobs.tasksapi import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    default_task_backend,
    task_enqueued,
    task_started,
)
from slowjobs.web.submitter import submitted_by
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueue_writes_a_queued_row_before_the_job_runs():
    gate = tasks.gate("queued")
    blocker = tasks.wait_for_gate.enqueue("queued")
    result = tasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    job = Job.objects.get(pk=result.id)
    assert job.task_path == "tests.tasks.add"
    assert job.args == [2, 3]
    assert job.kwargs == {}
    assert job.enqueued_at is not None
    gate.set()
    assert blocker.id != result.id


def test_job_succeeds_and_result_is_readable(finished):
    result = tasks.add.enqueue(2, b=40)
    finished.wait(result.id)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 42
    assert result.attempts == 1
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == 42
    assert job.started_at >= job.enqueued_at
    assert job.finished_at >= job.started_at
    assert job.owner


def test_result_id_is_a_random_uuid():
    first, second = tasks.noop.enqueue(), tasks.noop.enqueue()
    assert uuid.UUID(first.id).version == 4
    assert first.id != second.id


def test_failure_records_class_message_and_traceback(finished):
    result = tasks.fail.enqueue("boom <b>")
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.error_class == "builtins.ValueError"
    assert job.error_message == "boom <b>"
    assert "Traceback" in job.error_traceback
    assert "raise ValueError(message)" in job.error_traceback
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError


def test_a_failing_task_does_not_kill_the_worker(finished):
    with override_settings(SLOWJOBS_WORKERS=1):
        failures = [tasks.fail.enqueue(f"n{i}") for i in range(3)]
        after = tasks.add.enqueue(1, 1)
        for result in [*failures, after]:
            finished.wait(result.id)
    assert Job.objects.get(pk=after.id).result == 2


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((object(),), {}, "args[0] is a object, which is not JSON"),
        ((), {"when": timezone.now()}, "kwargs['when'] is a datetime"),
        (([1, {2: "x"}],), {}, "args[0][1] has the key 2"),
        ((float("nan"),), {}, "JSON has no NaN"),
    ],
)
def test_arguments_that_are_not_json_are_refused_at_enqueue(args, kwargs, message):
    with pytest.raises(InvalidTaskArguments, match=message.replace("[", r"\[")):
        tasks.echo.enqueue(*args, **kwargs)
    assert not Job.objects.exists()


def test_invalid_arguments_are_a_type_error_like_djangos():
    with pytest.raises(TypeError):
        tasks.echo.enqueue({1, 2})


def test_a_result_that_is_not_json_fails_the_job_clearly(finished):
    result = tasks.return_not_json.enqueue()
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.error_class == "slowjobs.exceptions.InvalidTaskResult"
    assert "the return value is a set" in job.error_message


def test_a_rolled_back_transaction_leaves_no_job_and_runs_nothing():
    class Rollback(Exception):
        pass

    def enqueue_then_fail():
        with transaction.atomic():
            tasks.record_order.enqueue("rolled back")
            raise Rollback

    with pytest.raises(Rollback):
        enqueue_then_fail()
    assert not Job.objects.exists()
    tasks.record_order.enqueue("committed")
    # Once every accepted job has ended, a leaked one would have run too.
    from slowjobs.lifecycle.control import shutdown

    shutdown(timeout=10)
    assert tasks.seen["order"] == ["committed"]


def test_the_job_starts_only_when_the_transaction_commits(finished):
    with transaction.atomic():
        result = tasks.record_order.enqueue("inside")
        assert Job.objects.get(pk=result.id).status == JobStatus.QUEUED
        assert "order" not in tasks.seen
    finished.wait(result.id)
    assert tasks.seen["order"] == ["inside"]


def test_async_task_functions_run(finished):
    result = tasks.async_add.enqueue(20, 22)
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).result == 42


def test_context_tasks_see_their_ticket(finished):
    result = tasks.with_context.enqueue()
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).result == {"id": result.id, "attempt": 1}


@override_settings(SLOWJOBS_WORKERS=1)
def test_higher_priority_jobs_start_first(finished):
    gate = tasks.gate("priority")
    blocker = tasks.wait_for_gate.enqueue("priority")
    low = [tasks.record_order.enqueue(f"low{i}") for i in range(2)]
    high = tasks.urgent.enqueue("high")
    gate.set()
    for result in [blocker, *low, high]:
        finished.wait(result.id)
    assert tasks.seen["order"] == ["high", "low0", "low1"]
    assert Job.objects.get(pk=high.id).priority == 10


def test_a_naive_run_after_is_refused():
    later = timezone.now().replace(tzinfo=None) + timedelta(minutes=5)
    with pytest.raises(InvalidTask, match="run_after"):
        tasks.noop.using(run_after=later).enqueue()


def test_get_result_reads_the_row_and_rejects_unknown_ids(finished):
    result = tasks.add.enqueue(1, 2)
    finished.wait(result.id)
    fetched = default_task_backend.get_result(result.id)
    assert fetched.return_value == 3
    assert fetched.task.func is tasks.add.func
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(str(uuid.uuid4()))
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("not-a-uuid")


def test_signals_are_sent_for_enqueue_start_and_finish(finished):
    seen: list[tuple[str, str]] = []

    def record(signal_name):
        def receiver(sender, task_result, **kwargs):
            seen.append((signal_name, task_result.status))

        return receiver

    on_enqueued, on_started = record("enqueued"), record("started")
    task_enqueued.connect(on_enqueued)
    task_started.connect(on_started)
    try:
        result = tasks.noop.enqueue()
        finished.wait(result.id)
    finally:
        task_enqueued.disconnect(on_enqueued)
        task_started.disconnect(on_started)
    assert seen == [("enqueued", "READY"), ("started", "RUNNING")]


def test_submitter_is_recorded(django_user_model):
    user = django_user_model.objects.create_user("ada")
    with submitted_by(user=user):
        result = tasks.noop.enqueue()
    with submitted_by(session_key="s" * 32):
        anonymous = tasks.noop.enqueue()
    assert Job.objects.get(pk=result.id).submitted_by == user
    assert Job.objects.get(pk=anonymous.id).submitter_session == "s" * 32


@override_settings(SLOWJOBS_WORKERS=1, SLOWJOBS_QUEUE_SIZE=1)
def test_a_full_executor_refuses_with_nothing_written():
    gate = tasks.gate("full")
    tasks.wait_for_gate.enqueue("full")
    tasks.wait_for_gate.enqueue("full")
    with pytest.raises(ExecutorFull) as refused:
        tasks.noop.enqueue()
    assert refused.value.retry_after == 5
    assert "All 2 job places of the server are taken" in str(refused.value)
    assert Job.objects.count() == 2
    gate.set()


def test_job_threads_close_their_database_connections(finished):
    results = [tasks.touch_database.enqueue() for _ in range(3)]
    for result in results:
        finished.wait(result.id)
    from slowjobs.lifecycle.control import shutdown

    assert shutdown(timeout=10).drained
    used = tasks.seen["connections"]
    assert used
    assert all(conn.connection is None for conn in used)
