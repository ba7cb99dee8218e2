"""The live store is untrusted input: memcached has no authentication.

Records are sealed with the site's secret; a forged or malformed one reads
as missing (the row answers), a forged cancel request cancels nothing, the
database's final state wins, and no session key is ever stored there.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymemcache.client.base import Client as MemcachedClient

from slowjobs.models import Job, JobStatus
from slowjobs.progress import get_store
from slowjobs.progress.base import cancel_key, live_key
from slowjobs.progress.memcached import JSON_FLAG
from slowjobs.progress.records import session_digest
from slowjobs.web.submitter import submitted_by
from tests import tasks
from tests.sessions import session_client

pytestmark = pytest.mark.django_db(transaction=True)


def raw_memcached(memcached: Any) -> MemcachedClient:
    """What an attacker on the network has: the server, no secret."""
    host, port = memcached.location.rsplit(":", 1)
    return MemcachedClient((host, int(port)))


def write_raw(memcached: Any, key: str, value: str) -> None:
    """Write as the app's store does (its JSON flag), as an attacker can."""
    raw_memcached(memcached).set(key, value.encode(), flags=JSON_FLAG)


FORGED_RUNNING = (
    '{{"ticket": "{ticket}", "task": "x", "status": "running",'
    ' "cancel_requested": false, "current": 1, "total": 2, "message": "forged",'
    ' "attempts": 1, "enqueued_at": "2026-01-01T00:00:00+00:00",'
    ' "started_at": "2026-01-01T00:00:00+00:00", "user": null,'
    ' "session": "{session}", "owner": "x", "seen": {seen}}}'
)


def test_a_forged_running_record_over_a_finished_job_changes_nothing(
    memcached, finished
):
    client, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.add.enqueue(1, 2)
    finished.wait(result.id)
    forged = FORGED_RUNNING.format(
        ticket=result.id, session=session_digest(key), seen=time.time()
    )
    write_raw(memcached, live_key(result.id), forged)
    body = client.get(f"/jobs/{result.id}/status").json()
    assert body["status"] == "succeeded"
    assert body["result"] == 3
    assert body["progress"]["message"] != "forged"


@pytest.mark.parametrize(
    "record",
    [
        '{"status": "running"}',
        '{"ticket": "T", "status": "running", "current": "x"}',
        '{"ticket": "T", "status": "running", "current": 1' + "0" * 400 + "}",
        "[1, 2, 3]",
        "not json at all",
    ],
    ids=["no-task", "current-not-a-number", "400-digits", "a-list", "garbage"],
)
def test_a_malformed_record_reads_as_missing_never_a_500(memcached, record):
    client, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.loop_until_cancelled.enqueue("malformed")
    assert tasks.gate("malformed-started").wait(10)
    try:
        write_raw(memcached, live_key(result.id), record.replace("T", result.id))
        reply = client.get(f"/jobs/{result.id}/status")
        assert reply.status_code == 200
        assert reply.json()["status"] in ("queued", "running")
        assert client.get(f"/jobs/{result.id}/").status_code == 200
    finally:
        tasks.gate("malformed").set()


def test_a_forged_cancel_request_cancels_nothing(memcached, finished, settings):
    settings.SLOWJOBS_CANCEL_CHECK_INTERVAL = 0.05
    result = tasks.loop_until_cancelled.enqueue("forged-cancel")
    assert tasks.gate("forged-cancel-started").wait(10)
    write_raw(memcached, cancel_key(result.id), '{"requested_at": "now"}')
    time.sleep(0.5)  # ten looks for a cancel
    assert Job.objects.get(pk=result.id).status == JobStatus.RUNNING
    tasks.gate("forged-cancel").set()
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).status == JobStatus.SUCCEEDED


def test_the_live_record_holds_a_session_digest_never_the_key(memcached, settings):
    settings.SLOWJOBS_HEARTBEAT_INTERVAL = 0.5  # a beat publishes the record
    client, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.loop_until_cancelled.enqueue("digest")
    assert tasks.gate("digest-started").wait(10)
    try:
        deadline = time.monotonic() + 10
        while (stored := raw_memcached(memcached).get(live_key(result.id))) is None:
            assert time.monotonic() < deadline, "no live record was written"
            time.sleep(0.05)
        assert key.encode() not in stored
        assert session_digest(key).encode() in stored
        # The owner is still recognised from the record.
        assert get_store().get(live_key(result.id)) is not None
        assert client.get(f"/jobs/{result.id}/status").json()["status"] == "running"
    finally:
        tasks.gate("digest").set()
