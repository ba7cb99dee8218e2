from __future__ import annotations

import time
import uuid

import pytest
from django.test import Client

from slowjobs.models import Job, JobStatus
from slowjobs.web.submitter import submitted_by
from tests import tasks
from tests.sessions import session_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["embedded", "memcached"])
def store(request):
    """Each cancel test runs with the embedded store and with memcached."""
    if request.param == "memcached":
        request.getfixturevalue("memcached")
    return request.param


def _cancel(client: Client, ticket: str):
    return client.post(f"/jobs/{ticket}/cancel", HTTP_ACCEPT="application/json")


def test_cancelling_a_running_job_stops_it(store, finished):
    client, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.loop_until_cancelled.enqueue("running")
    assert tasks.gate("running-started").wait(10)
    response = _cancel(client, result.id)
    assert response.status_code == 202
    body = response.json()
    assert body["cancel_requested"] is True, body
    assert body["status"] in {"running", "cancelled"}
    finished.wait(result.id)
    job = Job.objects.get(pk=result.id)
    assert job.status == JobStatus.CANCELLED
    assert job.error_class == "slowjobs.exceptions.JobCancelled"
    status = client.get(f"/jobs/{result.id}/status").json()
    assert status["status"] == "cancelled"
    assert status["error"] == "Cancelled while running."


def test_cancelling_a_queued_job_means_it_never_starts(store, settings, finished):
    settings.SLOWJOBS_WORKERS = 1
    client, key = session_client()
    blocker = tasks.wait_for_gate.enqueue("queue-blocker")
    with submitted_by(session_key=key):
        queued = tasks.record_order.enqueue("must not run")
    response = _cancel(client, queued.id)
    assert response.json()["status"] == "cancelled"
    assert response.json()["detail"] == "Cancelled before it started."
    tasks.gate("queue-blocker").set()
    finished.wait(blocker.id)
    from slowjobs.lifecycle.control import shutdown

    assert shutdown(timeout=10).drained
    assert "order" not in tasks.seen
    job = Job.objects.get(pk=queued.id)
    assert job.status == JobStatus.CANCELLED
    assert job.started_at is None
    assert job.attempts == 0


def test_cancelling_a_finished_job_changes_nothing(store, finished):
    client, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.add.enqueue(1, 1)
    finished.wait(result.id)
    response = _cancel(client, result.id)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["cancel_requested"] is False
    assert body["result"] == 2
    assert "already finished" in body["detail"]
    assert Job.objects.get(pk=result.id).cancel_requested is False


def test_cancel_requested_shows_before_the_job_acknowledges(store, finished):
    client, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.report_then_block.enqueue("ack")
    assert tasks.gate("ack-reported").wait(10)
    assert client.get(f"/jobs/{result.id}/status").json()["cancel_requested"] is False
    _cancel(client, result.id)
    status = client.get(f"/jobs/{result.id}/status").json()
    assert status["status"] == "running"
    assert status["cancel_requested"] is True
    assert status["progress"]["percent"] == 50.0
    tasks.gate("ack").set()
    finished.wait(result.id)


def test_someone_elses_job_cannot_be_cancelled(store):
    _, key = session_client()
    stranger, _ = session_client()
    with submitted_by(session_key=key):
        result = tasks.wait_for_gate.enqueue("not-yours")
    assert _cancel(stranger, result.id).status_code == 404
    assert _cancel(Client(), result.id).status_code == 404
    assert _cancel(stranger, "not-a-ticket").status_code == 404
    assert _cancel(stranger, str(uuid.uuid4())).status_code == 404
    assert Job.objects.get(pk=result.id).cancel_requested is False
    tasks.gate("not-yours").set()


def test_cancel_with_a_session_needs_the_csrf_token():
    browser, key = session_client(enforce_csrf_checks=True)
    with submitted_by(session_key=key):
        result = tasks.wait_for_gate.enqueue("csrf")
    assert _cancel(browser, result.id).status_code == 403
    assert Job.objects.get(pk=result.id).cancel_requested is False
    tasks.gate("csrf").set()


def test_cancel_is_post_only(client):
    assert client.get(f"/jobs/{uuid.uuid4()}/cancel").status_code == 405


def test_staff_may_cancel_any_job(admin_client, finished):
    result = tasks.loop_until_cancelled.enqueue("staff")
    assert tasks.gate("staff-started").wait(10)
    assert _cancel(admin_client, result.id).status_code == 202
    finished.wait(result.id)
    assert Job.objects.get(pk=result.id).status == JobStatus.CANCELLED


def test_a_running_job_sees_the_cancel_within_one_check_interval(store, settings):
    settings.SLOWJOBS_CANCEL_CHECK_INTERVAL = 0.2
    client, key = session_client()
    with submitted_by(session_key=key):
        result = tasks.loop_until_cancelled.enqueue("timely")
    assert tasks.gate("timely-started").wait(10)
    sent = time.monotonic()
    _cancel(client, result.id)
    while Job.objects.get(pk=result.id).status != JobStatus.CANCELLED:
        assert time.monotonic() - sent < 0.2 + 2, "not cancelled in time"
        time.sleep(0.01)


def test_the_status_page_cancel_button_redirects_back(finished):
    browser, key = session_client(enforce_csrf_checks=True)
    with submitted_by(session_key=key):
        result = tasks.loop_until_cancelled.enqueue("button")
    assert tasks.gate("button-started").wait(10)
    page = browser.get(f"/jobs/{result.id}/")
    assert page.status_code == 200
    assert f'action="/jobs/{result.id}/cancel"'.encode() in page.content
    token = page.context["csrf_token"]
    response = browser.post(f"/jobs/{result.id}/cancel", {"csrfmiddlewaretoken": token})
    assert response.status_code == 303
    assert response["Location"] == f"/jobs/{result.id}/"
    finished.wait(result.id)
    page = browser.get(f"/jobs/{result.id}/")
    assert b"Cancelled" in page.content
    assert b'action="/jobs/' not in page.content
