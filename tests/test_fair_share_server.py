"""Fair share against the demo under gunicorn: a flood from one address is
capped (429) while visitors on other addresses are served at once; a body
sent chunked is told to send a length (411)."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

import pytest

from slowjobs.models import Job, JobStatus
from tests.http_client import HttpClient

pytestmark = pytest.mark.django_db(transaction=True)

LARGEST = {"rows": 100000, "row_ms": 10000}


def test_a_flood_from_one_address_does_not_hold_back_others(gunicorn):
    # A client that never sends its cookie back: a new session each time.
    flood = HttpClient(gunicorn.url, source="127.0.0.2", keep_cookies=False)
    answers = [
        flood.post("/demo/report/", LARGEST, headers={"Accept": "application/json"})
        for _ in range(24)
    ]
    statuses = [answer.status for answer in answers]
    assert statuses == [202] * 20 + [429] * 4, statuses
    refusal = answers[-1]
    assert refusal.json()["limit"] == "address"
    assert refusal.headers["Retry-After"] == "5"
    # Visitors on other addresses get in, and their jobs start at once:
    # the flood holds half of each process's threads at most.
    for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        visitor = HttpClient(gunicorn.url, source=source)
        reply = visitor.post(
            "/demo/report/", {"rows": 5, "row_ms": 100}, headers=visitor.api_headers()
        )
        assert reply.status == 202, (reply.status, reply.body)
        body = visitor.wait_for_status(
            reply.json()["status_url"], {"succeeded", "failed"}, timeout=15
        )
        assert body["status"] == "succeeded"
    flood_jobs = Job.objects.filter(submitter_address="127.0.0.2")
    assert flood_jobs.count() == 20
    running = flood_jobs.filter(status=JobStatus.RUNNING).count()
    assert running <= 2 * 2  # two gunicorn workers, half of 4 threads each


def test_a_chunked_body_gets_411_not_a_missing_field(gunicorn):
    parts = urlsplit(gunicorn.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("POST", "/demo/report/")
    connection.putheader("Accept", "application/json")
    connection.putheader("Content-Type", "application/x-www-form-urlencoded")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    body = b"rows=3&row_ms=0"
    connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    reply = connection.getresponse()
    assert reply.status == 411
    assert b"Content-Length" in reply.read()
    connection.close()
    time.sleep(0)  # nothing was queued
    assert not Job.objects.exists()
