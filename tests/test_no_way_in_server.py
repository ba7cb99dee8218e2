"""Permissions, the live store and the admin's delete against the demo under
gunicorn with memcached: what a staff account without permissions, and
whoever reaches memcached, can do over the wire."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission

from slowjobs.models import Job, JobStatus
from slowjobs.progress.base import live_key
from slowjobs.progress.records import session_digest
from tests.conftest import child_env, start_gunicorn, stop
from tests.http_client import HttpClient
from tests.test_live_store_trust import FORGED_RUNNING, raw_memcached, write_raw

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"Accept": "application/json"}


@pytest.fixture
def server(memcached_server: Any, collected_static: None, tmp_path: Any) -> Any:
    started = start_gunicorn(tmp_path, SLOWJOBS_MEMCACHED=memcached_server.location)
    yield started
    stop(started.process)


def logged_in(url: str, username: str) -> HttpClient:
    """Sign in through the admin's login form, as a person would."""
    client = HttpClient(url)
    form = client.get("/admin/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body)
    assert token is not None
    reply = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": username,
            "password": "pw-for-tests-only",
            "csrfmiddlewaretoken": token.group(1).decode(),
        },
    )
    assert reply.status == 302, reply.body[:300]
    return client


def finished_report(client: HttpClient) -> dict[str, Any]:
    reply = client.post("/demo/report/", {"rows": 3, "row_ms": 0}, headers=JSON)
    assert reply.status == 202
    body = client.wait_for_status(reply.json()["status_url"], {"succeeded"})
    assert body["status"] == "succeeded"
    return body


@pytest.fixture
def users(django_user_model: Any, settings: Any) -> Any:
    """Users whose passwords the server (the demo's hashers) can check."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return django_user_model


def test_staff_without_permissions_read_and_cancel_nothing_over_http(server, users):
    owner = HttpClient(server.url)
    done = finished_report(owner)
    ticket = done["ticket"]
    running = owner.post(
        "/demo/report/", {"rows": 100000, "row_ms": 50}, headers=owner.api_headers()
    ).json()["ticket"]
    staff = users.objects.create_user(
        "staff", password="pw-for-tests-only", is_staff=True
    )
    client = logged_in(server.url, "staff")
    headers = {**JSON, "X-CSRFToken": client.cookie("csrftoken") or ""}
    assert client.get(f"/jobs/{ticket}/status").status == 404
    assert client.get(f"/jobs/{ticket}/result").status == 404
    assert client.post(f"/jobs/{running}/cancel", {}, headers=headers).status == 404
    staff.user_permissions.add(Permission.objects.get(codename="view_job"))
    assert client.get(f"/jobs/{ticket}/result").status == 200
    assert client.post(f"/jobs/{running}/cancel", {}, headers=headers).status == 404
    staff.user_permissions.add(Permission.objects.get(codename="cancel_job"))
    cancelled = client.post(f"/jobs/{running}/cancel", {}, headers=headers)
    assert cancelled.status == 202
    assert cancelled.json()["cancel_requested"] is True


def test_a_forged_live_record_over_http_changes_nothing(
    server, memcached_server, settings
):
    # The digests the server writes are keyed by its own secret.
    settings.SECRET_KEY = child_env()["SECRET_KEY"]
    owner = HttpClient(server.url)
    done = finished_report(owner)
    ticket = done["ticket"]
    session = owner.cookie("sessionid") or ""
    status_path = urlsplit(done["result_url"]).path.replace("/result", "/status")
    forged = FORGED_RUNNING.format(
        ticket=ticket, session=session_digest(session), seen=time.time()
    )
    write_raw(memcached_server, live_key(ticket), forged)
    body = owner.get(status_path).json()
    assert body["status"] == "succeeded"
    assert body["progress"]["message"] != "forged"
    for garbage in ('{"status": "running"}', "[1, 2]", '{"current": 1' + "0" * 400):
        write_raw(memcached_server, live_key(ticket), garbage)
        answer = owner.get(status_path)
        assert answer.status == 200
        assert answer.json()["status"] == "succeeded"
    # The live records of running jobs hold a digest, never the session key.
    reply = owner.post(
        "/demo/report/", {"rows": 2000, "row_ms": 5}, headers=owner.api_headers()
    )
    running = reply.json()["ticket"]
    raw = None
    deadline = time.monotonic() + 10
    while raw is None and time.monotonic() < deadline:
        raw = raw_memcached(memcached_server).get(live_key(running))
        time.sleep(0.05)
    assert raw is not None
    assert session.encode() not in raw
    assert session_digest(session).encode() in raw


def test_the_admin_deletes_no_unfinished_job_over_http(server, users):
    owner = HttpClient(server.url)
    running = owner.post(
        "/demo/report/", {"rows": 100000, "row_ms": 50}, headers=JSON
    ).json()["ticket"]
    user = users.objects.create_user(
        "deleter", password="pw-for-tests-only", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_job", "delete_job"])
    )
    client = logged_in(server.url, "deleter")
    page = f"/admin/slowjobs/job/{running}/delete/"
    assert client.get(page).status == 403
    token = client.cookie("csrftoken") or ""
    refused = client.post(page, {"post": "yes", "csrfmiddlewaretoken": token})
    assert refused.status == 403
    assert Job.objects.get(pk=running).status in (
        JobStatus.QUEUED,
        JobStatus.RUNNING,
    )
