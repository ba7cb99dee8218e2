from __future__ import annotations

import uuid

import pytest
from django.test import override_settings
from django.utils import timezone

from slowjobs.engine import context as module_api
from slowjobs.engine.runner import run_job
from slowjobs.engine.running import get_running
from slowjobs.engine.spec import JobSpec
from slowjobs.jobs.statewriter import stop_writers
from slowjobs.models import Job, JobStatus
from slowjobs.tasksapi import TaskResultStatus
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_context_reports_progress_into_the_row(finished):
    result = tasks.count_with_context.enqueue(1000)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.progress_current, job.progress_total) == (1000, 1000)
    assert job.progress_message == "step 1000"
    assert job.percent == 100.0
    assert job.result == {"ticket": result.id, "checkpoint": None}


def test_module_api_reports_progress_without_takes_context(finished):
    result = tasks.count_with_module_api.enqueue(50)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert (job.progress_current, job.progress_total) == (50, 50)
    assert job.progress_message == "counting"


def test_module_api_does_nothing_outside_a_job():
    module_api.progress(1, 2, "nobody listens")
    module_api.check_cancelled()
    assert module_api.checkpoint() is None
    assert module_api.save_checkpoint({"x": 1}) is False
    assert tasks.count_with_module_api.call(3) == 3


@override_settings(SLOWJOBS_PROGRESS_DB_INTERVAL=3600)
def test_progress_reaches_the_row_at_a_bounded_rate(finished):
    """100,000 reports make a handful of row writes, not 100,000."""
    from slowjobs.jobs.statewriter import get_writer

    writer = get_writer()
    before = writer.writes
    result = tasks.count_with_context.enqueue(100_000)
    finished.wait(result.id, timeout=60)
    # The start, one progress copy at the first report, and the finish.
    assert writer.writes - before <= 3
    assert Job.objects.get(pk=result.id).progress_current == 100_000


def test_messages_are_bounded_and_percent_follows_current_and_total(client, finished):
    result = tasks.report_then_wait.enqueue("bounded", 1, 3)
    assert tasks.gate("bounded-reported").wait(10)
    running = get_running(uuid.UUID(result.id))
    assert running is not None
    assert len(running.progress_fields()["progress_message"]) == 200
    tasks.gate("bounded").set()
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert len(job.progress_message) == 200
    assert job.percent == pytest.approx(33.3)


def _spec(task, *args, checkpoint=None, owner="test-owner"):
    job = Job.objects.create(
        task_path=task.module_path,
        args=list(args),
        enqueued_at=timezone.now(),
        owner=owner,
        checkpoint=checkpoint,
    )
    return JobSpec(
        ticket=job.pk,
        task=task,
        args=list(args),
        kwargs={},
        enqueued_at=job.enqueued_at,
        owner=owner,
        checkpoint=checkpoint,
    )


def test_a_checkpoint_is_durable_and_a_resumed_attempt_reads_it():
    spec = _spec(tasks.checkpoint_steps, 5)
    run_job(spec)
    stop_writers(10)
    job = Job.objects.get(pk=spec.ticket)
    assert job.checkpoint == {"done": 5}
    assert job.result == {"resumed_from": 0, "done": 5}

    resumed = _spec(tasks.checkpoint_steps, 8, checkpoint={"done": 5})
    run_job(resumed)
    stop_writers(10)
    assert Job.objects.get(pk=resumed.ticket).result == {"resumed_from": 5, "done": 8}


def test_context_sees_shutdown_and_deadline():
    from slowjobs.engine import running

    spec = _spec(tasks.see_shutdown_and_deadline)
    with override_settings(SLOWJOBS_JOB_TIMEOUT=0):
        running.stopping.set()
        try:
            run_job(spec)
        finally:
            running.stopping.clear()
    stop_writers(10)
    assert Job.objects.get(pk=spec.ticket).result == {
        "shutting_down": True,
        "deadline_passed": True,
    }


def test_a_checkpoint_that_is_not_json_fails_the_job_clearly(finished):
    result = tasks.save_bad_checkpoint.enqueue()
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert "the checkpoint['when'] is a object, which is not JSON" in job.error_message


def test_task_result_status_of_a_cancelled_job_is_failed(finished):
    result = tasks.loop_until_cancelled.enqueue("to-cancel")
    assert tasks.gate("to-cancel-started").wait(10)
    from slowjobs.jobs.cancel import cancel

    cancel(uuid.UUID(result.id))
    finished.wait(result.id)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "slowjobs.exceptions.JobCancelled"
