"""A job's own log: what its code logs while it runs, kept with the job.

Real job threads and real job processes, several at once: each job keeps
its own lines and no one else's, within the bounds, counting what made way.
"""

from __future__ import annotations

import logging
import threading

import pytest

from slowjobs.models import Job, JobStatus
from slowjobs.progress import get_store
from slowjobs.progress.base import log_key
from slowjobs.progress.records import opened
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def messages(ticket: str) -> list[str]:
    return [line["message"] for line in Job.objects.get(pk=ticket).log]


@pytest.mark.parametrize("task", [tasks.log_lines, tasks.log_lines_in_process])
def test_concurrent_jobs_keep_their_own_lines_and_nothing_from_outside(task, finished):
    outside = logging.getLogger("tests.joblog")
    stop = threading.Event()

    def chatter() -> None:  # a request thread logging all the while
        while not stop.is_set():
            outside.warning("outside any job")
            stop.wait(0.005)

    chatterer = threading.Thread(target=chatter)
    chatterer.start()
    try:
        results = [task.enqueue(name, 30, 0.01) for name in ("alpha", "beta", "gamma")]
        for result in results:
            finished.wait(result.id, timeout=60)
    finally:
        stop.set()
        chatterer.join()
    for name, result in zip(("alpha", "beta", "gamma"), results, strict=True):
        job = Job.objects.get(pk=result.id)
        assert job.status == JobStatus.SUCCEEDED, job.error_message
        assert messages(result.id) == [f"{name} line {n}" for n in range(30)]
        assert {line["logger"] for line in job.log} == {"tests.joblog"}
        assert {line["level"] for line in job.log} == {"WARNING"}
        assert job.log_dropped == 0


@pytest.mark.parametrize("task", [tasks.log_lines, tasks.log_lines_in_process])
def test_the_newest_lines_are_kept_within_the_bounds_and_the_rest_counted(
    task, settings, finished
):
    settings.SLOWJOBS_JOB_LOG_LINES = 10
    result = task.enqueue("many", 25)
    finished.wait(result.id, timeout=60)
    job = Job.objects.get(pk=result.id)
    assert messages(result.id) == [f"many line {n}" for n in range(15, 25)]
    assert job.log_dropped == 15


def test_long_lines_are_bounded_by_bytes_too(settings, finished):
    settings.SLOWJOBS_JOB_LOG_BYTES = 2000
    result = tasks.echo_log.enqueue("x" * 900, 5)
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert 1 <= len(job.log) <= 2
    assert job.log_dropped == 5 - len(job.log)


def test_capture_off_keeps_nothing(settings, finished):
    settings.SLOWJOBS_JOB_LOG_LINES = 0
    result = tasks.log_lines.enqueue("quiet", 3)
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).log == []


def test_the_lines_are_live_in_memcached_while_it_runs(memcached, finished):
    result = tasks.log_then_wait.enqueue("live-log")
    key = log_key(result.id)
    store = get_store()
    deadline = 50
    record = None
    while deadline and record is None:
        found = store.get(key)
        record = opened(key, found) if found is not None else None
        if record is None:
            threading.Event().wait(0.1)
            deadline -= 1
    assert record is not None, "the log never reached memcached"
    assert [line["message"] for line in record["lines"]] == ["live-log waiting"]
    tasks.gate("live-log").set()
    finished.wait(result.id)
    assert store.get(key) is None  # it goes with the live record
    assert messages(result.id) == ["live-log waiting"]
