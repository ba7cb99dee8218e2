"""memcached stopped, restarted or flushed under running jobs."""

from __future__ import annotations

import time
import uuid

import pytest

from slowjobs.models import Job, JobStatus
from slowjobs.progress import get_store
from slowjobs.progress.base import live_key
from slowjobs.progress.memcached import RETRY_AFTER
from slowjobs.web.submitter import submitted_by
from tests import tasks
from tests.sessions import session_client

pytestmark = pytest.mark.django_db(transaction=True)


def _eventually(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_jobs_keep_working_while_memcached_is_down_and_use_it_again(
    own_memcached, settings, finished
):
    settings.SLOWJOBS_PROGRESS_INTERVAL = 0.05
    settings.SLOWJOBS_PROGRESS_DB_INTERVAL = 0.1
    settings.SLOWJOBS_CANCEL_CHECK_INTERVAL = 0.05
    client, key = session_client(raise_request_exception=True)
    with submitted_by(session_key=key):
        long_job = tasks.progress_until_gate.enqueue("outage")
        doomed = tasks.progress_until_gate.enqueue("doomed")
    assert tasks.gate("outage-started").wait(10)
    assert tasks.gate("doomed-started").wait(10)
    store = get_store()
    assert store.get(live_key(long_job.id)) is not None, "progress is in memcached"

    own_memcached.stop()  # in the middle of both jobs

    # Status still answers, from the database, with progress that moves.
    first = client.get(f"/jobs/{long_job.id}/status")
    assert first.status_code == 200
    assert first.json()["status"] == "running"
    _eventually(
        lambda: (
            (
                client.get(f"/jobs/{long_job.id}/status").json()["progress"]["current"]
                or 0
            )
            > (first.json()["progress"]["current"] or 0)
        ),
        5,
        "progress stopped moving without memcached",
    )
    # Submitting works, and the new job completes (another visitor's: this
    # one's two running jobs are their share of the threads).
    other, other_key = session_client()
    with submitted_by(session_key=other_key):
        extra = tasks.add.enqueue(2, 2)
    finished.wait(extra.id)
    assert other.get(f"/jobs/{extra.id}/status").json()["result"] == 4
    # Cancelling works (through the database).
    answer = client.post(f"/jobs/{doomed.id}/cancel", HTTP_ACCEPT="application/json")
    assert answer.status_code == 202
    finished.wait(doomed.id)
    assert Job.objects.get(pk=doomed.id).status == JobStatus.CANCELLED

    own_memcached.start()  # empty, as after a restart
    _eventually(
        lambda: store.get(live_key(long_job.id)) is not None,
        RETRY_AFTER + 5,
        "memcached was not used again after it came back",
    )
    tasks.gate("outage").set()
    finished.wait(long_job.id)
    job = Job.objects.get(pk=long_job.id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.progress_current == job.result
    assert store.get(live_key(long_job.id)) is None, "a finished job leaves no record"


def test_a_cancel_lost_in_a_memcached_flush_is_found_in_the_database(
    memcached, settings, finished
):
    settings.SLOWJOBS_CANCEL_CHECK_INTERVAL = 0.02
    result = tasks.progress_until_gate.enqueue("flushed")
    assert tasks.gate("flushed-started").wait(10)
    # Another process asked to cancel; then memcached lost the flag.
    Job.objects.filter(pk=result.id).update(cancel_requested=True)
    memcached.flush()
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).status == JobStatus.CANCELLED
    tasks.gate("flushed").set()


def test_status_with_memcached_up_reads_no_row_for_a_running_job(
    memcached, django_assert_num_queries, settings
):
    client, key = session_client(raise_request_exception=True)
    with submitted_by(session_key=key):
        result = tasks.report_then_block.enqueue("noquery")
    assert tasks.gate("noquery-reported").wait(10)
    with django_assert_num_queries(0):
        body = client.get(f"/jobs/{result.id}/status").json()
    assert body["status"] == "running"
    assert body["progress"]["current"] == 1
    assert body["ticket"] == str(uuid.UUID(result.id))
    tasks.gate("noquery").set()


def test_a_running_jobs_unchanged_status_is_a_304_from_memcached_alone(
    memcached, django_assert_num_queries
):
    client, key = session_client(raise_request_exception=True)
    with submitted_by(session_key=key):
        result = tasks.report_then_block.enqueue("etag")
    assert tasks.gate("etag-reported").wait(10)
    url = f"/jobs/{result.id}/status"
    first = client.get(url)
    etag = first["ETag"]
    assert first.status_code == 200
    with django_assert_num_queries(0):
        again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    tasks.gate("etag").set()
