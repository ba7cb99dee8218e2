"""The demo site under gunicorn with two worker processes, driven over HTTP."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlsplit

import pytest

from slowjobs.models import Job
from tests.http_client import HttpClient

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"Accept": "application/json"}


def test_second_post_with_the_session_needs_the_csrf_token(gunicorn):
    client = HttpClient(gunicorn.url)
    first = client.post("/demo/report/", {"rows": 1, "row_ms": 0}, headers=JSON)
    assert first.status == 202
    assert client.cookie("sessionid")
    assert client.cookie("csrftoken"), "the 202 hands out a CSRF token"
    refused = client.post("/demo/report/", {"rows": 1, "row_ms": 0}, headers=JSON)
    assert refused.status == 403
    again = client.post(
        "/demo/report/", {"rows": 1, "row_ms": 0}, headers=client.api_headers()
    )
    assert again.status == 202


def test_reports_submitted_over_http_run_and_are_downloadable(gunicorn):
    client = HttpClient(gunicorn.url)
    tickets = []
    for rows in (3, 50, 7, 20):
        reply = client.post(
            "/demo/report/", {"rows": rows, "row_ms": 1}, headers=client.api_headers()
        )
        assert reply.status == 202, reply.body
        assert urlsplit(reply.headers["Location"]).path.endswith("/status")
        tickets.append((rows, reply.json()))

    for rows, ticket in tickets:
        status = client.wait_for_status(ticket["status_url"], {"succeeded", "failed"})
        assert status["status"] == "succeeded", status
        assert status["result"]["rows"] == rows
        download = client.get(status["result_url"])
        assert download.status == 200
        lines = list(csv.reader(io.StringIO(download.body.decode())))
        assert [int(line[0]) for line in lines[1:]] == list(range(1, rows + 1))

    # Each job ran inside one of the gunicorn worker processes.
    owners = {job.owner.split(":")[1] for job in Job.objects.all()}
    assert owners
    assert str(gunicorn.process.pid) not in owners


def test_other_clients_get_404_for_a_job_over_http(gunicorn):
    owner = HttpClient(gunicorn.url)
    reply = owner.post("/demo/report/", {"rows": 1, "row_ms": 0}, headers=JSON)
    status_url = reply.json()["status_url"]
    assert owner.get(status_url).status == 200
    stranger = HttpClient(gunicorn.url)
    # The URL without the job's key (which is the owner's to share).
    assert stranger.get(urlsplit(status_url).path).status == 404
    assert stranger.get(status_url).status == 200
    assert stranger.get("/jobs/not-a-ticket/status").status == 404


def test_bad_input_over_http_is_400_not_500(gunicorn):
    client = HttpClient(gunicorn.url)
    reply = client.post("/demo/report/", {"rows": "x", "row_ms": 0}, headers=JSON)
    assert reply.status == 400
    assert "rows" in reply.json()["errors"]
    page = client.post("/demo/report/", {"rows": "-1", "row_ms": 0})
    assert page.status == 400
    assert b"<form" in page.body


def test_jobs_run_in_the_workers_of_a_preloaded_server(transactional_db, tmp_path):
    from tests.conftest import start_gunicorn, stop

    server = start_gunicorn(tmp_path, workers=2, extra_args=("--preload",))
    try:
        client = HttpClient(server.url)
        tickets = []
        for _ in range(6):
            reply = client.post(
                "/demo/report/", {"rows": 5, "row_ms": 1}, headers=client.api_headers()
            )
            assert reply.status == 202
            tickets.append(reply.json()["status_url"])
        for status_url in tickets:
            status = client.wait_for_status(status_url, {"succeeded", "failed"})
            assert status["status"] == "succeeded", status
    finally:
        stop(server.process)
    pids = {job.owner.split(":")[1] for job in Job.objects.all()}
    assert str(server.process.pid) not in pids  # never the preloading master


def test_a_large_upload_is_checksummed_over_http(gunicorn):
    import hashlib
    import os

    content = os.urandom(8 * 1024 * 1024) + b"\n" * 3
    client = HttpClient(gunicorn.url)
    reply = client.upload("/demo/checksum/", "file", "random.bin", content)
    assert reply.status == 202, reply.body
    status = client.wait_for_status(reply.json()["status_url"], {"succeeded", "failed"})
    assert status["status"] == "succeeded", status
    assert status["result"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert status["result"]["bytes"] == len(content)
    assert status["progress"]["percent"] == 100.0


def test_an_upload_over_the_limit_is_413_over_http(transactional_db, tmp_path):
    from tests.conftest import start_gunicorn, stop

    server = start_gunicorn(tmp_path, workers=1, SLOWJOBS_MAX_UPLOAD_MB="1")
    try:
        client = HttpClient(server.url)
        reply = client.upload("/demo/checksum/", "file", "big.bin", b"x" * 3_000_000)
        assert reply.status == 413
        assert reply.json()["error"] == "The upload is larger than 1 MB."
        assert client.get("/").status == 200  # the server is fine
    finally:
        stop(server.process)
    assert not Job.objects.exists()
