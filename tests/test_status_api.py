from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from django.test import Client
from django.utils import timezone

from slowjobs.models import Job, JobStatus
from slowjobs.web.submitter import submitted_by
from tests import tasks
from tests.sessions import session_client

pytestmark = pytest.mark.django_db(transaction=True)

CONTRACT_KEYS = {
    "ticket",
    "task",
    "status",
    "cancel_requested",
    "progress",
    "attempts",
    "enqueued_at",
    "started_at",
    "finished_at",
    "result",
    "error",
    "result_url",
}


def _owned_job(session_key: str, task=tasks.add, *args):
    with submitted_by(session_key=session_key):
        return task.enqueue(*(args or (1, 2)))


def test_status_json_has_exactly_the_contract_fields(finished):
    client, key = session_client()
    result = _owned_job(key)
    finished.wait(result.id)
    response = client.get(f"/jobs/{result.id}/status")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert set(body) == CONTRACT_KEYS
    assert body["ticket"] == result.id
    assert body["task"] == "tests.tasks.add"
    assert body["status"] == "succeeded"
    assert body["cancel_requested"] is False
    assert body["progress"] == {
        "current": None,
        "total": None,
        "percent": 100.0,
        "message": "",
    }
    assert body["attempts"] == 1
    assert body["result"] == 3
    assert body["error"] is None
    assert body["result_url"] is None
    for field in ("enqueued_at", "started_at", "finished_at"):
        assert datetime.fromisoformat(body[field]).tzinfo is not None


def test_a_queued_job_reads_as_queued_with_nulls():
    client, key = session_client()
    job = Job.objects.create(
        task_path="tests.tasks.noop", enqueued_at=timezone.now(), submitter_session=key
    )
    body = client.get(f"/jobs/{job.pk}/status").json()
    assert body["status"] == "queued"
    assert body["attempts"] == 0
    assert body["started_at"] is None
    assert body["finished_at"] is None
    assert body["progress"]["percent"] is None
    assert body["result"] is None


def test_a_failed_job_shows_the_message_but_no_traceback(finished):
    client, key = session_client()
    result = _owned_job(key, tasks.fail, "disk <full>")
    finished.wait(result.id)
    body = client.get(f"/jobs/{result.id}/status").json()
    assert body["status"] == "failed"
    assert body["error"] == "disk <full>"
    assert "Traceback" not in str(body)


def test_staff_see_any_job_and_its_traceback(finished, admin_client):
    result = tasks.fail.enqueue("boom")
    finished.wait(result.id)
    body = admin_client.get(f"/jobs/{result.id}/status").json()
    assert body["error"] == "boom"
    assert "Traceback" in body["traceback"]


@pytest.mark.parametrize(
    "ticket", [str(uuid.uuid4()), "not-a-ticket", "1", "%20", "0" * 32]
)
def test_unknown_or_malformed_tickets_are_404(client, ticket):
    response = client.get(f"/jobs/{ticket}/status")
    assert response.status_code == 404
    assert response.json() == {"error": "No such job."}


def test_someone_elses_job_is_404_like_an_unknown_one(django_user_model):
    owner, owner_key = session_client()
    other, _ = session_client()
    result = _owned_job(owner_key)
    assert owner.get(f"/jobs/{result.id}/status").status_code == 200
    assert other.get(f"/jobs/{result.id}/status").status_code == 404
    assert Client().get(f"/jobs/{result.id}/status").status_code == 404
    logged_in = Client()
    logged_in.force_login(django_user_model.objects.create_user("bob"))
    assert logged_in.get(f"/jobs/{result.id}/status").status_code == 404


def test_a_logged_in_user_sees_their_own_jobs(django_user_model, finished):
    user = django_user_model.objects.create_user("cy", password="pw")
    client = Client()
    client.force_login(user)
    with submitted_by(user=user):
        result = tasks.add.enqueue(2, 2)
    finished.wait(result.id)
    assert client.get(f"/jobs/{result.id}/status").json()["result"] == 4


def test_status_refuses_writes(client):
    response = client.post(f"/jobs/{uuid.uuid4()}/status")
    assert response.status_code == 405


def test_job_status_maps_to_task_status():
    assert JobStatus("cancelled").to_task_status() == "FAILED"
    assert JobStatus("queued").to_task_status() == "READY"


def test_the_status_page_escapes_what_a_job_says(finished):
    client, key = session_client()
    attack = "<script>alert('x')</script>"
    result = _owned_job(key, tasks.fail, attack)
    finished.wait(result.id)
    Job.objects.filter(pk=result.id).update(
        progress_message=attack, task_path=f"tests.tasks.{attack}"
    )
    page = client.get(f"/jobs/{result.id}/").content.decode()
    assert attack not in page
    assert "&lt;script&gt;alert(" in page


def test_an_unchanged_status_is_a_304_and_a_change_a_new_etag(client):
    session = client.session
    session.save()
    job = Job.objects.create(
        task_path="tests.tasks.noop",
        enqueued_at=timezone.now(),
        submitter_session=session.session_key,
    )
    url = f"/jobs/{job.pk}/status"
    first = client.get(url)
    etag = first["ETag"]
    assert first.status_code == 200
    assert etag.startswith('"')
    unchanged = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert client.get(url, HTTP_IF_NONE_MATCH='"other", ' + etag).status_code == 304
    Job.objects.filter(pk=job.pk).update(progress_current=1, progress_total=2)
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["progress"]["percent"] == 50.0
    # Someone else's If-None-Match learns nothing: still a 404.
    stranger = Client()
    assert stranger.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 404
