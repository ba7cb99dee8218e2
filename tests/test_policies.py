"""Per-task policies: retries with backoff, deferral, timeouts, uniqueness."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from slowjobs.backend.task import retry_delay
from slowjobs.jobs.cancel import cancel
from slowjobs.lifecycle import control as lifecycle
from slowjobs.lifecycle.orphans import orphaned
from slowjobs.models import Job, JobStatus
from slowjobs.tasksapi import InvalidTask, TaskResultStatus, default_task_backend, task
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_status(ticket: str, statuses: set[str], timeout: float = 15) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=ticket)
        if job.status in statuses:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {ticket} stayed {job.status}")


FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


# -- retries ------------------------------------------------------------------


def test_a_failing_job_is_retried_with_growing_delays(finished):
    result = tasks.flaky.enqueue("flaky", 2)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == 3
    assert job.attempts == 3
    assert [entry["outcome"] for entry in job.history] == ["failed", "failed"]
    assert "ConnectionError: run 1 of flaky failed" in job.history[0]["error"]
    runs = tasks.seen["flaky"]
    # 0.05 s, then 0.1 s (backoff 2): each gap at least its delay.
    assert runs[1] - runs[0] >= 0.05
    assert runs[2] - runs[1] >= 0.1
    assert job.error_message == ""


def test_retries_stop_at_max_attempts(finished):
    result = tasks.flaky.enqueue("always", 10)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.attempts == 3
    assert len(tasks.seen["always"]) == 3
    assert job.error_class == "builtins.ConnectionError"
    assert job.error_message == "run 3 of always failed"
    assert len(job.history) == 2
    result.refresh()
    assert result.status == TaskResultStatus.FAILED


def test_only_the_listed_exceptions_retry(finished):
    result = tasks.fails_with_value_error.enqueue("value")
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.attempts == 1
    assert len(tasks.seen["value"]) == 1


def test_a_job_waiting_for_its_retry_is_queued_and_can_be_cancelled():
    slow = tasks.flaky.using(priority=0)
    # A long delay: the job must still be waiting when it is cancelled.
    waiting = type(slow)(**{**_fields(slow), "retry_delay": 30.0})
    result = waiting.enqueue("cancel-me", 5)
    job = wait_for_status(result.id, {JobStatus.QUEUED, JobStatus.FAILED})
    deadline = time.monotonic() + 10
    while not job.history and time.monotonic() < deadline:
        time.sleep(0.02)
        job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.owner == ""
    assert job.run_after > timezone.now() + timedelta(seconds=20)
    assert cancel(job.pk) == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert len(tasks.seen["cancel-me"]) == 1


def _fields(task_obj):
    import dataclasses

    return {f.name: getattr(task_obj, f.name) for f in dataclasses.fields(task_obj)}


def test_backoff_grows_and_is_capped():
    capped = task(max_attempts=10, retry_delay=1, retry_backoff=3, retry_max_delay=20)(
        tasks.noop.func
    )
    assert [retry_delay(capped, n) for n in range(1, 5)] == [1.0, 3.0, 9.0, 20.0]
    assert retry_delay(capped, 10) is None
    assert retry_delay(tasks.noop, 1) is None  # one attempt: no retry


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"max_attempts": "3"},
        {"retry_delay": -1},
        {"retry_backoff": 0.5},
        {"retry_on": (ValueError, "KeyError")},
        {"timeout": 0},
        {"unique_key": "yes"},
    ],
)
def test_bad_policies_are_refused_when_the_task_is_defined(options):
    with pytest.raises(InvalidTask):
        task(**options)(tasks.noop.func)


# -- timeouts -----------------------------------------------------------------


def test_a_job_past_its_timeout_fails_and_is_not_retried(finished):
    began = time.monotonic()
    result = tasks.runs_past_timeout.enqueue("timeout")
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.error_class == "slowjobs.exceptions.JobTimedOut"
    assert "0.3 s" in job.error_message
    assert job.attempts == 1
    assert len(tasks.seen["timeout"]) == 1
    assert 0.3 <= time.monotonic() - began < 5


@override_settings(SLOWJOBS_JOB_TIMEOUT=0.2)
def test_the_timeout_setting_applies_to_tasks_without_their_own(finished):
    result = tasks.loop_until_cancelled.enqueue("global-timeout")
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.error_class == "slowjobs.exceptions.JobTimedOut"


# -- deferral -----------------------------------------------------------------


def test_the_backend_supports_deferral():
    assert default_task_backend.supports_defer is True


@override_settings(SLOWJOBS_SCHEDULER_INTERVAL=5.0)
def test_a_deferred_job_waits_for_its_time_without_an_owner(finished):
    due = timezone.now() + timedelta(milliseconds=400)
    result = tasks.stamp.using(run_after=due).enqueue("deferred")
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.QUEUED
    assert job.owner == ""
    assert job.run_after == due
    assert result.task.run_after == due
    # Not an orphan while it waits: resume_jobs and adoption leave it.
    assert not orphaned().filter(pk=job.pk).exists()
    finished.wait(result.id)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    # On time: this process knew the due time, it did not wait for a poll.
    assert due.timestamp() <= tasks.seen["deferred"][0] < due.timestamp() + 2


def test_a_past_run_after_runs_at_once(finished):
    result = tasks.add.using(run_after=timezone.now() - timedelta(hours=1)).enqueue(
        1, 2
    )
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).result == 3


@override_settings(SLOWJOBS_SCHEDULER_INTERVAL=0.2)
def test_a_deferred_job_survives_a_restart(finished):
    due = timezone.now() + timedelta(milliseconds=600)
    result = tasks.stamp.using(run_after=due).enqueue("restart")
    lifecycle.shutdown(timeout=5)  # the process that deferred it stops
    lifecycle.reopen()
    assert Job.objects.get(pk=result.id).status == JobStatus.QUEUED
    lifecycle.start(adopt=False)  # a new one knows nothing but the row
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.SUCCEEDED
    assert tasks.seen["restart"][0] >= due.timestamp()


def test_a_deferred_job_in_a_rolled_back_transaction_leaves_nothing():
    due = timezone.now() + timedelta(milliseconds=100)

    def enqueue_then_fail():
        with transaction.atomic():
            tasks.stamp.using(run_after=due).enqueue("rolled-back")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    time.sleep(0.4)
    assert not Job.objects.exists()
    assert "rolled-back" not in tasks.seen


def test_a_cancelled_deferred_job_never_runs():
    due = timezone.now() + timedelta(milliseconds=300)
    result = tasks.stamp.using(run_after=due).enqueue("never")
    assert cancel(Job.objects.get(pk=result.id).pk) == "cancelled"
    time.sleep(0.8)
    assert Job.objects.get(pk=result.id).status == JobStatus.CANCELLED
    assert "never" not in tasks.seen


# -- uniqueness ---------------------------------------------------------------


def test_a_unique_job_is_enqueued_once_while_unfinished(finished):
    first = tasks.unique_wait.enqueue("one")
    again = tasks.unique_wait.enqueue("one")
    other = tasks.unique_wait.enqueue("two")
    assert again.id == first.id
    assert other.id != first.id
    assert Job.objects.filter(task_path="tests.tasks.unique_wait").count() == 2
    tasks.gate("one").set()
    tasks.gate("two").set()
    finished.wait(first.id)
    finished.wait(other.id)
    # Finished: the key is free again.
    later = tasks.unique_wait.enqueue("one")
    assert later.id != first.id
    tasks.gate("one").set()
    finished.wait(later.id)


def test_a_unique_key_function_chooses_what_counts_as_the_same(finished):
    first = tasks.sync_account.enqueue(7, note="a")
    same = tasks.sync_account.enqueue(7, note="b")  # other note, same account
    assert same.id == first.id
    key = Job.objects.get(pk=first.id).unique_key
    assert key == "tests.tasks.sync_account:account-7"
    tasks.gate("sync-7").set()
    finished.wait(first.id)
    assert Job.objects.get(pk=first.id).result == "a"


def test_a_duplicate_inside_a_transaction_keeps_the_transaction_usable(finished):
    with transaction.atomic():
        first = tasks.unique_wait.enqueue("atomic")
        again = tasks.unique_wait.enqueue("atomic")
        assert again.id == first.id
        assert Job.objects.filter(pk=first.id).exists()  # still usable
    tasks.gate("atomic").set()
    finished.wait(first.id)


def test_a_unique_key_function_must_return_a_string():
    bad = task(unique_key=lambda: 5)(tasks.noop.func)
    with pytest.raises(InvalidTask, match="non-empty string"):
        bad.enqueue()
    broken = task(unique_key=lambda: {}["missing"])(tasks.noop.func)
    with pytest.raises(InvalidTask, match="KeyError"):
        broken.enqueue()
