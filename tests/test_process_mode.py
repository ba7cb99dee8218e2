"""Process mode: a task's code runs in a job process, with thread mode's
semantics (ticket, progress, checkpoints, result file, cancel, timeout,
retries), and a task that does not stop is killed and replaced."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.test import override_settings

from slowjobs.engine.processes.pool import current_pool
from slowjobs.jobs import files as jobfiles
from slowjobs.jobs.cancel import cancel
from slowjobs.models import Job, JobStatus
from slowjobs.progress import get_store
from slowjobs.progress.base import live_key
from slowjobs.tasksapi import InvalidTask, task
from tests import tasks
from tests.conftest import in_forked_child

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def start_spinning(tmp_path: Path, seconds: float, look: bool):
    """Enqueue a CPU-bound job; return its result once it runs, and its pid."""
    marker = tmp_path / "pid"
    result = tasks.spin_in_process.enqueue(seconds, look, str(marker))
    wait_until(marker.exists, what="the job to start")
    return result, int(marker.read_text())


def assert_replaced_and_running_the_next_job(finished) -> None:
    """The pool started one successor (no more) and it runs the next job."""
    after = tasks.pid_of_process.enqueue()
    finished.wait(after.id, timeout=30)
    assert Job.objects.get(pk=after.id).status == JobStatus.SUCCEEDED
    pool = current_pool()
    assert pool is not None
    assert pool.started == 2
    assert pool.stats()["alive"] == 1  # the dead one's place, not one more


def test_a_process_mode_job_runs_elsewhere_with_the_same_semantics(finished):
    result = tasks.where_and_how.enqueue(5)
    finished.wait(result.id, timeout=60)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.SUCCEEDED, job.error_traceback
    value = job.result
    assert value["pid"] != os.getpid()
    assert value["niceness"] == 10  # SLOWJOBS_PROCESS_NICENESS's default
    assert value["saved"] is True
    assert job.checkpoint == {"step": 5}
    assert (job.progress_current, job.progress_total) == (5, 5)
    assert job.progress_message == "step 5"
    path = jobfiles.resolve(job.result_file)
    assert path is not None
    assert path.read_text() == f"{value['pid']}\n"
    # The next job reuses the warm process.
    again = tasks.pid_of_process.enqueue()
    finished.wait(again.id, timeout=30)
    assert Job.objects.get(pk=again.id).result == value["pid"]
    pool = current_pool()
    assert pool is not None
    assert pool.started == 1


def test_progress_from_a_process_is_live_while_it_runs(finished):
    result = tasks.spin_in_process.enqueue(3.0, True)
    record = wait_until(
        lambda: (get_store().get(live_key(result.id)) or {}).get("current"),
        what="live progress from the job process",
    )
    assert record > 0
    finished.wait(result.id, timeout=30)
    assert Job.objects.get(pk=result.id).status == JobStatus.SUCCEEDED


def test_a_cancel_stops_a_cooperating_task_and_keeps_its_process(finished, tmp_path):
    result, pid = start_spinning(tmp_path, 30.0, True)
    cancel(result.id)
    finished.wait(result.id, timeout=10)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.CANCELLED
    assert job.error_class == "slowjobs.exceptions.JobCancelled"
    assert alive(pid), "a task that stopped by itself keeps its process"


@override_settings(SLOWJOBS_PROCESS_STOP_GRACE=0.3)
def test_a_task_that_ignores_a_cancel_is_killed_and_its_process_replaced(
    finished, tmp_path
):
    result, pid = start_spinning(tmp_path, 60.0, False)
    asked = time.monotonic()
    cancel(result.id)
    finished.wait(result.id, timeout=10)
    took = time.monotonic() - asked
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.CANCELLED
    assert took < 5, f"the cancel took {took:.1f} s"
    wait_until(lambda: not alive(pid), 5, "the killed process to be gone")
    # Its successor runs the next job.
    after = tasks.pid_of_process.enqueue()
    finished.wait(after.id, timeout=30)
    successor = Job.objects.get(pk=after.id).result
    assert successor not in (pid, os.getpid())


@override_settings(SLOWJOBS_JOB_TIMEOUT=0.5, SLOWJOBS_PROCESS_STOP_GRACE=0.3)
def test_a_job_past_its_timeout_is_killed_and_fails(finished, tmp_path):
    marker = tmp_path / "pid"
    began = time.monotonic()
    result = tasks.spin_in_process.enqueue(60.0, False, str(marker))
    finished.wait(result.id, timeout=15)
    took = time.monotonic() - began
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.error_class == "slowjobs.exceptions.JobTimedOut"
    assert took < 8, f"a 0.5 s timeout took {took:.1f} s"
    wait_until(
        lambda: not alive(int(marker.read_text())), 5, "the process to be killed"
    )


def test_a_process_that_dies_fails_its_job_clearly_and_is_replaced(finished):
    result = tasks.die_in_process.enqueue(3)
    finished.wait(result.id, timeout=30)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.error_class == "slowjobs.exceptions.JobProcessFailed"
    assert "exit code 3" in job.error_message
    assert_replaced_and_running_the_next_job(finished)


def test_retry_policy_sees_the_exception_raised_in_the_process(finished):
    retried = tasks.fail_in_process.enqueue("key")
    not_retried = tasks.fail_in_process.enqueue("value")
    finished.wait(not_retried.id, timeout=30)
    wait_until(
        lambda: Job.objects.get(pk=retried.id).status == JobStatus.FAILED,
        what="the retried job to fail twice",
    )
    job = Job.objects.get(pk=retried.id)
    assert job.attempts == 2
    assert job.error_class == "builtins.KeyError"
    assert "key failed in a process" in job.error_message
    assert "Traceback" in job.error_traceback
    other = Job.objects.get(pk=not_retried.id)
    assert other.attempts == 1
    assert other.error_class == "builtins.ValueError"


@override_settings(SLOWJOBS_SCHEDULER_INTERVAL=0.2)
def test_a_job_enqueued_from_a_process_is_run_by_a_server(finished):
    result = tasks.enqueue_from_process.enqueue(2, 3)
    finished.wait(result.id, timeout=30)
    parent = Job.objects.get(pk=result.id)
    assert parent.status == JobStatus.SUCCEEDED, parent.error_traceback
    wait_until(
        lambda: Job.objects.get(pk=parent.result).status == JobStatus.SUCCEEDED,
        what="the enqueued job to run",
    )
    assert Job.objects.get(pk=parent.result).result == 5


@override_settings(SLOWJOBS_RUNS_IN="process", SLOWJOBS_PROCESS_NICENESS=3)
def test_the_setting_sends_every_task_to_processes(finished):
    result = tasks.echo.enqueue(1, two=2)
    finished.wait(result.id, timeout=30)
    job = Job.objects.get(pk=result.id)
    assert job.result == {"args": [1], "kwargs": {"two": 2}}
    pool = current_pool()
    assert pool is not None
    assert pool.started == 1
    assert pool.niceness == 3


def test_runs_in_is_checked():
    with pytest.raises(InvalidTask, match="runs_in must be one of thread, process"):
        task(runs_in="fork")(tasks.noop.func)


@override_settings(SLOWJOBS_THREAD_NICENESS=7)
def test_job_threads_can_run_at_a_lower_priority_than_requests(finished):
    result = tasks.own_thread_niceness.enqueue()
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).result == os.nice(0) + 7
    # The request threads (this one) keep theirs.
    assert os.getpriority(os.PRIO_PROCESS, 0) == os.nice(0)


def test_a_forked_server_starts_its_own_job_processes(finished):
    result = tasks.pid_of_process.enqueue()
    finished.wait(result.id, timeout=30)
    parent_pool = current_pool()
    assert parent_pool is not None
    # A forked worker must not use its parent's processes.
    assert in_forked_child(lambda: current_pool() is None)
    assert current_pool() is parent_pool


def test_a_process_that_breaks_the_protocol_is_replaced_and_its_job_fails(finished):
    began = time.monotonic()
    result = tasks.break_the_protocol.enqueue()
    finished.wait(result.id, timeout=20)
    assert time.monotonic() - began < 10
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.FAILED
    assert job.error_class == "slowjobs.exceptions.JobProcessFailed"
    assert "not a message" in job.error_message
    assert_replaced_and_running_the_next_job(finished)


@override_settings(SLOWJOBS_PROCESS_MAX_JOBS=2)
def test_a_process_is_replaced_after_its_max_jobs(finished):
    pids = []
    for _ in range(3):
        result = tasks.pid_of_process.enqueue()
        finished.wait(result.id, timeout=30)
        pids.append(Job.objects.get(pk=result.id).result)
    assert pids[0] == pids[1]
    assert pids[2] != pids[0]
    wait_until(lambda: not alive(pids[0]), 5, "the worn-out process to end")


@override_settings(SLOWJOBS_PROCESSES=1)
def test_a_job_waiting_for_a_process_says_so_and_runs_when_one_frees(
    finished, tmp_path
):
    busy, pid = start_spinning(tmp_path, 30.0, True)
    waiting = tasks.pid_of_process.enqueue()
    record = wait_until(
        lambda: get_store().get(live_key(waiting.id)), what="the waiting job's record"
    )
    assert record["message"] == "Waiting for a free job process"
    cancel(busy.id)
    finished.wait(waiting.id, timeout=15)
    job = Job.objects.get(pk=waiting.id)
    assert job.result == pid  # the freed process ran it
    assert job.progress_message == ""
