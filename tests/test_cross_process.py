"""Cancel and progress across server processes: two gunicorn servers, one
database, and memcached (or, without it, the database alone)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from slowjobs.models import Job
from tests.conftest import start_gunicorn, stop
from tests.http_client import HttpClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memcached", "database only"])
def two_servers(request, transactional_db, tmp_path: Path):
    env = {}
    if request.param == "memcached":
        env["SLOWJOBS_MEMCACHED"] = request.getfixturevalue("memcached").location
    first = start_gunicorn(tmp_path, workers=1, **env)
    second = start_gunicorn(tmp_path, workers=1, **env)
    yield first, second
    stop(first.process)
    stop(second.process)


def test_a_job_running_in_one_process_is_cancelled_from_another(two_servers):
    first, second = two_servers
    via_first = HttpClient(first.url)
    submitted = via_first.post(
        "/demo/report/",
        {"rows": 5000, "row_ms": 2},
        headers=via_first.api_headers(),
    )
    assert submitted.status == 202
    ticket = submitted.json()["ticket"]
    status_path = f"/jobs/{ticket}/status"

    # The same visitor, through the other server (cookies are per host).
    via_second = HttpClient(second.url, cookies=via_first.cookies)
    deadline = time.monotonic() + 20
    while True:
        status = via_second.get(status_path).json()
        if status["status"] == "running" and (status["progress"]["current"] or 0) > 0:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.05)

    sent = time.monotonic()
    answer = via_second.post(
        f"/jobs/{ticket}/cancel", {}, headers=via_second.api_headers()
    )
    assert answer.status == 202, answer.body
    assert answer.json()["cancel_requested"] is True
    while (status := via_second.get(status_path).json())["status"] != "cancelled":
        assert time.monotonic() - sent < 5, status
        time.sleep(0.02)
    latency = time.monotonic() - sent
    assert status["cancel_requested"] is True
    assert status["error"] == "Cancelled while running."
    # It ran in the first server's worker, not in the one that cancelled it.
    owner_pid = int(Job.objects.get(pk=ticket).owner.split(":")[1])
    assert owner_pid != second.process.pid
    assert latency < 0.5 + 1.5  # one check interval, plus the polling here
